//! Turns the byte stream from a server into WebSocket events. Complete frames are handed out as
//! slices of the caller's read buffer; only a frame cut by the end of a read is copied aside.
//! Compressed messages (permessage-deflate) come out inflated, from the thread's [`Inflater`].

use super::frame::{self, FrameError, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};
use super::inflate::Inflater;

/// One thing the server said.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text or binary message. For a fragmented message this is its first fragment only: the
    /// load test needs the message's leading header, not the whole body.
    Message {
        /// `OP_TEXT` or `OP_BINARY`.
        opcode: u8,
        /// Payload of the (first) frame; inflated when the server compressed it.
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
    /// permessage-deflate was agreed: RSV1 marks compressed messages.
    deflate: bool,
}

impl FrameReader {
    /// Takes compressed messages from now on (the handshake agreed to permessage-deflate).
    pub fn set_deflate(&mut self) {
        self.deflate = true;
    }

    /// True once permessage-deflate was agreed.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// Parses everything complete in `data` (after any bytes kept from the previous call), calls
    /// `on` for each event, and keeps an incomplete tail for the next call. Compressed messages
    /// are inflated with `inflater` (only touched when one arrives).
    pub fn feed(
        &mut self,
        data: &[u8],
        inflater: &mut Inflater,
        mut on: impl FnMut(Event<'_>),
    ) -> Result<(), FrameError> {
        let state = (&mut self.in_message, self.deflate);
        if self.pending.is_empty() {
            let used = Self::parse_all(state, data, inflater, &mut on)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = Self::parse_all(state, &self.pending, inflater, &mut on)?;
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
    /// `state`: whether a fragmented message is in progress, and whether deflate was agreed.
    fn parse_all(
        (in_message, deflate): (&mut bool, bool),
        buf: &[u8],
        inflater: &mut Inflater,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<usize, FrameError> {
        let mut at = 0;
        while let Some(head) = frame::parse(&buf[at..], deflate)? {
            let payload = &buf[at + head.header_len..at + head.frame_len()];
            at += head.frame_len();
            match head.opcode {
                OP_TEXT | OP_BINARY => {
                    if *in_message {
                        return Err(FrameError::Fragment);
                    }
                    *in_message = !head.fin;
                    if head.compressed {
                        let payload = inflater.message(payload, head.fin)?;
                        on(Event::Message { opcode: head.opcode, payload });
                    } else {
                        on(Event::Message { opcode: head.opcode, payload });
                    }
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
    use super::super::frame::{encode_unmasked, encode_unmasked_rsv};
    use super::super::inflate::deflate_for_test;
    use super::*;

    fn collect(reader: &mut FrameReader, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        reader
            .feed(data, &mut Inflater::default(), |e| {
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
        assert_eq!(FrameReader::default().feed(&wire, &mut Inflater::default(), |_| {}), Err(FrameError::Fragment));
    }

    /// The messages a reader hands out from `wire`, payloads as text.
    fn messages(reader: &mut FrameReader, inflater: &mut Inflater, wire: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        reader
            .feed(wire, inflater, |e| {
                if let Event::Message { payload, .. } = e {
                    out.push(String::from_utf8_lossy(payload).into_owned());
                }
            })
            .unwrap();
        out
    }

    #[test]
    fn an_rsv1_frame_inflates_once_deflate_is_agreed() {
        let text = r#"{"symbol":"ACME","bid":101.25,"ask":101.50,"volume":3000}"#.repeat(20);
        let compressed = deflate_for_test(text.as_bytes());
        let mut wire = Vec::new();
        encode_unmasked_rsv(&mut wire, true, 0x40, OP_TEXT, &compressed);
        encode_unmasked(&mut wire, true, OP_BINARY, b"plain");
        encode_unmasked_rsv(&mut wire, true, 0x40, OP_BINARY, &compressed);
        let mut inflater = Inflater::default();
        for cut in [0, 1, 7, wire.len() / 2, wire.len()] {
            let mut r = FrameReader::default();
            r.set_deflate();
            let mut got = messages(&mut r, &mut inflater, &wire[..cut]);
            got.extend(messages(&mut r, &mut inflater, &wire[cut..]));
            assert_eq!(got, [text.as_str(), "plain", text.as_str()], "cut {cut}");
        }
        assert_eq!(inflater.messages, 10);
        assert_eq!(inflater.inflated_bytes, 10 * text.len() as u64);
        assert_eq!(inflater.compressed_bytes, 10 * compressed.len() as u64);
    }

    #[test]
    fn rsv1_without_agreement_is_an_error_as_before() {
        let mut wire = Vec::new();
        encode_unmasked_rsv(&mut wire, true, 0x40, OP_TEXT, &deflate_for_test(b"hello hello hello"));
        let mut inflater = Inflater::default();
        assert_eq!(FrameReader::default().feed(&wire, &mut inflater, |_| {}), Err(FrameError::Reserved));
        assert_eq!(inflater.messages, 0);
    }

    #[test]
    fn rsv1_on_a_continuation_and_corrupt_data_are_errors() {
        let mut r = FrameReader::default();
        r.set_deflate();
        let mut wire = Vec::new();
        encode_unmasked_rsv(&mut wire, false, 0x40, OP_BINARY, &deflate_for_test(&[5u8; 300]));
        encode_unmasked_rsv(&mut wire, true, 0x40, OP_CONTINUATION, b"x");
        assert_eq!(r.feed(&wire, &mut Inflater::default(), |_| {}), Err(FrameError::Reserved));
        let mut corrupt = Vec::new();
        encode_unmasked_rsv(&mut corrupt, true, 0x40, OP_BINARY, &[0xff; 8]);
        let mut r = FrameReader::default();
        r.set_deflate();
        let err = r.feed(&corrupt, &mut Inflater::default(), |_| {}).unwrap_err();
        assert!(matches!(err, FrameError::Inflate(_)), "{err:?}");
    }
}
