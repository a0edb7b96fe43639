//! Which core channels Socket.IO namespaces and rooms are, and which names
//! the default app takes.
//!
//! - A room of the main namespace `/` is the channel of the same name in
//!   the rooms' app (the app raw `/chat/{room}` clients use): room `lobby`,
//!   raw room `lobby` and that app's Pusher channel `lobby` are one
//!   audience, which the HTTP API publishes to.
//! - Everything else is the Socket.IO service's own: a namespace's
//!   audience (what a client emits to everyone in it), rooms of custom
//!   namespaces, and the heartbeat every session joins. Their core names
//!   start with [`PREFIX`], which has a space: no Pusher channel, raw room
//!   or app id has one, so no other client can join them, no API call can
//!   name them, and, having no app, they are in no app's lists, counts or
//!   webhooks.

use crate::chat::is_room_name;

use super::super::audience;

/// What the service's own core channels start with.
const PREFIX: &str = "socket.io ";

/// The longest namespace name, in bytes, `/` included.
pub(crate) const MAX_NAMESPACE_LEN: usize = 64;

/// The channel every Engine.IO v4 session joins: its pings are published
/// there, once for all.
pub(crate) fn heartbeat() -> &'static str {
    "socket.io heartbeat"
}

/// True for a namespace name the default app serves: `/`, or `/` followed
/// by up to 63 characters of room names' alphabet and `/` (`/admin`,
/// `/chat/eu`). Anything else (`?`, spaces, `:`) gets CONNECT_ERROR.
pub(crate) fn is_namespace(nsp: &str) -> bool {
    nsp.len() <= MAX_NAMESPACE_LEN
        && nsp.starts_with('/')
        && nsp.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;/".contains(&b))
}

/// The core channel of namespace `nsp`'s whole audience.
pub(crate) fn namespace_audience(nsp: &str) -> String {
    format!("{PREFIX}{nsp}")
}

/// Why a room name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RoomError {
    /// Not 1–164 characters of `A-Z a-z 0-9 _ - = @ , . ;`.
    #[error("a room name is 1 to 164 characters of A-Z a-z 0-9 _ - = @ , . ;")]
    Invalid,
    /// A private, presence or encrypted Pusher channel, whose members must
    /// be authorized: Socket.IO clients join public channels only.
    #[error("private-, private-encrypted- and presence- channels need Pusher's authorization")]
    Authorized,
    /// Another socket's own room.
    #[error("a socket's own room is its alone")]
    SocketRoom,
}

/// The core channel of room `room` in namespace `nsp`, if a client may
/// join it: a room's name is a channel name (main namespace rooms are
/// public Pusher channels), and no socket joins another one's own room.
pub(crate) fn room(room_app: &str, nsp: &str, room: &str) -> Result<String, RoomError> {
    if !is_room_name(room) {
        return Err(RoomError::Invalid);
    }
    if ["private-", "presence-"].iter().any(|prefix| room.starts_with(prefix)) {
        return Err(RoomError::Authorized);
    }
    if super::ids::is_socket_id(room) {
        return Err(RoomError::SocketRoom);
    }
    Ok(room_key(room_app, nsp, room))
}

/// The core channel of a socket's own room (named by its id).
pub(crate) fn own_room(room_app: &str, nsp: &str, sid: &str) -> String {
    room_key(room_app, nsp, sid)
}

fn room_key(room_app: &str, nsp: &str, room: &str) -> String {
    if nsp == crate::socketio::packet::MAIN_NAMESPACE {
        audience::audience(room_app, room)
    } else {
        format!("{PREFIX}{nsp} {room}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_slash_names_of_a_safe_alphabet() {
        for good in ["/", "/admin", "/chat/eu", "/a-b_c.d"] {
            assert!(is_namespace(good), "{good}");
        }
        let long = format!("/{}", "a".repeat(MAX_NAMESPACE_LEN));
        for bad in ["", "admin", "/a b", "/a?x=1", "/a:b", "/é", long.as_str()] {
            assert!(!is_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn main_namespace_rooms_are_the_rooms_app_channels() {
        assert_eq!(room("1", "/", "lobby"), Ok(audience::audience("1", "lobby")));
        assert_eq!(room("1", "/admin", "lobby"), Ok("socket.io /admin lobby".to_owned()));
        assert_ne!(room("1", "/admin", "lobby"), room("1", "/", "lobby"));
        assert_ne!(namespace_audience("/"), namespace_audience("/admin"));
    }

    #[test]
    fn the_service_s_channels_belong_to_no_app() {
        for key in [namespace_audience("/"), namespace_audience("/admin"), heartbeat().to_owned()] {
            assert!(audience::split(&key).is_none(), "{key} has no app part");
        }
        let custom = room("1", "/admin", "lobby").expect("a room");
        assert!(audience::split(&custom).is_none());
    }

    #[test]
    fn rooms_that_need_authorization_or_belong_to_a_socket_are_refused() {
        assert_eq!(room("1", "/", "private-orders"), Err(RoomError::Authorized));
        assert_eq!(room("1", "/", "presence-room"), Err(RoomError::Authorized));
        assert_eq!(room("1", "/", "#server-to-user-1"), Err(RoomError::Invalid));
        assert_eq!(room("1", "/", ""), Err(RoomError::Invalid));
        assert_eq!(room("1", "/", "a b"), Err(RoomError::Invalid));
        let sid = super::super::ids::fresh_id();
        assert_eq!(room("1", "/", &sid), Err(RoomError::SocketRoom));
        assert_eq!(own_room("1", "/", &sid), audience::audience("1", &sid));
    }
}
