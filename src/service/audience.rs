//! How the service names its audiences in the channel core, and what a
//! publish to one of them carries.
//!
//! Every Pusher app has its own channel namespace: channel `c` of app `a`
//! is the core channel `a:c` (a channel name never contains `:`). Raw chat
//! rooms belong to the first app, so `/chat/lobby`, that app's Pusher
//! channel `lobby` and the Socket.IO room `lobby` are one audience. Members
//! say how they want a publish framed: [`RAW`] (chat room clients: the
//! event's data as text), [`PUSHER`] (the JSON envelope with event, channel
//! and data) or [`SOCKETIO`] (an Engine.IO message carrying a Socket.IO
//! EVENT).
//!
//! Each room also has a hidden *roster* channel ([`roster`]) that only its
//! named members (`?name=`) join: who came and went, and where the room's
//! stream begins, reach them there and nobody else.

use crate::channels::{Dialect, Publication};
use crate::handle::Prepared;
use crate::message::Message;
use crate::pusher::protocol;
use crate::pusher::EventData;

/// Chat room clients: the data alone, as a text message.
pub(crate) const RAW: Dialect = Dialect::DEFAULT;

/// Pusher clients: `{"event":..,"channel":..,"data":..}`.
pub(crate) const PUSHER: Dialect = match Dialect::new(1) {
    Some(dialect) => dialect,
    None => panic!("dialect 1 exists"),
};

/// Socket.IO clients: `42["event",data]`, the event with one argument in
/// the main namespace (the Engine.IO text frame is the same for v3 and v4
/// sessions). Channels of custom namespaces are the Socket.IO service's
/// own, which frames their publications itself.
pub(crate) const SOCKETIO: Dialect = match Dialect::new(2) {
    Some(dialect) => dialect,
    None => panic!("dialect 2 exists"),
};

/// What a room's roster channel adds to the room's core channel: it starts
/// with a space, which no channel name has (Pusher names, room names and
/// `#server-to-user-` user ids alike), so no client can subscribe to it, no
/// API call can name it, and it is never some other room's channel.
const ROSTER_SUFFIX: &str = " roster";

/// The event name raw room messages carry for Pusher subscribers.
pub(crate) const ROOM_MESSAGE_EVENT: &str = "message";

/// The core channel of `channel` in app `app`.
pub(crate) fn audience(app: &str, channel: &str) -> String {
    format!("{app}:{channel}")
}

/// The app and channel of a core channel name made by [`audience`].
pub(crate) fn split(audience: &str) -> Option<(&str, &str)> {
    audience.rsplit_once(':')
}

/// The roster channel of the room whose core channel is `room`.
pub(crate) fn roster(room: &str) -> String {
    format!("{room}{ROSTER_SUFFIX}")
}

/// True for a roster channel's name, with or without its app: not a
/// channel of the app's own (left out of channel lists, counts and webhooks).
pub(crate) fn is_roster(channel: &str) -> bool {
    channel.ends_with(ROSTER_SUFFIX)
}

/// True for a channel of an app's namespace that is the service's, not the
/// app's: a room's roster, or a Socket.IO socket's own room. Left out of
/// channel lists, counts and occupancy webhooks.
pub(crate) fn is_service_channel(channel: &str) -> bool {
    is_roster(channel) || super::socketio::is_socket_room(channel)
}

/// A frame for a roster channel's members: text, as raw clients take it.
pub(crate) fn roster_frame(value: &serde_json::Value) -> Publication {
    Publication::new().with(RAW, &Prepared::new(&Message::text(value.to_string())))
}

/// An event for a channel: the Pusher envelope for Pusher members, the
/// data as text for raw room members (a JSON string's text unquoted, any
/// other JSON as written), and a Socket.IO EVENT for Socket.IO members.
pub(crate) fn event(channel: &str, event: &str, data: &EventData<'_>, user_id: Option<&str>) -> Publication {
    let envelope = protocol::channel_event(event, channel, data, user_id);
    Publication::new()
        .with(RAW, &Prepared::new(&Message::text(raw_text(data))))
        .with(PUSHER, &Prepared::new(&Message::text(envelope)))
        .with(SOCKETIO, &Prepared::new(&Message::text(socketio_event(event, data))))
}

/// What Socket.IO members receive of an event: `42["event",data]`, its
/// data as JSON when it is JSON text (an object the HTTP API was given as a
/// JSON string arrives as that object, as pusher-js delivers it), else as
/// a string.
pub(crate) fn socketio_event(event: &str, data: &EventData<'_>) -> String {
    let (EventData::Str(text) | EventData::Raw(text)) = *data;
    super::socketio::main_namespace_event(event, text)
}

/// What raw room members receive of an event's data.
pub(crate) fn raw_text(data: &EventData<'_>) -> String {
    match *data {
        EventData::Str(text) => text.to_owned(),
        EventData::Raw(json) => serde_json::from_str::<String>(json).unwrap_or_else(|_| json.to_owned()),
    }
}

/// A message a raw room client sent: as it is for the room's raw members,
/// and as a `message` event for its Pusher and Socket.IO members (text
/// only: a binary message has neither form).
pub(crate) fn room_message(channel: &str, message: &Message) -> Publication {
    let publication = Publication::new().with(RAW, &Prepared::new(message));
    match message {
        Message::Text(text) => {
            let data = EventData::Str(text.as_str());
            let envelope = protocol::channel_event(ROOM_MESSAGE_EVENT, channel, &data, None);
            publication
                .with(PUSHER, &Prepared::new(&Message::text(envelope)))
                .with(SOCKETIO, &Prepared::new(&Message::text(socketio_event(ROOM_MESSAGE_EVENT, &data))))
        }
        _ => publication,
    }
}

/// A frame for Pusher members only (`member_added`, `member_removed`).
pub(crate) fn pusher_only(text: String) -> Publication {
    Publication::new().with(PUSHER, &Prepared::new(&Message::text(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_round_trip_and_keep_apps_apart() {
        assert_eq!(split(&audience("12", "presence-room")), Some(("12", "presence-room")));
        assert_ne!(audience("1", "x"), audience("2", "x"));
        assert_eq!(split(&audience("app:with:colons", "c")), Some(("app:with:colons", "c")));
    }

    #[test]
    fn raw_members_get_the_data_and_pusher_members_the_envelope() {
        let publication = event("lobby", "greet", &EventData::Str("hi \"you\""), None);
        let raw = Prepared::new(&Message::text("hi \"you\""));
        assert_eq!(publication.frame(RAW).map(|f| &f[..]), Some(raw.wire_bytes()));
        let envelope = publication.frame(PUSHER).expect("an envelope");
        let text = std::str::from_utf8(&envelope[2..]).expect("utf-8");
        let json: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(json["event"], "greet");
        assert_eq!(json["channel"], "lobby");
        assert_eq!(json["data"], "hi \"you\"");
    }

    #[test]
    fn a_client_event_s_json_string_reaches_raw_members_unquoted() {
        let publication = event("private-x", "client-typing", &EventData::Raw("\"abc\""), None);
        assert_eq!(publication.frame(RAW).map(|f| &f[2..]), Some(&b"abc"[..]));
        let object = event("private-x", "client-typing", &EventData::Raw("{\"a\":1}"), None);
        assert_eq!(object.frame(RAW).map(|f| &f[2..]), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn a_roster_is_no_channel_a_client_could_name() {
        let lobby = audience("1", "lobby");
        let roster = roster(&lobby);
        assert!(is_roster(&roster) && !is_roster(&lobby));
        assert_eq!(split(&roster), Some(("1", "lobby roster")), "still in its app's namespace");
        let (_, channel) = split(&roster).expect("an app");
        assert!(crate::pusher::names::classify(channel, 1_000).is_err(), "no Pusher client can subscribe to it");
        assert!(!crate::chat::is_room_name(channel), "no raw client can join it as a room");
        let publication = roster_frame(&serde_json::json!({"type": "presence", "joined": "a\"b"}));
        let frame = publication.frame(RAW).expect("a raw frame");
        assert_eq!(&frame[2..], br#"{"joined":"a\"b","type":"presence"}"#);
        assert!(publication.frame(PUSHER).is_none(), "Pusher members never see it");
    }

    #[test]
    fn binary_room_messages_have_no_pusher_or_socket_io_form() {
        let publication = room_message("lobby", &Message::binary(vec![1, 2, 3]));
        assert!(publication.frame(RAW).is_some());
        assert!(publication.frame(PUSHER).is_none());
        assert!(publication.frame(SOCKETIO).is_none());
    }

    #[test]
    fn socket_io_members_get_one_event_frame_with_json_data_as_json() {
        let text = |publication: &Publication| {
            let frame = publication.frame(SOCKETIO).expect("a Socket.IO frame").clone();
            String::from_utf8(frame[2..].to_vec()).expect("utf-8")
        };
        assert_eq!(text(&event("lobby", "news", &EventData::Str("{\"n\":1}"), None)), r#"42["news",{"n":1}]"#);
        assert_eq!(text(&event("lobby", "news", &EventData::Str("hi"), None)), r#"42["news","hi"]"#);
        assert_eq!(text(&event("x", "client-a", &EventData::Raw("[1,2]"), None)), r#"42["client-a",[1,2]]"#);
        assert_eq!(text(&room_message("lobby", &Message::text("yo"))), r#"42["message","yo"]"#);
    }

    #[test]
    fn sockets_own_rooms_and_rosters_are_the_service_s_channels() {
        assert!(is_service_channel("lobby roster"));
        assert!(is_service_channel(&super::super::socketio::fresh_id()));
        assert!(!is_service_channel("lobby"));
    }
}
