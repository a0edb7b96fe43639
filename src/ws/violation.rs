//! Protocol violations by the peer, each tied to the close code to send.

use super::close::codes;

/// A rule of RFC 6455 broken by the peer.
///
/// `code` is always one of [`codes::PROTOCOL_ERROR`] (1002),
/// [`codes::INVALID_PAYLOAD`] (1007) or [`codes::MESSAGE_TOO_BIG`] (1009):
/// the close code the server should send before closing the connection.
/// `reason` is a short static text, at most 123 bytes, so it always fits in a
/// close frame without truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (close code {code})")]
pub struct Violation {
    /// The close code to send: 1002, 1007 or 1009.
    pub code: u16,
    /// A short human-readable explanation, suitable as a close reason.
    pub reason: &'static str,
}

impl Violation {
    /// A protocol error (1002): the framing rules were broken.
    pub(crate) const fn protocol(reason: &'static str) -> Self {
        Violation { code: codes::PROTOCOL_ERROR, reason }
    }

    /// Invalid payload data (1007): text that is not UTF-8.
    pub(crate) const fn invalid_payload(reason: &'static str) -> Self {
        Violation { code: codes::INVALID_PAYLOAD, reason }
    }

    /// Message too big (1009): the configured maximum would be exceeded.
    pub(crate) const fn too_big() -> Self {
        Violation { code: codes::MESSAGE_TOO_BIG, reason: "message too big" }
    }
}
