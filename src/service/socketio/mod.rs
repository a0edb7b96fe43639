//! Socket.IO clients on `/socket.io/`, over the same channel core as raw
//! rooms and Pusher channels: Engine.IO v4 sessions over a WebSocket or
//! HTTP long-polling (and the upgrade from one to the other), and the
//! Socket.IO v5 default app on top (see `session` for what each event
//! does).
//!
//! - `handshake`: which requests open a session, Engine.IO's JSON refusals,
//!   the open packet and heartbeat timings.
//! - `session`, `namespace`: one connection's state; packets in, effects
//!   out (`effect`), no server.
//! - `names`: which core channels namespaces and rooms are; a main
//!   namespace room is the rooms' app channel of its name.
//! - `polling`: sessions over HTTP long-polling, their table, and their
//!   upgrade to a WebSocket.
//! - `ids`: session and socket ids. `frames`: the Engine.IO text the
//!   service sends. `heartbeat`: one shared ping for every session.
//!
//! What crosses to other clients is published once, framed once per
//! dialect: Socket.IO members of a channel get [`super::audience::SOCKETIO`]
//! frames (`42["event",data]`), shared by every recipient.
//!
//! Not served yet: Engine.IO v3 (Socket.IO 2.x clients), binary
//! attachments.

mod effect;
mod frames;
mod handshake;
mod heartbeat;
mod ids;
mod names;
mod namespace;
mod polling;
mod session;

pub use polling::PolledSocket;
pub use session::SioSession;

#[cfg(test)]
pub(crate) use ids::fresh_id;

use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::handler::{Accept, Rejection};
use crate::http::Request;
use crate::message::Message;
use crate::metrics::MetricsOut;
use crate::pusher::EventData;
use crate::token::TOKEN_PROTOCOL;

use super::audience::{self, SOCKETIO};
use super::sequencer::Greeting;
use super::stored_event::StoredEvent;
use super::{ConnState, Service};
use effect::{Ack, Effect};
use handshake::{SocketTarget, Timing};
use heartbeat::Heartbeat;

/// The Socket.IO part of the service: what it keeps beyond each session.
#[derive(Default)]
pub(crate) struct SocketIo {
    heartbeat: Heartbeat,
    polling: polling::Polling,
}

/// True for core channel names that are a socket's own room: a channel of
/// the service's, not the app's (left out of channel lists, counts and
/// occupancy webhooks).
pub(crate) fn is_socket_room(channel: &str) -> bool {
    ids::is_socket_id(channel)
}

/// The Engine.IO message carrying event `event` of the main namespace with
/// `data` as its argument: as JSON when it is JSON text, else as a string.
pub(crate) fn main_namespace_event(event: &str, data: &str) -> String {
    frames::event_with_json(crate::socketio::packet::MAIN_NAMESPACE, event, &frames::json_or_string(data))
}

/// True when an upgrade request is for Socket.IO's endpoint.
pub(crate) fn is_endpoint(request: &Request) -> bool {
    handshake::is_endpoint(request.path())
}

impl Service {
    /// Accepts an upgrade to Socket.IO's endpoint as an Engine.IO v4
    /// session, or as the upgrade of a polling session (`sid`), or refuses
    /// it with Engine.IO's 400. With `--auth-*` a new session's client
    /// presents a token as raw clients do (`?token=`, the header or the
    /// subprotocol) that allows every room, since it may join any; an
    /// upgrade carries a session that logged in already.
    pub(super) fn socketio_upgrade(&self, request: &Request) -> Result<Accept<ConnState>, Rejection> {
        let target = handshake::check_upgrade(request).map_err(handshake::Refusal::rejection)?;
        let version = match target {
            SocketTarget::New(version) => version,
            SocketTarget::Upgrade(sid) => {
                let socket = self.polled_socket(&sid).ok_or(handshake::Refusal::SessionUnknown.rejection())?;
                return Ok(Accept::new(ConnState::SocketIoUpgrade(Box::new(socket))).without_broadcasts());
            }
        };
        let login = self.authenticate(request, None)?;
        let as_subprotocol = login.as_ref().is_some_and(|(_, subprotocol)| *subprotocol);
        let session = SioSession::new(version, login.map(|(user, _)| user));
        // Out of whole-server broadcasts, which carry the WebSocket pings
        // too: see `heartbeat` for why a session must not answer those.
        let accept = Accept::new(ConnState::SocketIo(Box::new(session))).without_broadcasts();
        Ok(if as_subprotocol { accept.with_protocol(Some(TOKEN_PROTOCOL)) } else { accept })
    }

    /// Opens the session: the open packet first, then its heartbeat.
    pub(super) fn socketio_opened(&self, server: &ServerHandle, conn: ConnId, session: &mut SioSession) {
        let config = server.config();
        let open = handshake::open_packet(session.engine_sid(), Timing::of(config), config.max_message_size, &[]);
        server.push(conn, &Message::text(open));
        server.subscribe_as(conn, names::heartbeat(), SOCKETIO);
        self.socketio.heartbeat.opened(server);
        if let Some(user) = session.user() {
            self.user_opened(server, conn, user, SOCKETIO);
        }
    }

    /// One message of the session: its effects carried out, and the
    /// connection closed if it ended the session.
    pub(super) fn socketio_message(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        session: &mut SioSession,
        message: &Message,
    ) {
        let mut effects = Vec::new();
        let result = session.handle_frame(message, &self.room_app, &mut effects);
        let reply = |text: &str| {
            server.push(conn, &Message::text(text));
        };
        for effect in effects {
            self.socketio_effect(server, conn, effect, &reply);
        }
        if let Err(ending) = result {
            log::debug!("connection {conn}: Socket.IO session ends: {ending}");
            server.disconnect(conn, ending.close_code(), ending.reason());
        }
    }

    /// The session closed: its channels are left by the core; those with
    /// history also count their members in the sequencer.
    pub(super) fn socketio_closed(&self, server: &ServerHandle, conn: ConnId, session: &SioSession) {
        self.socketio.heartbeat.closed();
        for key in session.channels(&self.room_app) {
            if let Some(sequencer) = self.sequencer_for(&key) {
                sequencer.closed(server, conn, &key);
            }
        }
    }

    /// Adds the Socket.IO figures to `/metrics`.
    pub(super) fn socketio_metrics(&self, out: &mut MetricsOut) {
        let sessions = self.socketio.heartbeat.sessions() as u64;
        out.gauge("fanout_socketio_sessions", "Open Socket.IO (Engine.IO v4) sessions", &[], sessions);
        let polling = self.socketio.polling.sessions() as u64;
        out.gauge("fanout_socketio_polling_sessions", "Socket.IO sessions opened over HTTP long-polling", &[], polling);
    }

    /// Carries out one effect for the session whose core id is `conn`;
    /// what it sends to its own client goes through `reply` (a push to its
    /// WebSocket, or its polling queue).
    fn socketio_effect(&self, server: &ServerHandle, conn: ConnId, effect: Effect, reply: &dyn Fn(&str)) {
        match effect {
            Effect::Send(text) => reply(&text),
            Effect::Join(key) => match self.sequencer_for(&key) {
                // A room with history is joined in order with its events
                // (in a cluster, once this node hears the room's stream).
                Some(sequencer) => {
                    let (here, room) = (server.clone(), key.clone());
                    let then = Box::new(move |joined: Result<_, super::sequencer::Busy>| {
                        if joined.is_err() {
                            log::debug!("connection {conn}: Socket.IO room {room} not joined: the server is busy");
                            here.disconnect(conn, crate::ws::close::codes::TRY_AGAIN_LATER, "server busy");
                        }
                    });
                    sequencer.join_then(server, conn, &key, Greeting::Quiet { dialect: SOCKETIO }, None, then);
                }
                None => {
                    server.subscribe_as(conn, &key, SOCKETIO);
                }
            },
            Effect::Leave(key) => {
                if self.sequencer_for(&key).is_none_or(|sequencer| sequencer.leave(server, conn, &key).is_err()) {
                    server.unsubscribe(conn, &key);
                }
            }
            Effect::Relay { key, text, ack } => {
                let publication =
                    crate::channels::Publication::new().with(SOCKETIO, &Prepared::new(&Message::text(text)));
                // Never waits on a worker: a full inbox refuses the event.
                let taken = server.try_publish(&key, &publication, Some(conn), None).is_ok();
                answer(reply, ack, taken);
            }
            Effect::RoomMessage { room, key, data, ack } => {
                let taken = self.room_message(server, conn, &room, &key, &data);
                answer(reply, ack, taken);
            }
        }
    }

    /// A `message` event to a main namespace room: through the sequencer
    /// when the room keeps history (as a raw room client's message), else
    /// published at once; in every member's form either way.
    fn room_message(&self, server: &ServerHandle, conn: ConnId, room: &str, key: &str, data: &str) -> bool {
        let data = EventData::Raw(data);
        match self.sequencer_for(key) {
            Some(sequencer) => {
                let event = StoredEvent::new(audience::ROOM_MESSAGE_EVENT, &data, None);
                !sequencer.congested() && sequencer.publish(server, key, event, Some(conn), None).is_ok()
            }
            None => {
                let publication = audience::event(room, audience::ROOM_MESSAGE_EVENT, &data, None);
                server.try_publish(key, &publication, Some(conn), None).is_ok()
            }
        }
    }
}

/// Answers the ack a client asked for: taken, or refused for a full inbox.
fn answer(reply: &dyn Fn(&str), ack: Option<Ack>, taken: bool) {
    if let Some(ack) = ack {
        let text = if taken { ack.accepted() } else { ack.refused("the server is busy: try again") };
        reply(&text);
    }
}
