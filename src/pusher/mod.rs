//! Pusher Channels protocol 7 without sockets: JSON text in, typed requests
//! out; typed answers in, the exact JSON text to send out.
//!
//! Like [`crate::ws`] and [`crate::http`], nothing here does I/O (except
//! [`Apps::from_file`] reading its file) or keeps connection state: the
//! server parses what a client sent with [`protocol::parse_incoming`], decides
//! with the channel index what happens, and sends the frames built by the
//! encoders in [`protocol`]. Nothing a peer sends can panic this module; every
//! refusal is a typed error that says what was wrong.
//!
//! Files, each named after its main item:
//! - `names.rs`: [`ChannelKind`] and the channel name rules ([`classify`]).
//! - `socket_id.rs`: [`SocketId`], the `"123.456"` form of a connection id.
//! - `protocol/`: client frames ([`Incoming`]) and server frames (encoders),
//!   with the close and error [`codes`].
//! - `presence.rs`: a presence member from `channel_data`, and the member
//!   list a subscriber receives ([`PresenceSnapshot`]).
//! - `auth.rs`: channel and user signatures (HMAC-SHA256, compared in
//!   constant time).
//! - `api_auth.rs`, `api_body.rs`: the signed HTTP API request and its
//!   `events` / `batch_events` bodies.
//! - `app.rs`, `app_config.rs`: [`App`]s, their limits and the TOML file.
//! - `webhook.rs`: webhook bodies and their signature.

pub mod api_auth;
pub mod api_body;
pub mod app;
pub mod app_config;
pub mod auth;
pub mod codes;
pub mod names;
pub mod presence;
pub mod protocol;
pub mod socket_id;
pub mod webhook;

pub use api_auth::{sign_api_request, verify_api_request, ApiAuthError};
pub use api_body::{parse_batch_events, parse_trigger_event, ApiBodyError, TriggerRequest};
pub use app::{App, AppLimits, Apps, WebhookTarget};
pub use app_config::AppConfigError;
pub use names::{classify, is_cache, ChannelKind, NameError, DEFAULT_MAX_CHANNEL_NAME};
pub use presence::{parse_channel_data, PresenceError, PresenceMember, PresenceSnapshot};
pub use protocol::{parse_incoming, EventData, Incoming, ProtocolError, WatchlistEvent};
pub use socket_id::{is_valid_socket_id, SocketId};
pub use webhook::{webhook_body, webhook_signature, WebhookEvent, WebhookKind};
