//! One reactor: its own `Poll`, its own connections, its own inbox.
//!
//! A turn of the loop: poll; apply control commands (new sockets,
//! disconnects, shutdown); retry what other workers' full inboxes refused;
//! read every ready socket (up to a budget, the rest is read next turn;
//! the clients that publish are not read at all while the worker is under
//! output pressure, see [`pressure`]); take in broadcasts and pushes, the
//! worker's own first, up to a byte budget; run due timers; then flush,
//! giving each socket one `writev` carrying everything queued for it this
//! turn, broadcasts included.

mod coalesce;
mod connection;
mod flush_one;
mod intake;
mod lifecycle;
mod message_rate;
pub(crate) mod pressure;
mod publishing;
mod reading;
pub(crate) mod rig;
mod send_queue;
mod serving;
mod sinks;
mod timers;
pub(crate) mod transport;
mod upgrade;
mod writing;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use slab::Slab;

use crate::bus::{Broadcast, InboxReceiver, Publish};
use crate::channels::ChannelIndex;
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::Handler;
use crate::log_limit::LogLimit;
use crate::stats::WorkerCounters;
use crate::ws;
use connection::Connection;
use message_rate::MessageRate;
use pressure::Pressure;
use transport::Transport;

/// Token of the worker's waker; connection tokens are slab keys.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Size of the per-worker read buffer shared by all its sockets.
const SCRATCH_SIZE: usize = 64 * 1024;

/// The most bytes of broadcasts and pushes taken in per turn.
const MAX_INTAKE: usize = 256 * 1024;

/// While paused or with connections behind, re-judge them this often.
const PRESSURE_TICK: Duration = Duration::from_millis(20);

/// One worker thread's reactor.
pub(crate) struct Worker<H: Handler, T: Transport = mio::net::TcpStream> {
    index: usize,
    poll: Poll,
    inbox: InboxReceiver,
    conns: Slab<Connection<T>>,
    /// Each connection's application state by slab key (open connections only).
    states: Vec<Option<H::State>>,
    /// Open connections by id; only this worker reads or writes it.
    ids: HashMap<ConnId, usize>,
    /// The address each open connection counts against, while a per-address
    /// limit is set (empty otherwise: no cost per connection without one).
    ip_keys: HashMap<ConnId, crate::per_ip::IpKey>,
    handler: Arc<H>,
    handle: ServerHandle,
    started: Instant,
    next_seq: u64,
    scratch: Box<[u8]>,
    events: Vec<ws::Event>,
    batch: Vec<Broadcast>,
    /// This worker's channels and their local members.
    channels: ChannelIndex,
    /// Publishes taken in this turn, delivered before the flush.
    publishes: Vec<Publish>,
    /// Members that are queues, not sockets, by key less
    /// [`crate::channels::SINK_BASE`] (see `sinks`).
    sinks: Slab<(ConnId, crate::channels::SharedSink)>,
    dirty: Vec<usize>,
    read_again: Vec<usize>,
    /// Publishers not read while the worker is paused, read on resume.
    paused_reads: Vec<usize>,
    /// HTTP connections whose pipelined requests wait for their responses
    /// to drain.
    http_held: Vec<usize>,
    /// Deferred HTTP responses owed, by id.
    awaiting: HashMap<u64, serving::Awaiting>,
    /// Bytes held for incomplete requests and messages, over all connections.
    partial_bytes: usize,
    logs: Logs,
    pressure: Pressure,
    /// Bytes of broadcasts and pushes taken in per turn (a quarter of the
    /// per-connection bound, so one turn never fills a queue).
    intake_budget: usize,
    /// Every connection's `--max-message-rate` bucket by slab key;
    /// stays empty while no limit is set.
    rates: Vec<MessageRate>,
    expired: Vec<(usize, timers::Expiry)>,
    next_sweep: u64,
    next_ping: u64,
    draining_until: Option<u64>,
    /// Transport handshakes (TLS) advanced this turn; past
    /// [`HANDSHAKES_PER_TURN`] the rest wait for the next turn.
    handshakes_this_turn: usize,
    /// permessage-deflate, shared by the worker's connections (no context
    /// is kept between messages, so none is kept per connection).
    deflater: ws::deflate::Deflater,
    inflater: ws::deflate::Inflater,
}

/// TLS handshake steps one worker takes per loop turn: a storm of new TLS
/// clients (each costing a signature) cannot starve established connections.
const HANDSHAKES_PER_TURN: usize = 32;

impl<H: Handler, T: Transport> Worker<H, T> {
    /// A worker that will own the connections handed to inbox `index`.
    pub(crate) fn new(index: usize, poll: Poll, inbox: InboxReceiver, handler: Arc<H>, handle: ServerHandle) -> Self {
        let config = handle.config();
        let ping = config.ping_interval.map_or(u64::MAX, millis);
        let pressure = Pressure::new(config.max_backpressure, config.max_worker_backpressure);
        let intake_budget = (config.max_backpressure / 4).clamp(1, MAX_INTAKE);
        Worker {
            index,
            poll,
            inbox,
            conns: Slab::new(),
            states: Vec::new(),
            ids: HashMap::new(),
            ip_keys: HashMap::new(),
            handler,
            handle,
            started: Instant::now(),
            next_seq: 1,
            scratch: vec![0; SCRATCH_SIZE].into_boxed_slice(),
            events: Vec::new(),
            batch: Vec::new(),
            channels: ChannelIndex::default(),
            publishes: Vec::new(),
            sinks: Slab::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            paused_reads: Vec::new(),
            http_held: Vec::new(),
            awaiting: HashMap::new(),
            partial_bytes: 0,
            logs: Logs::default(),
            pressure,
            intake_budget,
            rates: Vec::new(),
            expired: Vec::new(),
            next_sweep: 0,
            next_ping: ping,
            draining_until: None,
            handshakes_this_turn: 0,
            deflater: ws::deflate::Deflater::default(),
            inflater: ws::deflate::Inflater::default(),
        }
    }

    /// Runs the loop until shutdown has drained every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let shared = self.handle.shared.clone();
        shared.bus.enter_worker(self.index);
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            let may_block = timeout != Some(Duration::ZERO) && shared.bus.park(self.index, &self.inbox);
            let timeout = if may_block { timeout } else { Some(Duration::ZERO) };
            let polled = self.poll.poll(&mut events, timeout);
            shared.bus.unpark(self.index);
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.handshakes_this_turn = 0;
            self.apply_control();
            let overflow_clear = shared.bus.flush_overflow();
            let publishers_paused = !overflow_clear || self.input_paused();
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let key = event.token().0;
                if event.is_writable() {
                    self.on_writable(key);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    // Within a turn too: what the hooks made of this turn's
                    // reads so far may already be more than can wait.
                    if (publishers_paused || self.local_overfull()) && self.is_publisher(key) {
                        self.pause_read(key);
                    } else {
                        self.read_socket(key, event.is_read_closed() || event.is_error());
                    }
                }
            }
            if !publishers_paused {
                self.resume_reads();
            }
            self.read_deferred(publishers_paused);
            self.intake();
            self.run_timers();
            self.flush();
            self.release_held_http();
            self.pressure.evaluate(self.now(), self.ids.len());
            self.publish_gauges();
            if self.finished() {
                return Ok(());
            }
        }
    }

    /// Milliseconds since the worker started: the clock of every deadline.
    fn now(&self) -> u64 {
        millis(self.started.elapsed())
    }

    fn counters(&self) -> &WorkerCounters {
        &self.handle.shared.counters[self.index]
    }

    /// True while the clients that publish must not be read: output is
    /// under pressure, or the worker's own hooks produced more than one
    /// turn can take in.
    fn input_paused(&self) -> bool {
        self.pressure.is_paused() || self.handle.shared.bus.pending_bytes().0 > self.intake_budget
    }

    /// True when the commands the worker's hooks sent to itself hold more
    /// than the worker's watermark: no more publisher is read this turn.
    fn local_overfull(&self) -> bool {
        self.handle.shared.bus.pending_bytes().0 > self.handle.config().max_worker_backpressure
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let (local, overflow) = self.handle.shared.bus.pending_bytes();
        let has_local = local > 0 && !self.pressure.is_paused();
        if !self.read_again.is_empty()
            || !self.dirty.is_empty()
            || !self.batch.is_empty()
            || !self.publishes.is_empty()
            || has_local
        {
            return Some(Duration::ZERO);
        }
        let now = self.now();
        let mut wake_at = self.next_sweep;
        if let Some(deadline) = self.draining_until {
            wake_at = wake_at.min(deadline);
        }
        let mut wait = Duration::from_millis(wake_at.saturating_sub(now).clamp(1, 1000));
        // Stalls and lags are judged by time alone; an overflow is retried
        // when its destination drains, which wakes this worker, and here too.
        if self.pressure.has_behind() || overflow > 0 {
            wait = wait.min(PRESSURE_TICK);
        }
        Some(wait)
    }

    fn publish_gauges(&self) {
        let reading = self.pressure.reading();
        let counters = self.counters();
        counters.set_gauge(&counters.queued_bytes, reading.queued);
        counters.set_gauge(&counters.paused_reads, self.paused_reads.len());
        counters.set_gauge(&counters.paused, usize::from(self.pressure.is_paused()));
        counters.set_gauge(&counters.partial_bytes, self.partial_bytes);
    }

    fn finished(&self) -> bool {
        match self.draining_until {
            Some(deadline) => self.conns.is_empty() || self.now() >= deadline,
            None => false,
        }
    }
}

/// Logging budgets of the events that can come in storms.
#[derive(Debug, Default)]
struct Logs {
    slow_consumers: LogLimit,
    drops: LogLimit,
    panics: LogLimit,
}

/// Milliseconds in `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
