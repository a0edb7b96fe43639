//! One Socket.IO session over a WebSocket: Engine.IO packets in, Socket.IO
//! packets in, [`Effect`]s out, and the default app's meaning of each
//! event. No server here: the service carries the effects out.
//!
//! The default app, per namespace:
//! - `join` / `leave` with a room name join or leave that room (at most
//!   [`MAX_ROOMS`] per connection);
//! - `to` with a room the socket joined and one argument sends that
//!   argument as a `message` event to the room's other members (Socket.IO
//!   clients, raw room clients and Pusher subscribers alike);
//! - any other event goes, with its name and arguments, to every other
//!   socket of the namespace (the seed's `message`, the tutorial's
//!   `chat message`).
//!
//! An event with an ack id is answered once the server took it: an ACK
//! with no arguments, or with `{"error": why}` when it was refused.

use serde_json::{json, Value};

use crate::socketio::engine::{self, Data, Version};
use crate::socketio::packet::{Decoder, Event, Packet, DEFAULT_MAX_ATTACHMENTS, MAIN_NAMESPACE};
use crate::Message;

use super::super::TokenUser;
use super::effect::{Ack, Effect, SessionError};
use super::namespace::Namespace;
use super::{frames, ids, names};

/// Namespaces one connection may be connected to at once.
pub(crate) const MAX_NAMESPACES: usize = 16;

/// Rooms one connection may be in, over all its namespaces (its own rooms
/// not counted).
pub(crate) const MAX_ROOMS: usize = 64;

/// The largest `auth` object kept per namespace, in bytes of JSON.
pub(crate) const MAX_AUTH_BYTES: usize = 4096;

/// A Socket.IO connection's state.
#[derive(Debug)]
pub struct SioSession {
    version: Version,
    /// The Engine.IO session id, told in the open packet.
    engine_sid: Box<str>,
    decoder: Decoder,
    namespaces: Vec<Namespace>,
    /// Who its token says it is (with `--auth-*`).
    user: Option<TokenUser>,
}

impl SioSession {
    /// A session of `version`, logged in as `user` if a token was needed.
    pub(crate) fn new(version: Version, user: Option<TokenUser>) -> SioSession {
        SioSession {
            version,
            engine_sid: ids::fresh_id().into_boxed_str(),
            decoder: Decoder::new(version, DEFAULT_MAX_ATTACHMENTS),
            namespaces: Vec::new(),
            user,
        }
    }

    /// The Engine.IO session id.
    pub(crate) fn engine_sid(&self) -> &str {
        &self.engine_sid
    }

    /// Every core channel the session's sockets are members of: each
    /// namespace's audience, each socket's own room and joined rooms.
    pub(crate) fn channels(&self, room_app: &str) -> Vec<String> {
        self.namespaces.iter().flat_map(|namespace| namespace.channels(room_app)).collect()
    }

    /// Who its token says it is.
    pub(crate) fn user(&self) -> Option<&TokenUser> {
        self.user.as_ref()
    }

    /// The namespace `nsp`, if connected.
    pub(crate) fn namespace(&self, nsp: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|ns| ns.name() == nsp)
    }

    /// Handles one WebSocket message, appending what it asks for to `out`.
    /// An error ends the session (after the effects already appended).
    pub(crate) fn handle_frame(
        &mut self,
        frame: &Message,
        room_app: &str,
        out: &mut Vec<Effect>,
    ) -> Result<(), SessionError> {
        match engine::decode_frame(frame, self.version)? {
            engine::Packet::Message(Data::Text(text)) => self.handle_text(&text, room_app, out),
            engine::Packet::Message(Data::Binary(_)) => Err(SessionError::Binary),
            // Being a complete frame, the answer to a ping already counted
            // as activity against the idle timeout: nothing more to do.
            engine::Packet::Pong(_) | engine::Packet::Noop | engine::Packet::Upgrade => Ok(()),
            engine::Packet::Ping(data) => {
                out.extend(frames::engine_text(&engine::Packet::Pong(data), self.version).map(Effect::Send));
                Ok(())
            }
            engine::Packet::Close => Err(SessionError::Closed),
            engine::Packet::Open(_) => Err(SessionError::ServerPacket("an open packet")),
        }
    }

    fn handle_text(&mut self, text: &str, room_app: &str, out: &mut Vec<Effect>) -> Result<(), SessionError> {
        // A header announcing attachments awaits binary messages, which
        // this version does not take.
        let Some(packet) = self.decoder.handle_text(text)? else { return Err(SessionError::Binary) };
        match packet {
            Packet::Connect { nsp, data } => {
                self.connect(nsp, data, room_app, out);
                Ok(())
            }
            Packet::Disconnect { nsp } => {
                self.disconnect(&nsp, room_app, out);
                Ok(())
            }
            Packet::Event { nsp, id, data, .. } => {
                let index = self.namespaces.iter().position(|ns| ns.name() == nsp);
                let index = index.ok_or(SessionError::NotConnected("EVENT"))?;
                self.event(index, id, data, room_app, out)
            }
            // The server asks for no acknowledgements: nothing to match.
            Packet::Ack { .. } => Ok(()),
            Packet::ConnectError { .. } => Err(SessionError::ServerPacket("CONNECT_ERROR")),
        }
    }

    fn connect(&mut self, nsp: String, auth: Option<Value>, room_app: &str, out: &mut Vec<Effect>) {
        let refuse = |why: &str| Effect::Send(frames::message(&Packet::connect_error(&nsp, why, Version::Eio4)));
        if !names::is_namespace(&nsp) {
            // The reference server's words for a namespace it does not serve.
            return out.push(refuse("Invalid namespace"));
        }
        if let Some(ns) = self.namespace(&nsp) {
            // Connected already: the same socket, told again.
            return out.push(Effect::Send(frames::message(&Packet::connected(&nsp, ns.sid(), self.version))));
        }
        if self.namespaces.len() >= MAX_NAMESPACES {
            return out.push(refuse("too many namespaces on one connection"));
        }
        let auth = match auth.as_ref().map(serde_json::value::to_raw_value) {
            None => None,
            Some(Ok(raw)) if raw.get().len() <= MAX_AUTH_BYTES => Some(raw),
            Some(_) => return out.push(refuse("the auth payload is over 4096 bytes")),
        };
        let namespace = Namespace::new(nsp, ids::fresh_id(), auth);
        out.push(Effect::Send(frames::message(&Packet::connected(namespace.name(), namespace.sid(), self.version))));
        // After the answer: nothing published to these reaches the client
        // before it knows it is connected.
        out.extend(namespace.channels(room_app).into_iter().map(Effect::Join));
        // Most sessions use one namespace: no room for four.
        self.namespaces.reserve_exact(1);
        self.namespaces.push(namespace);
    }

    fn disconnect(&mut self, nsp: &str, room_app: &str, out: &mut Vec<Effect>) {
        if let Some(index) = self.namespaces.iter().position(|ns| ns.name() == nsp) {
            let namespace = self.namespaces.remove(index);
            out.extend(namespace.channels(room_app).into_iter().map(Effect::Leave));
        }
    }

    fn event(
        &mut self,
        index: usize,
        id: Option<u64>,
        data: Vec<Value>,
        room_app: &str,
        out: &mut Vec<Effect>,
    ) -> Result<(), SessionError> {
        let nsp = self.namespaces[index].name().to_owned();
        let ack = id.map(|id| Ack::new(&nsp, id));
        let event = Event::from_data(&data)?;
        let room = event.args.first().and_then(Value::as_str);
        match (event.name.as_ref(), room) {
            ("join", Some(room)) => self.join(index, room, ack, room_app, out),
            ("leave", Some(room)) => {
                if self.namespaces[index].leave(room) {
                    out.extend(names::room(room_app, &nsp, room).ok().map(Effect::Leave));
                }
                out.extend(ack.map(|ack| Effect::Send(ack.accepted())));
            }
            ("to", Some(room)) => {
                let data = event.args.get(1).unwrap_or(&Value::Null).to_string();
                match names::room(room_app, &nsp, room) {
                    Ok(_) if !self.namespaces[index].is_in(room) => refuse(&nsp, ack, "join the room first", out),
                    Err(e) => refuse(&nsp, ack, &e.to_string(), out),
                    Ok(key) if nsp == MAIN_NAMESPACE => {
                        out.push(Effect::RoomMessage { room: room.to_owned(), key, data, ack })
                    }
                    Ok(key) => {
                        out.push(Effect::Relay { key, text: frames::event_with_json(&nsp, "message", &data), ack })
                    }
                }
            }
            ("join" | "leave" | "to", None) => refuse(&nsp, ack, "the first argument must be a room name", out),
            _ => {
                let text =
                    frames::message(&Packet::Event { nsp: nsp.clone(), id: None, data, attachments: Vec::new() });
                out.push(Effect::Relay { key: names::namespace_audience(&nsp), text, ack });
            }
        }
        Ok(())
    }

    fn join(&mut self, index: usize, room: &str, ack: Option<Ack>, room_app: &str, out: &mut Vec<Effect>) {
        let nsp = self.namespaces[index].name().to_owned();
        let key = match names::room(room_app, &nsp, room) {
            Ok(key) => key,
            Err(e) => return refuse(&nsp, ack, &e.to_string(), out),
        };
        let joined: usize = self.namespaces.iter().map(|ns| ns.rooms().len()).sum();
        if !self.namespaces[index].is_in(room) {
            if joined >= MAX_ROOMS {
                return refuse(&nsp, ack, "at most 64 rooms per connection", out);
            }
            self.namespaces[index].join(room);
            out.push(Effect::Join(key));
        }
        out.extend(ack.map(|ack| Effect::Send(ack.accepted())));
    }
}

/// Tells the client a command was refused: in the ACK when it asked for
/// one, else as an `error` event of the namespace.
fn refuse(nsp: &str, ack: Option<Ack>, why: &str, out: &mut Vec<Effect>) {
    out.push(Effect::Send(match ack {
        Some(ack) => ack.refused(why),
        None => frames::message(&Packet::event(nsp, "error", [json!({ "message": why })])),
    }));
}

/// The handshake `auth` of namespace `nsp` of a session, if it sent one.
#[cfg(test)]
pub(crate) fn auth_of<'a>(session: &'a SioSession, nsp: &str) -> Option<&'a serde_json::value::RawValue> {
    session.namespace(nsp).and_then(Namespace::auth)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
