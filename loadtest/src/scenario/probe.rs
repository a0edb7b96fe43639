//! `Probe`: one thread's part of the `overload` capacity probe.
//!
//! Publishers send "as fast as the server delivers": each keeps at most `limit` messages in
//! flight, where a message counts as delivered once this thread's receivers have had their
//! share of it. Sending as fast as the server merely *reads* would be wrong for a fan-out server,
//! which reads far faster than it delivers and would only pile the difference up in its send
//! queues (and close slow consumers). Deliveries received in the probe's second half, divided by
//! the receivers per message, are the capacity.

use std::sync::Arc;

use crate::client::Conn;
use crate::overload_plan::OverloadPlan;
use crate::overload_stats::ProbePartial;
use crate::scenario::capacity_board::{CapacityBoard, ProbeTotals};

/// Deliveries the probe keeps in flight over all publishers: enough to keep a server busy for
/// tens of milliseconds at millions of deliveries per second, little enough not to fill queues.
const IN_FLIGHT_DELIVERIES: u64 = 262_144;
/// Bounds of the per-publisher in-flight limit.
const MIN_IN_FLIGHT: u64 = 2;
const MAX_IN_FLIGHT: u64 = 4096;

/// The probe state of one thread.
pub struct Probe {
    window: (u64, u64),
    limit: u64,
    /// By local publisher: probe messages sent, and deliveries of them to this thread's receivers.
    sent: Vec<u64>,
    delivered: Vec<u64>,
    reported: bool,
    /// What this thread measured.
    pub st: ProbePartial,
}

impl Probe {
    /// Probe state for a thread with `local_publishers`, in a run of `connections` in total.
    pub fn new(o: &OverloadPlan, connections: u64, local_publishers: usize) -> Probe {
        let limit = (IN_FLIGHT_DELIVERIES / (connections * o.publishers).max(1)).clamp(MIN_IN_FLIGHT, MAX_IN_FLIGHT);
        Probe {
            window: o.probe_window(),
            limit,
            sent: vec![0; local_publishers],
            delivered: vec![0; local_publishers],
            reported: o.probe_ns == 0,
            st: ProbePartial { in_flight_limit: limit, ..ProbePartial::default() },
        }
    }

    /// How many more probe messages local publisher `pi` may send now, given the receivers on
    /// this thread that get its messages. A thread without such receivers cannot see deliveries
    /// and relies on its socket's backpressure alone.
    pub fn allowance(&self, pi: usize, local_receivers: u64) -> u64 {
        if local_receivers == 0 {
            return self.limit;
        }
        let done = self.delivered[pi] / local_receivers;
        self.limit.saturating_sub(self.sent[pi].saturating_sub(done))
    }

    /// Local publisher `pi` sent one probe message.
    pub fn on_sent(&mut self, pi: usize) {
        self.sent[pi] += 1;
        self.st.sent += 1;
    }

    /// A probe message stamped `sent_ns` from local publisher `local_pub` (if it is local)
    /// arrived at `now`.
    pub fn on_delivery(&mut self, local_pub: Option<usize>, sent_ns: u64, now: u64) {
        if let Some(pi) = local_pub {
            self.delivered[pi] += 1;
        }
        if now >= self.window.0 && now < self.window.1 {
            self.st.deliveries += 1;
        }
        if sent_ns >= self.window.0 && sent_ns < self.window.1 {
            self.st.latency.record(now.saturating_sub(sent_ns));
        }
    }

    /// True while the probe sends.
    pub fn running(&self, now: u64) -> bool {
        !self.reported && now < self.window.1
    }

    /// Once the probe is over, reports this thread's counts to the board (once).
    pub fn report_if_due(&mut self, now: u64, conns: &[Conn], board: &Arc<CapacityBoard>) {
        if self.reported || now < self.window.1 {
            return;
        }
        self.reported = true;
        self.st.receivers = conns.iter().filter(|c| c.open_at(self.window.0)).count() as u64;
        board.report(ProbeTotals { deliveries: self.st.deliveries, receivers: self.st.receivers });
    }
}
