//! The HTTP/1.1 upgrade handshake (RFC 6455 section 4), without I/O.
//!
//! [`parse_request`] is called on the bytes read so far and answers
//! "incomplete" until the header block is in; [`validate_upgrade`] checks the
//! upgrade headers; [`accept_response`] and [`http_response`] build the bytes
//! to write back, and every refusal maps onto an HTTP status through
//! [`HandshakeError`].

mod request;
mod response;

pub use request::{parse_request, validate_upgrade, Parsed, Request, Upgrade, MAX_HEADERS};
pub use response::{accept_response, http_response, HandshakeError};
