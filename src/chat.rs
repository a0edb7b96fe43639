//! The chat and echo applications the `fanout` binary runs.
//!
//! A chat client connects to `/chat`, receives a welcome, and every message
//! it sends reaches every other client (Ratchet's relay); with
//! `echo_to_sender` it reaches the sender too (swoole's push-to-all).

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::{Accept, Handler, Rejection};
use crate::http::{Request, Response};
use crate::message::Message;

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
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<()>, Rejection> {
        if request.path() == CHAT_PATH {
            Ok(Accept::new(()))
        } else {
            Err(Rejection::not_found())
        }
    }

    fn on_open(&self, server: &ServerHandle, conn: ConnId, _state: &mut ()) {
        server.push(conn, &Message::text(Self::welcome(conn, server)));
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _state: &mut (), message: Message) {
        if self.echo_to_sender {
            server.broadcast(&message);
        } else {
            server.broadcast_except(&message, conn);
        }
    }

    fn on_http(&self, _server: &ServerHandle, request: &Request) -> Option<Response> {
        (request.path() == CHAT_PATH).then(|| {
            Response::text(426, "/chat is a WebSocket endpoint: connect with a WebSocket client\n")
                .header("Upgrade", "websocket")
        })
    }
}

/// Sends every message back to its sender only, on every path (for
/// conformance suites and round-trip benchmarks).
#[derive(Debug, Clone, Default)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()))
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _state: &mut (), message: Message) {
        server.push(conn, &message);
    }
}
