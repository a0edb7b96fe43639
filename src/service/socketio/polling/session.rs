//! One Engine.IO session served over HTTP long-polling: its Socket.IO state,
//! the queue of packets waiting for the next poll, the poll held open, and
//! which transport carries it.
//!
//! The session is a channel member through a sink ([`crate::channels::Sink`])
//! on the worker that owns it: publications are handed over as the shared
//! frames, and only their payload slice is queued. After the upgrade the
//! memberships stay with the sink, and the sink forwards each frame to the
//! WebSocket as is: one worker delivers every publication in order, so
//! nothing is lost or duplicated at the seam (see [`PollSession::upgraded`]).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::channels::{frame_payload, Sink};
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::http::Response;
use crate::socketio::engine::SEPARATOR_BYTE;
use crate::{Message, Responder};

use super::super::SioSession;

/// The Engine.IO noop packet: answers a poll that must end with nothing.
pub(crate) const NOOP: &str = "6";
/// The Engine.IO close packet: the last answer of a session's poll.
pub(crate) const CLOSE: &str = "1";

/// Which transport carries the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// HTTP polls only.
    Polling,
    /// A WebSocket answered `2probe` on this connection; polls go on.
    Probing(ConnId),
    /// The client sent `5` on it: the queue is still to move there, by the
    /// owner worker (see [`PollSession::upgraded`]).
    Moving(ConnId),
    /// Every packet goes to this WebSocket.
    Upgraded(ConnId),
}

/// A poll held open.
struct Held {
    responder: Responder,
    since: Instant,
}

struct Inner {
    sio: SioSession,
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    held: Option<Held>,
    /// The last poll or post ended (or began) then.
    last_seen: Instant,
    carrier: Carrier,
    closed: bool,
    /// Its sink was dropped (its queue filled, or the server disconnected
    /// it): the sweep closes it.
    full: bool,
}

/// Why a poll was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PollError {
    /// A poll came while another was held: the session is closed.
    #[error("a second poll while one is held")]
    Overlap,
    /// The session moved to its WebSocket, or closed.
    #[error("the session is not polling")]
    NotPolling,
}

/// A polling session, shared by the table, its sink and its WebSocket.
pub(crate) struct PollSession {
    sid: Box<str>,
    server: ServerHandle,
    /// Its id in the channel core (the sink's), set once attached.
    conn: std::sync::OnceLock<ConnId>,
    /// Bytes of packets it may queue (`--max-backpressure`): past it the
    /// session is closed, as a slow socket is.
    max_queue: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PollSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollSession").field("sid", &self.sid).field("conn", &self.conn.get()).finish()
    }
}

impl PollSession {
    /// A session holding `sio`, queuing at most `max_queue` bytes.
    pub(crate) fn new(sio: SioSession, server: ServerHandle, max_queue: usize) -> PollSession {
        let sid = sio.engine_sid().into();
        let inner = Inner {
            sio,
            queue: VecDeque::new(),
            queued_bytes: 0,
            held: None,
            last_seen: Instant::now(),
            carrier: Carrier::Polling,
            closed: false,
            full: false,
        };
        PollSession { sid, server, conn: std::sync::OnceLock::new(), max_queue, inner: Mutex::new(inner) }
    }

    /// The Engine.IO session id.
    pub(crate) fn sid(&self) -> &str {
        &self.sid
    }

    /// Records its channel-core id (once).
    pub(crate) fn set_conn(&self, conn: ConnId) {
        let _ = self.conn.set(conn);
    }

    /// Its channel-core id.
    pub(crate) fn conn(&self) -> Option<ConnId> {
        self.conn.get().copied()
    }

    /// Runs `f` on the Socket.IO state, unless the session closed.
    pub(crate) fn with_sio<R>(&self, f: impl FnOnce(&mut SioSession) -> R) -> Option<R> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return None;
        }
        inner.last_seen = Instant::now();
        Some(f(&mut inner.sio))
    }

    /// Sends one Engine.IO packet text to the client: queued for the next
    /// poll, or pushed to the WebSocket once upgraded. False when the queue
    /// is full (the caller closes the session).
    pub(crate) fn send_text(&self, text: &str) -> bool {
        let mut inner = self.inner.lock();
        if let Carrier::Upgraded(ws) = inner.carrier {
            self.server.push(ws, &Message::text(text));
            return true;
        }
        let taken = self.enqueue(&mut inner, Bytes::copy_from_slice(text.as_bytes()));
        let answer = self.take_answer(&mut inner);
        drop(inner);
        answer_with(answer);
        taken
    }

    /// A poll: answered at once with what is queued, or held (`None`) until
    /// something comes or [`PollSession::expire_held`] ends it.
    pub(crate) fn poll(&self, responder: Responder) -> Result<Option<(Responder, Response)>, (PollError, Responder)> {
        let mut inner = self.inner.lock();
        if inner.closed || matches!(inner.carrier, Carrier::Upgraded(_) | Carrier::Moving(_)) {
            return Err((PollError::NotPolling, responder));
        }
        if inner.held.is_some() {
            return Err((PollError::Overlap, responder));
        }
        inner.last_seen = Instant::now();
        if !inner.queue.is_empty() {
            let body = drain(&mut inner);
            return Ok(Some((responder, payload_response(body))));
        }
        if matches!(inner.carrier, Carrier::Probing(_)) {
            // An upgrade is under way: the client must stop polling.
            return Ok(Some((responder, payload_response(Bytes::from_static(NOOP.as_bytes())))));
        }
        inner.held = Some(Held { responder, since: Instant::now() });
        Ok(None)
    }

    /// Ends a poll held for longer than `cap` with a noop (the HTTP layer
    /// would otherwise time it out); the client polls again at once.
    pub(crate) fn expire_held(&self, cap: std::time::Duration) {
        let mut inner = self.inner.lock();
        let due = inner.held.as_ref().is_some_and(|held| held.since.elapsed() >= cap);
        let held = if due { inner.held.take() } else { None };
        if held.is_some() {
            inner.last_seen = Instant::now();
        }
        drop(inner);
        if let Some(held) = held {
            held.responder.send(payload_response(Bytes::from_static(NOOP.as_bytes())));
        }
    }

    /// True when the session has neither a poll held nor a WebSocket and
    /// its last poll ended longer than `limit` ago.
    pub(crate) fn is_silent_for(&self, limit: std::time::Duration) -> bool {
        let inner = self.inner.lock();
        inner.full
            || !inner.closed
                && inner.held.is_none()
                && matches!(inner.carrier, Carrier::Polling | Carrier::Probing(_))
                && inner.last_seen.elapsed() >= limit
    }

    /// A WebSocket answered the probe: a held poll ends with a noop, so
    /// the client stops polling and sends `5` there.
    pub(crate) fn probing(&self, ws: ConnId) {
        let mut inner = self.inner.lock();
        if inner.closed || !matches!(inner.carrier, Carrier::Polling | Carrier::Probing(_)) {
            return;
        }
        inner.carrier = Carrier::Probing(ws);
        let held = inner.held.take();
        drop(inner);
        if let Some(held) = held {
            held.responder.send(payload_response(Bytes::from_static(NOOP.as_bytes())));
        }
    }

    /// The client sent `5` on WebSocket `ws`: from now on the session is
    /// carried there. The queue moves to the socket on the owner worker
    /// (asked with an empty push to the sink), so that what is queued and
    /// what the worker delivers after it reach the socket through one
    /// thread, in order. False when `ws` was not the probing socket.
    pub(crate) fn upgraded(&self, ws: ConnId) -> bool {
        let mut inner = self.inner.lock();
        if inner.closed || inner.carrier != Carrier::Probing(ws) {
            return false;
        }
        inner.carrier = Carrier::Moving(ws);
        let held = inner.held.take();
        drop(inner);
        if let Some(held) = held {
            held.responder.send(payload_response(Bytes::from_static(NOOP.as_bytes())));
        }
        if let Some(conn) = self.conn() {
            self.server.push_prepared(conn, &Prepared { frame: Bytes::new() });
        }
        true
    }

    /// WebSocket `ws` closed: false when it carried the session (which then
    /// ends); a probe that never upgraded leaves the session polling.
    pub(crate) fn socket_closed(&self, ws: ConnId) -> bool {
        let mut inner = self.inner.lock();
        match inner.carrier {
            Carrier::Probing(probe) if probe == ws => {
                inner.carrier = Carrier::Polling;
                inner.last_seen = Instant::now();
                true
            }
            Carrier::Moving(carrier) | Carrier::Upgraded(carrier) if carrier == ws => false,
            _ => true,
        }
    }

    /// Closes the session once: `Some` with its Socket.IO state's core
    /// channels the first time (for the service to forget), `None` after.
    /// A held poll is answered with the close packet.
    pub(crate) fn close(&self, room_app: &str) -> Option<Vec<String>> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return None;
        }
        inner.closed = true;
        inner.queue.clear();
        inner.queued_bytes = 0;
        let channels = inner.sio.channels(room_app);
        let held = inner.held.take();
        let carrier = inner.carrier;
        drop(inner);
        if let Some(held) = held {
            held.responder.send(payload_response(Bytes::from_static(CLOSE.as_bytes())));
        }
        if let Carrier::Probing(ws) | Carrier::Moving(ws) | Carrier::Upgraded(ws) = carrier {
            self.server.disconnect(ws, crate::ws::close::codes::NORMAL, "session closed");
        }
        if let Some(conn) = self.conn() {
            self.server.detach_sink(conn);
        }
        Some(channels)
    }

    fn enqueue(&self, inner: &mut Inner, text: Bytes) -> bool {
        if inner.closed {
            return true;
        }
        if inner.queued_bytes + text.len() > self.max_queue {
            return false;
        }
        inner.queued_bytes += text.len();
        inner.queue.push_back(text);
        true
    }

    /// The held poll and its answer, when something is queued for it.
    fn take_answer(&self, inner: &mut Inner) -> Option<(Responder, Response)> {
        if inner.queue.is_empty() || inner.held.is_none() {
            return None;
        }
        let held = inner.held.take()?;
        inner.last_seen = Instant::now();
        Some((held.responder, payload_response(drain(inner))))
    }
}

impl Sink for PollSession {
    fn deliver(&self, frame: &Bytes) -> bool {
        let mut inner = self.inner.lock();
        if let Carrier::Moving(ws) = inner.carrier {
            // On the owner worker, before any later frame: the queue first.
            let mut moved = BytesMut::new();
            for text in inner.queue.drain(..) {
                moved.extend_from_slice(
                    &Prepared::new(&Message::text(String::from_utf8_lossy(&text).into_owned())).frame,
                );
            }
            inner.queued_bytes = 0;
            inner.carrier = Carrier::Upgraded(ws);
            if !moved.is_empty() {
                self.server.push_prepared(ws, &Prepared { frame: moved.freeze() });
            }
        }
        if frame.is_empty() {
            return true;
        }
        if let Carrier::Upgraded(ws) = inner.carrier {
            self.server.push_prepared(ws, &Prepared { frame: frame.clone() });
            return true;
        }
        let Some(payload) = frame_payload(frame) else { return true };
        if !self.enqueue(&mut inner, payload) {
            return false;
        }
        let answer = self.take_answer(&mut inner);
        drop(inner);
        answer_with(answer);
        true
    }

    fn dropped(&self) {
        // The sink is detached already; the table's sweep closes the rest.
        let mut inner = self.inner.lock();
        inner.queue.clear();
        inner.queued_bytes = 0;
        inner.full = true;
        let held = inner.held.take();
        drop(inner);
        if let Some(held) = held {
            held.responder.send(payload_response(Bytes::from_static(CLOSE.as_bytes())));
        }
    }
}

fn answer_with(answer: Option<(Responder, Response)>) {
    if let Some((responder, response)) = answer {
        responder.send(response);
    }
}

/// Every queued packet, joined by the record separator (Engine.IO v4).
fn drain(inner: &mut Inner) -> Bytes {
    if inner.queue.len() == 1 {
        inner.queued_bytes = 0;
        return inner.queue.pop_front().unwrap_or_default();
    }
    let mut body = BytesMut::with_capacity(inner.queued_bytes + inner.queue.len());
    for (i, text) in inner.queue.drain(..).enumerate() {
        if i > 0 {
            body.extend_from_slice(&[SEPARATOR_BYTE]);
        }
        body.extend_from_slice(&text);
    }
    inner.queued_bytes = 0;
    body.freeze()
}

/// A poll's answer: the v4 payload as plain text.
pub(crate) fn payload_response(body: Bytes) -> Response {
    Response::new(200).header("Content-Type", "text/plain; charset=UTF-8").body(body)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
