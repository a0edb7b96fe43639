//! Compressing server frames and inflating client messages (RFC 7692
//! section 7.2), one message at a time (no context takeover either way).
//!
//! A [`Deflater`] and an [`Inflater`] belong to a worker, not to a
//! connection: with no context kept between messages, one of each serves
//! every connection of the worker, and an idle connection holds nothing.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::ws::Violation;

/// Messages shorter than this go out uncompressed: the deflate block
/// overhead and the CPU are not worth it.
pub const MIN_COMPRESSED_SIZE: usize = 128;

/// The bytes a sync flush ends with, which RFC 7692 removes from the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The worker's compressors, one per window size in use.
#[derive(Default)]
pub struct Deflater {
    /// Indexed by window bits - 9 (9 to 15).
    by_window: [Option<Box<Compress>>; 7],
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// `frame` (a whole, unmasked server frame as [`crate::ws::encode`]
    /// makes them) compressed with a window of `window_bits`, as a frame
    /// with RSV1 set; `None` when it is not a data frame, is too small, does
    /// not shrink, or the window is below what the compressor supports (8:
    /// the message is then simply sent uncompressed, which is always allowed).
    pub fn deflate_frame(&mut self, frame: &[u8], window_bits: u8) -> Option<Bytes> {
        let (first, payload) = split_server_frame(frame)?;
        let opcode = first & 0x0f;
        if !(opcode == 0x1 || opcode == 0x2) || first & 0x80 == 0 || payload.len() < MIN_COMPRESSED_SIZE {
            return None;
        }
        let slot = self.by_window.get_mut(usize::from(window_bits).checked_sub(9)?)?;
        let compress = slot
            .get_or_insert_with(|| Box::new(Compress::new_with_window_bits(Compression::fast(), false, window_bits)));
        let compressed = deflate(compress, payload)?;
        if compressed.len() + 4 >= payload.len() {
            return None;
        }
        let mut out = Vec::with_capacity(compressed.len() + 10);
        out.push(first | 0x40);
        push_length(&mut out, compressed.len());
        out.extend_from_slice(&compressed);
        Some(Bytes::from(out))
    }
}

/// One message compressed alone, its sync-flush tail removed.
fn deflate(compress: &mut Compress, payload: &[u8]) -> Option<Vec<u8>> {
    compress.reset();
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(compress.total_in()).ok()?;
        let input = payload.get(consumed..)?;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        compress.compress_vec(input, &mut out, FlushCompress::Sync).ok()?;
        let done = usize::try_from(compress.total_in()).ok()? == payload.len();
        // A sync flush is complete once the output ends with its empty block
        // and there was room left over.
        if done && out.ends_with(&TAIL) && out.len() < out.capacity() {
            break;
        }
    }
    out.truncate(out.len() - TAIL.len());
    Some(out)
}

/// The first byte and the payload of an unmasked server frame.
fn split_server_frame(frame: &[u8]) -> Option<(u8, &[u8])> {
    let first = *frame.first()?;
    let (len, header): (usize, usize) = match *frame.get(1)? & 0x7f {
        126 => (usize::from(u16::from_be_bytes(frame.get(2..4)?.try_into().ok()?)), 4),
        127 => (usize::try_from(u64::from_be_bytes(frame.get(2..10)?.try_into().ok()?)).ok()?, 10),
        n => (usize::from(n), 2),
    };
    Some((first, frame.get(header..header.checked_add(len)?)?))
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The worker's decompressor.
pub struct Inflater {
    decompress: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        // A 15-bit window reads what any smaller window wrote.
        Inflater { decompress: Decompress::new_with_window_bits(false, 15) }
    }
}

/// Output is grown by at most this much at a time, so a small compressed
/// message claiming a huge size costs no more than what it really inflates to.
const INFLATE_STEP: usize = 64 * 1024;

impl Inflater {
    /// The message `compressed` holds (one whole message, sync-flush tail
    /// removed as on the wire), at most `max` bytes: past it the inflating
    /// stops and the answer is 1009, having held at most `max` plus one
    /// step. Data that is not valid deflate is 1007.
    pub fn inflate(&mut self, compressed: &[u8], max: usize) -> Result<Vec<u8>, Violation> {
        let corrupt = || Violation::invalid_payload("compressed data is not valid deflate");
        self.decompress.reset(false);
        let mut out: Vec<u8> = Vec::new();
        for input in [compressed, &TAIL[..]] {
            let mut offset = 0;
            loop {
                if out.len() > max {
                    return Err(Violation::too_big());
                }
                if out.capacity() == out.len() {
                    out.reserve(INFLATE_STEP.min(max + 1 - out.len().min(max)).max(1024));
                }
                let before_in = self.decompress.total_in();
                let before_out = self.decompress.total_out();
                let status = self
                    .decompress
                    .decompress_vec(&input[offset..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| corrupt())?;
                let read = usize::try_from(self.decompress.total_in() - before_in).map_err(|_| corrupt())?;
                offset += read;
                let wrote = self.decompress.total_out() - before_out;
                if matches!(status, Status::StreamEnd) || (offset == input.len() && out.len() < out.capacity()) {
                    break;
                }
                if read == 0 && wrote == 0 && out.len() < out.capacity() {
                    // No progress with room to spare: the input is cut short.
                    break;
                }
            }
        }
        if out.len() > max {
            return Err(Violation::too_big());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::encode;
    use crate::Message;

    fn deflated_payload(frame: &Bytes) -> &[u8] {
        split_server_frame(frame).unwrap().1
    }

    #[test]
    fn a_frame_round_trips_through_deflate_and_inflate_with_rsv1_set() {
        let text = "the same chat line again and again; ".repeat(50);
        let frame = encode::message_frame(&Message::text(text.clone()));
        let (mut deflater, mut inflater) = (Deflater::default(), Inflater::default());
        let compressed = deflater.deflate_frame(&frame, 15).expect("compressible");
        assert_eq!(compressed[0], 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
        assert!(compressed.len() < frame.len() / 4, "{} of {}", compressed.len(), frame.len());
        let payload = deflated_payload(&compressed);
        assert!(!payload.ends_with(&TAIL), "the sync-flush tail is not sent");
        assert_eq!(inflater.inflate(payload, 1 << 20).unwrap(), text.as_bytes());
        // Messages are independent: the same input compresses the same way twice.
        assert_eq!(deflater.deflate_frame(&frame, 15).unwrap(), compressed);
        for bits in 9..=14 {
            let small_window = deflater.deflate_frame(&frame, bits).unwrap();
            assert_eq!(inflater.inflate(deflated_payload(&small_window), 1 << 20).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn small_control_incompressible_and_window_8_frames_stay_plain() {
        let mut deflater = Deflater::default();
        assert!(deflater.deflate_frame(&encode::message_frame(&Message::text("short")), 15).is_none());
        assert!(deflater.deflate_frame(&encode::ping_frame(b"x"), 15).is_none());
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert!(deflater.deflate_frame(&encode::message_frame(&Message::binary(random)), 15).is_none());
        let text = encode::message_frame(&Message::text("a".repeat(1000)));
        assert!(deflater.deflate_frame(&text, 8).is_none());
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit_and_garbage_is_invalid_payload() {
        let mut compress = Compress::new(Compression::best(), false);
        let bomb = deflate(&mut compress, &vec![0u8; 8 << 20]).unwrap();
        assert!(bomb.len() < 16 << 10, "{} bytes", bomb.len());
        let mut inflater = Inflater::default();
        assert_eq!(inflater.inflate(&bomb, 1 << 20), Err(Violation::too_big()));
        assert_eq!(inflater.inflate(&[0xff, 0xff, 0xff, 0x00], 1 << 20).unwrap_err().code, 1007);
        // The inflater is sound again after both.
        let ok = deflate(&mut compress, b"hello hello hello").unwrap();
        assert_eq!(inflater.inflate(&ok, 100).unwrap(), b"hello hello hello");
    }
}
