//! Server-to-client frames: FIN set, no mask, one contiguous buffer each.
//!
//! Server frames are unmasked, so a frame's bytes are the same for every
//! recipient: a broadcast is encoded once here and the resulting [`Bytes`]
//! (reference counted) is queued on every connection without copying.

use crate::Message;
use bytes::{BufMut, Bytes, BytesMut};

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Opcodes of the frames the server sends.
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Encodes a whole data message as one final, unmasked frame.
///
/// The result holds header and payload contiguously, with opcode text or
/// binary matching the message, and can be written to any number of sockets.
pub fn message_frame(message: &Message) -> Bytes {
    let opcode = if message.is_text() { TEXT } else { BINARY };
    frame(opcode, message.as_bytes())
}

/// Encodes a Close frame carrying `code` and `reason`.
///
/// The reason is cut at the last UTF-8 character boundary that keeps the
/// payload within 125 bytes, so the frame is always valid.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = truncate_at_char_boundary(reason, MAX_CONTROL_PAYLOAD - 2);
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = 2 + reason.len();
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..len].copy_from_slice(reason.as_bytes());
    frame(CLOSE, &payload[..len])
}

/// Encodes a Ping frame; a payload over 125 bytes is cut to its first 125.
pub fn ping_frame(payload: &[u8]) -> Bytes {
    frame(PING, control_payload(payload))
}

/// Encodes a Pong frame; a payload over 125 bytes is cut to its first 125.
///
/// To answer a ping, pass the ping's payload unchanged.
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame(PONG, control_payload(payload))
}

fn control_payload(payload: &[u8]) -> &[u8] {
    payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    // A UTF-8 char is at most 4 bytes, so a boundary lies within 3 steps of `max`.
    let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.get(..end).unwrap_or("")
}

/// One final, unmasked frame: header (2, 4 or 10 bytes) then payload.
fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = BytesMut::with_capacity(header_len(len) + len);
    // FIN bit set; no RSV bits since we negotiate no extensions.
    out.put_u8(0x80 | opcode);
    // Lengths use the shortest form, as RFC 6455 section 5.2 requires.
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
    out.extend_from_slice(payload);
    out.freeze()
}

fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{CloseFrame, Decoder, Event};

    /// Turns a server frame into the masked frame a client would send.
    fn mask_like_a_client(frame: &[u8]) -> Vec<u8> {
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        let header_len = match frame[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let mut out = frame[..header_len].to_vec();
        out[1] |= 0x80;
        out.extend_from_slice(&mask);
        out.extend(frame[header_len..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_one(frame: &[u8]) -> Event {
        let mut decoder = Decoder::new(1 << 20);
        let mut events = Vec::new();
        decoder.feed(&mask_like_a_client(frame), &mut events).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn text_message_round_trips_through_the_decoder() {
        let message = Message::text("héllo");
        let frame = message_frame(&message);
        assert_eq!(frame[0], 0x81);
        assert_eq!(decode_one(&frame), Event::Message(message));
    }

    #[test]
    fn binary_messages_of_each_length_form_round_trip() {
        for len in [0, 125, 126, 0xFFFF, 0x10000] {
            let message = Message::binary(vec![7u8; len]);
            let frame = message_frame(&message);
            assert_eq!(frame[0], 0x82);
            assert_eq!(frame.len(), header_len(len) + len);
            assert_eq!(decode_one(&frame), Event::Message(message), "len {len}");
        }
    }

    #[test]
    fn close_frame_round_trips_with_code_and_reason() {
        let frame = close_frame(1001, "shutting down");
        let expected = CloseFrame { code: 1001, reason: "shutting down".into() };
        assert_eq!(decode_one(&frame), Event::Close(Some(expected)));
    }

    #[test]
    fn close_reason_is_truncated_at_a_char_boundary() {
        // 61 two-byte chars = 122 bytes, then a 4-byte char that would end at 126.
        let reason = format!("{}😀", "é".repeat(61));
        let frame = close_frame(1000, &reason);
        assert_eq!(frame[1] as usize, 2 + 122);
        match decode_one(&frame) {
            Event::Close(Some(close)) => assert_eq!(close.reason, "é".repeat(61)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ping_and_pong_payloads_are_capped_at_125_bytes() {
        let long = [1u8; 300];
        let ping = ping_frame(&long);
        assert_eq!((ping[0], ping[1], ping.len()), (0x89, 125, 127));
        assert_eq!(decode_one(&ping), Event::Ping(Bytes::from(vec![1u8; 125])));
        let pong = pong_frame(b"abc");
        assert_eq!(decode_one(&pong), Event::Pong(Bytes::from_static(b"abc")));
    }
}
