//! One reactor: its own `Poll`, its own connections, its own inbox.
//!
//! A turn of the loop: poll; read every ready socket (up to a budget, the
//! rest is read next turn); apply inbox commands (up to a budget); run due
//! timers; then flush, giving each socket at most one `writev` carrying
//! everything queued for it this turn, broadcasts included.

mod connection;
mod lifecycle;
mod message_rate;
mod reading;
pub(crate) mod rig;
mod send_queue;
mod timers;
mod writing;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token};
use slab::Slab;

use crate::bus::{self, Command};
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::Handler;
use crate::stats::WorkerCounters;
use crate::ws;
use connection::Connection;
use message_rate::MessageRate;

/// Token of the worker's waker; connection tokens are slab keys.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Inbox commands applied per turn, so a flood of broadcasts cannot starve
/// socket reads (and so one turn's broadcasts fit one `writev`).
const INBOX_BUDGET: usize = 256;

/// Size of the per-worker read buffer shared by all its sockets.
const SCRATCH_SIZE: usize = 64 * 1024;

/// A broadcast waiting for this turn's flush.
pub(crate) struct Broadcast {
    pub(crate) frame: Bytes,
    pub(crate) except: Option<ConnId>,
}

/// One worker thread's reactor.
pub(crate) struct Worker<H: Handler> {
    index: usize,
    poll: Poll,
    inbox: Receiver<Command>,
    conns: Slab<Connection>,
    /// Open connections by id; only this worker reads or writes it.
    ids: HashMap<ConnId, usize>,
    handler: Arc<H>,
    handle: ServerHandle,
    started: Instant,
    next_seq: u64,
    scratch: Box<[u8]>,
    events: Vec<ws::Event>,
    local: Vec<Command>,
    batch: Vec<Broadcast>,
    dirty: Vec<usize>,
    read_again: Vec<usize>,
    /// Each open connection's `--max-message-rate` bucket by slab key;
    /// stays empty while no limit is set.
    rates: Vec<MessageRate>,
    expired: Vec<(usize, timers::Expiry)>,
    next_sweep: u64,
    next_ping: u64,
    draining_until: Option<u64>,
}

impl<H: Handler> Worker<H> {
    /// A worker that will own the connections handed to inbox `index`.
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        inbox: Receiver<Command>,
        handler: Arc<H>,
        handle: ServerHandle,
    ) -> Self {
        let ping = handle.config().ping_interval.map_or(u64::MAX, millis);
        Worker {
            index,
            poll,
            inbox,
            conns: Slab::new(),
            ids: HashMap::new(),
            handler,
            handle,
            started: Instant::now(),
            next_seq: 1,
            scratch: vec![0; SCRATCH_SIZE].into_boxed_slice(),
            events: Vec::new(),
            local: Vec::new(),
            batch: Vec::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            rates: Vec::new(),
            expired: Vec::new(),
            next_sweep: 0,
            next_ping: ping,
            draining_until: None,
        }
    }

    /// Runs the loop until shutdown has drained every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        bus::enter_worker(self.index, self.handle.workers());
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            let may_block = timeout != Some(Duration::ZERO) && self.handle.shared.bus.park(self.index, &self.inbox);
            let timeout = if may_block { timeout } else { Some(Duration::ZERO) };
            let polled = self.poll.poll(&mut events, timeout);
            self.handle.shared.bus.unpark(self.index);
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let reading_allowed = self.handle.shared.bus.flush_overflow();
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let key = event.token().0;
                if event.is_writable() {
                    self.on_writable(key);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    if reading_allowed {
                        self.read_socket(key, event.is_read_closed() || event.is_error());
                    } else {
                        self.defer_read(key);
                    }
                }
            }
            if reading_allowed {
                self.read_deferred();
            }
            self.drain_inbox();
            self.run_timers();
            self.flush();
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

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() || !self.dirty.is_empty() || !self.batch.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = self.now();
        let mut wake_at = self.next_sweep;
        if let Some(deadline) = self.draining_until {
            wake_at = wake_at.min(deadline);
        }
        // While an overflow waits for another worker, retry soon without spinning.
        let wait = wake_at.saturating_sub(now).clamp(1, 1000);
        Some(Duration::from_millis(wait))
    }

    fn drain_inbox(&mut self) {
        for _ in 0..INBOX_BUDGET {
            match self.inbox.try_recv() {
                Ok(command) => self.apply(command),
                Err(_) => break,
            }
        }
        self.apply_local();
    }

    /// Applies commands the worker's own hooks sent to itself, in order,
    /// including those that applying them makes hooks send.
    fn apply_local(&mut self) {
        loop {
            let mut commands = std::mem::take(&mut self.local);
            bus::take_local(&mut commands);
            if commands.is_empty() {
                self.local = commands;
                return;
            }
            for command in commands.drain(..) {
                self.apply(command);
            }
            self.local = commands;
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Broadcast { frame, except } => {
                if self.draining_until.is_none() {
                    self.batch.push(Broadcast { frame, except });
                }
            }
            Command::Push { conn, frame } => {
                if let Some(&key) = self.ids.get(&conn) {
                    self.push_frame(key, frame);
                }
            }
            Command::Disconnect { conn, code, reason } => {
                if let Some(&key) = self.ids.get(&conn) {
                    self.begin_close(key, lifecycle::Ending::server(code, &reason));
                }
            }
            Command::Adopt(socket) => self.adopt(socket),
            Command::Shutdown => self.start_draining(),
        }
    }

    fn finished(&self) -> bool {
        match self.draining_until {
            Some(deadline) => self.conns.is_empty() || self.now() >= deadline,
            None => false,
        }
    }
}

/// Milliseconds in `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
