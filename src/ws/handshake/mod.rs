//! The WebSocket upgrade handshake (RFC 6455 section 4), without I/O.
//!
//! The request itself is parsed by [`crate::http`] (the same path serves
//! plain HTTP); [`validate_upgrade`] checks its WebSocket headers, and
//! [`accept_response`] builds the 101 that opens the connection. Every
//! refusal maps onto an HTTP status through [`HandshakeError`].

mod response;
mod upgrade;

pub use response::{accept_response, accept_response_with, HandshakeError};
pub(crate) use upgrade::is_token;
pub use upgrade::{validate_upgrade, UpgradeHeaders};
