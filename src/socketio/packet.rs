//! Socket.IO packets: what one Engine.IO message carries.
//!
//! A packet is text: `<type>[<attachments>-][<nsp>,][<id>][<json>]`, where
//! the namespace is left out for `/`, the id asks for an acknowledgement,
//! and the JSON's shape depends on the type. An event or ack with binary
//! arguments is sent as a BINARY_EVENT or BINARY_ACK header whose JSON holds
//! `{"_placeholder":true,"num":k}` in place of each binary argument, followed
//! by one binary Engine.IO message per attachment, in order.
//!
//! The text form is the same in both protocol revisions; they differ in the
//! payloads:
//!
//! | | v4 (Socket.IO 2.x) | v5 (Socket.IO 3.x, 4.x) |
//! | --- | --- | --- |
//! | CONNECT from the client | no payload; `?query` after a custom namespace; none for `/`, which is joined on open | the `auth` object, if any, for every namespace |
//! | CONNECT from the server | no payload | `{"sid":...}` |
//! | CONNECT_ERROR (v4: ERROR) | a string | `{"message":...,"data":...}` |
//! | reserved event names | none | `connect`, `disconnect` and four more, refused |

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::engine::Version;

/// The main namespace, left out of the text form.
pub const MAIN_NAMESPACE: &str = "/";

/// How many attachments the reference decoder accepts on one packet by
/// default; each may be as large as an Engine.IO message.
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

/// One Socket.IO packet. Type digits are given on each variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` CONNECT: a client joins a namespace, or the server confirms it.
    Connect {
        /// The namespace; from a v4 client it may end in `?query` (see
        /// [`split_query`]).
        nsp: String,
        /// From a v5 client, its `auth` object; from a v5 server,
        /// `{"sid":...}`; `None` in v4.
        data: Option<Value>,
    },
    /// `1` DISCONNECT: either side leaves a namespace.
    Disconnect {
        /// The namespace.
        nsp: String,
    },
    /// `2` EVENT, or `5` BINARY_EVENT when it has attachments.
    Event {
        /// The namespace.
        nsp: String,
        /// Set when the sender wants an [`Packet::Ack`] with this id.
        id: Option<u64>,
        /// The event name, then its arguments (see [`Event`]); binary
        /// arguments are placeholders.
        data: Vec<Value>,
        /// The binary arguments, in placeholder order.
        attachments: Vec<Bytes>,
    },
    /// `3` ACK, or `6` BINARY_ACK when it has attachments.
    Ack {
        /// The namespace.
        nsp: String,
        /// The id of the event acknowledged.
        id: u64,
        /// The acknowledgement's arguments; binary ones are placeholders.
        data: Vec<Value>,
        /// The binary arguments, in placeholder order.
        attachments: Vec<Bytes>,
    },
    /// `4` CONNECT_ERROR (ERROR in v4): the server refused a CONNECT.
    ConnectError {
        /// The namespace.
        nsp: String,
        /// A string in v4, `{"message":...}` (and maybe `"data"`) in v5.
        data: Value,
    },
}

/// Why a Socket.IO packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The message is empty.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type.
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// A binary packet's attachment count is missing, not a number, or 0.
    #[error("illegal attachment count")]
    Attachments,
    /// A binary packet announces more attachments than allowed.
    #[error("{count} attachments is over the limit of {max}")]
    TooManyAttachments {
        /// The count announced.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The ack id does not fit in 64 bits.
    #[error("ack id out of range")]
    Id,
    /// An ACK has no id, so nothing can be acknowledged.
    #[error("ack without an id")]
    MissingAckId,
    /// The payload is not JSON.
    #[error("payload is not JSON: {0}")]
    Json(String),
    /// The payload is JSON of the wrong shape for the packet's type.
    #[error("{packet} payload must be {expected}")]
    InvalidPayload {
        /// The packet type.
        packet: &'static str,
        /// What its payload must be.
        expected: &'static str,
    },
    /// A placeholder names an attachment the packet does not have.
    #[error("placeholder without a matching attachment")]
    Placeholder,
    /// Text arrived while a binary packet still awaited attachments.
    #[error("text packet while attachments were expected")]
    UnexpectedText,
    /// Binary data arrived with no binary packet awaiting it.
    #[error("binary data without a binary packet")]
    UnexpectedBinary,
}

/// Event names v5 clients may not send: the client and server libraries
/// emit them themselves.
const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

impl Packet {
    /// The server's confirmation of a CONNECT: with `{"sid":...}` in v5,
    /// bare in v4. `nsp` is the namespace without any v4 `?query`, which
    /// is what 2.x clients match answers against.
    pub fn connected(nsp: &str, sid: &str, version: Version) -> Packet {
        let data = match version {
            Version::Eio3 => None,
            Version::Eio4 => Some(json!({ "sid": sid })),
        };
        Packet::Connect { nsp: nsp.to_owned(), data }
    }

    /// The server's refusal of a CONNECT: the message as a string in v4,
    /// as `{"message":...}` in v5 (whose clients read `data.message`).
    pub fn connect_error(nsp: &str, message: &str, version: Version) -> Packet {
        let data = match version {
            Version::Eio3 => Value::from(message),
            Version::Eio4 => json!({ "message": message }),
        };
        Packet::ConnectError { nsp: nsp.to_owned(), data }
    }

    /// An event without binary arguments, expecting no acknowledgement.
    pub fn event(nsp: &str, name: &str, args: impl IntoIterator<Item = Value>) -> Packet {
        let data = std::iter::once(Value::from(name)).chain(args).collect();
        Packet::Event { nsp: nsp.to_owned(), id: None, data, attachments: Vec::new() }
    }

    /// The namespace the packet is for.
    pub fn nsp(&self) -> &str {
        match self {
            Packet::Connect { nsp, .. }
            | Packet::Disconnect { nsp }
            | Packet::Event { nsp, .. }
            | Packet::Ack { nsp, .. }
            | Packet::ConnectError { nsp, .. } => nsp,
        }
    }

    /// The binary attachments, in placeholder order; empty for packets
    /// without binary data.
    pub fn attachments(&self) -> &[Bytes] {
        match self {
            Packet::Event { attachments, .. } | Packet::Ack { attachments, .. } => attachments,
            _ => &[],
        }
    }

    /// The bytes a placeholder in this packet's JSON stands for: this is
    /// how a decoded binary packet's arguments are put back together, as
    /// JSON cannot hold bytes. `None` for any other value.
    pub fn attachment(&self, value: &Value) -> Option<&Bytes> {
        self.attachments().get(usize::try_from(placeholder_num(value)?).ok()?)
    }

    /// The packet's text form: the one text message to send, followed by
    /// each of [`Packet::attachments`] as a binary message when there are
    /// any. The text is the same for both protocol revisions.
    pub fn encode(&self) -> String {
        let (code, binary_code, id) = match self {
            Packet::Connect { .. } => ('0', '0', None),
            Packet::Disconnect { .. } => ('1', '1', None),
            Packet::Event { id, .. } => ('2', '5', *id),
            Packet::Ack { id, .. } => ('3', '6', Some(*id)),
            Packet::ConnectError { .. } => ('4', '4', None),
        };
        let attachments = self.attachments().len();
        let mut out = String::new();
        // Writing to a String cannot fail.
        if attachments > 0 {
            let _ = write!(out, "{binary_code}{attachments}-");
        } else {
            out.push(code);
        }
        let nsp = self.nsp();
        if !nsp.is_empty() && nsp != MAIN_NAMESPACE {
            out.push_str(nsp);
            out.push(',');
        }
        if let Some(id) = id {
            let _ = write!(out, "{id}");
        }
        match self {
            Packet::Connect { data: Some(data), .. } | Packet::ConnectError { data, .. } => {
                let _ = write!(out, "{data}");
            }
            Packet::Event { data, .. } | Packet::Ack { data, .. } => {
                out.push('[');
                for (i, value) in data.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{value}");
                }
                out.push(']');
            }
            Packet::Connect { data: None, .. } | Packet::Disconnect { .. } => {}
        }
        out
    }
}

/// A v4 CONNECT's namespace split from its query: `/chat?token=abc` gives
/// `("/chat", Some("token=abc"))`. v5 clients send no query there, so a `?`
/// in a v5 namespace is part of its (then unknown) name.
pub fn split_query(nsp: &str) -> (&str, Option<&str>) {
    match nsp.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (nsp, None),
    }
}

/// Deconstructs a binary argument: appends `bytes` to `attachments` and
/// returns the placeholder that stands for it in the packet's JSON.
pub fn placeholder(attachments: &mut Vec<Bytes>, bytes: Bytes) -> Value {
    let num = attachments.len();
    attachments.push(bytes);
    json!({ "_placeholder": true, "num": num })
}

/// An event's name and arguments, read from an EVENT's array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event name. A number (which v5 allows) is given in decimal, as
    /// JavaScript's event emitters key it.
    pub name: Cow<'a, str>,
    /// The arguments after the name; binary ones are placeholders (see
    /// [`Packet::attachment`]). Whether the sender wants an ack is the
    /// packet's `id`, not an argument.
    pub args: &'a [Value],
}

impl<'a> Event<'a> {
    /// The event in an EVENT's `data`: a name (string or number), then the
    /// arguments. Decoded packets always have one.
    pub fn from_data(data: &'a [Value]) -> Result<Event<'a>, PacketError> {
        let not_an_event = || invalid("EVENT", "an array starting with an event name");
        let (name, args) = data.split_first().ok_or_else(not_an_event)?;
        let name = match name {
            Value::String(name) => Cow::Borrowed(name.as_str()),
            Value::Number(n) => Cow::Owned(n.to_string()),
            _ => return Err(not_an_event()),
        };
        Ok(Event { name, args })
    }
}

/// Decodes the Socket.IO packets of one connection: text messages, and the
/// binary messages that complete a binary packet.
///
/// State is kept only while a binary packet awaits its attachments, and is
/// bounded by the attachment limit times the Engine.IO message limit. After
/// an error the decoder starts afresh, though the caller would normally
/// close the connection, as the reference server does.
#[derive(Debug)]
pub struct Decoder {
    version: Version,
    max_attachments: usize,
    /// A binary packet and how many attachments it still needs; boxed, as
    /// it exists only between a header and its attachments and a decoder
    /// lives as long as its connection.
    partial: Option<Box<(Packet, usize)>>,
}

impl Decoder {
    /// A decoder for a client of `version`, accepting at most
    /// `max_attachments` attachments per packet (see
    /// [`DEFAULT_MAX_ATTACHMENTS`]).
    pub fn new(version: Version, max_attachments: usize) -> Decoder {
        Decoder { version, max_attachments, partial: None }
    }

    /// Decodes a text message: a whole packet, or `None` for a binary
    /// packet's header, which waits for its attachments.
    pub fn handle_text(&mut self, text: &str) -> Result<Option<Packet>, PacketError> {
        if self.partial.take().is_some() {
            return Err(PacketError::UnexpectedText);
        }
        let (packet, attachments) = decode_text(text, self.version, self.max_attachments)?;
        if attachments == 0 {
            return Ok(Some(packet));
        }
        self.partial = Some(Box::new((packet, attachments)));
        Ok(None)
    }

    /// Takes a binary message as the next attachment: the whole packet once
    /// it was the last one, else `None`.
    pub fn handle_binary(&mut self, bytes: Bytes) -> Result<Option<Packet>, PacketError> {
        let Some((mut packet, remaining)) = self.partial.take().map(|partial| *partial) else {
            return Err(PacketError::UnexpectedBinary);
        };
        if let Packet::Event { attachments, .. } | Packet::Ack { attachments, .. } = &mut packet {
            attachments.push(bytes);
        }
        if remaining > 1 {
            self.partial = Some(Box::new((packet, remaining - 1)));
            return Ok(None);
        }
        Ok(Some(packet))
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_awaiting_attachments(&self) -> bool {
        self.partial.is_some()
    }
}

/// A packet from its text form, and how many attachments must follow.
fn decode_text(text: &str, version: Version, max_attachments: usize) -> Result<(Packet, usize), PacketError> {
    let first = *text.as_bytes().first().ok_or(PacketError::Empty)?;
    if !(b'0'..=b'6').contains(&first) {
        return Err(PacketError::UnknownType(first));
    }
    // The first byte is an ASCII digit, so slicing after it is safe; so is
    // slicing around the ASCII `-` and `,` found below.
    let mut rest = &text[1..];
    let mut attachments = 0;
    if first == b'5' || first == b'6' {
        let (count, tail) = rest.split_once('-').ok_or(PacketError::Attachments)?;
        attachments = decimal(count).ok_or(PacketError::Attachments)?;
        if attachments == 0 {
            return Err(PacketError::Attachments);
        }
        if attachments > max_attachments {
            return Err(PacketError::TooManyAttachments { count: attachments, max: max_attachments });
        }
        rest = tail;
    }
    let nsp = if rest.starts_with('/') {
        let (nsp, tail) = rest.split_once(',').unwrap_or((rest, ""));
        rest = tail;
        nsp
    } else {
        MAIN_NAMESPACE
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = match digits {
        0 => None,
        _ => Some(rest[..digits].parse::<u64>().map_err(|_| PacketError::Id)?),
    };
    rest = &rest[digits..];
    let data: Option<Value> = match rest {
        "" => None,
        json => Some(serde_json::from_str(json).map_err(|e| PacketError::Json(e.to_string()))?),
    };
    let nsp = nsp.to_owned();
    let packet = match first {
        b'0' => Packet::Connect { nsp, data: connect_data(data, version)? },
        b'1' if data.is_some() => return Err(invalid("DISCONNECT", "absent")),
        b'1' => Packet::Disconnect { nsp },
        b'2' | b'5' => Packet::Event { nsp, id, data: event_data(data, version)?, attachments: Vec::new() },
        b'3' | b'6' => {
            let id = id.ok_or(PacketError::MissingAckId)?;
            Packet::Ack { nsp, id, data: ack_data(data)?, attachments: Vec::new() }
        }
        _ => Packet::ConnectError { nsp, data: connect_error_data(data, version)? },
    };
    if let Packet::Event { data, .. } | Packet::Ack { data, .. } = &packet {
        if attachments > 0 {
            data.iter().try_for_each(|value| check_placeholders(value, attachments))?;
        }
    }
    Ok((packet, attachments))
}

fn invalid(packet: &'static str, expected: &'static str) -> PacketError {
    PacketError::InvalidPayload { packet, expected }
}

/// v5: an object or nothing. v4 clients send nothing, but its decoder took
/// any JSON object, array or null.
fn connect_data(data: Option<Value>, version: Version) -> Result<Option<Value>, PacketError> {
    match (&data, version) {
        (None | Some(Value::Object(_)), _) | (Some(Value::Array(_) | Value::Null), Version::Eio3) => Ok(data),
        _ => Err(invalid("CONNECT", "a JSON object")),
    }
}

/// A name (string or number, and in v5 not a reserved one), then the
/// arguments.
fn event_data(data: Option<Value>, version: Version) -> Result<Vec<Value>, PacketError> {
    let Some(Value::Array(data)) = data else { return Err(invalid("EVENT", "an array starting with an event name")) };
    match data.first() {
        Some(Value::String(name)) if version == Version::Eio4 && RESERVED_EVENTS.contains(&name.as_str()) => {
            Err(invalid("EVENT", "an event name that is not reserved"))
        }
        Some(Value::String(_) | Value::Number(_)) => Ok(data),
        _ => Err(invalid("EVENT", "an array starting with an event name")),
    }
}

/// An array; an ack without arguments may leave it out.
fn ack_data(data: Option<Value>) -> Result<Vec<Value>, PacketError> {
    match data {
        None => Ok(Vec::new()),
        Some(Value::Array(data)) => Ok(data),
        Some(_) => Err(invalid("ACK", "an array")),
    }
}

/// A string or object (v4's decoder also took an array or null).
fn connect_error_data(data: Option<Value>, version: Version) -> Result<Value, PacketError> {
    match (data, version) {
        (Some(data @ (Value::String(_) | Value::Object(_))), _)
        | (Some(data @ (Value::Array(_) | Value::Null)), Version::Eio3) => Ok(data),
        _ => Err(invalid("CONNECT_ERROR", "a string or an object")),
    }
}

/// Checks that every placeholder in `value` names one of `count`
/// attachments. JSON depth is bounded by serde_json's recursion limit.
fn check_placeholders(value: &Value, count: usize) -> Result<(), PacketError> {
    match value {
        Value::Object(map) if is_placeholder(map) => match placeholder_num(value) {
            Some(num) if num < count as u64 => Ok(()),
            _ => Err(PacketError::Placeholder),
        },
        Value::Object(map) => map.values().try_for_each(|v| check_placeholders(v, count)),
        Value::Array(items) => items.iter().try_for_each(|v| check_placeholders(v, count)),
        _ => Ok(()),
    }
}

/// Whether an object is a placeholder: the reference tests only
/// `_placeholder === true`, and refuses the packet if `num` is then bad.
fn is_placeholder(map: &Map<String, Value>) -> bool {
    map.get("_placeholder") == Some(&Value::Bool(true))
}

fn placeholder_num(value: &Value) -> Option<u64> {
    let map = value.as_object().filter(|map| is_placeholder(map))?;
    map.get("num")?.as_u64()
}

/// Plain decimal digits, without sign or spaces.
fn decimal(digits: &str) -> Option<usize> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
