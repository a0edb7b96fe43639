//! Writing sockets: one `writev` per socket per turn, bounded queues.

use std::io::{self, IoSlice};
use std::time::Instant;

use bytes::Bytes;

use super::connection::{Connection, Flag, Phase, Socket};
use super::lifecycle::Ending;
use super::pressure::Pressure;
use super::send_queue::SendQueue;
use super::Worker;
use crate::bus::Broadcast;
use crate::config::SlowConsumerPolicy;
use crate::handler::Handler;
use crate::log_limit::{self, Verdict};
use crate::registry::{ConnStatus, Registry};
use crate::stats::WorkerCounters;

/// Most chunks handed to one `writev`; what does not fit waits in the
/// connection's queue for the next turn.
const MAX_IOV: usize = 256;

/// The iovec array used when a socket has only a few chunks this turn.
const SMALL_IOV: usize = 8;

/// What adding a frame to a connection's queue did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Enqueued {
    /// Queued.
    Queued,
    /// Dropped by the `drop` policy.
    Dropped,
    /// The queue is full under the `close` policy: close the connection.
    SlowConsumer,
}

/// The limits a flush enforces.
#[derive(Clone, Copy)]
pub(super) struct QueueLimit {
    pub(super) max_bytes: usize,
    pub(super) policy: SlowConsumerPolicy,
}

impl QueueLimit {
    /// Queues `frame` unless that would pass the bound, counted as the
    /// memory the queue holds ([`SendQueue::cost`]). An empty queue takes
    /// any one frame: a client with nothing pending is not slow, even when
    /// the frame alone is larger than the bound (a message of
    /// `max_message_size` plus its header, with both limits at 1 MiB).
    fn enqueue<S>(self, conn: &mut Connection<S>, frame: Bytes, counters: &WorkerCounters) -> Enqueued {
        if conn.queue.is_empty() || conn.queue.cost() + SendQueue::cost_of(frame.len()) <= self.max_bytes {
            conn.queue.push(frame);
            return Enqueued::Queued;
        }
        match self.policy {
            SlowConsumerPolicy::Drop => {
                WorkerCounters::bump(&counters.frames_dropped);
                Enqueued::Dropped
            }
            SlowConsumerPolicy::Close => Enqueued::SlowConsumer,
        }
    }
}

/// What one socket's flush did and left to do.
#[derive(Default)]
pub(crate) struct Flushed {
    /// Bytes the socket took.
    pub(crate) written: usize,
    pub(crate) error: Option<io::Error>,
    pub(crate) slow_consumer: bool,
    /// A frame was dropped for a full queue (`drop` policy).
    pub(crate) dropped: bool,
    /// Bytes are still queued and the socket can take more: flush again next turn.
    pub(crate) more: bool,
}

impl<H: Handler> Worker<H> {
    pub(super) fn limit(&self) -> QueueLimit {
        let config = self.handle.config();
        QueueLimit { max_bytes: config.max_backpressure, policy: config.slow_consumer }
    }

    /// Lists `key` for this turn's flush.
    pub(super) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.flags.is(Flag::Dirty) {
                conn.flags.set(Flag::Dirty, true);
                self.dirty.push(key);
            }
        }
    }

    pub(super) fn on_writable(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.flags.set(Flag::Writable, true);
            if !conn.queue.is_empty() || matches!(conn.phase, Phase::Closing { fin_sent: false }) {
                self.mark_dirty(key);
            }
        }
    }

    /// Queues a frame for one open connection, after any broadcast of this
    /// turn it has not been given yet (so per-sender order holds).
    pub(super) fn push_frame(&mut self, key: usize, frame: Bytes) {
        let limit = self.limit();
        let counters = &self.handle.shared.counters[self.index];
        let Some(conn) = self.conns.get_mut(key) else { return };
        if !conn.is_open() {
            return;
        }
        let caught_up = catch_up(conn, &self.batch, limit, counters);
        let outcome = match caught_up {
            Enqueued::SlowConsumer => Enqueued::SlowConsumer,
            _ => {
                let outcome = limit.enqueue(conn, frame, counters);
                if outcome == Enqueued::Queued {
                    WorkerCounters::bump(&counters.frames_out);
                }
                outcome
            }
        };
        let dropped = caught_up == Enqueued::Dropped || outcome == Enqueued::Dropped;
        let id = conn.id;
        if sync_backlog(conn, dropped, limit, &self.handle.shared.registry) {
            self.log_backlogged(id);
        }
        if outcome == Enqueued::SlowConsumer {
            self.close_slow_consumer(key, id);
            return;
        }
        self.mark_dirty(key);
    }

    /// Closes a slow consumer with 1008; counted, and logged rate-limited.
    fn close_slow_consumer(&mut self, key: usize, id: crate::ConnId) {
        WorkerCounters::bump(&self.counters().slow_consumers_closed);
        if let Verdict::Log { suppressed } = self.logs.slow_consumers.check(Instant::now()) {
            log::warn!(
                "worker {}: connection {id} is a slow consumer (its queue reached {} bytes): closing it with 1008{}",
                self.index,
                self.handle.config().max_backpressure,
                log_limit::more(suppressed)
            );
        }
        // begin_close lists it as dirty: the close frame goes out next turn.
        self.begin_close(key, Ending::slow_consumer());
    }

    /// Logs (rate-limited) a connection that starts losing frames.
    fn log_backlogged(&mut self, id: crate::ConnId) {
        if let Verdict::Log { suppressed } = self.logs.drops.check(Instant::now()) {
            log::warn!(
                "worker {}: connection {id} is a slow consumer: dropping frames for it until it catches up{}",
                self.index,
                log_limit::more(suppressed)
            );
        }
    }

    /// Writes every socket that has something for it this turn.
    pub(super) fn flush(&mut self) {
        let limit = self.limit();
        let now = self.now();
        let batch = std::mem::take(&mut self.batch);
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut failed: Vec<(usize, Flushed)> = Vec::new();
        let shared = &self.handle.shared;
        let counters = &shared.counters[self.index];
        let mut ctx = Settle {
            limit,
            now,
            registry: &shared.registry,
            pressure: &mut self.pressure,
            dirty: &mut self.dirty,
            failed: &mut failed,
            backlogged: Vec::new(),
            written: 0,
        };
        if batch.is_empty() {
            for &key in &dirty {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.flags.set(Flag::Dirty, false);
                    let flushed = flush_one(conn, &[], limit, counters);
                    settle(key, conn, flushed, &mut ctx);
                }
            }
        } else {
            for (key, conn) in self.conns.iter_mut() {
                let wanted = conn.flags.is(Flag::Dirty) || conn.is_open();
                conn.flags.set(Flag::Dirty, false);
                if wanted {
                    let items = if conn.is_open() { &batch[..] } else { &[] };
                    let flushed = flush_one(conn, items, limit, counters);
                    settle(key, conn, flushed, &mut ctx);
                }
                conn.cursor = 0;
            }
            WorkerCounters::add(&counters.frames_out, batch.len() as u64 * self.ids.len() as u64);
            counters.observe_broadcasts(&batch);
        }
        WorkerCounters::add(&counters.bytes_out, ctx.written as u64);
        for id in std::mem::take(&mut ctx.backlogged) {
            self.log_backlogged(id);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        let mut batch = batch;
        batch.clear();
        self.batch = batch;
        self.settle_failures(failed);
    }

    fn settle_failures(&mut self, failed: Vec<(usize, Flushed)>) {
        for (key, flushed) in failed {
            if let Some(e) = flushed.error {
                self.on_transport_error(key, &e);
            } else if flushed.slow_consumer {
                let id = self.conns.get(key).map_or(crate::ConnId::from_u64(0), |c| c.id);
                self.close_slow_consumer(key, id);
            }
        }
    }
}

/// Moves this turn's broadcasts that `conn` has not been given yet into its
/// queue, so that whatever is queued next (a push, a close frame) follows them.
pub(super) fn catch_up<S>(
    conn: &mut Connection<S>,
    batch: &[Broadcast],
    limit: QueueLimit,
    counters: &WorkerCounters,
) -> Enqueued {
    let mut outcome = Enqueued::Queued;
    let id = conn.id;
    for item in batch.iter().skip(conn.cursor as usize).filter(|b| b.except != Some(id)) {
        match limit.enqueue(conn, item.frame.clone(), counters) {
            Enqueued::Queued => {}
            // Reported even when later frames fit again, so the backlog status sees it.
            Enqueued::Dropped => outcome = Enqueued::Dropped,
            Enqueued::SlowConsumer => {
                outcome = Enqueued::SlowConsumer;
                break;
            }
        }
    }
    conn.cursor = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    outcome
}

/// One vectored write of the queue, then of `items`, into at most `N`
/// slots; returns the bytes the socket took (0 when it would block) and the
/// bytes offered.
fn write_chunks<const N: usize, S: Socket>(
    conn: &mut Connection<S>,
    items: &[Broadcast],
) -> io::Result<(usize, usize)> {
    let id = conn.id;
    let mut iov = [IoSlice::new(&[]); N];
    let mut used = conn.queue.fill(&mut iov);
    let mut total: usize = iov[..used].iter().map(|s| s.len()).sum();
    for item in items.iter().filter(|b| b.except != Some(id)) {
        if used == N {
            break;
        }
        iov[used] = IoSlice::new(&item.frame);
        total += item.frame.len();
        used += 1;
    }
    if used == 0 {
        return Ok((0, 0));
    }
    match conn.socket.write_vectored(&iov[..used]) {
        Ok(n) => {
            if n < total {
                conn.flags.set(Flag::Writable, false);
            }
            Ok((n, total))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            conn.flags.set(Flag::Writable, false);
            Ok((0, total))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok((0, total)),
        Err(e) => Err(e),
    }
}

/// Files a flushed connection for the next turn or for error handling, and
/// tells the worker's pressure record how far behind it is.
fn settle<S>(key: usize, conn: &mut Connection<S>, flushed: Flushed, ctx: &mut Settle<'_>) {
    ctx.written += flushed.written;
    if sync_backlog(conn, flushed.dropped, ctx.limit, ctx.registry) {
        ctx.backlogged.push(conn.id);
    }
    if conn.flags.is(Flag::Behind) || !conn.queue.is_empty() {
        let cost = if conn.is_open() { conn.queue.cost() } else { 0 };
        conn.flags.set(
            Flag::Behind,
            ctx.pressure.observe(key, cost, flushed.written > 0, conn.flags.is(Flag::Backlogged), ctx.now),
        );
    }
    let (dirty, failed) = (&mut *ctx.dirty, &mut *ctx.failed);
    if flushed.error.is_some() || flushed.slow_consumer {
        failed.push((key, flushed));
    } else if flushed.more && !conn.flags.is(Flag::Dirty) {
        conn.flags.set(Flag::Dirty, true);
        dirty.push(key);
    }
}

/// Where `settle` files connections.
struct Settle<'a> {
    limit: QueueLimit,
    now: u64,
    registry: &'a Registry,
    pressure: &'a mut Pressure,
    dirty: &'a mut Vec<usize>,
    failed: &'a mut Vec<(usize, Flushed)>,
    /// Connections that started losing frames this flush, to be logged.
    backlogged: Vec<crate::ConnId>,
    written: usize,
}

/// Keeps the registry's view of a connection's backlog current (drop policy
/// only): backlogged from the first dropped frame until the queue is back
/// under half its bound. `push` answers `Dropped` from that view. Returns
/// true when the connection has just become backlogged.
fn sync_backlog<S>(conn: &mut Connection<S>, dropped: bool, limit: QueueLimit, registry: &Registry) -> bool {
    if limit.policy != SlowConsumerPolicy::Drop || !conn.is_open() {
        return false;
    }
    let backlogged = if conn.flags.is(Flag::Backlogged) { conn.queue.cost() > limit.max_bytes / 2 } else { dropped };
    let became = backlogged && !conn.flags.is(Flag::Backlogged);
    if backlogged != conn.flags.is(Flag::Backlogged) {
        conn.flags.set(Flag::Backlogged, backlogged);
        let status = if backlogged { ConnStatus::Backlogged } else { ConnStatus::Open };
        registry.set_status(conn.id, status);
    }
    became
}

/// Writes the queue followed by this turn's broadcasts: one `writev` when
/// they fit its slots (the common case), more only while the socket keeps
/// taking everything offered, so a socket with room is never left with
/// bytes queued just because a turn had many frames. Whatever the socket
/// does not take is queued under the limit.
pub(crate) fn flush_one<S: Socket>(
    conn: &mut Connection<S>,
    batch: &[Broadcast],
    limit: QueueLimit,
    counters: &WorkerCounters,
) -> Flushed {
    let mut flushed = Flushed::default();
    let mut from = (conn.cursor as usize).min(batch.len());
    let id = conn.id;
    while conn.flags.is(Flag::Writable) {
        // Most turns give a socket a handful of chunks: don't pay for
        // initialising a full-size iovec array each time.
        let needed = conn.queue.len() + (batch.len() - from);
        if needed == 0 {
            break;
        }
        let result = if needed <= SMALL_IOV {
            write_chunks::<SMALL_IOV, S>(conn, &batch[from..])
        } else {
            write_chunks::<MAX_IOV, S>(conn, &batch[from..])
        };
        let (written, offered) = match result {
            Ok(counts) => counts,
            Err(e) => {
                flushed.error = Some(e);
                return flushed;
            }
        };
        flushed.written += written;
        // Account for the broadcasts the socket took; a frame it took in
        // part must be finished whatever the bound.
        let mut rest = written - conn.queue.consume(written);
        while let Some(item) = batch.get(from) {
            let len = item.frame.len();
            if item.except == Some(id) {
                from += 1;
            } else if rest >= len {
                rest -= len;
                from += 1;
            } else {
                if rest > 0 {
                    conn.queue.push_started(item.frame.slice(rest..));
                    from += 1;
                }
                break;
            }
        }
        if written < offered || offered == 0 {
            break;
        }
    }
    // The rest are queued like any broadcast a connection has not been given yet.
    conn.cursor = u32::try_from(from).unwrap_or(u32::MAX);
    let caught_up = catch_up(conn, batch, limit, counters);
    // This turn's broadcasts are all written or queued now.
    conn.cursor = 0;
    match caught_up {
        Enqueued::Queued => {}
        Enqueued::Dropped => flushed.dropped = true,
        Enqueued::SlowConsumer => {
            flushed.slow_consumer = true;
            return flushed;
        }
    }
    if conn.queue.is_empty() {
        if let Phase::Closing { fin_sent } = &mut conn.phase {
            if !*fin_sent {
                *fin_sent = true;
                // Half-close: the client sees EOF after our last frame.
                if let Err(e) = conn.socket.shutdown_write() {
                    if e.kind() != io::ErrorKind::NotConnected {
                        flushed.error = Some(e);
                    }
                }
            }
        }
    }
    flushed.more = !conn.queue.is_empty() && conn.flags.is(Flag::Writable);
    flushed
}

#[cfg(test)]
#[path = "writing_tests.rs"]
mod tests;
