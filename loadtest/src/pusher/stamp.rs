//! The stamp at the start of every event loadtest publishes, so a subscriber can tell which
//! stream it belongs to, its place in that stream, and when it was meant to be sent.
//!
//! An event's `data` is a JSON string, so the stamp is text that needs no escaping: `lt1:`, the
//! step (2 hex digits), the stream id (8), the sequence number (16) and the intended send time
//! in CLOCK_MONOTONIC nanoseconds (16), all lowercase hex, then `.` padding up to `--size`. Fixed-width hex reads
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

/// The value of lowercase hex digits (what [`Stamp::write`] writes); `None` if any byte is not
/// one. Eight digits at a time in a `u64`, without a branch per digit: the stamp's 42 digits are
/// read for every delivery, millions of times a second.
fn get_hex(digits: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for chunk in digits.chunks(8) {
        let mut word = [b'0'; 8];
        word[8 - chunk.len()..].copy_from_slice(chunk);
        v = (v << (4 * chunk.len())) | hex8(u64::from_be_bytes(word))?;
    }
    Some(v)
}

/// Eight lowercase hex digits, the first in the most significant byte, as a 32-bit value.
fn hex8(x: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Below 0x80 every byte can take an addend under 0x80 without carrying into the next: the
    // high bit of (byte + 0x80 - t) then says byte >= t.
    let at_least = |t: u64| (x + ONES * (0x80 - t)) & HIGH;
    let digit = at_least(0x30) & !at_least(0x3a);
    let letter = at_least(0x61) & !at_least(0x67);
    if x & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // '0'..'9' keep their low nibble; 'a'..'f' (0x61..) add 9 to theirs.
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    let pairs = (nibbles | (nibbles >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some((quads | (quads >> 16)) & 0xffff_ffff)
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
    fn hex_reads_every_digit_and_nothing_else() {
        assert_eq!(get_hex(b"0123456789abcdef"), Some(0x0123_4567_89ab_cdef));
        assert_eq!(get_hex(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(get_hex(b"3c"), Some(0x3c));
        assert_eq!(get_hex(b"deadbeef"), Some(0xdead_beef));
        assert_eq!(get_hex(b"000000000000000a"), Some(10));
        for byte in 0..=255u8 {
            let valid = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
            let mut digits = *b"0000000000";
            digits[3] = byte;
            assert_eq!(get_hex(&digits).is_some(), valid, "byte {byte:#x}");
        }
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
