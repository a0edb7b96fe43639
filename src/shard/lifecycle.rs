//! A connection's life: adoption, close, removal, and the server's drain.

use mio::{Interest, Token};

use super::connection::{Connection, Flag, Phase};
use super::transport::Transport;
use super::{flush_one, Worker};
use crate::conn_id::ConnId;
use crate::guard;
use crate::handler::{CloseInfo, CloseInitiator, Handler};
use crate::http::Response;
use crate::log_limit::{self, Verdict};
use crate::stats::WorkerCounters;
use crate::ws::close::codes;
use crate::ws::{encode, CloseFrame};

/// How a connection is being ended: what the hook hears and what goes on
/// the wire.
pub(super) struct Ending {
    /// Code and reason reported to `on_close`.
    info: CloseInfo,
    /// Code sent in the server's close frame.
    reply_code: u16,
    /// Throw away queued frames first (a slow consumer will not read them).
    discard_queue: bool,
}

impl Ending {
    /// The server ends the connection with `code`.
    pub(super) fn server(code: u16, reason: &str) -> Self {
        let info = CloseInfo { code, reason: reason.to_owned(), initiator: CloseInitiator::Server };
        Ending { info, reply_code: code, discard_queue: false }
    }

    /// The client sent a close frame: echo its code (1000 when it had none).
    pub(super) fn client(frame: Option<CloseFrame>) -> Self {
        let (code, reason, reply_code) = match frame {
            Some(f) => (f.code, f.reason, f.code),
            None => (codes::NO_STATUS, String::new(), codes::NORMAL),
        };
        let info = CloseInfo { code, reason, initiator: CloseInitiator::Client };
        Ending { info, reply_code, discard_queue: false }
    }

    /// The client's send queue is full under the `close` policy.
    pub(super) fn slow_consumer() -> Self {
        let mut ending = Ending::server(codes::POLICY_VIOLATION, "slow consumer: send queue full");
        ending.discard_queue = true;
        ending
    }

    /// A hook of the application panicked for this connection.
    pub(super) fn panicked() -> Self {
        Ending::server(codes::INTERNAL_ERROR, "internal error")
    }
}

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Takes ownership of a socket the acceptor handed over.
    pub(super) fn adopt(&mut self, tcp: mio::net::TcpStream) {
        if self.draining_until.is_some() {
            self.handle.shared.registry.socket_removed(self.index);
            return;
        }
        let mut socket = match T::adopt(tcp, &self.handle.shared) {
            Ok(socket) => socket,
            Err(e) => {
                log::error!("worker {}: cannot take a new socket: {e}", self.index);
                self.handle.shared.registry.socket_removed(self.index);
                return;
            }
        };
        let now = self.now();
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut socket, token, interest) {
            log::error!("worker {}: cannot register a new socket: {e}", self.index);
            self.handle.shared.registry.socket_removed(self.index);
            return;
        }
        entry.insert(Connection::accepted(socket, now));
        WorkerCounters::bump(&self.counters().accepted);
    }

    /// Sends a final HTTP answer, then closes once it is written.
    pub(super) fn refuse(&mut self, key: usize, response: Response, head_only: bool) {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.phase = Phase::Closing { fin_sent: false };
        conn.phase_since = now;
        conn.queue.push(response.encode(head_only, false));
        self.sync_held_input(key);
        self.mark_dirty(key);
    }

    /// Starts the close handshake of an open connection: the id leaves the
    /// registry now, `on_close` runs now, and the socket lingers until the
    /// close frame is written and the client hangs up (or `close_timeout`).
    pub(super) fn begin_close(&mut self, key: usize, ending: Ending) {
        if !self.conns.get(key).is_some_and(Connection::is_open) {
            return;
        }
        // What hooks pushed to this connection before closing it (an echo, a
        // welcome) goes out before the close frame, whatever the turn's
        // intake budget; broadcasts not yet taken in never reach a closing
        // connection.
        let id = self.conns.get(key).map(|c| c.id).unwrap_or(ConnId::from_u64(0));
        for frame in self.handle.shared.bus.take_local_pushes_to(id) {
            self.push_frame(key, frame);
        }
        let now = self.now();
        let limit = self.limit();
        let counters = &self.handle.shared.counters[self.index];
        let Some(conn) = self.conns.get_mut(key) else { return };
        if !conn.is_open() {
            return;
        }
        let id = conn.id;
        if ending.discard_queue {
            conn.queue.discard_unstarted();
        } else {
            // Broadcasts applied earlier this turn go out before the close
            // frame (a flush gives closing connections no broadcasts).
            flush_one::catch_up(conn, &self.batch, limit, counters);
        }
        conn.phase = Phase::Closing { fin_sent: false };
        conn.phase_since = now;
        conn.queue.push(encode::close_frame(ending.reply_code, &ending.info.reason));
        self.sync_held_input(key);
        self.mark_dirty(key);
        self.forget_open(id);
        self.leave_channels(key);
        log::debug!("worker {}: connection {id} closing: {} {}", self.index, ending.info.code, ending.info.reason);
        self.call_on_close(key, id, &ending.info);
    }

    /// Removes a socket now, whatever its phase.
    pub(super) fn drop_connection(&mut self, key: usize, why: &str) {
        if !self.conns.contains(key) {
            return;
        }
        if self.conns.get(key).is_some_and(|c| c.flags.is(Flag::HttpAwaiting)) {
            self.forget_deferred(key, false);
        }
        let mut conn = self.conns.remove(key);
        self.partial_bytes -= conn.held_input as usize;
        self.pressure.forget(key);
        if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
            log::debug!("worker {}: deregister failed: {e}", self.index);
        }
        self.handle.shared.registry.socket_removed(self.index);
        if conn.is_open() {
            let id = conn.id;
            drop(conn);
            self.forget_open(id);
            self.leave_channels(key);
            log::debug!("worker {}: connection {id} lost: {why}", self.index);
            let info =
                CloseInfo { code: codes::ABNORMAL, reason: why.to_owned(), initiator: CloseInitiator::Transport };
            self.call_on_close(key, id, &info);
        }
    }

    fn forget_open(&mut self, id: ConnId) {
        self.ids.remove(&id);
        self.handle.shared.registry.remove(id);
        let ip_key = self.ip_keys.remove(&id);
        self.release_per_ip(ip_key);
    }

    /// Hands the connection's state back to the application, exactly once.
    fn call_on_close(&mut self, key: usize, id: ConnId, info: &CloseInfo) {
        let Some(state) = self.states.get_mut(key).and_then(Option::take) else { return };
        let (handler, handle) = (&self.handler, &self.handle);
        if let Err(panic) = guard::call(|| handler.on_close(handle, id, state, info)) {
            self.hook_panicked("on_close", &format!("connection {id}"), &panic, "the connection closes as it was");
        }
    }

    /// Counts and logs (rate-limited) a hook that panicked: `hook` for
    /// `whom` (a connection, or a request's peer), and what the server does
    /// about it.
    pub(super) fn hook_panicked(&mut self, hook: &str, whom: &dyn std::fmt::Display, panic: &str, then: &str) {
        WorkerCounters::bump(&self.counters().handler_panics);
        if let Verdict::Log { suppressed } = self.logs.panics.check(std::time::Instant::now()) {
            log::error!(
                "worker {}: {hook} panicked for {whom}: {panic}; {then}{}",
                self.index,
                log_limit::more(suppressed)
            );
        }
    }

    /// Begins a graceful stop: 1001 to every open connection; plain HTTP
    /// connections finish the response they are writing, if any.
    pub(super) fn start_draining(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        // Everything handed to this worker before the shutdown goes out
        // before the 1001s (a shutdown is a control command: it overtakes
        // the data still in the inbox).
        self.apply_all_local();
        let shared = self.handle.shared.clone();
        while let Some((command, _)) = shared.bus.take_data(self.index, &self.inbox) {
            self.apply(command);
        }
        let timeout = super::millis(self.handle.config().shutdown_timeout);
        self.draining_until = Some(self.now().saturating_add(timeout));
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            match &conn.phase {
                Phase::Http { .. } if conn.queue.is_empty() => self.drop_connection(key, "server shutting down"),
                Phase::Http { .. } => {
                    conn.phase = Phase::Closing { fin_sent: false };
                    self.sync_held_input(key);
                }
                Phase::Open { .. } => self.begin_close(key, Ending::server(codes::GOING_AWAY, "server shutting down")),
                Phase::Closing { .. } => {}
            }
        }
    }

    /// Brings the worker's count of bytes held for incomplete input up to
    /// date with connection `key`'s buffers.
    pub(super) fn sync_held_input(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let held = match &conn.phase {
            Phase::Http { reader } => reader.buffered_bytes(),
            Phase::Open { decoder } => decoder.buffered_bytes(),
            Phase::Closing { .. } => 0,
        };
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        self.partial_bytes = self.partial_bytes - conn.held_input as usize + held as usize;
        conn.held_input = held;
    }
}
