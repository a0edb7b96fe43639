//! `Partial`: everything one thread (or one process) measured, in a form that adds up exactly
//! across threads and processes and travels between processes as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::channels::stats::ChannelsPartial;
use crate::hist::Hist;
use crate::overload_stats::OverloadPartial;
use crate::seq::SeqCounts;
use crate::socketio::stats::SocketIoPartial;

/// Counters and histograms of one scenario run, summed over whatever produced them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Partial {
    /// Connections whose `connect` was attempted.
    pub attempted: u64,
    /// Connections that completed the handshake.
    pub opened: u64,
    /// Connections open when measurement started: the receivers that count.
    pub open_at_measure: u64,
    /// Publishers open when measurement started.
    pub publishers_at_measure: u64,
    /// Connections still open when the test began closing them.
    pub open_at_end: u64,
    /// Connections that never opened, by cause.
    pub failures: BTreeMap<String, u64>,
    /// Connections that opened and then ended before the test closed them, by cause.
    pub ended_early: BTreeMap<String, u64>,
    /// Handshake latency (connect call to 101 parsed).
    pub handshake: Hist,
    /// Scenario latency: delivery latency (broadcast) or round-trip time (echo).
    pub latency: Hist,
    /// How late the client itself sent relative to the intended send time.
    pub send_lag: Hist,
    /// Time from the event loop waking to the client reading a socket: the client's own share.
    pub read_delay: Hist,
    /// Measured messages sent.
    pub sent: u64,
    /// Every message sent, warm-up and drain included.
    pub sent_total: u64,
    /// Measured messages scheduled but not sent (publisher gone, or the client fell behind).
    pub unsent: u64,
    /// Measured messages received with a valid header.
    pub received: u64,
    /// Sequence anomalies among received messages.
    pub duplicates: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub reordered: u64,
    /// Sequence numbers skipped at the time of receipt.
    pub gaps: u64,
    /// Messages without our header (welcome messages and the like).
    pub other: u64,
    /// Publishers' own messages echoed back without `--expect-echo`.
    pub self_received: u64,
    /// broadcast `--publish-url`: measured messages that reached a publisher (not deliveries).
    #[serde(default)]
    pub publisher_received: u64,
    /// Messages from the warm-up period (not measured).
    pub warmup_received: u64,
    /// Echo round trips completed in the measurement window.
    pub round_trips: u64,
    /// CPU time per event-loop thread, nanoseconds.
    pub thread_cpu_ns: Vec<u64>,
    /// Wall time per event-loop thread, nanoseconds.
    pub thread_wall_ns: Vec<u64>,
    /// CPU time per process, nanoseconds.
    pub process_cpu_ns: Vec<u64>,
    /// Wall time per process, nanoseconds.
    pub process_wall_ns: Vec<u64>,
    /// Threads per process (to turn CPU time into a share of capacity).
    pub process_threads: Vec<u64>,
    /// TIME_WAIT sockets seen when the client ran out of ports, if it did.
    pub time_wait_seen: u64,
    /// `--deflate`: connections whose handshake agreed to permessage-deflate.
    #[serde(default)]
    pub deflate_agreed: u64,
    /// Compressed messages received (and inflated), warm-up and drain included.
    #[serde(default)]
    pub compressed_messages: u64,
    /// Their payload bytes as they arrived.
    #[serde(default)]
    pub compressed_bytes: u64,
    /// Their payload bytes once inflated.
    #[serde(default)]
    pub inflated_bytes: u64,
    /// The overload scenario's per-step and probe results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overload: Option<OverloadPartial>,
    /// The channels scenario's results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelsPartial>,
    /// The socketio scenario's session counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socketio: Option<SocketIoPartial>,
}

impl Partial {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Partial) {
        self.attempted += other.attempted;
        self.opened += other.opened;
        self.open_at_measure += other.open_at_measure;
        self.publishers_at_measure += other.publishers_at_measure;
        self.open_at_end += other.open_at_end;
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.ended_early {
            *self.ended_early.entry(k.clone()).or_default() += v;
        }
        self.handshake.merge(&other.handshake);
        self.latency.merge(&other.latency);
        self.send_lag.merge(&other.send_lag);
        self.read_delay.merge(&other.read_delay);
        self.sent += other.sent;
        self.unsent += other.unsent;
        self.sent_total += other.sent_total;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.gaps += other.gaps;
        self.other += other.other;
        self.self_received += other.self_received;
        self.publisher_received += other.publisher_received;
        self.warmup_received += other.warmup_received;
        self.round_trips += other.round_trips;
        self.thread_cpu_ns.extend_from_slice(&other.thread_cpu_ns);
        self.thread_wall_ns.extend_from_slice(&other.thread_wall_ns);
        self.process_cpu_ns.extend_from_slice(&other.process_cpu_ns);
        self.process_wall_ns.extend_from_slice(&other.process_wall_ns);
        self.process_threads.extend_from_slice(&other.process_threads);
        self.time_wait_seen = self.time_wait_seen.max(other.time_wait_seen);
        self.deflate_agreed += other.deflate_agreed;
        self.compressed_messages += other.compressed_messages;
        self.compressed_bytes += other.compressed_bytes;
        self.inflated_bytes += other.inflated_bytes;
        if let Some(theirs) = &other.overload {
            self.overload.get_or_insert_with(OverloadPartial::default).merge(theirs);
        }
        if let Some(theirs) = &other.channels {
            self.channels.get_or_insert_with(ChannelsPartial::default).merge(theirs);
        }
        if let Some(theirs) = &other.socketio {
            self.socketio.get_or_insert_with(SocketIoPartial::default).merge(theirs);
        }
    }

    /// Adds sequence-check totals.
    pub fn add_seq(&mut self, c: SeqCounts) {
        self.duplicates += c.duplicates;
        self.reordered += c.reordered;
        self.gaps += c.gaps;
    }

    /// Counts a connection that never opened.
    pub fn fail(&mut self, key: String) {
        *self.failures.entry(key).or_default() += 1;
    }

    /// Counts an open connection that ended early.
    pub fn end_early(&mut self, key: String) {
        *self.ended_early.entry(key).or_default() += 1;
    }

    /// Total connections that never opened.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_maps_and_histograms() {
        let mut a = Partial { attempted: 3, opened: 2, sent: 10, ..Default::default() };
        a.fail("refused".into());
        a.latency.record(1000);
        a.thread_cpu_ns.push(5);
        let mut b = Partial { attempted: 4, opened: 4, sent: 5, time_wait_seen: 7, ..Default::default() };
        b.fail("refused".into());
        b.fail("http 503".into());
        b.latency.record(2000);
        b.thread_cpu_ns.push(6);
        a.merge(&b);
        assert_eq!((a.attempted, a.opened, a.sent, a.time_wait_seen), (7, 6, 15, 7));
        assert_eq!(a.failures["refused"], 2);
        assert_eq!(a.failed(), 3);
        assert_eq!(a.latency.count(), 2);
        assert_eq!(a.thread_cpu_ns, [5, 6]);
        let back: Partial = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.latency.count(), 2);
        assert_eq!(back.failures, a.failures);
    }
}
