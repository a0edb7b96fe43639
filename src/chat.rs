//! The chat application the `fanout` binary runs by default.
//!
//! A client connects to `/chat`, receives a welcome, and every message it
//! sends reaches every other client (Ratchet's relay); with
//! `echo_to_sender` it reaches the sender too (swoole's push-to-all).

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::Handler;
use crate::message::Message;
use crate::ws::handshake::Request;

/// The endpoint the chat app serves.
pub const CHAT_PATH: &str = "/chat";

/// Relays every message to every connected client.
#[derive(Debug, Clone, Default)]
pub struct ChatHandler {
    /// Send each message back to its sender as well.
    pub echo_to_sender: bool,
}

impl ChatHandler {
    /// The welcome text a new client receives first.
    pub fn welcome(conn: ConnId, server: &ServerHandle) -> String {
        format!("{{\"type\":\"welcome\",\"id\":{},\"connections\":{}}}", conn.as_u64(), server.connection_count())
    }
}

impl Handler for ChatHandler {
    fn accepts_path(&self, path: &str) -> bool {
        path == CHAT_PATH
    }

    fn on_open(&self, server: &ServerHandle, conn: ConnId, _request: &Request) {
        server.push(conn, &Message::text(Self::welcome(conn, server)));
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, message: Message) {
        if self.echo_to_sender {
            server.broadcast(&message);
        } else {
            server.broadcast_except(&message, conn);
        }
    }
}

/// Sends every message back to its sender only (for conformance suites and
/// round-trip benchmarks).
#[derive(Debug, Clone, Default)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    fn on_message(&self, server: &ServerHandle, conn: ConnId, message: Message) {
        server.push(conn, &message);
    }
}
