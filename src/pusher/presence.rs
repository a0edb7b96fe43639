//! Presence members: who a `channel_data` says the subscriber is, and the
//! member list sent to a new subscriber.

use std::collections::HashSet;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::pusher::protocol::is_object;

/// Pusher's limit on a presence `user_id`, in characters.
pub const MAX_USER_ID_LENGTH: usize = 128;

/// Pusher's default limit on a member's `user_info`, in bytes of JSON.
pub const DEFAULT_MAX_USER_INFO_BYTES: usize = 1024;

/// One subscriber of a presence channel, as its signed `channel_data` says.
#[derive(Debug, Clone)]
pub struct PresenceMember {
    /// The app's id for the user: never empty, at most 128 characters; a
    /// numeric id is kept as its decimal text, as pusher-js keys members.
    pub user_id: String,
    /// The `user_info` JSON exactly as the app signed it, if any.
    pub user_info: Option<Box<RawValue>>,
}

impl PartialEq for PresenceMember {
    fn eq(&self, other: &Self) -> bool {
        self.user_id == other.user_id
            && self.user_info.as_ref().map(|i| i.get()) == other.user_info.as_ref().map(|i| i.get())
    }
}

impl Eq for PresenceMember {}

/// Why a presence subscription's `channel_data` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// It is not a JSON object; the text says where serde_json stopped.
    #[error("channel_data is not a JSON object: {0}")]
    Malformed(String),
    /// It has no `user_id`, or a null one.
    #[error("channel_data has no user_id")]
    MissingUserId,
    /// The `user_id` is neither a string nor an integer.
    #[error("channel_data user_id must be a string or an integer")]
    BadUserIdType,
    /// The `user_id` is the empty string.
    #[error("channel_data user_id is empty")]
    EmptyUserId,
    /// The `user_id` is longer than [`MAX_USER_ID_LENGTH`].
    #[error("channel_data user_id is {len} characters long; at most {max} are allowed")]
    UserIdTooLong {
        /// The id's length in characters.
        len: usize,
        /// The longest id allowed.
        max: usize,
    },
    /// The `user_info` JSON is larger than the app allows.
    #[error("channel_data user_info is {len} bytes; at most {max} are allowed")]
    InfoTooLarge {
        /// The size of the `user_info` JSON text.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
}

#[derive(Deserialize)]
struct ChannelData {
    #[serde(default)]
    user_id: Option<UserId>,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Other(serde::de::IgnoredAny),
}

/// The member a presence subscription's `channel_data` describes.
///
/// `channel_data` is the JSON text the app signed, e.g.
/// `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`. `user_id` may be a
/// string or an integer (kept as its decimal text); other fields are
/// ignored. `user_info` may be any JSON of at most `max_info_bytes` bytes
/// (Pusher's limit is 1 KB).
pub fn parse_channel_data(channel_data: &str, max_info_bytes: usize) -> Result<PresenceMember, PresenceError> {
    let data: ChannelData = serde_json::from_str(channel_data).map_err(|e| PresenceError::Malformed(e.to_string()))?;
    if !is_object(channel_data) {
        return Err(PresenceError::Malformed("expected an object".to_string()));
    }
    let user_id = match data.user_id.ok_or(PresenceError::MissingUserId)? {
        UserId::Text(text) => text,
        UserId::Unsigned(number) => number.to_string(),
        UserId::Signed(number) => number.to_string(),
        UserId::Other(_) => return Err(PresenceError::BadUserIdType),
    };
    if user_id.is_empty() {
        return Err(PresenceError::EmptyUserId);
    }
    let len = user_id.chars().count();
    if len > MAX_USER_ID_LENGTH {
        return Err(PresenceError::UserIdTooLong { len, max: MAX_USER_ID_LENGTH });
    }
    if let Some(info) = &data.user_info {
        let len = info.get().len();
        if len > max_info_bytes {
            return Err(PresenceError::InfoTooLarge { len, max: max_info_bytes });
        }
    }
    Ok(PresenceMember { user_id, user_info: data.user_info })
}

/// The members of a presence channel as a new subscriber is told them: each
/// user once, in the order first met.
///
/// Serializes as Pusher's `{"ids":[..],"hash":{id: user_info},"count":n}`,
/// where a member without `user_info` maps to `null` so that its id is
/// still a key of `hash` (pusher-js looks members up there).
#[derive(Debug, Clone, Default)]
pub struct PresenceSnapshot {
    members: Vec<PresenceMember>,
}

impl PresenceSnapshot {
    /// The snapshot of `members`. A user subscribed from several connections
    /// counts once, with the `user_info` of its first connection met.
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a PresenceMember>) -> Self {
        let mut seen = HashSet::new();
        let members = members.into_iter().filter(|m| seen.insert(m.user_id.as_str())).cloned().collect();
        PresenceSnapshot { members }
    }

    /// The distinct user ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.user_id.as_str())
    }

    /// The number of distinct users.
    pub fn count(&self) -> usize {
        self.members.len()
    }

    /// The `user_info` JSON of `user_id`: `None` if it is no member,
    /// `Some(None)` if it is one without `user_info`.
    pub fn info(&self, user_id: &str) -> Option<Option<&RawValue>> {
        self.members.iter().find(|m| m.user_id == user_id).map(|m| m.user_info.as_deref())
    }
}

impl Serialize for PresenceSnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut presence = serializer.serialize_struct("presence", 3)?;
        presence.serialize_field("ids", &self.ids().collect::<Vec<_>>())?;
        presence.serialize_field("hash", &Hash(&self.members))?;
        presence.serialize_field("count", &self.count())?;
        presence.end()
    }
}

/// `{id: user_info}` in member order, without building a map first.
struct Hash<'a>(&'a [PresenceMember]);

impl Serialize for Hash<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for member in self.0 {
            map.serialize_entry(&member.user_id, &member.user_info)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    //! Verifies that `channel_data` yields a member within Pusher's limits,
    //! and that snapshots list each user once in Pusher's format.

    use super::*;

    const MAX: usize = DEFAULT_MAX_USER_INFO_BYTES;

    fn member(id: &str, info: Option<&str>) -> PresenceMember {
        let user_info = info.map(|i| RawValue::from_string(i.to_string()).unwrap());
        PresenceMember { user_id: id.to_string(), user_info }
    }

    #[test]
    fn user_id_may_be_a_string_or_an_integer() {
        let parsed = parse_channel_data(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#, MAX).unwrap();
        assert_eq!(parsed, member("10", Some(r#"{"name":"Mr. Channels"}"#)));
        assert_eq!(parse_channel_data(r#"{"user_id":"u-1"}"#, MAX).unwrap(), member("u-1", None));
        assert_eq!(parse_channel_data(r#"{"user_id":-3}"#, MAX).unwrap().user_id, "-3");
        assert_eq!(
            parse_channel_data(r#"{"user_id":18446744073709551615}"#, MAX).unwrap().user_id,
            "18446744073709551615"
        );
        assert_eq!(parse_channel_data(r#"{"user_id":"7","user_info":null}"#, MAX).unwrap(), member("7", None));
    }

    #[test]
    fn user_info_is_kept_byte_for_byte() {
        let data = r#"{ "user_info" : { "b":1, "a":[true] } , "user_id":"x","extra":1 }"#;
        let parsed = parse_channel_data(data, MAX).unwrap();
        assert_eq!(parsed.user_info.unwrap().get(), r#"{ "b":1, "a":[true] }"#);
    }

    #[test]
    fn bad_user_ids_are_refused() {
        let parse = |data: &str| parse_channel_data(data, MAX).unwrap_err();
        assert_eq!(parse(r#"{"user_info":{}}"#), PresenceError::MissingUserId);
        assert_eq!(parse(r#"{"user_id":null}"#), PresenceError::MissingUserId);
        assert_eq!(parse(r#"{"user_id":""}"#), PresenceError::EmptyUserId);
        for bad in ["1.5", "true", "[1]", r#"{"a":1}"#] {
            assert_eq!(parse(&format!(r#"{{"user_id":{bad}}}"#)), PresenceError::BadUserIdType, "{bad}");
        }
        let long = format!(r#"{{"user_id":"{}"}}"#, "é".repeat(129));
        assert_eq!(parse(&long), PresenceError::UserIdTooLong { len: 129, max: 128 });
        assert!(parse_channel_data(&format!(r#"{{"user_id":"{}"}}"#, "é".repeat(128)), MAX).is_ok());
    }

    #[test]
    fn channel_data_that_is_no_object_is_refused() {
        for data in ["", "not json", "[]", r#"["1"]"#, "\"x\"", "10", r#"{"user_id":"1""#, r#"{"user_id":"1"} x"#] {
            assert!(matches!(parse_channel_data(data, MAX), Err(PresenceError::Malformed(_))), "{data:?}");
        }
    }

    #[test]
    fn user_info_over_the_limit_is_refused() {
        let info = format!(r#"{{"bio":"{}"}}"#, "x".repeat(1000));
        let ok = format!(r#"{{"user_id":"1","user_info":{info}}}"#);
        assert!(parse_channel_data(&ok, info.len()).is_ok());
        let err = parse_channel_data(&ok, info.len() - 1).unwrap_err();
        assert_eq!(err, PresenceError::InfoTooLarge { len: info.len(), max: info.len() - 1 });
        assert!(err.to_string().contains("user_info"));
    }

    #[test]
    fn snapshots_list_each_user_once_in_first_seen_order() {
        let members = [
            member("b", Some(r#"{"n":"B"}"#)),
            member("a", None),
            member("b", Some(r#"{"n":"B2"}"#)),
            member("c", Some("[1, 2]")),
        ];
        let snapshot = PresenceSnapshot::from_members(&members);
        assert_eq!(snapshot.ids().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(snapshot.count(), 3);
        assert_eq!(snapshot.info("b").unwrap().unwrap().get(), r#"{"n":"B"}"#);
        assert!(snapshot.info("a").unwrap().is_none());
        assert!(snapshot.info("z").is_none());
        assert_eq!(
            serde_json::to_string(&snapshot).unwrap(),
            r#"{"ids":["b","a","c"],"hash":{"b":{"n":"B"},"a":null,"c":[1, 2]},"count":3}"#
        );
        let empty = PresenceSnapshot::from_members([]);
        assert_eq!(serde_json::to_string(&empty).unwrap(), r#"{"ids":[],"hash":{},"count":0}"#);
    }
}
