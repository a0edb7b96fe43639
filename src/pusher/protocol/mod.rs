//! The WebSocket side of the protocol: client frames parsed into
//! [`Incoming`], server frames encoded as the exact JSON text of one text
//! frame.
//!
//! Pusher double-encodes most server frames: their `data` is a JSON string
//! holding JSON (`"data":"{\"socket_id\":\"1.2\"}"`). pusher-js accepts
//! either form, since it parses a string `data` when it can; the encoders
//! here follow what Pusher's documentation shows for each event. All
//! escaping is serde_json's.

mod incoming;
mod outgoing;

pub use super::codes;
pub(crate) use incoming::is_object;
pub use incoming::{parse_incoming, Incoming, ProtocolError, Since};
pub use outgoing::{
    cache_miss, channel_event, channel_event_at, connection_established, error, member_added, member_removed, ping,
    pong, recovery, signin_success, subscription_error, subscription_succeeded, subscription_succeeded_at,
    watchlist_events, EventData, StreamPosition, WatchlistEvent,
};
