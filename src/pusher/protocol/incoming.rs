//! [`Incoming`]: what a client's text frame asks for.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One client frame, with the fields its event needs.
#[derive(Debug)]
pub enum Incoming {
    /// `pusher:ping`: answer with [`super::pong`].
    Ping,
    /// `pusher:pong`: the client answered a ping.
    Pong,
    /// `pusher:subscribe`.
    Subscribe {
        /// The channel to join.
        channel: String,
        /// `key:signature` for private, encrypted and presence channels.
        auth: Option<String>,
        /// The presence member's JSON, exactly as signed.
        channel_data: Option<String>,
        /// fanout's history extension (PROTOCOL.md): the last event the
        /// client saw on this channel, to receive what it missed.
        since: Option<Since>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel to leave.
        channel: String,
    },
    /// `pusher:signin`.
    Signin {
        /// `key:signature` over `socket_id::user::user_data`.
        auth: String,
        /// The user's JSON, exactly as signed.
        user_data: String,
    },
    /// A `client-` event to relay to the channel's other subscribers.
    ClientEvent {
        /// The event name, starting with `client-`.
        event: String,
        /// The channel to relay it on.
        channel: String,
        /// The `data` JSON exactly as the client sent it (`null` if absent),
        /// so a relay forwards it unchanged; its size (`data.get().len()`)
        /// is for the caller to check against the app's payload limit.
        data: Box<RawValue>,
    },
    /// Any other event (unknown `pusher:` events, names without the
    /// `client-` prefix); Pusher ignores them.
    Other {
        /// The event name.
        event: String,
    },
}

/// Why a client frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The text is not JSON.
    #[error("message is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object of the expected shape; the text says why.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The object has no `event`.
    #[error("message has no event")]
    NoEvent,
    /// A field the event needs is missing or null.
    #[error("{event} needs a {field}")]
    MissingField {
        /// The event name.
        event: String,
        /// The missing field.
        field: &'static str,
    },
    /// The event's `data` is not what the event takes.
    #[error("{event}: invalid data: {reason}")]
    InvalidData {
        /// The event name.
        event: String,
        /// What was wrong with it.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubscribeData {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<String>,
    #[serde(default)]
    since: Option<Since>,
}

/// A position a resubscribing client asks to recover from: the epoch and
/// offset of the last event it saw (`pusher:subscribe`'s `data.since`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    /// The stream's epoch.
    pub epoch: String,
    /// The offset of the last event seen.
    pub offset: u64,
}

#[derive(Deserialize)]
struct SigninData {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    user_data: Option<String>,
}

/// The request in one client text frame.
///
/// `pusher:` events take their fields from `data`, which clients send as an
/// object or (older clients) as a JSON string holding one. A `client-`
/// event needs a top-level `channel`; its `data` is kept verbatim.
pub fn parse_incoming(text: &str) -> Result<Incoming, ProtocolError> {
    let frame: Frame = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ProtocolError::Malformed(e.to_string()),
        _ => ProtocolError::NotJson(e.to_string()),
    })?;
    if !is_object(text) {
        return Err(ProtocolError::Malformed("expected a JSON object".to_string()));
    }
    let event = frame.event.ok_or(ProtocolError::NoEvent)?;
    Ok(match event.as_ref() {
        "pusher:ping" => Incoming::Ping,
        "pusher:pong" => Incoming::Pong,
        "pusher:subscribe" => {
            let data: SubscribeData = data_object(&event, frame.data)?;
            let channel = data.channel.ok_or_else(|| missing(&event, "channel"))?;
            Incoming::Subscribe { channel, auth: data.auth, channel_data: data.channel_data, since: data.since }
        }
        "pusher:unsubscribe" => {
            let data: SubscribeData = data_object(&event, frame.data)?;
            Incoming::Unsubscribe { channel: data.channel.ok_or_else(|| missing(&event, "channel"))? }
        }
        "pusher:signin" => {
            let data: SigninData = data_object(&event, frame.data)?;
            let auth = data.auth.ok_or_else(|| missing(&event, "auth"))?;
            let user_data = data.user_data.ok_or_else(|| missing(&event, "user_data"))?;
            Incoming::Signin { auth, user_data }
        }
        name if name.starts_with("client-") => {
            let channel = frame.channel.ok_or_else(|| missing(&event, "channel"))?;
            let data = frame.data.unwrap_or(RawValue::NULL).to_owned();
            Incoming::ClientEvent { event: event.into_owned(), channel, data }
        }
        _ => Incoming::Other { event: event.into_owned() },
    })
}

/// `data` as `T`, whether sent as an object or as a string holding one.
fn data_object<T: for<'de> Deserialize<'de>>(event: &str, data: Option<&RawValue>) -> Result<T, ProtocolError> {
    let invalid = |e: serde_json::Error| ProtocolError::InvalidData { event: event.to_string(), reason: e.to_string() };
    let raw = data.ok_or_else(|| missing(event, "data"))?.get();
    let inner: Cow<str> =
        if raw.starts_with('"') { Cow::Owned(serde_json::from_str(raw).map_err(invalid)?) } else { Cow::Borrowed(raw) };
    if inner == "null" {
        return Err(missing(event, "data"));
    }
    if !is_object(&inner) {
        let reason = "expected a JSON object".to_string();
        return Err(ProtocolError::InvalidData { event: event.to_string(), reason });
    }
    serde_json::from_str(&inner).map_err(invalid)
}

/// Whether JSON `text` is an object. serde's derived structs also accept
/// arrays (`["pusher:ping"]`), a form no client sends and none should rely on.
pub(crate) fn is_object(text: &str) -> bool {
    text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{')
}

fn missing(event: &str, field: &'static str) -> ProtocolError {
    ProtocolError::MissingField { event: event.to_string(), field }
}

#[cfg(test)]
#[path = "incoming_tests.rs"]
mod tests;
