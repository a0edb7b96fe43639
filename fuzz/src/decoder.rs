//! The frame and message decoder on arbitrary client bytes.
//!
//! Input layout: byte 0 picks the message size limit (bits 0-1) and a chunk
//! size of 1 to 16 (bits 2-5); bytes 1 and 2 pick two cut points; the rest is
//! the byte stream a client sent after its handshake.
//!
//! Checked: no panic; every event is well-formed (text is UTF-8, data within
//! the limit, control payloads within 125 bytes, a close code a peer may
//! send); nothing follows a Close or an error, and a finished decoder ignores
//! input and holds no memory; the memory held stays within the documented
//! bound (twice the limit plus a control frame); and events and error are the
//! same whether the stream comes whole, cut at two points, or in small chunks.

use fanout::ws::close::is_valid_received_code;
use fanout::ws::{Decoder, Event, Violation};
use fanout::Message;

/// Message size limits, picked by the low bits of the first byte: a typical
/// small server limit, then limits that real data in a fuzz input can reach.
const LIMITS: [usize; 4] = [64 * 1024, 1024, 125, 16];

/// The longest control frame: a 14-byte header and 125 bytes of payload.
const MAX_CONTROL_FRAME: usize = 14 + 125;

/// A masked, empty Ping: fed to a finished decoder, which must ignore it.
const PING: [u8; 6] = [0x89, 0x80, 1, 2, 3, 4];

/// Checks the decoder's invariants on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let Some((&[config, cut_a, cut_b], stream)) = data.split_first_chunk::<3>() else { return };
    let max = LIMITS[usize::from(config & 3)];
    let whole = decode(max, [stream]);
    check_outcome(&whole, max);

    let (mut a, mut b) = (cut(stream, cut_a), cut(stream, cut_b));
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let cut_twice = decode(max, [&stream[..a], &stream[a..b], &stream[b..]]);
    assert_eq!(cut_twice, whole, "cut at {a} and {b}, vs. fed whole");

    let chunk = usize::from(config >> 2 & 15) + 1;
    let chunked = decode(max, stream.chunks(chunk));
    assert_eq!(chunked, whole, "fed in chunks of {chunk}, vs. fed whole");
}

/// What a decoder produced from a whole stream.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    error: Option<Violation>,
    finished: bool,
}

fn cut(stream: &[u8], at: u8) -> usize {
    usize::from(at) * stream.len() / 255
}

/// Feeds `pieces` in order to a new decoder, checking what holds after each.
fn decode<'a>(max: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::new(max);
    let mut events = Vec::new();
    let mut error = None;
    for piece in pieces {
        let (was_finished, before) = (decoder.is_finished(), events.len());
        let result = decoder.feed(piece, &mut events);
        if was_finished {
            assert!(result.is_ok() && events.len() == before, "a finished decoder took input: {result:?}");
        }
        if let Err(violation) = result {
            error = Some(violation);
        }
        check_held_memory(&decoder, max);
    }
    if decoder.is_finished() {
        let before = events.len();
        assert_eq!(decoder.feed(&PING, &mut events), Ok(()), "a finished decoder refused input");
        assert_eq!(events.len(), before, "a finished decoder produced events");
    }
    Outcome { events, error, finished: decoder.is_finished() }
}

fn check_held_memory(decoder: &Decoder, max: usize) {
    let held = decoder.buffered_bytes();
    if decoder.is_finished() {
        assert_eq!(held, 0, "a finished decoder holds {held} bytes");
    }
    // The documented bound: the message so far plus one incomplete frame,
    // each in a `Vec` that may have grown to twice its length.
    let bound = 2 * (max + MAX_CONTROL_FRAME);
    assert!(held <= bound, "holds {held} bytes with a limit of {max}, over {bound}");
}

/// Every event well-formed, and nothing after a Close.
fn check_outcome(outcome: &Outcome, max: usize) {
    if let Some(violation) = outcome.error {
        assert!(matches!(violation.code, 1002 | 1007 | 1009), "{violation:?}");
        assert!(violation.reason.len() <= 123, "{violation:?}");
        assert!(outcome.finished, "not finished after {violation:?}");
    }
    for (index, event) in outcome.events.iter().enumerate() {
        match event {
            Event::Message(Message::Text(text)) => {
                assert!(std::str::from_utf8(text.as_bytes()).is_ok(), "text is not UTF-8");
                assert!(text.len() <= max, "text of {} bytes over the limit {max}", text.len());
            }
            Event::Message(Message::Binary(data)) => {
                assert!(data.len() <= max, "binary of {} bytes over the limit {max}", data.len());
            }
            Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125, "{event:?}"),
            Event::Close(frame) => {
                assert_eq!(index + 1, outcome.events.len(), "events after a Close");
                assert!(outcome.error.is_none() && outcome.finished, "a Close then {:?}", outcome.error);
                if let Some(frame) = frame {
                    assert!(is_valid_received_code(frame.code), "close code {}", frame.code);
                    assert!(frame.reason.len() <= 123, "close reason of {} bytes", frame.reason.len());
                }
            }
        }
    }
}
