//! Writing sockets, the worker's side: marking sockets for this turn's
//! flush, pushes, the flush over every socket, and what each flush left to
//! do (errors, slow consumers, pressure, backlog status). The write of one
//! socket is `flush_one`.

use std::time::Instant;

use bytes::Bytes;

use super::coalesce::Joined;
use super::connection::{Connection, Flag, Phase};
use super::flush_one::{catch_up, flush_one, Enqueued, Flushed, QueueLimit};
use super::lifecycle::Ending;
use super::pressure::Pressure;
use super::transport::Transport;
use super::Worker;
use crate::bus::Broadcast;
use crate::config::SlowConsumerPolicy;
use crate::handler::Handler;
use crate::log_limit::{self, Verdict};
use crate::registry::{ConnStatus, Registry};
use crate::stats::WorkerCounters;
use crate::ws::deflate::Deflater;

impl<H: Handler, T: Transport> Worker<H, T> {
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
            let waiting = !conn.queue.is_empty() || conn.socket.has_pending_output();
            if waiting || matches!(conn.phase, Phase::Closing { fin_sent: false }) {
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
        let frame = match conn.flags.is(Flag::Deflate) {
            true => self.deflater.deflate_frame(&frame, 15).unwrap_or(frame),
            false => frame,
        };
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
    pub(super) fn close_slow_consumer(&mut self, key: usize, id: crate::ConnId) {
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
        // Counted once it is out of the registry: whoever reads the count
        // finds the connection gone.
        WorkerCounters::bump(&self.counters().slow_consumers_closed);
    }

    /// Logs (rate-limited) a connection that starts losing frames.
    pub(super) fn log_backlogged(&mut self, id: crate::ConnId) {
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
        self.deliver_publishes();
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
            let joined = Joined::of(&batch);
            // The turn's broadcasts compressed, once, when the first
            // compressing connection wants them.
            let mut deflated: Option<(Vec<Broadcast>, Option<Joined>)> = None;
            let mut receivers = 0u64;
            for (key, conn) in self.conns.iter_mut() {
                let takes_batch = conn.is_open() && !conn.flags.is(Flag::NoBroadcasts);
                let wanted = conn.flags.is(Flag::Dirty) || takes_batch;
                conn.flags.set(Flag::Dirty, false);
                receivers += u64::from(takes_batch);
                if wanted {
                    let (batch, joined) = match conn.flags.is(Flag::Deflate) && takes_batch {
                        true => {
                            let (batch, joined) =
                                deflated.get_or_insert_with(|| deflate_batch(&batch, &mut self.deflater));
                            (&batch[..], &*joined)
                        }
                        false => (&batch[..], &joined),
                    };
                    let items = match joined {
                        _ if !takes_batch => &[][..],
                        // A connection given part of the turn already keeps its place in it.
                        Some(joined) if conn.cursor == 0 => joined.for_conn(conn.id).unwrap_or(batch),
                        _ => batch,
                    };
                    let flushed = flush_one(conn, items, limit, counters);
                    settle(key, conn, flushed, &mut ctx);
                }
                conn.cursor = 0;
            }
            WorkerCounters::add(&counters.frames_out, batch.len() as u64 * receivers);
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

/// Files a flushed connection for the next turn or for error handling, and
/// tells the worker's pressure record how far behind it is.
/// `batch` with each frame compressed where that pays (the others as they
/// are), frame for frame, so a connection's place in the turn holds in both.
/// A frame another worker compressed already is taken as it made it.
fn deflate_batch(batch: &[Broadcast], deflater: &mut Deflater) -> (Vec<Broadcast>, Option<Joined>) {
    let deflated: Vec<Broadcast> = batch
        .iter()
        .map(|b| Broadcast {
            frame: b.deflated.get_or_deflate(&b.frame, |frame| deflater.deflate_frame(frame, 15)),
            ..b.clone()
        })
        .collect();
    let joined = Joined::of(&deflated);
    (deflated, joined)
}

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
pub(super) fn sync_backlog<S>(conn: &mut Connection<S>, dropped: bool, limit: QueueLimit, registry: &Registry) -> bool {
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
