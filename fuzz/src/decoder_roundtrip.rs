//! Messages framed by `fanout::ws::encode`, masked as a client would, must
//! decode to exactly the same events.
//!
//! Input layout: bytes 0-3 are the first masking key (each later frame adds
//! its index to it) and byte 0 also picks the chunk size the stream is fed
//! in besides whole; then a list of operations, each a kind byte, a length byte and that
//! many payload bytes (fewer at the end of the input):
//!
//! - kind bits 0-2: 0 text, 1 binary, 2 ping, 3 pong, 4 close (ends the
//!   stream), 5-7 binary again;
//! - bits 3-5: a data message is sent in 1 to 8 fragments (text cut anywhere,
//!   even inside a character);
//! - bit 6: a Ping goes between each two fragments;
//! - bit 7, on the first operation only: the payload is repeated past
//!   65,535 bytes (the 64-bit length form). Only once, as a long stream
//!   slows the fuzzer down.

use fanout::ws::encode::{close_frame, message_frame, ping_frame, pong_frame};
use fanout::ws::{CloseFrame, Decoder, Event};
use fanout::Message;

/// The decoder's limit: above the largest message built here.
const MAX_MESSAGE: usize = 128 * 1024;

/// A repeated payload is grown to at least this many bytes.
const BIG: usize = 70_000;

/// Close codes a client may send, picked by the close payload's first byte.
const CLOSE_CODES: [u16; 13] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 4999];

/// Checks that the stream built from `data` decodes to the expected events.
pub fn check(data: &[u8]) {
    let Some((&key, ops)) = data.split_first_chunk::<4>() else { return };
    let (stream, expected) = build(key, ops);
    // Small chunks, but at most about 1,000 of them: a long stream fed a byte
    // at a time would only slow the fuzzer down.
    let chunk = (usize::from(key[0] % 32) + 1).max(stream.len() / 1024);
    for pieces in [vec![stream.as_slice()], stream.chunks(chunk).collect()] {
        let mut decoder = Decoder::new(MAX_MESSAGE);
        let mut events = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut events).unwrap_or_else(|v| panic!("{v} after {} events", events.len()));
        }
        assert_eq!(events, expected, "fed in chunks of {chunk} or whole");
        let closed = matches!(expected.last(), Some(Event::Close(_)));
        assert_eq!(decoder.is_finished(), closed, "finished without a Close, or not finished after one");
        assert_eq!(decoder.buffered_bytes(), 0, "memory held after whole frames");
    }
}

/// The client's byte stream for `ops`, and the events it must decode to.
fn build(key: [u8; 4], mut ops: &[u8]) -> (Vec<u8>, Vec<Event>) {
    let mut client = Client { key, frames: 0, stream: Vec::new() };
    let mut expected = Vec::new();
    let mut first = true;
    while let [kind, len, rest @ ..] = ops {
        let (payload, rest) = rest.split_at(usize::from(*len).min(rest.len()));
        ops = rest;
        let big = kind & 0x80 != 0 && std::mem::take(&mut first);
        match kind & 7 {
            0 => {
                let mut text = String::from_utf8_lossy(payload).into_owned();
                if big {
                    text = text.repeat(BIG / text.len().max(1) + 1);
                }
                client.data(&Message::text(text), *kind, &mut expected);
            }
            2 => {
                client.send(&ping_frame(payload));
                expected.push(Event::Ping(payload[..payload.len().min(125)].to_vec().into()));
            }
            3 => {
                client.send(&pong_frame(payload));
                expected.push(Event::Pong(payload[..payload.len().min(125)].to_vec().into()));
            }
            4 => {
                let code = CLOSE_CODES[usize::from(payload.first().copied().unwrap_or(0)) % CLOSE_CODES.len()];
                let reason = String::from_utf8_lossy(payload.get(1..).unwrap_or_default()).into_owned();
                client.send(&close_frame(code, &reason));
                let reason = truncate(&reason, 123).to_owned();
                expected.push(Event::Close(Some(CloseFrame { code, reason })));
                break;
            }
            _ => {
                let mut data = payload.to_vec();
                if big {
                    data = data.repeat(BIG / data.len().max(1) + 1);
                    data.resize(data.len().max(BIG), 0);
                }
                client.data(&Message::binary(data), *kind, &mut expected);
            }
        }
    }
    (client.stream, expected)
}

/// The longest prefix of `text` within `max` bytes ending on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    &text[..end]
}

/// Turns server frames into the masked frames a client sends.
struct Client {
    key: [u8; 4],
    frames: u8,
    stream: Vec<u8>,
}

impl Client {
    /// Sends `message` in the number of fragments `kind` asks for.
    fn data(&mut self, message: &Message, kind: u8, expected: &mut Vec<Event>) {
        let count = usize::from(kind >> 3 & 7) + 1;
        let bytes = message.as_bytes();
        let opcode = if message.is_text() { 0x1 } else { 0x2 };
        let step = bytes.len().div_ceil(count).max(1);
        for index in 0..count {
            let part = bytes.get(index * step..).unwrap_or_default();
            let part = &part[..part.len().min(step)];
            let mut frame = message_frame(&Message::binary(part.to_vec())).to_vec();
            let fin = if index + 1 == count { 0x80 } else { 0 };
            frame[0] = fin | if index == 0 { opcode } else { 0x0 };
            self.send(&frame);
            if kind & 0x40 != 0 && index + 1 < count {
                self.send(&ping_frame(&[index as u8]));
                expected.push(Event::Ping(vec![index as u8].into()));
            }
        }
        expected.push(Event::Message(message.clone()));
    }

    /// Appends one server frame to the stream, masked with the next key.
    fn send(&mut self, frame: &[u8]) {
        let header_len = match frame[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let mask = self.key.map(|b| b.wrapping_add(self.frames));
        self.frames = self.frames.wrapping_add(1);
        self.stream.extend_from_slice(&frame[..header_len]);
        let second = self.stream.len() - header_len + 1;
        self.stream[second] |= 0x80;
        self.stream.extend_from_slice(&mask);
        self.stream.extend(frame[header_len..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
}
