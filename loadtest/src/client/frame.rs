//! WebSocket frame layer (RFC 6455 §5): parse the unmasked frames a server sends, in place, and
//! encode the masked frames a client must send. No allocation per frame.

use thiserror::Error;

/// Continuation frame of a fragmented message.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text data frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary data frame.
pub const OP_BINARY: u8 = 0x2;
/// Close control frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping control frame.
pub const OP_PING: u8 = 0x9;
/// Pong control frame.
pub const OP_PONG: u8 = 0xA;

/// The largest frame payload accepted from a server; anything bigger is treated as a protocol
/// error rather than buffered without bound.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// A server frame that breaks RFC 6455.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// RSV bits set without a negotiated extension (with permessage-deflate: RSV2 or RSV3, or
    /// RSV1 on a control or continuation frame).
    #[error("reserved bits set in frame header")]
    Reserved,
    /// Opcode 3-7 or 0xB-0xF.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// Servers must not mask frames (§5.1).
    #[error("server sent a masked frame")]
    Masked,
    /// Control frames must be final and at most 125 bytes (§5.5).
    #[error("invalid control frame")]
    Control,
    /// A continuation without a message in progress, or a new message inside one (§5.4).
    #[error("bad fragmentation")]
    Fragment,
    /// Payload larger than [`MAX_PAYLOAD`].
    #[error("frame payload of {0} bytes is too large")]
    TooLarge(u64),
    /// A compressed message (RSV1, permessage-deflate) that is not valid deflate data.
    #[error("compressed message does not inflate: {0}")]
    Inflate(String),
    /// A compressed message that inflates to more than [`MAX_PAYLOAD`] bytes.
    #[error("compressed message inflates to more than {MAX_PAYLOAD} bytes")]
    InflatedTooLarge,
}

/// The decoded header of one frame; the payload is `buf[header_len..header_len + payload_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// FIN bit: last frame of a message.
    pub fin: bool,
    /// One of the `OP_*` constants.
    pub opcode: u8,
    /// RSV1 on the first frame of a message: permessage-deflate compressed it.
    pub compressed: bool,
    /// Bytes of header before the payload.
    pub header_len: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl FrameHead {
    /// Total bytes of the frame on the wire.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Parses the frame header at the start of `buf`. Returns `Ok(None)` when the header or payload is
/// not complete yet, consuming nothing, so the caller can wait for more bytes. `deflate`: the
/// connection agreed to permessage-deflate, so RSV1 may mark a text or binary frame (the first
/// of a message) as compressed; without it any RSV bit is an error.
pub fn parse(buf: &[u8], deflate: bool) -> Result<Option<FrameHead>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let opcode = b0 & 0x0F;
    let mut compressed = false;
    if b0 & 0x70 != 0 {
        // RFC 7692 §6: only RSV1, and only on the first frame of a data message.
        if !deflate || b0 & 0x30 != 0 || !matches!(opcode, OP_TEXT | OP_BINARY) {
            return Err(FrameError::Reserved);
        }
        compressed = true;
    }
    let fin = b0 & 0x80 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || (b1 & 0x7F) > 125 {
                return Err(FrameError::Control);
            }
        }
        other => return Err(FrameError::Opcode(other)),
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let (header_len, len) = match b1 & 0x7F {
        126 if buf.len() < 4 => return Ok(None),
        126 => (4, u64::from(u16::from_be_bytes([buf[2], buf[3]]))),
        127 if buf.len() < 10 => return Ok(None),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(b))
        }
        n => (2, u64::from(n)),
    };
    if len > MAX_PAYLOAD as u64 {
        return Err(FrameError::TooLarge(len));
    }
    let head = FrameHead { fin, opcode, compressed, header_len, payload_len: len as usize };
    if buf.len() < head.frame_len() {
        return Ok(None);
    }
    Ok(Some(head))
}

/// Appends one final, masked client frame carrying `payload` to `out`.
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `buf` with the repeating 4-byte `mask`, a word at a time (this runs over every byte the
/// publishers send, so it should not go byte by byte).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = buf.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Appends an unmasked server frame; used by tests to play the server side.
#[cfg(test)]
pub fn encode_unmasked(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    encode_unmasked_rsv(out, fin, 0, opcode, payload);
}

/// Appends an unmasked server frame with the reserved bits `rsv` (`0x40`: RSV1) set.
#[cfg(test)]
pub fn encode_unmasked_rsv(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | rsv | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::{Frame, FrameHeader};

    #[test]
    fn parses_all_length_forms_and_waits_for_more() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536, 200_000] {
            let payload = vec![7u8; len];
            let mut wire = Vec::new();
            encode_unmasked(&mut wire, true, OP_BINARY, &payload);
            let head = parse(&wire, false).unwrap().unwrap();
            assert_eq!((head.opcode, head.payload_len, head.fin), (OP_BINARY, len, true));
            assert_eq!(head.frame_len(), wire.len());
            for cut in [0, 1, head.header_len - 1, wire.len() - 1] {
                if cut < wire.len() && (cut < head.header_len || len > 0) {
                    assert_eq!(parse(&wire[..cut], false).unwrap(), None, "len {len} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn rejects_protocol_violations() {
        assert_eq!(parse(&[0x82 | 0x40, 0], false), Err(FrameError::Reserved));
        assert_eq!(parse(&[0x83, 0], false), Err(FrameError::Opcode(3)));
        assert_eq!(parse(&[0x82, 0x80, 0, 0, 0, 0], false), Err(FrameError::Masked));
        assert_eq!(parse(&[0x09, 0], false), Err(FrameError::Control));
        assert_eq!(parse(&[0x89, 126, 0, 126], false), Err(FrameError::Control));
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(matches!(parse(&big, false), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn rsv1_marks_a_compressed_data_frame_only_with_deflate_agreed() {
        for op in [OP_TEXT, OP_BINARY] {
            let head = parse(&[0x80 | 0x40 | op, 1, 0], true).unwrap().unwrap();
            assert!(head.compressed && head.fin && head.opcode == op);
            assert_eq!(parse(&[0x80 | 0x40 | op, 1, 0], false), Err(FrameError::Reserved), "not agreed");
            assert!(!parse(&[0x80 | op, 1, 0], true).unwrap().unwrap().compressed);
        }
        // RSV2 and RSV3 stay reserved; RSV1 is for a message's first frame, never a control frame.
        for bad in [&[0x82 | 0x20, 0][..], &[0x82 | 0x10, 0], &[0x80 | 0x40, 0], &[0x89 | 0x40, 0], &[0x88 | 0x40, 0]] {
            assert_eq!(parse(bad, true), Err(FrameError::Reserved), "{bad:?}");
        }
    }

    #[test]
    fn masked_encoding_matches_tungstenite() {
        for len in [0usize, 3, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut ours = Vec::new();
            encode_masked(&mut ours, OP_BINARY, &payload, [1, 2, 3, 4]);
            let mut cursor = std::io::Cursor::new(&ours[..]);
            let (header, payload_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(payload_len as usize, len);
            assert_eq!(header.mask, Some([1, 2, 3, 4]));
            let start = cursor.position() as usize;
            let mut body = ours[start..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn parses_tungstenite_server_frames() {
        let mut wire = Vec::new();
        Frame::ping(vec![1, 2]).format(&mut wire).unwrap();
        let head = parse(&wire, false).unwrap().unwrap();
        assert_eq!((head.opcode, head.payload_len), (OP_PING, 2));
    }
}
