//! Unmasking of client payloads (RFC 6455 section 5.3).
//!
//! tungstenite's mask module is private, so this is our own. The XOR runs on
//! 8-byte words, which the compiler vectorises; no `unsafe` is needed because
//! `chunks_exact_mut` hands out fixed-size slices.

/// Appends `payload` to `out`, XORed with the repeating 4-byte `mask`.
///
/// The payload is copied once (a `memcpy`) and then unmasked in place, so the
/// bytes are read from the socket buffer exactly once.
pub(crate) fn extend_unmasked(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    let start = out.len();
    out.extend_from_slice(payload);
    // `start` is where this frame's payload begins; the mask restarts there.
    if let Some(tail) = out.get_mut(start..) {
        apply_mask(tail, mask);
    }
}

/// XORs `data` in place with the repeating 4-byte `mask`, starting at mask byte 0.
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    // Eight bytes hold two full mask periods, so every word sees the mask
    // aligned at offset 0 and no rotation is needed.
    let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &[u8], mask: [u8; 4]) -> Vec<u8> {
        data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect()
    }

    #[test]
    fn word_unmasking_matches_bytewise_xor_for_every_length() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let mut out = vec![9, 9, 9];
            extend_unmasked(&mut out, &data, mask);
            assert_eq!(&out[..3], &[9, 9, 9]);
            assert_eq!(&out[3..], naive(&data, mask).as_slice(), "len {len}");
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let mask = [1, 2, 3, 4];
        let mut data = b"Hello, masked world!".to_vec();
        apply_mask(&mut data, mask);
        apply_mask(&mut data, mask);
        assert_eq!(data, b"Hello, masked world!");
    }
}
