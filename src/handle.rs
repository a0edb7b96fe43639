//! The server handle: push, broadcast, disconnect and inspect from any
//! thread, including from inside hooks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bus::{Broadcast, Bus, Command, SendError, Wait};
use crate::channels::ChannelDirectory;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::message::Message;
use crate::registry::{ConnStatus, Registry};
use crate::stats::{Stats, WorkerCounters};
use crate::ws::{close, encode};

/// What happened to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// Handed to the connection's worker, which writes it in order. (It can
    /// still be dropped if the client's queue fills before the worker gets
    /// to it; `Stats::frames_dropped` counts that.)
    Queued,
    /// Not sent: the client's send queue is full and the slow-consumer
    /// policy is `drop`.
    Dropped,
    /// Not sent: no open connection has this id (closed, closing, or never
    /// existed), or its worker is gone.
    Closed,
    /// Not sent: the worker's inbox is at its bound and the caller chose
    /// not to wait (or its wait ran out). Only threads outside the workers
    /// see this; a hook's pushes never wait and never fail this way.
    Full,
}

/// A message framed once, ready to be sent to any number of connections
/// without being encoded or copied again (uWebSockets' `PreparedMessage`).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) frame: Bytes,
}

impl Prepared {
    /// Frames `message` (one copy of the payload, done here).
    pub fn new(message: &Message) -> Self {
        Prepared { frame: encode::message_frame(message) }
    }

    /// The bytes on the wire: header and payload.
    pub fn wire_bytes(&self) -> &[u8] {
        &self.frame
    }
}

/// State shared by the handles and the workers.
pub(crate) struct Shared {
    pub(crate) bus: Bus,
    pub(crate) registry: Registry,
    pub(crate) channels: ChannelDirectory,
    pub(crate) counters: Box<[WorkerCounters]>,
    /// Connections the acceptor refused for lack of file descriptors.
    pub(crate) refused_descriptors: AtomicU64,
    pub(crate) config: Config,
    pub(crate) local_addr: SocketAddr,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) on_shutdown: Box<dyn Fn() + Send + Sync>,
    /// HTTP responses given later (`ServerHandle::defer_response`).
    pub(crate) deferrals: crate::deferred::Deferrals,
    /// Connections and handshakes per client address.
    pub(crate) per_ip: crate::per_ip::PerIpLimits,
    /// TLS settings when the server speaks TLS (`Config::tls`).
    pub(crate) tls: Option<crate::tls::TlsContext>,
    /// The bridge to the other nodes, with `Config::cluster`.
    pub(crate) cluster: Option<crate::cluster::Cluster>,
}

/// A cheap, cloneable reference to a running server, usable from any thread.
///
/// Every method returns at once when called from a hook (work is only
/// queued). From another thread, `push`, `broadcast` and their variants
/// wait while a worker's inbox is at its bound (see `Config::inbox_bytes`):
/// the `try_` forms never wait and answer `Full`, the `_timeout` forms wait
/// at most the given time.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ServerHandle {
    /// Sends `message` to one connection, waiting for room if needed.
    pub fn push(&self, conn: ConnId, message: &Message) -> PushOutcome {
        self.push_with(conn, &Prepared::new(message), Wait::Forever)
    }

    /// Sends `message` to one connection without ever waiting: `Full` when
    /// its worker's inbox is at its bound.
    pub fn try_push(&self, conn: ConnId, message: &Message) -> PushOutcome {
        self.push_with(conn, &Prepared::new(message), Wait::No)
    }

    /// Sends `message` to one connection, waiting at most `timeout` for room.
    pub fn push_timeout(&self, conn: ConnId, message: &Message, timeout: Duration) -> PushOutcome {
        self.push_with(conn, &Prepared::new(message), deadline(timeout))
    }

    /// Sends an already framed message to one connection, waiting for room
    /// if needed.
    pub fn push_prepared(&self, conn: ConnId, prepared: &Prepared) -> PushOutcome {
        self.push_with(conn, prepared, Wait::Forever)
    }

    fn push_with(&self, conn: ConnId, prepared: &Prepared, wait: Wait) -> PushOutcome {
        match self.shared.registry.status(conn) {
            None => PushOutcome::Closed,
            Some(ConnStatus::Backlogged) => {
                WorkerCounters::bump(&self.shared.counters[conn.worker()].frames_dropped);
                PushOutcome::Dropped
            }
            Some(ConnStatus::Open) => {
                let command = Command::Push { conn, frame: prepared.frame.clone() };
                match self.shared.bus.send(conn.worker(), command, wait) {
                    Ok(()) => PushOutcome::Queued,
                    Err(SendError::Full) => PushOutcome::Full,
                    Err(SendError::Closed) => PushOutcome::Closed,
                }
            }
        }
    }

    /// Sends `message` to every open connection, waiting for room if
    /// needed. The frame is encoded once and shared by every recipient on
    /// every worker.
    pub fn broadcast(&self, message: &Message) {
        let _ = self.send_broadcast(&Prepared::new(message), None, Wait::Forever);
    }

    /// Sends `message` to every open connection except `except` (the chat
    /// relay: everyone but the sender), waiting for room if needed.
    pub fn broadcast_except(&self, message: &Message, except: ConnId) {
        let _ = self.send_broadcast(&Prepared::new(message), Some(except), Wait::Forever);
    }

    /// Sends an already framed message to every open connection but
    /// `except`, waiting for room if needed.
    pub fn broadcast_prepared(&self, prepared: &Prepared, except: Option<ConnId>) {
        let _ = self.send_broadcast(prepared, except, Wait::Forever);
    }

    /// Sends `message` to every open connection without ever waiting: all
    /// workers take it, or none does (`Full`).
    pub fn try_broadcast(&self, message: &Message) -> Result<(), SendError> {
        self.send_broadcast(&Prepared::new(message), None, Wait::No)
    }

    /// Sends `message` to every open connection, waiting at most `timeout`
    /// for every worker to have room; all or nothing.
    pub fn broadcast_timeout(&self, message: &Message, timeout: Duration) -> Result<(), SendError> {
        self.send_broadcast(&Prepared::new(message), None, deadline(timeout))
    }

    /// The general form: sends `prepared` to every open connection but
    /// `except`, waiting at most `timeout` for room (`None`: not at all).
    pub fn try_broadcast_prepared(
        &self,
        prepared: &Prepared,
        except: Option<ConnId>,
        timeout: Option<Duration>,
    ) -> Result<(), SendError> {
        self.send_broadcast(prepared, except, timeout.map_or(Wait::No, deadline))
    }

    fn send_broadcast(&self, prepared: &Prepared, except: Option<ConnId>, wait: Wait) -> Result<(), SendError> {
        self.broadcast_here(prepared.frame.clone(), except, wait)?;
        if let Some(cluster) = &self.shared.cluster {
            cluster.forward_broadcast(&prepared.frame);
        }
        Ok(())
    }

    /// Sends `frame` to this node's connections but `except`.
    fn broadcast_here(&self, frame: Bytes, except: Option<ConnId>, wait: Wait) -> Result<(), SendError> {
        let broadcast = Broadcast { frame, except, sent_at: Some(Instant::now()), deflated: Default::default() };
        self.shared.bus.broadcast(broadcast, wait)
    }

    /// Delivers a broadcast another node made to this node's connections,
    /// never waiting (`Full`: none got it).
    pub(crate) fn broadcast_from_cluster(&self, frame: Bytes) -> Result<(), SendError> {
        self.broadcast_here(frame, None, Wait::No)
    }

    /// True when the calling worker holds more work for itself and for other
    /// workers' full inboxes than one inbox may hold (`Config::inbox_bytes`):
    /// a hook taking publishes from outside (an HTTP API) should refuse
    /// more (503) until that drains, rather than queue without bound.
    /// Always false on threads that are not workers: their sends wait, or
    /// answer `Full`, instead.
    pub fn is_congested(&self) -> bool {
        let (local, overflow) = self.shared.bus.pending_bytes();
        local + overflow >= self.shared.config.inbox_bytes
    }

    /// True while `conn` is open (false once it starts closing).
    pub fn exists(&self, conn: ConnId) -> bool {
        self.shared.registry.status(conn).is_some()
    }

    /// Reads the TLS certificate and key files again: new handshakes use
    /// them, established connections keep theirs. `Ok(false)` when the
    /// server does not speak TLS; on error the pair in use stays.
    pub fn reload_tls(&self) -> Result<bool, crate::tls::TlsError> {
        match &self.shared.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// Starts closing `conn` with a close frame carrying `code` and `reason`
    /// (truncated to fit a control frame). Codes a server may not send
    /// (1005, 1006, 1015, out-of-range) are replaced by 1000. Returns false
    /// when `conn` is not open.
    ///
    /// A disconnect is a control command: it never waits behind pushes and
    /// broadcasts sitting in the worker's inbox, so it can overtake them
    /// (from a hook of the connection's own worker it keeps its place).
    pub fn disconnect(&self, conn: ConnId, code: u16, reason: &str) -> bool {
        if !self.exists(conn) {
            return false;
        }
        let code = if close::is_valid_received_code(code) { code } else { close::codes::NORMAL };
        let command = Command::Disconnect { conn, code, reason: reason.to_owned() };
        self.shared.bus.send_control(conn.worker(), command)
    }

    /// Open connections now, counting the sessions served without a socket
    /// of their own (long-polling), which hold a slot of
    /// `Config::max_connections` as well.
    pub fn connection_count(&self) -> usize {
        self.shared.registry.count()
    }

    /// Ids of every open connection (swoole's `$server->connections`),
    /// long-polling sessions included: a push to one reaches its queue, a
    /// disconnect ends it.
    pub fn connections(&self) -> Vec<ConnId> {
        self.shared.registry.ids()
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        Stats::collect(&self.shared.counters, self.shared.registry.per_worker())
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.bus.workers()
    }

    /// The settings the server runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Starts a graceful shutdown: `/readyz` answers 503 from now on; after
    /// `Config::shutdown_grace` (at once by default) stop accepting, close
    /// every client with 1001, flush, stop the workers. Returns at once;
    /// idempotent.
    pub fn shutdown(&self) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let grace = self.shared.config.shutdown_grace;
        if grace.is_zero() {
            return self.drain();
        }
        log::info!("shutting down: not ready, serving {grace:?} more before draining");
        let handle = self.clone();
        let spawned = std::thread::Builder::new().name("fanout-grace".into()).spawn(move || {
            std::thread::sleep(grace);
            handle.drain();
        });
        if let Err(e) = spawned {
            log::error!("cannot wait out the shutdown grace ({e}): draining now");
            self.drain();
        }
    }

    /// Stops accepting and tells every worker to close its clients and stop.
    fn drain(&self) {
        (self.shared.on_shutdown)();
        for worker in 0..self.shared.bus.workers() {
            self.shared.bus.send_control(worker, Command::Shutdown);
            if let Err(e) = self.shared.bus.wake(worker) {
                log::error!("cannot wake worker {worker} for shutdown: {e}");
            }
        }
    }

    /// True once [`ServerHandle::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }
}

fn deadline(timeout: Duration) -> Wait {
    Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until)
}
