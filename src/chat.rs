//! The chat and echo applications the `fanout` binary runs.
//!
//! A chat client connects to `/chat`, receives a welcome, and every message
//! it sends reaches every other client (Ratchet's relay); with
//! `echo_to_sender` it reaches the sender too (swoole's push-to-all).
//!
//! Rooms: `/chat/{room}` joins one room, and the bare root `/` (a WeChat
//! mini-program's `ws://host:port`) joins [`DEFAULT_ROOM`]. A message sent
//! in a room reaches the room's other members only. A room is the channel
//! of the same name, so whatever publishes to that channel (the Pusher HTTP
//! API) reaches the room's clients, as raw text. `/chat` itself is the
//! whole-server broadcast audience and no room; room members are kept out
//! of it, so nothing crosses between rooms and `/chat`.

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::{Accept, Handler, Rejection};
use crate::http::{Request, Response};
use crate::message::Message;

/// The endpoint the chat app serves.
pub const CHAT_PATH: &str = "/chat";

/// The room a client connecting to `/` joins.
pub const DEFAULT_ROOM: &str = "default";

/// The longest room name (Pusher's channel name limit).
pub const MAX_ROOM_NAME: usize = 164;

/// What a chat path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// `/chat`: every connected client.
    Everyone,
    /// `/chat/{room}`, or `/` for [`DEFAULT_ROOM`].
    Room(String),
}

impl ChatTarget {
    /// The target of `path`, or `None` when it is no chat path. Room names
    /// are 1 to 164 characters of `A-Z a-z 0-9 _ - = @ , . ;` (the
    /// characters a Pusher channel name may use), so a room can always be
    /// addressed as a channel.
    pub fn of_path(path: &str) -> Option<ChatTarget> {
        match path {
            CHAT_PATH => Some(ChatTarget::Everyone),
            "/" => Some(ChatTarget::Room(DEFAULT_ROOM.to_owned())),
            _ => {
                let room = path.strip_prefix("/chat/")?;
                is_room_name(room).then(|| ChatTarget::Room(room.to_owned()))
            }
        }
    }

    /// The answer to an upgrade on `path` where [`ChatTarget::of_path`]
    /// found no chat: 400 for a bad room name, else 404.
    pub fn refusal(path: &str) -> Rejection {
        if path.starts_with("/chat/") {
            Rejection::bad_request().body("a room name is 1 to 164 characters of A-Z a-z 0-9 _ - = @ , . ;\n")
        } else {
            Rejection::not_found()
        }
    }
}

/// True for a valid room name (see [`ChatTarget::of_path`]).
pub fn is_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b))
}

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
    type State = ChatTarget;

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<ChatTarget>, Rejection> {
        match ChatTarget::of_path(request.path()) {
            Some(ChatTarget::Everyone) => Ok(Accept::new(ChatTarget::Everyone)),
            // A room's members hear their room only, not the whole chat.
            Some(room) => Ok(Accept::new(room).without_broadcasts()),
            None => Err(ChatTarget::refusal(request.path())),
        }
    }

    fn on_open(&self, server: &ServerHandle, conn: ConnId, target: &mut ChatTarget) {
        server.push(conn, &Message::text(Self::welcome(conn, server)));
        if let ChatTarget::Room(room) = target {
            server.subscribe(conn, room);
        }
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, target: &mut ChatTarget, message: Message) {
        match (target, self.echo_to_sender) {
            (ChatTarget::Everyone, true) => server.broadcast(&message),
            (ChatTarget::Everyone, false) => server.broadcast_except(&message, conn),
            (ChatTarget::Room(room), true) => server.publish(room, &message),
            (ChatTarget::Room(room), false) => server.publish_except(room, &message, conn),
        }
    }

    fn on_http(&self, _server: &ServerHandle, request: &Request) -> Option<Response> {
        let path = request.path();
        (path == CHAT_PATH || path.starts_with("/chat/")).then(|| {
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
