//! The 24-byte header loadtest puts at the start of every message it sends, so receivers can
//! tell whose message it is, which one, and when it was meant to be sent.
//!
//! Layout (little-endian): magic `b"LT01"`, publisher id `u32`, sequence `u64`, intended send
//! time `u64` (CLOCK_MONOTONIC ns, comparable across the loadtest's threads and processes).
//! The magic lets a receiver ignore messages the server adds itself (welcome texts and such).

/// Bytes of header; the smallest allowed `--size`.
pub const HEADER_LEN: usize = 24;

const MAGIC: [u8; 4] = *b"LT01";

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Publisher id (broadcast) or connection index (echo).
    pub publisher: u32,
    /// Sequence number; publishers number measured messages from 0.
    pub seq: u64,
    /// Intended send time, CLOCK_MONOTONIC nanoseconds.
    pub sent_ns: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf` (which must be that long).
    pub fn write(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(&MAGIC);
        buf[4..8].copy_from_slice(&self.publisher.to_le_bytes());
        buf[8..16].copy_from_slice(&self.seq.to_le_bytes());
        buf[16..24].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads a header from the start of `payload`; `None` if it is too short or lacks the magic
    /// (whatever the server sends, this never panics).
    pub fn read(payload: &[u8]) -> Option<Header> {
        let head: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        if head[..4] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Some(Header {
            publisher: u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// Fills `buf` (reused across messages) with a header followed by padding up to `size`.
pub fn build(buf: &mut Vec<u8>, size: usize, header: Header) {
    if buf.len() != size {
        buf.clear();
        buf.resize(size.max(HEADER_LEN), b'.');
    }
    header.write(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_pads() {
        let h = Header { publisher: 7, seq: 1 << 40, sent_ns: 123_456_789 };
        let mut buf = Vec::new();
        build(&mut buf, 64, h);
        assert_eq!(buf.len(), 64);
        assert_eq!(Header::read(&buf), Some(h));
    }

    #[test]
    fn foreign_or_short_payloads_are_not_headers() {
        assert_eq!(Header::read(b"welcome to the chat, have fun!!"), None);
        assert_eq!(Header::read(b"LT01"), None);
        assert_eq!(Header::read(&[]), None);
    }
}
