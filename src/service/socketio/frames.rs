//! The Engine.IO text messages the service sends: Socket.IO packets behind
//! the message type `4`, heartbeats, and events whose data is JSON text
//! already (the HTTP API's), written without parsing it into a tree.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::value::RawValue;

use crate::socketio::engine::{self, Version};
use crate::socketio::packet::{self, MAIN_NAMESPACE};
use crate::Message;

/// The Engine.IO v4 ping the server sends every session (`2`).
pub(crate) const PING: &str = "2";

/// The Engine.IO message carrying `packet`, as one WebSocket text frame.
pub(crate) fn message(packet: &packet::Packet) -> String {
    let mut text = String::from("4");
    text.push_str(&packet.encode());
    text
}

/// An Engine.IO packet as the text frame that carries it (binary data is
/// not sent in this version of the service).
pub(crate) fn engine_text(packet: &engine::Packet, version: Version) -> Option<String> {
    match engine::encode_frame(packet, version) {
        Message::Text(text) => Some(text.as_str().to_owned()),
        Message::Binary(_) => None,
    }
}

/// An EVENT of namespace `nsp` named `name` with one argument, `data`,
/// which must be JSON text (see [`json_or_string`]): `42["name",data]`,
/// or `42/nsp,["name",data]`. Equal to what [`packet::Packet::encode`]
/// writes for the same event.
pub(crate) fn event_with_json(nsp: &str, name: &str, data: &str) -> String {
    let mut text = String::with_capacity(8 + nsp.len() + name.len() + data.len());
    text.push_str("42");
    if nsp != MAIN_NAMESPACE {
        text.push_str(nsp);
        text.push(',');
    }
    text.push('[');
    // A string always serializes.
    let _ = write!(text, "{}", serde_json::Value::from(name));
    text.push(',');
    text.push_str(data);
    text.push(']');
    text
}

/// The argument Socket.IO clients receive for an event's data: the data
/// itself when it is JSON text (an object the HTTP API was given as a JSON
/// string arrives as that object, as pusher-js delivers it), else the text
/// as a JSON string.
pub(crate) fn json_or_string(data: &str) -> Cow<'_, str> {
    match serde_json::from_str::<&RawValue>(data) {
        Ok(json) => Cow::Borrowed(json.get()),
        Err(_) => Cow::Owned(serde_json::Value::from(data).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_written_from_json_text_match_the_packet_encoder() {
        for nsp in ["/", "/admin"] {
            let encoded = message(&packet::Packet::event(nsp, "new \"order\"", [json!({"id": 7})]));
            assert_eq!(event_with_json(nsp, "new \"order\"", r#"{"id":7}"#), encoded);
        }
        assert_eq!(event_with_json("/", "message", "\"hi\""), r#"42["message","hi"]"#);
    }

    #[test]
    fn json_data_stays_json_and_other_text_becomes_a_string() {
        assert_eq!(json_or_string(r#"{"a":[1,2]}"#), r#"{"a":[1,2]}"#);
        assert_eq!(json_or_string("42"), "42");
        assert_eq!(json_or_string("hello \"you\""), r#""hello \"you\"""#);
        assert_eq!(json_or_string("{broken"), r#""{broken""#);
        assert_eq!(json_or_string(""), r#""""#);
    }

    #[test]
    fn engine_packets_are_text_frames() {
        let pong = engine_text(&engine::Packet::Pong("probe".into()), Version::Eio4);
        assert_eq!(pong.as_deref(), Some("3probe"));
    }
}
