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

/// Fills `buf` (reused across messages) with a header followed by padding up to `size`. A
/// buffer already `size` long keeps its body (see [`body`]): only the header is rewritten.
pub fn build(buf: &mut Vec<u8>, size: usize, header: Header) {
    if buf.len() != size {
        buf.clear();
        buf.resize(size.max(HEADER_LEN), b'.');
    }
    header.write(buf);
}

/// What fills a message after its header (`broadcast --payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// `.` bytes (what every scenario sends): compress to almost nothing.
    Padding,
    /// JSON-like quote records, varied a little from one to the next, so a compressing server
    /// has realistic work (fanout's fast deflate: about 3:1 at 1 KiB).
    Json,
}

const SYMBOLS: [&str; 8] = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK", "WAYNE", "CYBERDYNE"];

/// A message buffer of `size` bytes (at least the header's) whose body after the header is
/// `payload`; give it to [`build`], which then only writes each message's header. The body is
/// the same for every message, so building costs nothing per message.
pub fn body(size: usize, payload: Payload) -> Vec<u8> {
    let size = size.max(HEADER_LEN);
    let mut buf = vec![b'.'; size];
    if payload == Payload::Json {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(size + 128);
        text.push('[');
        let mut i = 0usize;
        while text.len() < size - HEADER_LEN {
            let bid = 10_125 + (i * 37) % 400;
            let _ = write!(
                text,
                r#"{}{{"symbol":"{}","bid":{}.{:02},"ask":{}.{:02},"volume":{}}}"#,
                if i == 0 { "" } else { "," },
                SYMBOLS[i % SYMBOLS.len()],
                bid / 100,
                bid % 100,
                (bid + 25) / 100,
                (bid + 25) % 100,
                100 * (1 + (i * 7) % 50)
            );
            i += 1;
        }
        buf[HEADER_LEN..].copy_from_slice(&text.as_bytes()[..size - HEADER_LEN]);
    }
    buf
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
    fn a_json_body_survives_each_header_and_the_header_reads_back() {
        let mut buf = body(1024, Payload::Json);
        let text = String::from_utf8(buf[HEADER_LEN..].to_vec()).unwrap();
        assert!(text.starts_with(r#"[{"symbol":"ACME","bid":101.25,"ask":101.50,"volume":100},{"symbol":"GLOBEX","#));
        assert_eq!(buf.len(), 1024);
        for seq in [0, 1, 99] {
            let h = Header { publisher: 3, seq, sent_ns: 42 + seq };
            build(&mut buf, 1024, h);
            assert_eq!(Header::read(&buf), Some(h));
            assert_eq!(&buf[HEADER_LEN..], text.as_bytes(), "the body is kept");
        }
        let mut padded = body(64, Payload::Padding);
        let mut plain = Vec::new();
        let h = Header { publisher: 1, seq: 2, sent_ns: 3 };
        build(&mut padded, 64, h);
        build(&mut plain, 64, h);
        assert_eq!(padded, plain, "padding is what build always made");
        assert_eq!(body(HEADER_LEN, Payload::Json).len(), HEADER_LEN);
        assert_eq!(body(HEADER_LEN + 1, Payload::Json)[HEADER_LEN..], *b"[");
    }

    #[test]
    fn foreign_or_short_payloads_are_not_headers() {
        assert_eq!(Header::read(b"welcome to the chat, have fun!!"), None);
        assert_eq!(Header::read(b"LT01"), None);
        assert_eq!(Header::read(&[]), None);
    }
}
