//! Engine.IO packets and their two encodings: one packet per WebSocket
//! frame ([`encode_frame`], [`decode_frame`]), or a batch of packets in one
//! HTTP long-polling body ([`encode_payload`], [`decode_payload`],
//! [`decode_binary_payload`]).
//!
//! A packet is a type digit followed by its data. The versions differ only
//! in how binary data and batches are framed:
//!
//! | | v3 (Socket.IO 2.x) | v4 (Socket.IO 3.x, 4.x) |
//! | --- | --- | --- |
//! | binary WebSocket frame | byte `4`, then the bytes | the bytes alone |
//! | binary inside text | `b4` + base64 | `b` + base64 |
//! | polling batch | `<length>:<packet>` each, the length in UTF-16 units | packets joined by `\x1e` |
//!
//! Every decoder is total: whatever a peer sends yields packets or an
//! [`EngineError`], and never a panic.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Message;

/// The Engine.IO protocol a client speaks, named by its `EIO` query
/// parameter. It also fixes the Socket.IO protocol above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `EIO=3`: Socket.IO 2.x clients, which speak Socket.IO protocol v4.
    Eio3,
    /// `EIO=4`: Socket.IO 3.x and 4.x clients, which speak Socket.IO
    /// protocol v5.
    Eio4,
}

impl Version {
    /// The version an `EIO` query parameter names; `None` for any other
    /// value, which the server must refuse.
    pub fn from_eio(eio: &str) -> Option<Version> {
        match eio {
            "3" => Some(Version::Eio3),
            "4" => Some(Version::Eio4),
            _ => None,
        }
    }

    /// The Socket.IO protocol revision that clients of this version speak:
    /// 4 or 5.
    pub fn socketio_protocol(self) -> u8 {
        match self {
            Version::Eio3 => 4,
            Version::Eio4 => 5,
        }
    }
}

/// One Engine.IO packet. Its wire type digit is given on each variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0`: the server's first packet: the [`Handshake`] as JSON text.
    Open(String),
    /// `1`: either side ends the session.
    Close,
    /// `2`: a heartbeat (sent by the server in v4, by the client in v3), or,
    /// with the data `probe`, the client testing a WebSocket before it
    /// upgrades.
    Ping(String),
    /// `3`: the answer to a ping; it echoes `probe` for a probe.
    Pong(String),
    /// `4`: application data: a Socket.IO packet, or one binary attachment
    /// of one.
    Message(Data),
    /// `5`: the client moves to the WebSocket it probed.
    Upgrade,
    /// `6`: no operation; it ends a poll held open while the client
    /// upgrades.
    Noop,
}

/// What a message packet carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Text, sent as it is.
    Text(String),
    /// Bytes: a binary frame on a WebSocket, base64 inside polling text.
    Binary(Bytes),
}

/// The JSON of the open packet, in the field order the reference server
/// sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id; polling requests carry it as `sid`.
    pub sid: String,
    /// The transports the client may upgrade to: `["websocket"]` on
    /// polling, `[]` on a WebSocket.
    pub upgrades: Vec<String>,
    /// Milliseconds between heartbeats.
    pub ping_interval: u64,
    /// Milliseconds a heartbeat may go unanswered before the session is
    /// closed.
    pub ping_timeout: u64,
    /// The largest polling body, in bytes, the server accepts (v4 only:
    /// `None` for v3, whose clients neither send nor read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<u64>,
}

impl Handshake {
    /// The open packet announcing this handshake.
    pub fn to_packet(&self) -> Packet {
        // A struct of strings and integers always serializes.
        Packet::Open(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Why Engine.IO input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A polling body is over the size limit.
    #[error("payload of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A packet (or a whole body) is empty: it has no type.
    #[error("empty packet")]
    Empty,
    /// The first byte of a packet is not a packet type.
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// Binary data in a packet other than a message (possible only in v3's
    /// framing), which no client sends.
    #[error("binary data in a packet that is not a message")]
    BinaryNotMessage,
    /// Binary data in text that is not base64.
    #[error("binary data is not valid base64")]
    Base64,
    /// A text body or packet is not UTF-8.
    #[error("text is not UTF-8")]
    NotUtf8,
    /// A polling body's framing is broken; the text says how.
    #[error("malformed payload: {0}")]
    Framing(&'static str),
}

/// The packet as one WebSocket frame: text, or binary for binary data.
pub fn encode_frame(packet: &Packet, version: Version) -> Message {
    match (packet, version) {
        (Packet::Message(Data::Binary(bytes)), Version::Eio4) => Message::Binary(bytes.clone()),
        (Packet::Message(Data::Binary(bytes)), Version::Eio3) => {
            let mut framed = Vec::with_capacity(bytes.len() + 1);
            framed.push(4);
            framed.extend_from_slice(bytes);
            Message::binary(framed)
        }
        _ => {
            let mut text = String::new();
            write_text(&mut text, packet, version);
            Message::text(text)
        }
    }
}

/// The packet one WebSocket frame carries. Frames are already bounded by
/// the WebSocket layer's message limit, and decoding never enlarges them.
pub fn decode_frame(frame: &Message, version: Version) -> Result<Packet, EngineError> {
    match (frame, version) {
        (Message::Text(text), _) => decode_text(text, version),
        (Message::Binary(bytes), Version::Eio4) => Ok(Packet::Message(Data::Binary(bytes.clone()))),
        (Message::Binary(bytes), Version::Eio3) => match bytes.first() {
            Some(4) => Ok(Packet::Message(Data::Binary(bytes.slice(1..)))),
            Some(0..=6) => Err(EngineError::BinaryNotMessage),
            Some(&other) => Err(EngineError::UnknownType(other)),
            None => Err(EngineError::Empty),
        },
    }
}

/// The packets as one polling response body, always text (send it as
/// `text/plain; charset=UTF-8`), with binary data in base64.
///
/// v3 clients could also take the binary "XHR2" body, but they choose their
/// parser by the response's `Content-Type`, so text always works; it costs
/// a third more bytes on binary attachments only, and keeps one encoding
/// for every client. An empty batch is `0:` in v3 and empty in v4.
pub fn encode_payload(packets: &[Packet], version: Version) -> String {
    let mut out = String::new();
    match version {
        Version::Eio4 => {
            for (i, packet) in packets.iter().enumerate() {
                if i > 0 {
                    out.push(SEPARATOR);
                }
                write_text(&mut out, packet, version);
            }
        }
        Version::Eio3 if packets.is_empty() => out.push_str("0:"),
        Version::Eio3 => {
            let mut text = String::new();
            for packet in packets {
                text.clear();
                write_text(&mut text, packet, version);
                // JavaScript's string length: UTF-16 code units, not bytes
                // or characters. Writing to a String cannot fail.
                let _ = write!(out, "{}:{text}", text.encode_utf16().count());
            }
        }
    }
    out
}

/// The packets in a text polling request body (any `Content-Type` but
/// `application/octet-stream`), refusing bodies over `max_payload` bytes.
///
/// Stricter than the reference parser in ways no client relies on: base64
/// must use the standard alphabet, and a v3 length must be plain decimal
/// digits. One bad packet fails the whole body; the reference delivers the
/// packets before it, but then closes the session all the same.
pub fn decode_payload(body: &[u8], version: Version, max_payload: usize) -> Result<Vec<Packet>, EngineError> {
    check_size(body, max_payload)?;
    let body = std::str::from_utf8(body).map_err(|_| EngineError::NotUtf8)?;
    match version {
        Version::Eio4 => body.split(SEPARATOR).map(|packet| decode_text(packet, version)).collect(),
        Version::Eio3 => decode_length_prefixed(body),
    }
}

/// The packets in a v3 binary polling request body (`Content-Type:
/// application/octet-stream`), which Socket.IO 2.x browsers post when a
/// batch holds binary data. Each packet is a flag byte (0 text, 1 binary),
/// its length as one byte per decimal digit, 255, then the packet: text as
/// UTF-8, binary as the type byte and the bytes.
pub fn decode_binary_payload(body: &[u8], max_payload: usize) -> Result<Vec<Packet>, EngineError> {
    check_size(body, max_payload)?;
    if body.is_empty() {
        return Err(EngineError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = body;
    while let Some((&flag, tail)) = rest.split_first() {
        let end = tail.iter().position(|&b| b == 255).ok_or(EngineError::Framing("a length has no end marker"))?;
        let length = digit_bytes_value(&tail[..end]).ok_or(EngineError::Framing("a length is not decimal digits"))?;
        let tail = &tail[end + 1..];
        if length > tail.len() {
            return Err(EngineError::Framing("a packet runs past the end of the payload"));
        }
        let (packet, next) = tail.split_at(length);
        packets.push(match flag {
            0 => decode_text(std::str::from_utf8(packet).map_err(|_| EngineError::NotUtf8)?, Version::Eio3)?,
            1 => match packet.split_first() {
                Some((4, bytes)) => Packet::Message(Data::Binary(Bytes::copy_from_slice(bytes))),
                Some((0..=6, _)) => return Err(EngineError::BinaryNotMessage),
                Some((&other, _)) => return Err(EngineError::UnknownType(other)),
                None => return Err(EngineError::Empty),
            },
            _ => return Err(EngineError::Framing("a packet is neither text (0) nor binary (1)")),
        });
        rest = next;
    }
    Ok(packets)
}

/// v4's packet separator in a polling body: the ASCII record separator,
/// which JSON text never holds unescaped.
const SEPARATOR: char = '\x1e';

/// The byte between two packets of a v4 polling payload (the record
/// separator).
pub const SEPARATOR_BYTE: u8 = 0x1e;

fn check_size(body: &[u8], max: usize) -> Result<(), EngineError> {
    if body.len() > max {
        return Err(EngineError::TooLarge { len: body.len(), max });
    }
    Ok(())
}

/// Appends the packet's text form: type digit and data, or base64 for
/// binary data.
fn write_text(out: &mut String, packet: &Packet, version: Version) {
    let (code, data) = match packet {
        Packet::Open(json) => ('0', json.as_str()),
        Packet::Close => ('1', ""),
        Packet::Ping(data) => ('2', data.as_str()),
        Packet::Pong(data) => ('3', data.as_str()),
        Packet::Message(Data::Text(text)) => ('4', text.as_str()),
        Packet::Message(Data::Binary(bytes)) => {
            out.push_str(match version {
                Version::Eio3 => "b4",
                Version::Eio4 => "b",
            });
            base64_encode(bytes, out);
            return;
        }
        Packet::Upgrade => ('5', ""),
        Packet::Noop => ('6', ""),
    };
    out.push(code);
    out.push_str(data);
}

/// One packet in text form. Data after a close, upgrade or noop is ignored,
/// as no client sends any.
fn decode_text(text: &str, version: Version) -> Result<Packet, EngineError> {
    let (first, data) = match text.as_bytes().first() {
        // An ASCII first byte ends a character, so slicing after it is safe.
        Some(&b) if b.is_ascii() => (b, &text[1..]),
        Some(&b) => return Err(EngineError::UnknownType(b)),
        None => return Err(EngineError::Empty),
    };
    Ok(match first {
        b'0' => Packet::Open(data.to_owned()),
        b'1' => Packet::Close,
        b'2' => Packet::Ping(data.to_owned()),
        b'3' => Packet::Pong(data.to_owned()),
        b'4' => Packet::Message(Data::Text(data.to_owned())),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        b'b' => {
            let base64 = match version {
                Version::Eio4 => data,
                Version::Eio3 => match data.as_bytes().first() {
                    Some(b'4') => &data[1..],
                    Some(b'0'..=b'6') => return Err(EngineError::BinaryNotMessage),
                    Some(&other) => return Err(EngineError::UnknownType(other)),
                    None => return Err(EngineError::Empty),
                },
            };
            Packet::Message(Data::Binary(Bytes::from(base64_decode(base64)?)))
        }
        other => return Err(EngineError::UnknownType(other)),
    })
}

/// v3's text batch: `<length>:<packet>` repeated, each length counting the
/// packet in UTF-16 code units, as JavaScript measures strings.
fn decode_length_prefixed(mut rest: &str) -> Result<Vec<Packet>, EngineError> {
    if rest.is_empty() {
        return Err(EngineError::Empty);
    }
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or(EngineError::Framing("a packet has no length prefix"))?;
        let digits = &rest[..colon];
        let length = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<usize>().ok())
            .flatten()
            .ok_or(EngineError::Framing("a length is not decimal digits"))?;
        let body = &rest[colon + 1..];
        let end = utf16_prefix(body, length)
            .ok_or(EngineError::Framing("a length runs past the end of the payload or splits a character"))?;
        let (packet, tail) = body.split_at(end);
        // `0:` is an empty batch; the reference skips empty packets too.
        if !packet.is_empty() {
            packets.push(decode_text(packet, Version::Eio3)?);
        }
        rest = tail;
    }
    Ok(packets)
}

/// The byte length of the first `units` UTF-16 code units of `text`, if it
/// has that many and they end on a character boundary.
fn utf16_prefix(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (at, c) in text.char_indices() {
        if counted == units {
            return Some(at);
        }
        counted += c.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}

/// A number written one decimal digit per byte (v3's binary batch lengths).
fn digit_bytes_value(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| if d <= 9 { n.checked_mul(10)?.checked_add(usize::from(d)) } else { None })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64, as Node's `Buffer.toString("base64")` writes it.
fn base64_encode(data: &[u8], out: &mut String) {
    let start = out.len();
    out.reserve(data.len().div_ceil(3) * 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(BASE64[((acc >> bits) & 63) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE64[((acc << (6 - bits)) & 63) as usize]));
    }
    while !(out.len() - start).is_multiple_of(4) {
        out.push('=');
    }
}

/// Standard base64, padded or not (clients pad; tolerating its absence
/// costs nothing).
fn base64_decode(text: &str) -> Result<Vec<u8>, EngineError> {
    let unpadded = text.strip_suffix("==").or_else(|| text.strip_suffix('=')).unwrap_or(text).as_bytes();
    if unpadded.len() % 4 == 1 {
        return Err(EngineError::Base64);
    }
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in unpadded {
        acc = (acc << 6) | sextet(c).ok_or(EngineError::Base64)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
