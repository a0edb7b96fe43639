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
    /// fanout's history extension (PROTOCOL.md): a position in the channel's stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
}

fn frame<D: Serialize>(event: &str, channel: Option<&str>, data: Option<D>, user_id: Option<&str>) -> String {
    to_json(&Frame { event, channel, data, user_id, offset: None, epoch: None })
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

/// Where a channel's history stream stands (fanout's extension, see
/// PROTOCOL.md): the offset of its last event and the epoch that gives
/// offsets their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition<'a> {
    /// The stream's epoch.
    pub epoch: &'a str,
    /// An event's offset, or the stream's last one.
    pub offset: u64,
}

/// A channel event of a channel with history: [`channel_event`] plus its
/// `"offset"`, and on a stream's first event (offset 1) its `"epoch"`, so a
/// client that joined before the stream began learns it.
pub fn channel_event_at(
    event: &str,
    channel: &str,
    data: &EventData,
    user_id: Option<&str>,
    at: StreamPosition<'_>,
) -> String {
    let epoch = (at.offset == 1).then_some(at.epoch);
    let offset = Some(at.offset);
    let channel = Some(channel);
    match *data {
        EventData::Str(text) => to_json(&Frame { event, channel, data: Some(text), user_id, offset, epoch }),
        EventData::Raw(json) => match serde_json::from_str::<&RawValue>(json) {
            Ok(raw) => to_json(&Frame { event, channel, data: Some(raw), user_id, offset, epoch }),
            Err(_) => to_json(&Frame { event, channel, data: Some(json), user_id, offset, epoch }),
        },
    }
}

/// `pusher_internal:subscription_succeeded` on a channel with history: as
/// [`subscription_succeeded`], with the stream's `"epoch"` and last
/// `"offset"` (none before its first event), from which a client recovers
/// what it misses later.
pub fn subscription_succeeded_at(
    channel: &str,
    presence: Option<&PresenceSnapshot>,
    top: Option<StreamPosition<'_>>,
) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        presence: Option<&'a PresenceSnapshot>,
    }
    to_json(&Frame {
        event: "pusher_internal:subscription_succeeded",
        channel: Some(channel),
        data: Some(to_json(&Data { presence })),
        user_id: None,
        offset: top.map(|t| t.offset),
        epoch: top.map(|t| t.epoch),
    })
}

/// `fanout:recovery` on a channel, after the events a resubscribing client
/// missed: `data` is the string `{"recovered":..,"epoch":..,"offset":..}`,
/// `recovered` false when some of them were no longer in history (none were
/// then sent), and the position where the stream stands (none if it has no
/// event).
pub fn recovery(channel: &str, recovered: bool, top: Option<StreamPosition<'_>>) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        recovered: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    }
    double_encoded(
        "fanout:recovery",
        Some(channel),
        &Data { recovered, epoch: top.map(|t| t.epoch), offset: top.map(|t| t.offset) },
    )
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
