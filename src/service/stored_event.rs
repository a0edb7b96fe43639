//! [`StoredEvent`]: an event as channel history keeps it, in one allocation,
//! enough to frame it again, with its offset, in every wire form.

use super::audience::{self, PUSHER, RAW};
use crate::channels::Publication;
use crate::handle::Prepared;
use crate::message::Message;
use crate::pusher::protocol::{self, StreamPosition};
use crate::pusher::EventData;

/// Bytes before the texts: the kind of data, the event name's length and
/// the user id's length.
const HEADER: usize = 1 + 2 + 2;
/// The user id length that means "no user id".
const NO_USER: u16 = u16::MAX;

/// One event: its name, its data (a string's text, or client JSON) and the
/// sender's presence user id if any, packed as
/// `[raw][event len][user len][event][user][data]` so that a message of
/// history costs one heap block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    packed: Box<[u8]>,
}

impl StoredEvent {
    /// An event named `event` with `data`, from `user_id` if any. Names and
    /// user ids are far below 64 KiB (the apps' limits); longer ones are cut
    /// at a character boundary rather than refused.
    pub(crate) fn new(event: &str, data: &EventData<'_>, user_id: Option<&str>) -> Self {
        let (data, raw) = match *data {
            EventData::Str(text) => (text, false),
            EventData::Raw(json) => (json, true),
        };
        let event = cut(event, usize::from(u16::MAX - 1));
        let user = user_id.map(|u| cut(u, usize::from(u16::MAX - 1)));
        let user_len = user.map_or(NO_USER, |u| u.len() as u16);
        let mut packed = Vec::with_capacity(HEADER + event.len() + user.map_or(0, str::len) + data.len());
        packed.push(u8::from(raw));
        packed.extend_from_slice(&(event.len() as u16).to_le_bytes());
        packed.extend_from_slice(&user_len.to_le_bytes());
        packed.extend_from_slice(event.as_bytes());
        packed.extend_from_slice(user.unwrap_or_default().as_bytes());
        packed.extend_from_slice(data.as_bytes());
        StoredEvent { packed: packed.into_boxed_slice() }
    }

    /// Bytes it holds.
    pub(crate) fn size(&self) -> usize {
        self.packed.len()
    }

    /// Its packed form, as the durable store keeps it.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.packed
    }

    /// An event from its packed form; `None` for bytes that are not one
    /// (a store written by something else).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<StoredEvent> {
        let event = StoredEvent { packed: bytes.into_boxed_slice() };
        let header_fits = event.packed.len() >= HEADER && event.packed[0] <= 1;
        let texts = header_fits && HEADER + event.event_len() + event.user_len().unwrap_or(0) <= event.packed.len();
        (texts && std::str::from_utf8(&event.packed[HEADER..]).is_ok()).then_some(event)
    }

    fn event_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.packed[1], self.packed[2]]))
    }

    fn user_len(&self) -> Option<usize> {
        let len = u16::from_le_bytes([self.packed[3], self.packed[4]]);
        (len != NO_USER).then_some(usize::from(len))
    }

    /// A text slice of the packed bytes; they were all `&str` pieces cut at
    /// character boundaries, so this never fails in practice.
    fn text(&self, from: usize, to: usize) -> &str {
        std::str::from_utf8(&self.packed[from..to]).unwrap_or_default()
    }

    /// The event's name.
    pub(crate) fn event(&self) -> &str {
        self.text(HEADER, HEADER + self.event_len())
    }

    /// The sender's presence user id, if any.
    pub(crate) fn user_id(&self) -> Option<&str> {
        let from = HEADER + self.event_len();
        self.user_len().map(|len| self.text(from, from + len))
    }

    /// The data as sent.
    pub(crate) fn data(&self) -> EventData<'_> {
        let from = HEADER + self.event_len() + self.user_len().unwrap_or(0);
        let data = self.text(from, self.packed.len());
        if self.packed[0] == 1 {
            EventData::Raw(data)
        } else {
            EventData::Str(data)
        }
    }

    /// The event as the history API lists it, at `offset`.
    pub(crate) fn to_json(&self, offset: u64) -> serde_json::Value {
        let data = match self.data() {
            EventData::Raw(json) => serde_json::from_str::<serde_json::Value>(json)
                .unwrap_or_else(|_| serde_json::Value::String(json.to_owned())),
            EventData::Str(text) => serde_json::Value::String(text.to_owned()),
        };
        let mut message = serde_json::json!({ "offset": offset, "event": self.event(), "data": data });
        if let (Some(user_id), Some(fields)) = (self.user_id(), message.as_object_mut()) {
            fields.insert("user_id".into(), user_id.into());
        }
        message
    }

    /// The Pusher frame of this event on `channel` at `at`.
    pub(crate) fn pusher_frame(&self, channel: &str, at: StreamPosition<'_>) -> String {
        protocol::channel_event_at(self.event(), channel, &self.data(), self.user_id(), at)
    }

    /// Every wire form at `at`: the Pusher envelope with its offset, the
    /// data as text for raw room members, and the Socket.IO event (which
    /// carries no offset: Socket.IO clients do not recover).
    pub(crate) fn publication(&self, channel: &str, at: StreamPosition<'_>) -> Publication {
        let socketio = audience::socketio_event(self.event(), &self.data());
        Publication::new()
            .with(RAW, &Prepared::new(&Message::text(audience::raw_text(&self.data()))))
            .with(PUSHER, &Prepared::new(&Message::text(self.pusher_frame(channel, at))))
            .with(audience::SOCKETIO, &Prepared::new(&Message::text(socketio)))
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_comes_back_as_stored() {
        let api = StoredEvent::new("news", &EventData::Str("item \"1\" é"), None);
        assert_eq!((api.event(), api.user_id(), api.data()), ("news", None, EventData::Str("item \"1\" é")));
        assert_eq!(api.size(), HEADER + 4 + "item \"1\" é".len());
        let client = StoredEvent::new("client-wave", &EventData::Raw("{\"a\":1}"), Some("user-7"));
        assert_eq!(client.event(), "client-wave");
        assert_eq!(client.user_id(), Some("user-7"));
        assert_eq!(client.data(), EventData::Raw("{\"a\":1}"));
        let empty = StoredEvent::new("e", &EventData::Str(""), Some(""));
        assert_eq!((empty.user_id(), empty.data()), (Some(""), EventData::Str("")));
    }

    #[test]
    fn the_history_api_lists_json_data_as_json_and_strings_as_strings() {
        let client = StoredEvent::new("client-wave", &EventData::Raw("{\"a\":1}"), Some("7"));
        assert_eq!(
            client.to_json(3),
            serde_json::json!({"offset": 3, "event": "client-wave", "data": {"a": 1}, "user_id": "7"})
        );
        let api = StoredEvent::new("news", &EventData::Str("{\"a\":1}"), None);
        assert_eq!(api.to_json(4), serde_json::json!({"offset": 4, "event": "news", "data": "{\"a\":1}"}));
    }

    #[test]
    fn the_packed_form_reads_back_and_foreign_bytes_do_not() {
        let event = StoredEvent::new("client-wave", &EventData::Raw("{\"a\":1}"), Some("7"));
        assert_eq!(StoredEvent::from_bytes(event.as_bytes().to_vec()), Some(event));
        for foreign in [&b""[..], b"\x02\x00\x00\xff\xff", b"\x00\x09\x00\xff\xffabc", b"\x00\x01\x00\xff\xff\xff"] {
            assert_eq!(StoredEvent::from_bytes(foreign.to_vec()), None, "{foreign:?}");
        }
    }

    #[test]
    fn overlong_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40_000);
        let event = StoredEvent::new(&long, &EventData::Str("d"), None);
        assert!(event.event().len() < usize::from(u16::MAX) && long.starts_with(event.event()));
        assert_eq!(event.data(), EventData::Str("d"));
    }
}
