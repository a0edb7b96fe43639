//! The stamp at the start of every event loadtest publishes, so a subscriber can tell which
//! stream it belongs to, its place in that stream, and when it was meant to be sent.
//!
//! An event's `data` is a JSON string, so the stamp is text that needs no escaping: `lt1:`, the
//! step (2 hex digits), the stream id (8), the sequence number (16) and the intended send time
//! in CLOCK_MONOTONIC nanoseconds (16), then `.` padding up to `--size`. Fixed-width hex reads
//! back without a number parser on the hot path.

/// Bytes of stamp; the smallest allowed `--size`.
pub const STAMP_LEN: usize = 4 + 2 + 8 + 16 + 16;

const MAGIC: &[u8; 4] = b"lt1:";

/// What a published event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The step of the run whose schedule the event belongs to.
    pub step: u8,
    /// The stream: the channel (HTTP API) or the publishing connection (client events).
    pub stream: u32,
    /// Position in the stream, from 0, over the whole run.
    pub seq: u64,
    /// Intended send time, CLOCK_MONOTONIC nanoseconds.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp and padding into `buf` (reused across events) so that it is `size`
    /// bytes long (at least [`STAMP_LEN`]).
    pub fn write(&self, buf: &mut Vec<u8>, size: usize) {
        if buf.len() != size.max(STAMP_LEN) {
            buf.clear();
            buf.resize(size.max(STAMP_LEN), b'.');
        }
        buf[..4].copy_from_slice(MAGIC);
        put_hex(&mut buf[4..6], u64::from(self.step));
        put_hex(&mut buf[6..14], u64::from(self.stream));
        put_hex(&mut buf[14..30], self.seq);
        put_hex(&mut buf[30..46], self.sent_ns);
    }

    /// Reads a stamp from the start of an event's decoded `data`; `None` for anything else.
    pub fn read(data: &[u8]) -> Option<Stamp> {
        if data.len() < STAMP_LEN || &data[..4] != MAGIC {
            return None;
        }
        Some(Stamp {
            step: u8::try_from(get_hex(&data[4..6])?).ok()?,
            stream: u32::try_from(get_hex(&data[6..14])?).ok()?,
            seq: get_hex(&data[14..30])?,
            sent_ns: get_hex(&data[30..46])?,
        })
    }
}

fn put_hex(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 15) as usize];
        v >>= 4;
    }
}

fn get_hex(digits: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(n);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_at_the_requested_size() {
        let s = Stamp { step: 0x3c, stream: 0xdead_beef, seq: u64::MAX - 1, sent_ns: 1_234_567_890_123 };
        let mut buf = Vec::new();
        s.write(&mut buf, 64);
        assert_eq!(buf.len(), 64);
        assert!(buf[STAMP_LEN..].iter().all(|&b| b == b'.'));
        assert_eq!(Stamp::read(&buf), Some(s));
        s.write(&mut buf, 10);
        assert_eq!(buf.len(), STAMP_LEN, "never shorter than the stamp");
        assert_eq!(std::str::from_utf8(&buf[..14]).unwrap(), "lt1:3cdeadbeef");
    }

    #[test]
    fn foreign_data_is_not_a_stamp() {
        assert_eq!(Stamp::read(b"{}"), None);
        assert_eq!(Stamp::read(&[b'x'; 64]), None);
        let mut buf = Vec::new();
        Stamp { step: 0, stream: 1, seq: 2, sent_ns: 3 }.write(&mut buf, 46);
        buf[20] = b'g';
        assert_eq!(Stamp::read(&buf), None);
    }
}
