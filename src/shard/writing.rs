//! Writing sockets: one `writev` per socket per turn, bounded queues.

use std::io::{self, IoSlice};

use bytes::Bytes;

use super::connection::{Connection, Phase, Socket};
use super::lifecycle::Ending;
use super::{Broadcast, Worker};
use crate::config::SlowConsumerPolicy;
use crate::handler::Handler;
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
    /// Queues `frame` unless that would pass the bound. An empty queue takes
    /// any one frame: a client with nothing pending is not slow, even when
    /// the frame alone is larger than the bound (a message of
    /// `max_message_size` plus its header, with both limits at 1 MiB).
    fn enqueue<S>(self, conn: &mut Connection<S>, frame: Bytes, counters: &WorkerCounters) -> Enqueued {
        if conn.queue.is_empty() || conn.queue.bytes() + frame.len() <= self.max_bytes {
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

/// What one socket's flush left to do.
#[derive(Default)]
pub(crate) struct Flushed {
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
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    pub(super) fn on_writable(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.writable = true;
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
        sync_backlog(conn, dropped, limit, &self.handle.shared.registry);
        if outcome == Enqueued::SlowConsumer {
            WorkerCounters::bump(&counters.slow_consumers_closed);
            self.begin_close(key, Ending::slow_consumer());
            return;
        }
        self.mark_dirty(key);
    }

    /// Writes every socket that has something for it this turn.
    pub(super) fn flush(&mut self) {
        let limit = self.limit();
        let batch = std::mem::take(&mut self.batch);
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut failed: Vec<(usize, Flushed)> = Vec::new();
        let shared = &self.handle.shared;
        let counters = &shared.counters[self.index];
        let mut ctx = Settle { limit, registry: &shared.registry, dirty: &mut self.dirty, failed: &mut failed };
        if batch.is_empty() {
            for &key in &dirty {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.dirty = false;
                    let flushed = flush_one(conn, &[], limit, counters);
                    settle(key, conn, flushed, &mut ctx);
                }
            }
        } else {
            for (key, conn) in self.conns.iter_mut() {
                let wanted = conn.dirty || conn.is_open();
                conn.dirty = false;
                if wanted {
                    let items = if conn.is_open() { &batch[..] } else { &[] };
                    let flushed = flush_one(conn, items, limit, counters);
                    settle(key, conn, flushed, &mut ctx);
                }
                conn.cursor = 0;
            }
            WorkerCounters::add(&counters.frames_out, batch.len() as u64 * self.ids.len() as u64);
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
                WorkerCounters::bump(&self.counters().slow_consumers_closed);
                // begin_close lists it as dirty: the close frame goes out next turn.
                self.begin_close(key, Ending::slow_consumer());
            }
        }
        self.apply_local();
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
/// slots; returns the bytes the socket took (0 when it would block).
fn write_chunks<const N: usize, S: Socket>(conn: &mut Connection<S>, items: &[Broadcast]) -> io::Result<usize> {
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
        return Ok(0);
    }
    match conn.socket.write_vectored(&iov[..used]) {
        Ok(n) => {
            if n < total {
                conn.writable = false;
            }
            Ok(n)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            conn.writable = false;
            Ok(0)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Files a flushed connection for the next turn or for error handling.
fn settle<S>(key: usize, conn: &mut Connection<S>, flushed: Flushed, ctx: &mut Settle<'_>) {
    sync_backlog(conn, flushed.dropped, ctx.limit, ctx.registry);
    let (dirty, failed) = (&mut *ctx.dirty, &mut *ctx.failed);
    if flushed.error.is_some() || flushed.slow_consumer {
        failed.push((key, flushed));
    } else if flushed.more && !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

/// Where `settle` files connections.
struct Settle<'a> {
    limit: QueueLimit,
    registry: &'a Registry,
    dirty: &'a mut Vec<usize>,
    failed: &'a mut Vec<(usize, Flushed)>,
}

/// Keeps the registry's view of a connection's backlog current (drop policy
/// only): backlogged from the first dropped frame until the queue is back
/// under half its bound. `push` answers `Dropped` from that view.
fn sync_backlog<S>(conn: &mut Connection<S>, dropped: bool, limit: QueueLimit, registry: &Registry) {
    if limit.policy != SlowConsumerPolicy::Drop || !conn.is_open() {
        return;
    }
    let backlogged = if conn.backlogged { conn.queue.bytes() > limit.max_bytes / 2 } else { dropped };
    if backlogged != conn.backlogged {
        conn.backlogged = backlogged;
        let status = if backlogged { ConnStatus::Backlogged } else { ConnStatus::Open };
        registry.set_status(conn.id, status);
    }
}

/// One `writev` of the queue followed by this turn's broadcasts; whatever the
/// socket does not take is queued under the limit.
pub(crate) fn flush_one<S: Socket>(
    conn: &mut Connection<S>,
    batch: &[Broadcast],
    limit: QueueLimit,
    counters: &WorkerCounters,
) -> Flushed {
    let mut flushed = Flushed::default();
    let from = (conn.cursor as usize).min(batch.len());
    let id = conn.id;
    let mut written = 0;
    if conn.writable {
        // Most turns give a socket a handful of chunks: don't pay for
        // initialising a full-size iovec array each time.
        let needed = conn.queue.len() + (batch.len() - from);
        let result = if needed <= SMALL_IOV {
            write_chunks::<SMALL_IOV, S>(conn, &batch[from..])
        } else {
            write_chunks::<MAX_IOV, S>(conn, &batch[from..])
        };
        match result {
            Ok(n) => written = n,
            Err(e) => {
                flushed.error = Some(e);
                return flushed;
            }
        }
    }
    // Account for the broadcasts the socket took; the rest are queued like
    // any broadcast a connection has not been given yet.
    let mut rest = written - conn.queue.consume(written);
    let mut unwritten = batch.len();
    for (i, item) in batch.iter().enumerate().skip(from).filter(|(_, b)| b.except != Some(id)) {
        let len = item.frame.len();
        if rest >= len {
            rest -= len;
        } else if rest > 0 {
            // A frame the socket took in part must be finished whatever the bound.
            conn.queue.push_started(item.frame.slice(rest..));
            rest = 0;
        } else {
            unwritten = i;
            break;
        }
    }
    conn.cursor = u32::try_from(unwritten).unwrap_or(u32::MAX);
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
    flushed.more = !conn.queue.is_empty() && conn.writable;
    flushed
}

#[cfg(test)]
#[path = "writing_tests.rs"]
mod tests;
