//! Plain HTTP on the WebSocket port: requests answered one after another on
//! a kept-alive connection, pipelining included, through one path for the
//! server's own endpoints and the application's.

use super::connection::{Flag, Phase};
use super::transport::Transport;
use super::Worker;
use crate::guard;
use crate::handler::Handler;
use crate::http::{Limits, Request, Response};
use crate::metrics;
use crate::stats::{Refusal, WorkerCounters};

/// The most headers a request may carry (431 beyond).
const MAX_HEADERS: usize = 64;

/// A deferred response owed to an HTTP connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaiting {
    key: usize,
    head_only: bool,
    /// The request asked to keep the connection alive.
    keep_alive: bool,
}

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Serves every complete request buffered on `key`, in order, until one
    /// upgrades the connection, closes it, or the responses already queued
    /// reach half the send bound (the client is not reading them: the rest
    /// wait, unread, until it does).
    pub(super) fn serve_requests(&mut self, key: usize) {
        let config = self.handle.config();
        let limits =
            Limits { max_head: config.max_handshake_size, max_body: config.max_http_body, max_headers: MAX_HEADERS };
        let (hold_above, trust_proxy) = (config.max_backpressure / 2, config.trust_proxy);
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return };
            if conn.queue.cost() > hold_above {
                self.hold_http(key);
                return;
            }
            let Phase::Http { reader } = &mut conn.phase else { return };
            match reader.next_request(&limits) {
                Ok(None) => {
                    if reader.take_expect_continue() {
                        // curl and others wait a second for this before sending a body.
                        conn.queue.push(bytes::Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n"));
                        self.mark_dirty(key);
                    }
                    return;
                }
                Ok(Some(mut request)) => {
                    if let Ok(peer) = conn.socket.peer() {
                        request.set_peer(peer, trust_proxy);
                    }
                    if request.is_upgrade() {
                        let rest = reader.take_rest();
                        return self.finish_upgrade(key, request, &rest);
                    }
                    if !self.answer(key, &request) {
                        return;
                    }
                }
                Err(e) => {
                    log::debug!("worker {}: refusing a request: {e}", self.index);
                    let cause = if matches!(e.status(), 413 | 431) { Refusal::TooLarge } else { Refusal::Malformed };
                    self.counters().refuse(cause);
                    return self.refuse(key, e.response(), false);
                }
            }
        }
    }

    /// Queues the response to one request; false when the connection is
    /// closing after it or waits for a deferred response.
    fn answer(&mut self, key: usize, request: &Request) -> bool {
        WorkerCounters::bump(&self.counters().http_requests);
        let mut response = self.route(request);
        let head_only = request.method() == "HEAD";
        if let Some(id) = response.deferred_id() {
            match self.handle.shared.deferrals.register(id, self.index) {
                Some(early) => response = early,
                None => {
                    let now = self.now();
                    let Some(conn) = self.conns.get_mut(key) else { return false };
                    conn.flags.set(Flag::HttpAwaiting, true);
                    conn.phase_since = now;
                    self.awaiting.insert(id, Awaiting { key, head_only, keep_alive: request.keep_alive() });
                    return false;
                }
            }
        }
        self.write_response(key, &response, head_only, request.keep_alive())
    }

    /// Applies `Command::Respond`: answers the deferred request `id`, then
    /// serves the requests pipelined after it.
    pub(super) fn respond_deferred(&mut self, id: u64, response: &Response) {
        let Some(owed) = self.awaiting.remove(&id) else { return };
        let Some(conn) = self.conns.get_mut(owed.key) else { return };
        conn.flags.set(Flag::HttpAwaiting, false);
        if self.write_response(owed.key, response, owed.head_only, owed.keep_alive) {
            self.serve_requests(owed.key);
            self.sync_held_input(owed.key);
            self.defer_read(owed.key);
        }
    }

    /// Forgets the deferred responses owed to connection `key`, which ended
    /// (or is being answered 504: with `late`, it is, and closed).
    pub(super) fn forget_deferred(&mut self, key: usize, late: bool) {
        let owed: Vec<(u64, bool)> =
            self.awaiting.iter().filter(|(_, a)| a.key == key).map(|(&id, a)| (id, a.head_only)).collect();
        for (id, head_only) in owed {
            self.awaiting.remove(&id);
            self.handle.shared.deferrals.forget(id);
            if late {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.flags.set(Flag::HttpAwaiting, false);
                }
                let late = Response::text(504, "the application did not answer in time\n");
                self.write_response(key, &late, head_only, false);
            }
        }
    }

    /// Queues `response`; false when the connection is closing after it.
    fn write_response(&mut self, key: usize, response: &Response, head_only: bool, keep_alive: bool) -> bool {
        let keep_alive = keep_alive && !response.closes_connection() && self.draining_until.is_none();
        let now = self.now();
        let Some(conn) = self.conns.get_mut(key) else { return false };
        conn.queue.push(response.encode(head_only, keep_alive));
        // The next request has the handshake timeout, counted from here.
        conn.phase_since = now;
        conn.flags.set(Flag::ServedHttp, true);
        if !keep_alive {
            conn.phase = Phase::Closing { fin_sent: false };
        }
        self.mark_dirty(key);
        keep_alive
    }

    /// The server's own endpoints first, then the application's `on_http`,
    /// then the defaults (`/`, else 404).
    fn route(&mut self, request: &Request) -> Response {
        let read_only = matches!(request.method(), "GET" | "HEAD");
        match request.path() {
            "/metrics" | "/healthz" | "/readyz" if !read_only => {
                Response::text(405, "only GET and HEAD are served here\n").header("Allow", "GET, HEAD")
            }
            "/metrics" => {
                let (handler, handle) = (&self.handler, &self.handle);
                let mut application = metrics::MetricsOut::default();
                if let Err(panic) = guard::call(|| handler.metrics(handle, &mut application)) {
                    self.hook_panicked("metrics", &"a scrape", &panic, "scraping the server's own figures only");
                    application = metrics::MetricsOut::default();
                }
                let shared = &self.handle.shared;
                if let Some(cluster) = &shared.cluster {
                    cluster.report(&mut application);
                }
                Response::new(200)
                    .header("Content-Type", metrics::CONTENT_TYPE)
                    .body(metrics::render(shared, application))
            }
            "/healthz" => Response::text(200, "ok\n"),
            "/readyz" if self.handle.is_shutting_down() => Response::text(503, "draining\n"),
            "/readyz" => match &self.handle.shared.cluster {
                // Serving this node's clients is still worth the traffic
                // while Redis is away: ready, and the body says how it stands.
                Some(cluster) => Response::text(200, format!("ready\n{}", cluster.readiness())),
                None => Response::text(200, "ready\n"),
            },
            _ => {
                let (handler, handle) = (&self.handler, &self.handle);
                match guard::call(|| handler.on_http(handle, request)) {
                    Ok(Some(response)) => response,
                    Ok(None) => self.default_response(request, read_only),
                    Err(panic) => {
                        let whom =
                            request.peer_addr().map_or("a request".to_owned(), |peer| format!("a request from {peer}"));
                        self.hook_panicked("on_http", &whom, &panic, "answering 500");
                        Response::text(500, "internal error\n")
                    }
                }
            }
        }
    }

    fn default_response(&self, request: &Request, read_only: bool) -> Response {
        match request.path() {
            "/" if read_only => Response::text(
                200,
                format!(
                    "fanout {}\nconnections: {}\nworkers: {}\n",
                    env!("CARGO_PKG_VERSION"),
                    self.handle.connection_count(),
                    self.handle.workers()
                ),
            ),
            "/" => Response::text(405, "only GET and HEAD are served here\n").header("Allow", "GET, HEAD"),
            _ => Response::text(404, "not found\n"),
        }
    }

    fn hold_http(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.flags.is(Flag::HttpHeld) {
                conn.flags.set(Flag::HttpHeld, true);
                self.http_held.push(key);
            }
        }
    }

    /// Serves the pipelined requests of connections whose responses have
    /// drained to a quarter of the send bound, and reads them again.
    pub(super) fn release_held_http(&mut self) {
        if self.http_held.is_empty() {
            return;
        }
        let quarter = self.handle.config().max_backpressure / 4;
        let held = std::mem::take(&mut self.http_held);
        for key in held {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            if !conn.flags.is(Flag::HttpHeld) {
                continue;
            }
            if conn.queue.cost() > quarter {
                self.http_held.push(key);
                continue;
            }
            conn.flags.set(Flag::HttpHeld, false);
            self.serve_requests(key);
            self.sync_held_input(key);
            self.defer_read(key);
        }
    }
}
