//! Engine.IO v4 over HTTP long-polling, and its upgrade to a WebSocket.
//!
//! - `table`: the sessions, found by sid from any worker; bounded; swept.
//! - `session`: one session's queue, held poll and carrier.
//!
//! A session opens with `GET ?transport=polling` and lives in the table.
//! In the channel core it is a sink attached to one worker (the owner,
//! chosen in turn): its namespaces, rooms and the heartbeat channel are
//! that sink's memberships, so a publish reaches it as any member and its
//! frames are queued as shared slices. A `GET` with its sid is answered at
//! once with what is queued, or held (a deferred response) until something
//! comes; a `POST` carries the client's packets to the same Socket.IO
//! logic as a WebSocket's. The upgrade (`2probe`, `3probe`, a noop to the
//! held poll, `5`) turns the WebSocket into the carrier: the sink stays the
//! member and forwards each frame to the socket (see `session`).

mod session;
mod table;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::http::{Request, Response};
use crate::socketio::engine::{self, EngineError, Version};
use crate::Message;

use super::super::audience::SOCKETIO;
use super::super::Service;
use super::handshake::{self, PollTarget, Refusal, Timing};
use super::{names, SioSession};
use session::{payload_response, PollError, PollSession};
use table::{SessionTable, SweepTimes};

/// A WebSocket upgrading (or upgraded from) a polling session: the
/// connection's state while it carries that session.
#[derive(Debug)]
pub struct PolledSocket {
    session: Arc<PollSession>,
}

/// The polling part of the Socket.IO service.
#[derive(Default)]
pub(crate) struct Polling {
    table: OnceLock<Arc<SessionTable>>,
}

impl Polling {
    /// Open polling sessions now.
    pub(crate) fn sessions(&self) -> usize {
        self.table.get().map_or(0, |table| table.len())
    }
}

/// The largest share of the handshake timeout a poll is held: the HTTP
/// layer answers 504 to a deferred response older than that timeout.
fn hold_time(server: &ServerHandle) -> std::time::Duration {
    let config = server.config();
    let timing = Timing::of(config);
    timing.ping_interval.min(config.handshake_timeout * 3 / 4)
}

impl Service {
    fn poll_table(&self) -> &Arc<SessionTable> {
        self.socketio
            .polling
            .table
            .get_or_init(|| Arc::new(SessionTable::new(&self.room_app, self.socketio.heartbeat.clone())))
    }

    /// Answers a plain HTTP request to Socket.IO's endpoint: a polling
    /// session's open, poll or post, or Engine.IO's refusal.
    pub(in super::super) fn socketio_http(&self, server: &ServerHandle, request: &Request) -> Response {
        self.forget_ended(server);
        match handshake::check_plain(request) {
            Err(refusal) => refusal.response(),
            Ok(PollTarget::Open) => self.poll_open(server, request),
            Ok(PollTarget::Poll(sid)) => match self.poll_table().get(&sid) {
                Some(session) => self.poll(server, &session),
                None => Refusal::SessionUnknown.response(),
            },
            Ok(PollTarget::Post(sid)) => match self.poll_table().get(&sid) {
                Some(session) => self.poll_post(server, &session, request.body()),
                None => Refusal::SessionUnknown.response(),
            },
        }
    }

    fn poll_open(&self, server: &ServerHandle, request: &Request) -> Response {
        let login = match self.authenticate(request, None) {
            Ok(login) => login,
            Err(rejection) => return rejection.into_response(),
        };
        let user = login.map(|(user, _)| user);
        let config = server.config();
        let session = Arc::new(PollSession::new(
            SioSession::new(Version::Eio4, user.clone()),
            server.clone(),
            config.max_backpressure,
        ));
        let table = self.poll_table();
        if table.insert(Arc::clone(&session), config.max_connections).is_err() {
            return busy();
        }
        self.socketio.heartbeat.opened(server);
        let Some(conn) = server.attach_sink(session.clone()) else {
            table.end(&session);
            return busy();
        };
        session.set_conn(conn);
        server.subscribe_as(conn, names::heartbeat(), SOCKETIO);
        if let Some(user) = &user {
            self.user_opened(server, conn, user, SOCKETIO);
        }
        let timing = Timing::of(config);
        table.sweep_in_background(
            server,
            SweepTimes { hold: hold_time(server), silence: timing.ping_interval + timing.ping_timeout },
        );
        let open = handshake::open_packet(session.sid(), timing, config.max_message_size, &["websocket"]);
        payload_response(Bytes::from(open))
    }

    fn poll(&self, server: &ServerHandle, session: &Arc<PollSession>) -> Response {
        let (placeholder, responder) = server.defer_response();
        match session.poll(responder) {
            Ok(Some((responder, response))) => responder.send(response),
            Ok(None) => {}
            Err((PollError::Overlap, responder)) => {
                // As the reference server: the overlap ends the session.
                log::debug!("Socket.IO polling session {}: {}", session.sid(), PollError::Overlap);
                self.poll_end(server, session);
                responder.send(Refusal::BadRequest.response());
            }
            Err((PollError::NotPolling, responder)) => responder.send(Refusal::BadRequest.response()),
        }
        placeholder
    }

    fn poll_post(&self, server: &ServerHandle, session: &Arc<PollSession>, body: &Bytes) -> Response {
        let packets = match engine::decode_payload(body, Version::Eio4, server.config().max_message_size) {
            Ok(packets) => packets,
            Err(e) => {
                log::debug!("Socket.IO polling session {}: bad payload: {e}", session.sid());
                self.poll_end(server, session);
                return match e {
                    EngineError::TooLarge { .. } => Response::text(413, "Payload Too Large"),
                    _ => Refusal::BadRequest.response(),
                };
            }
        };
        let mut effects = Vec::new();
        let handled = session.with_sio(|sio| {
            packets.iter().try_for_each(|packet| {
                let frame = engine::encode_frame(packet, Version::Eio4);
                sio.handle_frame(&frame, &self.room_app, &mut effects)
            })
        });
        let Some(result) = handled else { return Refusal::SessionUnknown.response() };
        self.polled_effects(server, session, effects);
        match result {
            Ok(()) => Response::text(200, "ok"),
            Err(ending) => {
                log::debug!("Socket.IO polling session {} ends: {ending}", session.sid());
                self.poll_end(server, session);
                match ending {
                    super::effect::SessionError::Closed => Response::text(200, "ok"),
                    _ => Refusal::BadRequest.response(),
                }
            }
        }
    }

    /// Carries out a polling session's effects, as the sink's id in the
    /// channel core; what it sends goes to its queue (or its WebSocket).
    fn polled_effects(&self, server: &ServerHandle, session: &Arc<PollSession>, effects: Vec<super::effect::Effect>) {
        let Some(conn) = session.conn() else { return };
        let overflowed = std::cell::Cell::new(false);
        let reply = |text: &str| {
            if !session.send_text(text) {
                overflowed.set(true);
            }
        };
        for effect in effects {
            self.socketio_effect(server, conn, effect, &reply);
        }
        if overflowed.get() {
            self.poll_end(server, session);
        }
    }

    /// Ends a polling session: its sink leaves every channel; rooms with
    /// history forget it in the sequencer.
    fn poll_end(&self, server: &ServerHandle, session: &PollSession) {
        if let (Some(channels), Some(conn)) = (self.poll_table().end(session), session.conn()) {
            self.forget_in_sequencer(server, conn, &channels);
        }
    }

    fn forget_in_sequencer(&self, server: &ServerHandle, conn: ConnId, channels: &[String]) {
        for key in channels {
            if let Some(sequencer) = self.sequencer_for(key) {
                sequencer.closed(server, conn, key);
            }
        }
    }

    /// Sessions the sweep ended are forgotten in the sequencer here, on the
    /// next Socket.IO request (the sweep thread has no service).
    fn forget_ended(&self, server: &ServerHandle) {
        let Some(table) = self.socketio.polling.table.get() else { return };
        for (conn, channels) in table.take_ended() {
            self.forget_in_sequencer(server, conn, &channels);
        }
    }

    /// The WebSocket of an upgrade for polling session `sid`, if it exists.
    pub(in super::super) fn polled_socket(&self, sid: &str) -> Option<PolledSocket> {
        let session = self.socketio.polling.table.get()?.get(sid)?;
        Some(PolledSocket { session })
    }

    /// A message on an upgrading or upgraded WebSocket: the probe, the
    /// upgrade, then the session's packets.
    pub(in super::super) fn polled_message(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        socket: &PolledSocket,
        message: &Message,
    ) {
        let session = &socket.session;
        match message.as_text() {
            Some("2probe") => {
                server.push(conn, &Message::text("3probe"));
                session.probing(conn);
                return;
            }
            Some("5") => {
                if !session.upgraded(conn) {
                    server.disconnect(conn, crate::ws::close::codes::POLICY_VIOLATION, "upgrade without a probe");
                }
                return;
            }
            _ => {}
        }
        let mut effects = Vec::new();
        let Some(result) = session.with_sio(|sio| sio.handle_frame(message, &self.room_app, &mut effects)) else {
            server.disconnect(conn, crate::ws::close::codes::NORMAL, "session closed");
            return;
        };
        self.polled_effects(server, session, effects);
        if let Err(ending) = result {
            log::debug!("connection {conn}: Socket.IO session ends: {ending}");
            self.poll_end(server, session);
            server.disconnect(conn, ending.close_code(), ending.reason());
        }
    }

    /// An upgrading or upgraded WebSocket closed: the session ends with it
    /// once it carried the session; a mere probe leaves it polling.
    pub(in super::super) fn polled_closed(&self, server: &ServerHandle, conn: ConnId, socket: &PolledSocket) {
        if !socket.session.socket_closed(conn) {
            self.poll_end(server, &socket.session);
        }
    }
}

/// The answer when no session can be added: the table or the connection
/// budget is full.
fn busy() -> Response {
    Response::text(503, "too many sessions: try again later").header("Retry-After", "1")
}
