//! Inflating the messages a server compressed with permessage-deflate (RFC 7692 §7.2).
//!
//! `--deflate` offers the extension; fanout, like most servers, answers with
//! `server_no_context_takeover`, so every message is compressed alone and one decompressor,
//! reset per message, serves all of a thread's connections: nothing is kept per connection.
//! (The handshake refuses a server that keeps its context between messages.)

use flate2::{Decompress, FlushDecompress, Status};

use super::frame::{FrameError, MAX_PAYLOAD};

/// The empty stored block a sync flush ends with; RFC 7692 has the sender drop it and the
/// receiver put it back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output room added when the buffer is full (it doubles from there), and kept between messages.
const MIN_GROWTH: usize = 4096;

/// One event-loop thread's decompressor and output buffer, plus what went through them.
#[derive(Default)]
pub struct Inflater {
    /// Created on the first compressed message: a run without `--deflate` never allocates it.
    decompress: Option<Box<Decompress>>,
    out: Vec<u8>,
    /// Compressed messages inflated.
    pub messages: u64,
    /// Their payload bytes as they arrived (the sync-flush tail not counted).
    pub compressed_bytes: u64,
    /// Their bytes once inflated.
    pub inflated_bytes: u64,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").field("messages", &self.messages).finish_non_exhaustive()
    }
}

impl Inflater {
    /// Inflates the payload of a compressed message's first frame. `whole`: the frame is the
    /// entire message (FIN set), so the sync-flush tail is appended and everything comes out; for
    /// the first fragment of a longer message (the reader hands scenarios only that one) the
    /// result is the part of the message that fragment holds.
    pub fn message(&mut self, compressed: &[u8], whole: bool) -> Result<&[u8], FrameError> {
        let d = self.decompress.get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, 15)));
        d.reset(false);
        self.out.clear();
        let tail: &[u8] = if whole { &TAIL } else { &[] };
        'inputs: for input in [compressed, tail] {
            let mut offset = 0;
            loop {
                if self.out.len() == self.out.capacity() {
                    if self.out.len() > MAX_PAYLOAD {
                        return Err(FrameError::InflatedTooLarge);
                    }
                    self.out.reserve(self.out.len().max(MIN_GROWTH));
                }
                let (in_before, out_before) = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&input[offset..], &mut self.out, FlushDecompress::Sync)
                    .map_err(|e| FrameError::Inflate(e.to_string()))?;
                let read = (d.total_in() - in_before) as usize;
                let wrote = d.total_out() - out_before;
                offset += read;
                if status == Status::StreamEnd {
                    // A final deflate block ends the message; a tail after it is not data.
                    break 'inputs;
                }
                let room = self.out.len() < self.out.capacity();
                // All input taken and output left over: the sync flush gave out everything.
                // No progress with room to spare: the input ends inside a block (a fragment).
                if room && (offset == input.len() || (read == 0 && wrote == 0)) {
                    break;
                }
            }
        }
        if self.out.len() > MAX_PAYLOAD {
            return Err(FrameError::InflatedTooLarge);
        }
        self.messages += 1;
        self.compressed_bytes += compressed.len() as u64;
        self.inflated_bytes += self.out.len() as u64;
        Ok(&self.out)
    }
}

/// Compresses `payload` the way a permessage-deflate server does without context takeover
/// (raw deflate, sync flush, the tail removed); for the tests of the client side.
#[cfg(test)]
pub fn deflate_for_test(payload: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    c.compress_vec(payload, &mut out, FlushCompress::Sync).unwrap();
    assert_eq!(c.total_in() as usize, payload.len(), "output buffer large enough");
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        let line = br#"{"symbol":"ACME","bid":101.25,"ask":101.50,"volume":3000},"#;
        line.iter().copied().cycle().take(n).collect()
    }

    #[test]
    fn messages_inflate_alone_with_one_decompressor() {
        let mut inf = Inflater::default();
        for n in [0usize, 1, 100, 5_000, 300_000] {
            let plain = text(n);
            let wire = deflate_for_test(&plain);
            assert_eq!(inf.message(&wire, true).unwrap(), &plain[..], "{n} bytes");
        }
        assert_eq!(inf.messages, 5);
        assert_eq!(inf.inflated_bytes, 305_101);
        assert!(inf.compressed_bytes < inf.inflated_bytes / 10);
    }

    #[test]
    fn a_final_block_ends_the_message() {
        use flate2::{Compress, Compression, FlushCompress};
        let plain = text(2000);
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(4096);
        c.compress_vec(&plain, &mut wire, FlushCompress::Finish).unwrap();
        assert_eq!(Inflater::default().message(&wire, true).unwrap(), &plain[..]);
    }

    #[test]
    fn a_first_fragment_gives_the_start_of_the_message() {
        let plain = text(10_000);
        let wire = deflate_for_test(&plain);
        let mut inf = Inflater::default();
        let start = inf.message(&wire[..wire.len() / 2], false).unwrap();
        assert!(start.len() >= 24 && plain.starts_with(start), "{} bytes", start.len());
    }

    #[test]
    fn garbage_is_an_error_and_the_next_message_still_inflates() {
        let mut inf = Inflater::default();
        assert!(matches!(inf.message(&[0xff; 16], true), Err(FrameError::Inflate(_))));
        let plain = text(500);
        assert_eq!(inf.message(&deflate_for_test(&plain), true).unwrap(), &plain[..]);
    }
}
