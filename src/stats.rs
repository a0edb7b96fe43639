//! Counters every worker keeps, summed on demand.
//!
//! Each worker writes only its own cache-line-aligned block with relaxed
//! atomics, so counting costs no contention on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's counters.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    pub(crate) slow_consumers_closed: AtomicU64,
    pub(crate) refused_over_limit: AtomicU64,
    pub(crate) refused_handshakes: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

impl WorkerCounters {
    /// Adds one to a counter of this worker.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter of this worker.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A snapshot of the server's counters, summed over workers.
///
/// Counters only grow; take two snapshots and subtract for rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open WebSocket connections now.
    pub connections: usize,
    /// Open WebSocket connections now, per worker.
    pub connections_per_worker: Vec<usize>,
    /// TCP connections accepted since start.
    pub accepted: u64,
    /// Upgrades completed since start.
    pub opened: u64,
    /// Complete messages received from clients.
    pub messages_in: u64,
    /// Frames queued to clients (data and control).
    pub frames_out: u64,
    /// Frames dropped for a full send queue (`--slow-consumer drop`).
    pub frames_dropped: u64,
    /// Connections closed with 1008 for a full send queue (`--slow-consumer close`).
    pub slow_consumers_closed: u64,
    /// Upgrades refused with 503 because `max_connections` was reached.
    pub refused_over_limit: u64,
    /// Requests refused with another HTTP error (bad handshake, unknown path).
    pub refused_handshakes: u64,
    /// Connections closed for a protocol violation (1002, 1007, 1009).
    pub protocol_errors: u64,
    /// Connections dropped for not finishing their upgrade in time.
    pub handshake_timeouts: u64,
    /// Connections closed for silence past the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed with 1008 for sending past `max_message_rate`.
    pub rate_limited: u64,
}

impl Stats {
    /// Sums the workers' counters into a snapshot.
    pub(crate) fn collect(workers: &[WorkerCounters], per_worker: Vec<usize>) -> Stats {
        let sum = |f: fn(&WorkerCounters) -> &AtomicU64| -> u64 {
            workers.iter().map(|w| f(w).load(Ordering::Relaxed)).sum()
        };
        Stats {
            connections: per_worker.iter().sum(),
            connections_per_worker: per_worker,
            accepted: sum(|w| &w.accepted),
            opened: sum(|w| &w.opened),
            messages_in: sum(|w| &w.messages_in),
            frames_out: sum(|w| &w.frames_out),
            frames_dropped: sum(|w| &w.frames_dropped),
            slow_consumers_closed: sum(|w| &w.slow_consumers_closed),
            refused_over_limit: sum(|w| &w.refused_over_limit),
            refused_handshakes: sum(|w| &w.refused_handshakes),
            protocol_errors: sum(|w| &w.protocol_errors),
            handshake_timeouts: sum(|w| &w.handshake_timeouts),
            idle_timeouts: sum(|w| &w.idle_timeouts),
            rate_limited: sum(|w| &w.rate_limited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_sums_every_worker() {
        let workers = [WorkerCounters::default(), WorkerCounters::default()];
        WorkerCounters::bump(&workers[0].frames_dropped);
        WorkerCounters::bump(&workers[1].frames_dropped);
        WorkerCounters::bump(&workers[1].opened);
        let stats = Stats::collect(&workers, vec![1, 2]);
        assert_eq!(stats.frames_dropped, 2);
        assert_eq!(stats.opened, 1);
        assert_eq!(stats.connections, 3);
    }
}
