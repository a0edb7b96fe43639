//! Turning an upgrade request into an open WebSocket connection, or
//! refusing it.

use bytes::Bytes;

use super::connection::{Flag, Phase};
use super::lifecycle::Ending;
use super::transport::Transport;
use super::Worker;
use crate::conn_id::ConnId;
use crate::guard;
use crate::handler::{Handler, ProtocolChoice};
use crate::http::{Request, Response};
use crate::origin;
use crate::per_ip::{IpKey, PerIpRefusal};
use crate::stats::{Refusal, WorkerCounters};
use crate::ws::handshake::{self, UpgradeHeaders};
use crate::ws::{deflate, Decoder};

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Answers a complete upgrade request: open the connection, or refuse.
    /// `rest` is what the client sent after the request (early frames).
    pub(super) fn finish_upgrade(&mut self, key: usize, request: Request, rest: &[u8]) {
        let headers = match handshake::validate_upgrade(&request) {
            Ok(headers) => headers,
            Err(e) => {
                log::debug!("worker {}: bad upgrade request: {e}", self.index);
                return self.refuse_upgrade(key, Refusal::BadUpgrade, e.response());
            }
        };
        let allowed_origins = &self.handle.shared.config.allowed_origins;
        if let Some(origin) = request.header("Origin") {
            if !allowed_origins.is_empty() && !origin::allowed(allowed_origins, origin) {
                let response = Response::text(403, "origin not allowed\n");
                return self.refuse_upgrade(key, Refusal::Origin, response);
            }
        }
        let ip_key = match self.count_per_ip(&request) {
            Ok(ip_key) => ip_key,
            Err(response) => return self.refuse_upgrade(key, Refusal::PerIp, response),
        };
        let (handler, handle) = (&self.handler, &self.handle);
        let accept = match guard::call(|| handler.on_upgrade(handle, &request)) {
            Ok(Ok(accept)) => accept,
            Ok(Err(rejection)) => {
                self.release_per_ip(ip_key);
                let cause = if rejection.status() == 404 { Refusal::NotFound } else { Refusal::Rejected };
                return self.refuse_upgrade(key, cause, rejection.into_response());
            }
            Err(panic) => {
                self.release_per_ip(ip_key);
                let whom = request.peer_addr().map_or("a request".to_owned(), |peer| format!("a request from {peer}"));
                self.hook_panicked("on_upgrade", &whom, &panic, "answering 500");
                return self.refuse_upgrade(key, Refusal::Rejected, Response::text(500, "internal error\n"));
            }
        };
        let shared = &self.handle.shared;
        if self.draining_until.is_some() {
            self.release_per_ip(ip_key);
            let response = Response::text(503, "server is shutting down\n").header("Retry-After", "1");
            return self.refuse_upgrade(key, Refusal::Draining, response);
        }
        if !shared.registry.try_reserve() {
            self.release_per_ip(ip_key);
            let response = Response::text(503, "server is at its connection limit\n").header("Retry-After", "1");
            return self.refuse_upgrade(key, Refusal::OverLimit, response);
        }
        let protocol = self.confirmed_protocol(&headers, accept.protocol);
        let id = ConnId::new(self.index, self.next_seq);
        self.next_seq += 1;
        let now = self.now();
        let max_message_size = shared.config.max_message_size;
        let deflate = if shared.config.compression {
            deflate::negotiate(request.header_values("Sec-WebSocket-Extensions"))
        } else {
            None
        };
        let cursor = u32::try_from(self.batch.len()).unwrap_or(u32::MAX);
        let Some(conn) = self.conns.get_mut(key) else {
            shared.registry.remove(id);
            self.release_per_ip(ip_key);
            return;
        };
        conn.id = id;
        let decoder =
            if deflate.is_some() { Decoder::with_deflate(max_message_size) } else { Decoder::new(max_message_size) };
        conn.phase = Phase::Open { decoder };
        // A client that asked for a smaller window than ours gets its
        // messages uncompressed (always allowed) but may send compressed.
        conn.flags.set(Flag::Deflate, deflate.is_some_and(|agreed| agreed.server_window_bits == 15));
        conn.phase_since = now;
        conn.last_seen = now;
        // Broadcasts earlier in this turn predate the connection.
        conn.cursor = cursor;
        conn.flags.set(Flag::NoBroadcasts, !accept.broadcasts);
        let extensions = deflate.map(|agreed| agreed.response_value());
        let response = handshake::accept_response_with(&headers.accept, protocol.as_deref(), extensions.as_deref());
        conn.queue.push(Bytes::from(response));
        self.ids.insert(id, key);
        shared.registry.insert(id);
        if let Some(ip_key) = ip_key {
            self.ip_keys.insert(id, ip_key);
        }
        if self.states.len() <= key {
            self.states.resize_with(key + 1, || None);
        }
        self.states[key] = Some(accept.state);
        self.start_message_rate(key, now);
        WorkerCounters::bump(&self.counters().opened);
        self.sync_held_input(key);
        self.mark_dirty(key);
        log::debug!("worker {}: connection {id} open on {}", self.index, request.path());
        if let Some(state) = self.states.get_mut(key).and_then(Option::as_mut) {
            let (handler, handle) = (&self.handler, &self.handle);
            if let Err(panic) = guard::call(|| handler.on_open(handle, id, state)) {
                self.hook_panicked("on_open", &format!("connection {id}"), &panic, "closing it with 1011");
                return self.begin_close(key, Ending::panicked());
            }
        }
        if !rest.is_empty() {
            self.on_frames(key, rest);
        }
    }

    /// Counts the upgrade against its address's limits: the key to release
    /// when the connection goes (`None` when no limit is set), or the 429.
    fn count_per_ip(&self, request: &Request) -> Result<Option<IpKey>, Response> {
        let per_ip = &self.handle.shared.per_ip;
        let Some(client) = request.client_ip().filter(|_| per_ip.enabled()) else { return Ok(None) };
        match per_ip.try_open(client, self.now()) {
            Ok(ip_key) => Ok(Some(ip_key)),
            Err(PerIpRefusal::Connections) => {
                Err(Response::text(429, "too many connections from this address\n").header("Retry-After", "5"))
            }
            Err(PerIpRefusal::Handshakes) => {
                Err(Response::text(429, "too many handshakes from this address\n").header("Retry-After", "1"))
            }
        }
    }

    pub(super) fn release_per_ip(&self, ip_key: Option<IpKey>) {
        if let Some(ip_key) = ip_key {
            self.handle.shared.per_ip.release(ip_key);
        }
    }

    /// The subprotocol to confirm: only ever one the client offered.
    fn confirmed_protocol(&self, headers: &UpgradeHeaders, choice: ProtocolChoice) -> Option<String> {
        let offered = &headers.offered_protocols;
        match choice {
            ProtocolChoice::Configured => {
                let configured = &self.handle.config().subprotocols;
                offered.iter().find(|p| configured.contains(p)).cloned()
            }
            // RFC 6455 4.2.2: only a subprotocol the client offered may be confirmed.
            ProtocolChoice::Exactly(protocol) => protocol.filter(|p| offered.contains(p)),
        }
    }

    fn refuse_upgrade(&mut self, key: usize, cause: Refusal, response: Response) {
        self.counters().refuse(cause);
        self.refuse(key, response, false);
    }
}
