//! What a session's input asks the service to do, and why a session ends:
//! the session decides without a server, and the service carries the
//! effects out with its [`crate::ServerHandle`] (so the session logic is
//! tested on strings alone).

use serde_json::json;

use crate::socketio::packet::{Packet, PacketError};
use crate::socketio::EngineError;
use crate::ws::close::codes;

use super::frames;

/// One thing for the service to do for the connection whose frame it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Send this Engine.IO text message to the client.
    Send(String),
    /// Make the connection a member of this core channel, receiving the
    /// Socket.IO dialect.
    Join(String),
    /// End its membership of this core channel.
    Leave(String),
    /// Publish this Engine.IO message to every other member of core channel
    /// `key` (a namespace's audience, or a custom namespace's room: only
    /// Socket.IO clients are there), then answer `ack`.
    Relay {
        /// The core channel.
        key: String,
        /// The Engine.IO message, the same for every member.
        text: String,
        /// The acknowledgement the client asked for.
        ack: Option<Ack>,
    },
    /// Publish a `message` event with `data` to every other member of a
    /// main namespace room, the channel `room` of the rooms' app, in each
    /// member's own form (raw room clients and Pusher subscribers are
    /// there too), then answer `ack`.
    RoomMessage {
        /// The room, which is the channel's name.
        room: String,
        /// Its core channel.
        key: String,
        /// The event's one argument, as JSON text.
        data: String,
        /// The acknowledgement the client asked for.
        ack: Option<Ack>,
    },
}

/// An acknowledgement a client asked for with an event's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    nsp: String,
    id: u64,
}

impl Ack {
    /// The acknowledgement of event `id` in namespace `nsp`.
    pub(crate) fn new(nsp: &str, id: u64) -> Ack {
        Ack { nsp: nsp.to_owned(), id }
    }

    /// The ACK saying the server took the event: no arguments.
    pub(crate) fn accepted(&self) -> String {
        self.with_args(Vec::new())
    }

    /// The ACK saying the server refused it, and why: one argument,
    /// `{"error": why}`.
    pub(crate) fn refused(&self, why: &str) -> String {
        self.with_args(vec![json!({ "error": why })])
    }

    fn with_args(&self, data: Vec<serde_json::Value>) -> String {
        frames::message(&Packet::Ack { nsp: self.nsp.clone(), id: self.id, data, attachments: Vec::new() })
    }
}

/// Why a session ends: the connection is closed with
/// [`SessionError::close_code`] and [`SessionError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    /// The client sent Engine.IO's close packet.
    #[error("the client closed the session")]
    Closed,
    /// A frame that is no Engine.IO packet.
    #[error("malformed Engine.IO packet: {0}")]
    Engine(#[from] EngineError),
    /// A message that is no Socket.IO packet.
    #[error("malformed Socket.IO packet: {0}")]
    Packet(#[from] PacketError),
    /// A packet for a namespace the client has not connected to.
    #[error("{0} before CONNECT to its namespace")]
    NotConnected(&'static str),
    /// A packet only a server sends.
    #[error("{0} from a client")]
    ServerPacket(&'static str),
    /// Binary data: attachments are not served in this version.
    #[error("binary data (attachments are not served yet)")]
    Binary,
}

impl SessionError {
    /// The WebSocket close code: 1000 for the client's own close, 1003 for
    /// binary data, 1007 for what is not a packet, 1008 for packets out of
    /// place.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            SessionError::Closed => codes::NORMAL,
            SessionError::Binary => codes::UNSUPPORTED_DATA,
            SessionError::Engine(_) | SessionError::Packet(_) => codes::INVALID_PAYLOAD,
            SessionError::NotConnected(_) | SessionError::ServerPacket(_) => codes::POLICY_VIOLATION,
        }
    }

    /// The close frame's reason: short and fixed (a close reason holds at
    /// most 123 bytes; the details go to the debug log).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            SessionError::Closed => "session closed",
            SessionError::Engine(_) => "malformed Engine.IO packet",
            SessionError::Packet(_) => "malformed Socket.IO packet",
            SessionError::NotConnected(_) => "packet for a namespace not connected",
            SessionError::ServerPacket(_) => "packet only a server sends",
            SessionError::Binary => "binary data is not served yet",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_carry_nothing_or_the_refusal() {
        assert_eq!(Ack::new("/", 12).accepted(), "4312[]");
        assert_eq!(Ack::new("/admin", 3).refused("no"), r#"43/admin,3[{"error":"no"}]"#);
    }

    #[test]
    fn every_ending_has_a_valid_close_code_and_a_short_reason() {
        let endings = [
            SessionError::Closed,
            SessionError::Engine(EngineError::Empty),
            SessionError::Packet(PacketError::Empty),
            SessionError::NotConnected("EVENT"),
            SessionError::ServerPacket("CONNECT_ERROR"),
            SessionError::Binary,
        ];
        for ending in endings {
            assert!(crate::ws::close::is_valid_received_code(ending.close_code()), "{ending}");
            assert!(ending.reason().len() <= 123);
        }
    }
}
