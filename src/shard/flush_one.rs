//! One socket's write: its queue, then this turn's broadcasts, in one
//! `writev` (more only while the socket keeps taking everything), and the
//! bounded queueing of what it did not take.

use std::io::{self, IoSlice};

use bytes::Bytes;

use super::connection::{Connection, Flag, Phase, Socket};
use super::send_queue::SendQueue;
use crate::bus::Broadcast;
use crate::config::SlowConsumerPolicy;
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
    pub(super) fn enqueue<S>(self, conn: &mut Connection<S>, frame: Bytes, counters: &WorkerCounters) -> Enqueued {
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
    let batch = if conn.flags.is(Flag::NoBroadcasts) { &[][..] } else { batch };
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
    if conn.flags.is(Flag::Writable) && conn.socket.has_pending_output() {
        // What the socket took last time but the kernel did not (TLS
        // records) goes before anything new.
        match conn.socket.flush_pending() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.flags.set(Flag::Writable, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                flushed.error = Some(e);
                return flushed;
            }
        }
    }
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
    if conn.socket.has_pending_output() {
        // The kernel refused part of it: wait for the writable edge.
        conn.flags.set(Flag::Writable, false);
    }
    if conn.queue.is_empty() && !conn.socket.has_pending_output() {
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
#[path = "flush_one_tests.rs"]
mod tests;
