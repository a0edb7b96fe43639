//! A connection's life: adoption, upgrade or refusal, close, removal.

use bytes::Bytes;
use mio::{Interest, Token};

use super::connection::{Connection, Phase};
use super::{writing, Worker};
use crate::conn_id::ConnId;
use crate::handler::{CloseInfo, CloseInitiator, Handler, Upgrade};
use crate::stats::WorkerCounters;
use crate::ws::close::codes;
use crate::ws::handshake::{self, Request};
use crate::ws::{encode, CloseFrame, Decoder};

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
}

impl<H: Handler> Worker<H> {
    /// Takes ownership of a socket the acceptor handed over.
    pub(super) fn adopt(&mut self, mut socket: mio::net::TcpStream) {
        if self.draining_until.is_some() {
            self.handle.shared.registry.socket_removed(self.index);
            return;
        }
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

    /// Answers a complete HTTP request: upgrade it, or refuse it.
    pub(super) fn finish_handshake(&mut self, key: usize, request: Request, rest: &[u8]) {
        let shared = &self.handle.shared;
        if !request.is_upgrade() {
            let mut response = self.plain_http_response(&request);
            if request.method == "HEAD" {
                // The head a GET would get, without its content (RFC 9110 section 9.3.2).
                let head_len = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
                response.truncate(head_len);
            }
            return self.refuse(key, response);
        }
        let upgrade = match handshake::validate_upgrade(&request) {
            Ok(upgrade) => upgrade,
            Err(e) => {
                log::debug!("worker {}: bad upgrade request: {e}", self.index);
                WorkerCounters::bump(&self.counters().refused_handshakes);
                return self.refuse(key, e.response());
            }
        };
        if !self.handler.accepts_path(request.path()) {
            WorkerCounters::bump(&self.counters().refused_handshakes);
            return self.refuse(key, handshake::http_response(404, "no WebSocket endpoint at this path\n"));
        }
        let configured = upgrade
            .offered_protocols
            .iter()
            .find(|p| shared.config.subprotocols.iter().any(|s| s == *p))
            .map(String::as_str);
        let protocol = match self.handler.on_upgrade(&request, configured) {
            // RFC 6455 4.2.2: only a subprotocol the client offered may be confirmed.
            Upgrade::Accept { protocol } => protocol.filter(|p| upgrade.offered_protocols.contains(p)),
            Upgrade::Reject { status } => {
                WorkerCounters::bump(&self.counters().refused_handshakes);
                return self.refuse(key, handshake::http_response(status, "upgrade refused\n"));
            }
        };
        if self.draining_until.is_some() || !shared.registry.try_reserve() {
            WorkerCounters::bump(&self.counters().refused_over_limit);
            return self.refuse(key, handshake::http_response(503, "server is at its connection limit\n"));
        }
        let id = ConnId::new(self.index, self.next_seq);
        self.next_seq += 1;
        let now = self.now();
        let max_message_size = shared.config.max_message_size;
        let cursor = u32::try_from(self.batch.len()).unwrap_or(u32::MAX);
        let Some(conn) = self.conns.get_mut(key) else {
            shared.registry.remove(id);
            return;
        };
        conn.id = id;
        conn.phase = Phase::Open { decoder: Decoder::new(max_message_size) };
        conn.phase_since = now;
        // Broadcasts earlier in this turn predate the connection.
        conn.cursor = cursor;
        conn.queue.push(Bytes::from(handshake::accept_response(&upgrade.accept, protocol.as_deref())));
        self.ids.insert(id, key);
        shared.registry.insert(id);
        self.start_message_rate(key, now);
        WorkerCounters::bump(&self.counters().opened);
        self.mark_dirty(key);
        log::debug!("worker {}: connection {id} open on {}", self.index, request.path());
        self.handler.on_open(&self.handle, id, &request);
        self.apply_local();
        if !rest.is_empty() {
            self.on_frames(key, rest);
        }
    }

    fn plain_http_response(&self, request: &Request) -> Vec<u8> {
        if request.method != "GET" && request.method != "HEAD" {
            return handshake::http_response(405, "only GET is served here\n");
        }
        let path = request.path();
        if path != "/" && !self.handler.accepts_path(path) {
            return handshake::http_response(404, "not found\n");
        }
        let body = format!(
            "fanout {}\nconnections: {}\nworkers: {}\n",
            env!("CARGO_PKG_VERSION"),
            self.handle.connection_count(),
            self.handle.workers()
        );
        handshake::http_response(200, &body)
    }

    /// Sends a final HTTP answer, then closes once it is written.
    pub(super) fn refuse(&mut self, key: usize, response: Vec<u8>) {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.phase = Phase::Closing { fin_sent: false };
        conn.phase_since = now;
        conn.queue.push(Bytes::from(response));
        self.mark_dirty(key);
    }

    /// Starts the close handshake of an open connection: the id leaves the
    /// registry now, `on_close` runs now, and the socket lingers until the
    /// close frame is written and the client hangs up (or `close_timeout`).
    pub(super) fn begin_close(&mut self, key: usize, ending: Ending) {
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
            writing::catch_up(conn, &self.batch, limit, counters);
        }
        conn.phase = Phase::Closing { fin_sent: false };
        conn.phase_since = now;
        conn.queue.push(encode::close_frame(ending.reply_code, &ending.info.reason));
        self.mark_dirty(key);
        self.forget_open(id);
        log::debug!("worker {}: connection {id} closing: {} {}", self.index, ending.info.code, ending.info.reason);
        self.handler.on_close(&self.handle, id, &ending.info);
    }

    /// Removes a socket now, whatever its phase.
    pub(super) fn drop_connection(&mut self, key: usize, why: &str) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
            log::debug!("worker {}: deregister failed: {e}", self.index);
        }
        self.handle.shared.registry.socket_removed(self.index);
        if conn.is_open() {
            let id = conn.id;
            drop(conn);
            self.forget_open(id);
            log::debug!("worker {}: connection {id} lost: {why}", self.index);
            let info =
                CloseInfo { code: codes::ABNORMAL, reason: why.to_owned(), initiator: CloseInitiator::Transport };
            self.handler.on_close(&self.handle, id, &info);
        }
    }

    fn forget_open(&mut self, id: ConnId) {
        self.ids.remove(&id);
        self.handle.shared.registry.remove(id);
    }

    /// Begins a graceful stop: 1001 to every open connection.
    pub(super) fn start_draining(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        let timeout = super::millis(self.handle.config().shutdown_timeout);
        self.draining_until = Some(self.now().saturating_add(timeout));
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            match self.conns.get(key).map(|c| &c.phase) {
                Some(Phase::Handshake { .. }) => self.drop_connection(key, "server shutting down"),
                Some(Phase::Open { .. }) => {
                    self.begin_close(key, Ending::server(codes::GOING_AWAY, "server shutting down"))
                }
                _ => {}
            }
        }
        self.apply_local();
    }
}
