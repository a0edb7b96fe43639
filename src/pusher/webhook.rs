//! Webhooks: the events an app's server is told about, the JSON body that
//! carries them, and its signature.
//!
//! A webhook is an HTTP POST of [`webhook_body`] with the headers
//! [`KEY_HEADER`] (the app key) and [`SIGNATURE_HEADER`] (the hex
//! HMAC-SHA256 of the body under the app secret, [`webhook_signature`]).

use serde::{Deserialize, Serialize};

/// The header naming the app key whose secret signed the body.
pub const KEY_HEADER: &str = "X-Pusher-Key";

/// The header holding the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Pusher-Signature";

/// A kind of webhook event, named as in Pusher's payloads and in the app
/// config (`channel_occupied`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// A channel got its first subscriber.
    ChannelOccupied,
    /// A channel lost its last subscriber.
    ChannelVacated,
    /// A user joined a presence channel.
    MemberAdded,
    /// A user left a presence channel.
    MemberRemoved,
    /// A client sent a `client-` event.
    ClientEvent,
    /// Someone subscribed to a cache channel with nothing cached.
    CacheMiss,
}

impl WebhookKind {
    /// The name used in payloads and in the config.
    pub fn name(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
            WebhookKind::CacheMiss => "cache_miss",
        }
    }
}

/// One event reported by webhook; serializes as Pusher's
/// `{"name":"channel_occupied","channel":".."}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum WebhookEvent {
    /// `channel` got its first subscriber.
    ChannelOccupied {
        /// The channel.
        channel: String,
    },
    /// `channel` lost its last subscriber.
    ChannelVacated {
        /// The channel.
        channel: String,
    },
    /// `user_id` joined presence channel `channel` (from its first connection).
    MemberAdded {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// `user_id` left presence channel `channel` (from its last connection).
    MemberRemoved {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A client sent `event` on `channel`.
    ClientEvent {
        /// The channel.
        channel: String,
        /// The event name (`client-...`).
        event: String,
        /// The event's data as text, sent as a JSON string.
        data: String,
        /// The sender's socket id.
        socket_id: String,
        /// The sender's user id, on presence channels only.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// Someone subscribed to cache channel `channel` with nothing cached.
    CacheMiss {
        /// The channel.
        channel: String,
    },
}

impl WebhookEvent {
    /// The kind of this event, to match against a target's filter.
    pub fn kind(&self) -> WebhookKind {
        match self {
            WebhookEvent::ChannelOccupied { .. } => WebhookKind::ChannelOccupied,
            WebhookEvent::ChannelVacated { .. } => WebhookKind::ChannelVacated,
            WebhookEvent::MemberAdded { .. } => WebhookKind::MemberAdded,
            WebhookEvent::MemberRemoved { .. } => WebhookKind::MemberRemoved,
            WebhookEvent::ClientEvent { .. } => WebhookKind::ClientEvent,
            WebhookEvent::CacheMiss { .. } => WebhookKind::CacheMiss,
        }
    }
}

/// The body of one webhook POST: `{"time_ms":..,"events":[..]}`, with
/// `time_ms` the Unix time in milliseconds at which it was made.
pub fn webhook_body(time_ms: u64, events: &[WebhookEvent]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: u64,
        events: &'a [WebhookEvent],
    }
    // Only string keys and derived impls: serde_json cannot fail here.
    serde_json::to_string(&Body { time_ms, events }).unwrap_or_default()
}

/// The [`SIGNATURE_HEADER`] value for `body`: hex HMAC-SHA256 under `secret`.
pub fn webhook_signature(secret: &str, body: &str) -> String {
    super::auth::sign(secret, body)
}

/// Whether `signature` is the signature of `body` under `secret`, as a
/// webhook receiver checks it (in constant time).
pub fn verify_webhook(secret: &str, body: &str, signature: &str) -> bool {
    super::auth::verify_signature(secret, body.as_bytes(), signature)
}

#[cfg(test)]
mod tests {
    //! Verifies that webhook bodies have Pusher's documented shape and that
    //! their signatures verify under the app secret only.

    use super::*;

    fn channel(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn bodies_have_pushers_documented_shape() {
        let events = [
            WebhookEvent::ChannelOccupied { channel: channel("my-channel") },
            WebhookEvent::ChannelVacated { channel: channel("my-channel") },
            WebhookEvent::MemberAdded { channel: channel("presence-a"), user_id: "u1".into() },
            WebhookEvent::MemberRemoved { channel: channel("presence-a"), user_id: "u1".into() },
            WebhookEvent::CacheMiss { channel: channel("cache-x") },
        ];
        assert_eq!(
            webhook_body(1327078148132, &events),
            concat!(
                r#"{"time_ms":1327078148132,"events":["#,
                r#"{"name":"channel_occupied","channel":"my-channel"},"#,
                r#"{"name":"channel_vacated","channel":"my-channel"},"#,
                r#"{"name":"member_added","channel":"presence-a","user_id":"u1"},"#,
                r#"{"name":"member_removed","channel":"presence-a","user_id":"u1"},"#,
                r#"{"name":"cache_miss","channel":"cache-x"}]}"#
            )
        );
        assert_eq!(webhook_body(0, &[]), r#"{"time_ms":0,"events":[]}"#);
    }

    #[test]
    fn client_events_carry_data_as_a_string_and_the_user_on_presence() {
        let event = |user_id: Option<&str>| WebhookEvent::ClientEvent {
            channel: channel("presence-a"),
            event: "client-typing".into(),
            data: r#"{"on":true}"#.into(),
            socket_id: "1.2".into(),
            user_id: user_id.map(str::to_string),
        };
        assert_eq!(
            webhook_body(5, &[event(Some("u1")), event(None)]),
            concat!(
                r#"{"time_ms":5,"events":["#,
                r#"{"name":"client_event","channel":"presence-a","event":"client-typing","data":"{\"on\":true}","socket_id":"1.2","user_id":"u1"},"#,
                r#"{"name":"client_event","channel":"presence-a","event":"client-typing","data":"{\"on\":true}","socket_id":"1.2"}]}"#
            )
        );
    }

    #[test]
    fn kinds_match_events_and_names_match_serde() {
        let cases = [
            (WebhookEvent::ChannelOccupied { channel: channel("c") }, WebhookKind::ChannelOccupied),
            (WebhookEvent::ChannelVacated { channel: channel("c") }, WebhookKind::ChannelVacated),
            (WebhookEvent::MemberAdded { channel: channel("c"), user_id: "u".into() }, WebhookKind::MemberAdded),
            (WebhookEvent::MemberRemoved { channel: channel("c"), user_id: "u".into() }, WebhookKind::MemberRemoved),
            (WebhookEvent::CacheMiss { channel: channel("c") }, WebhookKind::CacheMiss),
        ];
        for (event, kind) in cases {
            assert_eq!(event.kind(), kind);
            let json: serde_json::Value = serde_json::to_value(&event).unwrap();
            assert_eq!(json["name"], kind.name());
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        let kind: WebhookKind = serde_json::from_str(r#""client_event""#).unwrap();
        assert_eq!(kind, WebhookKind::ClientEvent);
        assert!(serde_json::from_str::<WebhookKind>(r#""ClientEvent""#).is_err());
    }

    #[test]
    fn signatures_verify_under_the_app_secret_only() {
        let body = webhook_body(1, &[WebhookEvent::ChannelOccupied { channel: channel("a") }]);
        let signature = webhook_signature("secret", &body);
        assert_eq!(signature, super::super::auth::sign("secret", &body));
        assert_eq!(signature.len(), 64);
        assert!(verify_webhook("secret", &body, &signature));
        assert!(!verify_webhook("other", &body, &signature));
        assert!(!verify_webhook("secret", &format!("{body} "), &signature));
    }
}
