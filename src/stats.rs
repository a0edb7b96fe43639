//! Counters, gauges and the latency histogram every worker keeps, summed
//! on demand for [`Stats`] and for `/metrics`.
//!
//! Each worker writes only its own cache-line-aligned block with relaxed
//! atomics, so counting costs no contention on the hot path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::bus::Broadcast;

/// Why a request did not become a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not HTTP, or framing errors (400).
    Malformed,
    /// Head or body over its limit (413, 431).
    TooLarge,
    /// A valid request that is not a valid upgrade (400, 405, 426).
    BadUpgrade,
    /// No WebSocket endpoint at the path (404).
    NotFound,
    /// The application's `on_upgrade` refused it.
    Rejected,
    /// The request did not arrive within the handshake timeout.
    Timeout,
    /// `max_connections` reached (503).
    OverLimit,
    /// The server is shutting down (503).
    Draining,
    /// A browser origin not in `allowed_origins` (403).
    Origin,
    /// The client address is over a per-address limit (429).
    PerIp,
}

impl Refusal {
    /// Every cause, in the order of [`WorkerCounters::refusals`].
    pub(crate) const ALL: [Refusal; 10] = [
        Refusal::Malformed,
        Refusal::TooLarge,
        Refusal::BadUpgrade,
        Refusal::NotFound,
        Refusal::Rejected,
        Refusal::Timeout,
        Refusal::OverLimit,
        Refusal::Draining,
        Refusal::Origin,
        Refusal::PerIp,
    ];

    /// The label value used in `/metrics`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::TooLarge => "too_large",
            Refusal::BadUpgrade => "bad_upgrade",
            Refusal::NotFound => "not_found",
            Refusal::Rejected => "rejected",
            Refusal::Timeout => "timeout",
            Refusal::OverLimit => "over_limit",
            Refusal::Draining => "draining",
            Refusal::Origin => "origin",
            Refusal::PerIp => "per_ip",
        }
    }

    /// True for the causes that are the client's handshake going wrong
    /// (the others are the server declining a good one).
    pub(crate) fn is_handshake_failure(self) -> bool {
        !matches!(self, Refusal::OverLimit | Refusal::Draining | Refusal::PerIp)
    }
}

/// Upper bounds (seconds) of the broadcast-to-write latency buckets.
pub(crate) const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram of seconds with fixed buckets, in atomics.
#[derive(Default)]
pub(crate) struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last one is +Inf.
    pub(crate) buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of observations in microseconds.
    pub(crate) sum_micros: AtomicU64,
    pub(crate) count: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation of `micros` microseconds.
    pub(crate) fn observe_micros(&self, micros: u64) {
        let seconds = micros as f64 / 1e6;
        let bucket = LATENCY_BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One worker's counters and gauges.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    pub(crate) slow_consumers_closed: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) input_overflows: AtomicU64,
    pub(crate) http_requests: AtomicU64,
    /// Refused requests by cause, in [`Refusal::ALL`] order.
    pub(crate) refusals: [AtomicU64; Refusal::ALL.len()],
    /// Gauge: bytes queued in user space for this worker's connections.
    pub(crate) queued_bytes: AtomicUsize,
    /// Gauge: publishers with input waiting that are not read (pressure).
    pub(crate) paused_reads: AtomicUsize,
    /// Gauge: 1 while the worker is paused by output pressure.
    pub(crate) paused: AtomicUsize,
    /// Gauge: bytes held for incomplete messages and requests.
    pub(crate) partial_bytes: AtomicUsize,
    /// Time from a broadcast call to the flush that wrote it.
    pub(crate) broadcast_latency: LatencyHistogram,
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

    /// Counts one refused request.
    pub(crate) fn refuse(&self, cause: Refusal) {
        let index = Refusal::ALL.iter().position(|&c| c == cause).unwrap_or(0);
        Self::bump(&self.refusals[index]);
    }

    /// Refused requests of `cause` so far.
    pub(crate) fn refusals(&self, cause: Refusal) -> u64 {
        let index = Refusal::ALL.iter().position(|&c| c == cause).unwrap_or(0);
        self.refusals[index].load(Ordering::Relaxed)
    }

    /// Sets a gauge of this worker.
    pub(crate) fn set_gauge(&self, gauge: &AtomicUsize, value: usize) {
        gauge.store(value, Ordering::Relaxed);
    }

    /// Records the latency of every application broadcast in a flushed batch.
    pub(crate) fn observe_broadcasts(&self, batch: &[Broadcast]) {
        self.observe_sent(batch.iter().filter_map(|b| b.sent_at));
    }

    /// Records how long ago each of `sent` was asked for (publishes and
    /// broadcasts alike: the time from the call to the worker's write).
    pub(crate) fn observe_sent(&self, sent: impl Iterator<Item = Instant>) {
        let mut now = None;
        for sent_at in sent {
            let now = *now.get_or_insert_with(Instant::now);
            let micros = u64::try_from(now.saturating_duration_since(sent_at).as_micros()).unwrap_or(u64::MAX);
            self.broadcast_latency.observe_micros(micros);
        }
    }
}

/// A snapshot of the server's counters, summed over workers.
///
/// Counters only grow; take two snapshots and subtract for rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Payload bytes of those messages.
    pub bytes_in: u64,
    /// Frames queued to clients (data and control).
    pub frames_out: u64,
    /// Bytes written to sockets (frames and HTTP responses).
    pub bytes_out: u64,
    /// Frames dropped for a full send queue (`--slow-consumer drop`).
    pub frames_dropped: u64,
    /// Connections closed with 1008 for a full send queue (`--slow-consumer close`).
    pub slow_consumers_closed: u64,
    /// Upgrades refused with 503 because `max_connections` was reached.
    pub refused_over_limit: u64,
    /// Requests refused with another HTTP error (bad handshake, unknown path,
    /// refused by the application).
    pub refused_handshakes: u64,
    /// Connections closed for a protocol violation (1002, 1007, 1009).
    pub protocol_errors: u64,
    /// Connections dropped for not finishing their upgrade in time.
    pub handshake_timeouts: u64,
    /// Connections closed for silence past the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed with 1008 for sending past `max_message_rate`.
    pub rate_limited: u64,
    /// Hook calls that panicked (each closed its connection with 1011).
    pub handler_panics: u64,
    /// Connections closed because the worker held too many bytes of
    /// incomplete messages (`max_worker_partial_bytes`).
    pub input_overflows: u64,
    /// Plain HTTP requests answered.
    pub http_requests: u64,
}

impl Stats {
    /// Sums the workers' counters into a snapshot.
    pub(crate) fn collect(workers: &[WorkerCounters], per_worker: Vec<usize>) -> Stats {
        let sum = |f: fn(&WorkerCounters) -> &AtomicU64| -> u64 {
            workers.iter().map(|w| f(w).load(Ordering::Relaxed)).sum()
        };
        let refused = |pick: fn(Refusal) -> bool| -> u64 {
            Refusal::ALL.iter().filter(|&&c| pick(c)).map(|&c| workers.iter().map(|w| w.refusals(c)).sum::<u64>()).sum()
        };
        Stats {
            connections: per_worker.iter().sum(),
            connections_per_worker: per_worker,
            accepted: sum(|w| &w.accepted),
            opened: sum(|w| &w.opened),
            messages_in: sum(|w| &w.messages_in),
            bytes_in: sum(|w| &w.bytes_in),
            frames_out: sum(|w| &w.frames_out),
            bytes_out: sum(|w| &w.bytes_out),
            frames_dropped: sum(|w| &w.frames_dropped),
            slow_consumers_closed: sum(|w| &w.slow_consumers_closed),
            refused_over_limit: refused(|c| c == Refusal::OverLimit),
            refused_handshakes: refused(|c| c.is_handshake_failure() && c != Refusal::Timeout),
            protocol_errors: sum(|w| &w.protocol_errors),
            handshake_timeouts: refused(|c| c == Refusal::Timeout),
            idle_timeouts: sum(|w| &w.idle_timeouts),
            rate_limited: sum(|w| &w.rate_limited),
            handler_panics: sum(|w| &w.handler_panics),
            input_overflows: sum(|w| &w.input_overflows),
            http_requests: sum(|w| &w.http_requests),
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
        workers[0].refuse(Refusal::Timeout);
        workers[1].refuse(Refusal::NotFound);
        workers[1].refuse(Refusal::OverLimit);
        let stats = Stats::collect(&workers, vec![1, 2]);
        assert_eq!(stats.frames_dropped, 2);
        assert_eq!(stats.opened, 1);
        assert_eq!(stats.connections, 3);
        assert_eq!((stats.handshake_timeouts, stats.refused_handshakes, stats.refused_over_limit), (1, 1, 1));
    }

    #[test]
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        let h = LatencyHistogram::default();
        h.observe_micros(400);
        h.observe_micros(500);
        h.observe_micros(501);
        h.observe_micros(60_000_000);
        let counts: Vec<u64> = h.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        assert_eq!(counts[0], 2, "0.4 ms and 0.5 ms are both <= 0.0005 s");
        assert_eq!(counts[1], 1);
        assert_eq!(counts[LATENCY_BUCKETS.len()], 1, "a minute is past the last bound");
        assert_eq!(h.count.load(Ordering::Relaxed), 4);
        assert_eq!(h.sum_micros.load(Ordering::Relaxed), 60_001_401);
    }
}
