//! Server frames: each encoder returns the exact JSON text of one WebSocket
//! text frame.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::pusher::presence::PresenceSnapshot;

/// The `data` of a channel event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventData<'a> {
    /// Text sent as a JSON string: the HTTP API's `data`, which is a string.
    Str(&'a str),
    /// JSON text sent verbatim: a client event's `data` as the client sent
    /// it. Text that is not valid JSON is sent as a string instead, so a
    /// frame is always valid JSON.
    Raw(&'a str),
}

/// A watchlist event's kind: a watched user came online or went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchlistEvent {
    /// The user is now signed in on at least one connection.
    Online,
    /// The user is no longer signed in on any connection.
    Offline,
}

impl WatchlistEvent {
    /// The name pusher-js binds to: `online` or `offline`.
    pub fn name(self) -> &'static str {
        match self {
            WatchlistEvent::Online => "online",
            WatchlistEvent::Offline => "offline",
        }
    }
}

/// The envelope every frame shares; absent fields are left out.
#[derive(Serialize)]
struct Frame<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn frame<D: Serialize>(event: &str, channel: Option<&str>, data: Option<D>, user_id: Option<&str>) -> String {
    to_json(&Frame { event, channel, data, user_id })
}

/// A frame whose `data` is `inner` serialized, then sent as a JSON string.
fn double_encoded(event: &str, channel: Option<&str>, inner: &impl Serialize) -> String {
    frame(event, channel, Some(to_json(inner)), None)
}

/// serde_json only fails on maps with non-string keys and on failing
/// `Serialize` impls, neither of which this module has; an empty object is
/// a safe answer should that ever change.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// `pusher:connection_established`, the first frame of every connection:
/// `data` is the string `{"socket_id":"..","activity_timeout":120}`, the
/// timeout in seconds after which a silent client should ping. It must be
/// at least 1: pusher-js refuses a handshake whose timeout is 0.
pub fn connection_established(socket_id: &str, activity_timeout_secs: u32) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        socket_id: &'a str,
        activity_timeout: u32,
    }
    double_encoded("pusher:connection_established", None, &Data { socket_id, activity_timeout: activity_timeout_secs })
}

/// `pusher:ping`, to check that a silent client is still there.
pub fn ping() -> String {
    r#"{"event":"pusher:ping","data":{}}"#.to_string()
}

/// `pusher:pong`, the answer to a client's `pusher:ping`.
pub fn pong() -> String {
    r#"{"event":"pusher:pong","data":{}}"#.to_string()
}

/// `pusher:error` with `data` the object `{"code":..,"message":..}`; the
/// code may be null (see [`super::codes`]).
pub fn error(code: Option<u16>, message: &str) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        code: Option<u16>,
        message: &'a str,
    }
    frame("pusher:error", None, Some(Data { code, message }), None)
}

/// `pusher_internal:subscription_succeeded` on `channel`: `data` is the
/// string `{}`, or for a presence channel `{"presence":{"ids":..,"hash":..,"count":..}}`.
pub fn subscription_succeeded(channel: &str, presence: Option<&PresenceSnapshot>) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        presence: Option<&'a PresenceSnapshot>,
    }
    double_encoded("pusher_internal:subscription_succeeded", Some(channel), &Data { presence })
}

/// `pusher:subscription_error` on `channel`, with `data` the object
/// `{"type":..,"error":..,"status":..}` that pusher-js hands to the app
/// (its own authorization failures use type `AuthError`).
pub fn subscription_error(channel: &str, error_type: &str, error: &str, status: u16) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: &'a str,
        status: u16,
    }
    frame("pusher:subscription_error", Some(channel), Some(Data { kind: error_type, error, status }), None)
}

/// `pusher_internal:member_added` on a presence channel: `data` is the
/// string `{"user_id":..,"user_info":..}` (`user_info` left out if none).
pub fn member_added(channel: &str, user_id: &str, user_info: Option<&RawValue>) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        user_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_info: Option<&'a RawValue>,
    }
    double_encoded("pusher_internal:member_added", Some(channel), &Data { user_id, user_info })
}

/// `pusher_internal:member_removed` on a presence channel: `data` is the
/// string `{"user_id":..}`.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        user_id: &'a str,
    }
    double_encoded("pusher_internal:member_removed", Some(channel), &Data { user_id })
}

/// An event on `channel`: `{"event":..,"channel":..,"data":..}`, plus
/// `"user_id"` for a client event on a presence channel (the sender's id).
pub fn channel_event(event: &str, channel: &str, data: &EventData, user_id: Option<&str>) -> String {
    match *data {
        EventData::Str(text) => frame(event, Some(channel), Some(text), user_id),
        EventData::Raw(json) => match serde_json::from_str::<&RawValue>(json) {
            Ok(raw) => frame(event, Some(channel), Some(raw), user_id),
            Err(_) => frame(event, Some(channel), Some(json), user_id),
        },
    }
}

/// `pusher:cache_miss` on a cache channel that has no event to replay yet.
pub fn cache_miss(channel: &str) -> String {
    frame::<()>("pusher:cache_miss", Some(channel), None, None)
}

/// `pusher:signin_success`: `data` is the string `{"user_data":".."}`,
/// `user_data` being the JSON text the app signed.
pub fn signin_success(user_data: &str) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        user_data: &'a str,
    }
    double_encoded("pusher:signin_success", None, &Data { user_data })
}

/// `pusher_internal:watchlist_events`: `data` is the string
/// `{"events":[{"name":"online","user_ids":["1"]},..]}`.
pub fn watchlist_events(events: &[(WatchlistEvent, Vec<String>)]) -> String {
    #[derive(Serialize)]
    struct Event<'a> {
        name: &'static str,
        user_ids: &'a [String],
    }
    #[derive(Serialize)]
    struct Data<'a> {
        events: Vec<Event<'a>>,
    }
    let events = events.iter().map(|(kind, user_ids)| Event { name: kind.name(), user_ids }).collect();
    double_encoded("pusher_internal:watchlist_events", None, &Data { events })
}

#[cfg(test)]
#[path = "outgoing_tests.rs"]
mod tests;
