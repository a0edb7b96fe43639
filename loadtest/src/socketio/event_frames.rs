//! `EventFrames`: the stamped `message` events of one run, built and read without a JSON parser on
//! the hot path.
//!
//! A publisher sends `42["message","<stamp>"]` to its namespace, or `42["to","ROOM","<stamp>"]`
//! for a room (`42/ns,` instead of `42` outside the main namespace); either way every receiver
//! gets `42["message","<stamp>"]`. The stamp (`pusher::stamp`) is lowercase hex and `.` padding,
//! so it needs no escaping and a receiver finds it right after a fixed prefix. A server that
//! words the same event differently (spaces, escapes) is still read, through the general parser.

use crate::pusher::stamp::Stamp;
use crate::socketio::packet::{self, Engine, Kind};

/// The event name every stamped delivery carries.
pub const MESSAGE: &str = "message";

/// How one run's events look on the wire.
#[derive(Debug, Clone)]
pub struct EventFrames {
    namespace: String,
    /// What a delivery starts with: `42["message","` (with the namespace after `42`).
    delivery: Vec<u8>,
    /// What a publisher's event starts with, up to the stamp's opening quote.
    publish: Vec<u8>,
}

impl EventFrames {
    /// The frames of `namespace`; with `room`, publishers address it with the `to` command.
    pub fn new(namespace: &str, room: Option<&str>) -> EventFrames {
        let prefix = packet::event_prefix(namespace);
        let delivery = format!("{prefix}[\"{MESSAGE}\",\"").into_bytes();
        let publish = match room {
            Some(room) => format!("{prefix}[\"to\",{},\"", packet::json_string(room)).into_bytes(),
            None => delivery.clone(),
        };
        EventFrames { namespace: namespace.to_owned(), delivery, publish }
    }

    /// The namespace the events belong to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Writes into `out` (cleared first) the event a publisher sends with `stamp` (the stamp and
    /// its padding, as `Stamp::write` made it) as its data.
    pub fn publish(&self, out: &mut Vec<u8>, stamp: &[u8]) {
        out.clear();
        out.extend_from_slice(&self.publish);
        out.extend_from_slice(stamp);
        out.extend_from_slice(b"\"]");
    }

    /// The stamp of a delivered `message` event of this namespace: `Some(Some(stamp))`,
    /// `Some(None)` for a `message` event without a stamp, `None` for anything that is no
    /// `message` event of this namespace.
    pub fn stamp_of(&self, text: &[u8]) -> Option<Option<Stamp>> {
        if let Some(rest) = text.strip_prefix(self.delivery.as_slice()) {
            return Some(Stamp::read(rest));
        }
        let Some(Engine::Message(p)) = packet::parse(text) else { return None };
        if p.kind != Kind::Event || p.namespace != self.namespace {
            return None;
        }
        let args: Vec<serde_json::Value> = serde_json::from_slice(p.data).ok()?;
        if args.first().and_then(|v| v.as_str()) != Some(MESSAGE) {
            return None;
        }
        Some(args.get(1).and_then(|v| v.as_str()).and_then(|s| Stamp::read(s.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64) -> (Stamp, Vec<u8>) {
        let s = Stamp { step: 0, stream: 3, seq, sent_ns: 1_000 + seq };
        let mut text = Vec::new();
        s.write(&mut text, 64);
        (s, text)
    }

    #[test]
    fn a_namespace_event_reads_back_as_its_stamp() {
        let frames = EventFrames::new("/", None);
        let (s, text) = stamp(7);
        let mut out = Vec::new();
        frames.publish(&mut out, &text);
        let wire = String::from_utf8(out.clone()).unwrap();
        assert!(wire.starts_with(r#"42["message","lt1:00"#) && wire.ends_with(r#"...."]"#), "{wire}");
        assert_eq!(wire.len(), 64 + r#"42["message",""]"#.len());
        // What a namespace publisher sends is what its receivers get.
        assert_eq!(frames.stamp_of(&out), Some(Some(s)));
    }

    #[test]
    fn a_room_publisher_sends_to_and_receivers_get_message() {
        let frames = EventFrames::new("/live", Some("lobby"));
        let (s, text) = stamp(1);
        let mut out = Vec::new();
        frames.publish(&mut out, &text);
        assert!(out.starts_with(br#"42/live,["to","lobby","lt1:"#), "{}", String::from_utf8_lossy(&out));
        assert_eq!(frames.stamp_of(&out), None, "a `to` command is not a delivery");
        let delivered = format!(r#"42/live,["message","{}"]"#, String::from_utf8_lossy(&text));
        assert_eq!(frames.stamp_of(delivered.as_bytes()), Some(Some(s)));
    }

    #[test]
    fn other_wordings_and_other_events_are_told_apart() {
        let frames = EventFrames::new("/", None);
        let (s, text) = stamp(2);
        let spaced = format!(r#"42[ "message", "{}" ]"#, String::from_utf8_lossy(&text));
        assert_eq!(frames.stamp_of(spaced.as_bytes()), Some(Some(s)), "the slow path reads it");
        assert_eq!(frames.stamp_of(br#"42["message","hello"]"#), Some(None));
        assert_eq!(frames.stamp_of(br#"42["message",{"n":1}]"#), Some(None));
        assert_eq!(frames.stamp_of(br#"42["news","lt1:"]"#), None);
        assert_eq!(frames.stamp_of(br#"42/other,["message","x"]"#), None, "another namespace");
        assert_eq!(frames.stamp_of(b"2"), None);
        assert_eq!(frames.stamp_of(b"431[]"), None);
    }
}
