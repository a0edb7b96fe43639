//! Reading sockets: bytes in, requests or frames decoded, hooks called.

use std::io;

use super::connection::{Connection, Flag, Phase};
use super::lifecycle::Ending;
use super::message_rate::MessageRate;
use super::transport::Transport;
use super::Worker;
use crate::guard;
use crate::handler::Handler;
use crate::http::Response;
use crate::stats::WorkerCounters;
use crate::ws::close::codes;
use crate::ws::{encode, Event};

/// Reads of a full scratch buffer per socket per turn. Past it the socket
/// is read again next turn, so one fast sender cannot starve the rest.
const READS_PER_TURN: usize = 4;

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Reads `key` until it would block, it closes, or the budget runs out.
    ///
    /// `peer_closed`: the readiness event also reported the peer's FIN or an
    /// error, which then waits behind the data: a short read does not mean
    /// the socket is drained, and no new edge will come for the EOF.
    pub(super) fn read_socket(&mut self, key: usize, peer_closed: bool) {
        if self.conns.get(key).is_some_and(Connection::input_held) {
            // Read once the responses before it drain (`release_held_http`),
            // or once the deferred response came (`respond_deferred`).
            return;
        }
        if self.conns.get(key).is_some_and(|c| c.socket.is_handshaking()) {
            if self.handshakes_this_turn >= super::HANDSHAKES_PER_TURN {
                return self.defer_read(key);
            }
            self.handshakes_this_turn += 1;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(key) else { break };
            match conn.socket.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(key);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(key, &scratch[..n]);
                    if self.conns.get(key).is_some_and(Connection::input_held) {
                        self.scratch = scratch;
                        return;
                    }
                    // A short read drained the socket: the next arrival raises a new edge.
                    if n < scratch.len() && !peer_closed && T::SHORT_READ_DRAINS {
                        self.scratch = scratch;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.scratch = scratch;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.on_transport_error(key, &e);
                    break;
                }
            }
        }
        self.scratch = scratch;
        self.defer_read(key);
    }

    /// Remembers to read `key` next turn (no new edge will come for it).
    pub(super) fn defer_read(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.flags.is(Flag::ReadPending) {
                conn.flags.set(Flag::ReadPending, true);
                self.read_again.push(key);
            }
        }
    }

    /// Reads the sockets whose budget ran out last turn; with `publishers_paused`
    /// the clients that publish wait in the paused list instead.
    pub(super) fn read_deferred(&mut self, publishers_paused: bool) {
        let keys = std::mem::take(&mut self.read_again);
        for &key in &keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.flags.set(Flag::ReadPending, false);
                if publishers_paused && self.is_publisher(key) {
                    self.pause_read(key);
                } else {
                    // What raised the original edge is not known here: read to the end.
                    self.read_socket(key, true);
                }
            }
        }
        let mut keys = keys;
        keys.clear();
        if self.read_again.is_empty() {
            self.read_again = keys;
        }
    }

    fn on_bytes(&mut self, key: usize, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        match &mut conn.phase {
            Phase::Http { reader } => {
                reader.feed(data);
                self.serve_requests(key);
            }
            Phase::Open { .. } => self.on_frames(key, data),
            Phase::Closing { .. } => {}
        }
        self.sync_held_input(key);
        self.check_input_ceiling(key);
    }

    /// Decodes frames of an open connection and dispatches their events.
    pub(super) fn on_frames(&mut self, key: usize, data: &[u8]) {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(key) else { return };
        let Phase::Open { decoder } = &mut conn.phase else { return };
        let id = conn.id;
        let mut events = std::mem::take(&mut self.events);
        let result = if decoder.deflate() {
            decoder.feed_inflating(data, &mut events, &mut self.inflater)
        } else {
            decoder.feed(data, &mut events)
        };
        // Only a completed frame is activity: a peer trickling one byte a
        // minute into a large frame does not keep itself alive.
        if decoder.take_progress() {
            conn.last_seen = now;
        }
        for event in events.drain(..) {
            if !self.conns.get(key).is_some_and(|c| c.is_open() && c.id == id) {
                break;
            }
            match event {
                Event::Message(message) => {
                    let counters = self.counters();
                    WorkerCounters::bump(&counters.messages_in);
                    WorkerCounters::add(&counters.bytes_in, message.len() as u64);
                    if self.within_message_rate(key) {
                        self.deliver(key, message);
                    }
                }
                Event::Ping(payload) => {
                    if self.within_message_rate(key) {
                        self.push_frame(key, encode::pong_frame(&payload));
                    }
                }
                Event::Pong(_) => {}
                Event::Close(frame) => self.begin_close(key, Ending::client(frame)),
            }
        }
        self.events = events;
        if let Err(violation) = result {
            if self.conns.get(key).is_some_and(|c| c.is_open() && c.id == id) {
                log::debug!("worker {}: connection {id}: {violation}", self.index);
                WorkerCounters::bump(&self.counters().protocol_errors);
                self.begin_close(key, Ending::server(violation.code, violation.reason));
            }
        }
    }

    /// Hands a message to the application; a panic closes the connection.
    fn deliver(&mut self, key: usize, message: crate::Message) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.flags.set(Flag::Publisher, true);
        let id = conn.id;
        let Some(state) = self.states.get_mut(key).and_then(Option::as_mut) else { return };
        let (handler, handle) = (&self.handler, &self.handle);
        if let Err(panic) = guard::call(|| handler.on_message(handle, id, state, message)) {
            self.hook_panicked("on_message", &format!("connection {id}"), &panic, "closing it with 1011");
            self.begin_close(key, Ending::panicked());
        }
    }

    /// Closes `key` when the worker holds more bytes of incomplete input
    /// than `max_worker_partial_bytes` and this connection holds some.
    fn check_input_ceiling(&mut self, key: usize) {
        if self.partial_bytes <= self.handle.config().max_worker_partial_bytes {
            return;
        }
        let Some(conn) = self.conns.get(key) else { return };
        if conn.held_input == 0 {
            return;
        }
        WorkerCounters::bump(&self.counters().input_overflows);
        log::warn!(
            "worker {}: {} bytes held for incomplete input passes the worker's ceiling; closing connection {}",
            self.index,
            self.partial_bytes,
            conn.id
        );
        match conn.phase {
            Phase::Open { .. } => {
                self.begin_close(key, Ending::server(codes::TRY_AGAIN_LATER, "server input buffers are full"))
            }
            _ => {
                let response = Response::text(503, "server input buffers are full\n").header("Retry-After", "1");
                self.refuse(key, response, false);
            }
        }
    }

    /// Gives a connection that just opened a full `--max-message-rate` bucket.
    pub(super) fn start_message_rate(&mut self, key: usize, now: u64) {
        if self.handle.config().max_message_rate.is_some() {
            if self.rates.len() <= key {
                self.rates.resize(key + 1, MessageRate::default());
            }
            self.rates[key] = MessageRate::new(now);
        }
    }

    /// Counts one message or ping against `--max-message-rate`; past the
    /// limit, starts closing the connection with 1008 and returns false.
    fn within_message_rate(&mut self, key: usize) -> bool {
        let Some(per_second) = self.handle.config().max_message_rate else { return true };
        // The read that delivered this message stamped the time it arrived.
        let Some(now) = self.conns.get(key).map(|c| c.last_seen) else { return true };
        if self.rates.get_mut(key).is_none_or(|rate| rate.admit(now, per_second)) {
            return true;
        }
        WorkerCounters::bump(&self.counters().rate_limited);
        self.begin_close(key, Ending::server(codes::POLICY_VIOLATION, "message rate limit exceeded"));
        false
    }

    fn on_eof(&mut self, key: usize) {
        self.drop_connection(key, "connection closed by peer without a close frame");
    }

    pub(super) fn on_transport_error(&mut self, key: usize, error: &io::Error) {
        let id = self.conns.get(key).map(|c| c.id);
        log::debug!("worker {}: connection {:?}: {error}", self.index, id);
        self.drop_connection(key, "transport error");
    }
}
