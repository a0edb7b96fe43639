//! Turns the byte stream from a server into WebSocket events. Complete frames are handed out as
//! slices of the caller's read buffer; only a frame cut by the end of a read is copied aside.

use super::frame::{self, FrameError, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// One thing the server said.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text or binary message. For a fragmented message this is its first fragment only: the
    /// load test needs the message's leading header, not the whole body.
    Message {
        /// `OP_TEXT` or `OP_BINARY`.
        opcode: u8,
        /// Payload of the (first) frame.
        payload: &'a [u8],
    },
    /// A ping whose payload must be echoed in a pong.
    Ping(&'a [u8]),
    /// A close frame with its status code, if any.
    Close(Option<u16>),
}

/// Reassembles frames across reads. Holds no buffer while frames arrive whole.
#[derive(Debug, Default)]
pub struct FrameReader {
    pending: Vec<u8>,
    in_message: bool,
}

impl FrameReader {
    /// Parses everything complete in `data` (after any bytes kept from the previous call), calls
    /// `on` for each event, and keeps an incomplete tail for the next call.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Event<'_>)) -> Result<(), FrameError> {
        if self.pending.is_empty() {
            let used = Self::parse_all(&mut self.in_message, data, &mut on)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = Self::parse_all(&mut self.in_message, &self.pending, &mut on)?;
            self.pending.drain(..used);
            if self.pending.is_empty() && self.pending.capacity() > 256 * 1024 {
                // Give back memory after one huge frame; idle connections should stay small.
                self.pending = Vec::new();
            }
        }
        Ok(())
    }

    /// Bytes held back waiting for the rest of a frame.
    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Parses consecutive complete frames at the start of `buf`; returns the bytes consumed.
    fn parse_all(in_message: &mut bool, buf: &[u8], on: &mut impl FnMut(Event<'_>)) -> Result<usize, FrameError> {
        let mut at = 0;
        while let Some(head) = frame::parse(&buf[at..])? {
            let payload = &buf[at + head.header_len..at + head.frame_len()];
            at += head.frame_len();
            match head.opcode {
                OP_TEXT | OP_BINARY => {
                    if *in_message {
                        return Err(FrameError::Fragment);
                    }
                    *in_message = !head.fin;
                    on(Event::Message { opcode: head.opcode, payload });
                }
                OP_CONTINUATION => {
                    if !*in_message {
                        return Err(FrameError::Fragment);
                    }
                    *in_message = !head.fin;
                }
                OP_PING => on(Event::Ping(payload)),
                OP_PONG => {}
                OP_CLOSE => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    on(Event::Close(code));
                }
                other => return Err(FrameError::Opcode(other)),
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::encode_unmasked;
    use super::*;

    fn collect(reader: &mut FrameReader, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        reader
            .feed(data, |e| {
                out.push(match e {
                    Event::Message { opcode, payload } => format!("{opcode}:{}", payload.len()),
                    Event::Ping(p) => format!("ping:{}", p.len()),
                    Event::Close(c) => format!("close:{c:?}"),
                })
            })
            .unwrap();
        out
    }

    #[test]
    fn frames_split_at_every_byte_come_out_once() {
        let mut wire = Vec::new();
        encode_unmasked(&mut wire, true, OP_TEXT, b"welcome");
        encode_unmasked(&mut wire, true, OP_BINARY, &[9u8; 300]);
        encode_unmasked(&mut wire, true, OP_PING, b"p");
        encode_unmasked(&mut wire, true, OP_CLOSE, &1000u16.to_be_bytes());
        for cut in 0..=wire.len() {
            let mut r = FrameReader::default();
            let mut got = collect(&mut r, &wire[..cut]);
            got.extend(collect(&mut r, &wire[cut..]));
            assert_eq!(got, ["1:7", "2:300", "ping:1", "close:Some(1000)"], "cut {cut}");
            assert_eq!(r.pending_len(), 0);
        }
    }

    #[test]
    fn fragmented_message_reports_first_fragment_only() {
        let mut wire = Vec::new();
        encode_unmasked(&mut wire, false, OP_BINARY, &[1u8; 30]);
        encode_unmasked(&mut wire, true, OP_PING, b"");
        encode_unmasked(&mut wire, true, OP_CONTINUATION, &[2u8; 10]);
        let mut r = FrameReader::default();
        assert_eq!(collect(&mut r, &wire), ["2:30", "ping:0"]);
    }

    #[test]
    fn stray_continuation_is_an_error() {
        let mut wire = Vec::new();
        encode_unmasked(&mut wire, true, OP_CONTINUATION, b"x");
        assert_eq!(FrameReader::default().feed(&wire, |_| {}), Err(FrameError::Fragment));
    }
}
