//! `Probe`: one thread's part of the `overload` capacity probe.
//!
//! Publishers send "as fast as the server delivers": each keeps at most `limit` messages in
//! flight, where a message counts as delivered once this thread's receivers have had their
//! share of it. Sending as fast as the server merely *reads* would be wrong for a fan-out server,
//! which reads far faster than it delivers and would only pile the difference up in its send
//! queues (and close slow consumers).
//!
//! How many messages must be in flight to keep a server busy depends on the round trip, which
//! with 10,000 receivers can be hundreds of milliseconds before the server is anywhere near
//! saturated. So during the probe's first half the limit doubles every interval in which the
//! delivery rate still grew by a tenth, and stops growing once it does not; the second half runs
//! at that limit and its delivery rate is the capacity. The limit never lets more than
//! `MAX_BACKLOG_BYTES` pile up per connection, well under common per-connection send-queue
//! limits (fanout's default is 1 MiB), so the probe itself does not trip a slow-consumer policy.

use std::sync::Arc;

use crate::client::Conn;
use crate::overload_plan::OverloadPlan;
use crate::overload_stats::ProbePartial;
use crate::scenario::capacity_board::{CapacityBoard, ProbeTotals};

/// Deliveries the probe starts with in flight over all publishers.
const START_DELIVERIES: u64 = 262_144;
/// Bytes of probe messages allowed in flight towards one receiver at most.
const MAX_BACKLOG_BYTES: u64 = 256 << 10;
/// How often the limit is reconsidered in the first half.
const INTERVAL_NS: u64 = 250_000_000;
/// Growth that counts as "still growing".
const GROWTH: f64 = 1.1;
/// Intervals without growth after which the limit stays put.
const STALLS: u32 = 2;

/// The probe state of one thread.
pub struct Probe {
    window: (u64, u64),
    limit: u64,
    max_limit: u64,
    /// Growth search: interval start, deliveries in it, best rate seen, intervals without growth.
    interval: (u64, u64),
    best_rate: f64,
    stalls: u32,
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
        let frame = o.size as u64 + 14;
        let max_limit = (MAX_BACKLOG_BYTES / (frame * o.publishers)).max(1);
        let limit = (START_DELIVERIES / (connections * o.publishers).max(1)).clamp(1, max_limit);
        Probe {
            window: o.probe_window(),
            limit,
            max_limit,
            interval: (o.probe_start, 0),
            best_rate: 0.0,
            stalls: 0,
            sent: vec![0; local_publishers],
            delivered: vec![0; local_publishers],
            reported: o.probe_ns == 0,
            st: ProbePartial { in_flight_limit: limit, ..ProbePartial::default() },
        }
    }

    /// How many more probe messages local publisher `pi` may send now, given the receivers on
    /// this thread that get its messages. A thread without such receivers cannot see deliveries:
    /// its publishers send one window and no more, which can only make the estimate low.
    pub fn allowance(&self, pi: usize, local_receivers: u64) -> u64 {
        let done = self.delivered[pi].checked_div(local_receivers).unwrap_or(0);
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
        self.interval.1 += 1;
        if now >= self.window.0 && now < self.window.1 {
            self.st.deliveries += 1;
        }
        if sent_ns >= self.window.0 && sent_ns < self.window.1 {
            self.st.latency.record(now.saturating_sub(sent_ns));
        }
    }

    /// First half: doubles the in-flight limit while the delivery rate keeps growing.
    pub fn adapt(&mut self, now: u64) {
        let (start, count) = self.interval;
        if now >= self.window.0 || self.stalls >= STALLS || now < start + INTERVAL_NS {
            return;
        }
        let rate = count as f64 / (now - start) as f64;
        if rate > self.best_rate * GROWTH {
            self.best_rate = rate;
            self.stalls = 0;
            self.limit = (self.limit * 2).min(self.max_limit);
            self.st.in_flight_limit = self.limit;
        } else {
            self.stalls += 1;
        }
        self.interval = (now, 0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> OverloadPlan {
        OverloadPlan {
            publishers: 2,
            size: 50,
            expect_echo: false,
            capacity: None,
            multipliers: vec![1.0],
            step_ns: 1_000_000_000,
            probe_ns: 4_000_000_000,
            probe_start: 0,
            start: 5_000_000_000,
        }
    }

    #[test]
    fn the_limit_doubles_while_deliveries_grow_then_holds() {
        let mut p = Probe::new(&plan(), 10_000, 2);
        assert_eq!(p.limit, 13, "262,144 deliveries over 10,000 x 2");
        let mut now = 0;
        let mut step = |p: &mut Probe, deliveries: u64| {
            (0..deliveries).for_each(|_| p.on_delivery(None, 0, now));
            now += INTERVAL_NS;
            p.adapt(now);
            p.limit
        };
        assert_eq!(step(&mut p, 1000), 26);
        assert_eq!(step(&mut p, 2000), 52);
        assert_eq!(step(&mut p, 2050), 52, "under 10% more: a stall");
        assert_eq!(step(&mut p, 4000), 104, "growth again resets the stall count");
        assert_eq!(step(&mut p, 4000), 104);
        assert_eq!(step(&mut p, 4000), 104);
        assert_eq!(step(&mut p, 9000), 104, "two stalls in a row: the limit holds for good");
        assert_eq!(p.st.in_flight_limit, 104);
    }

    #[test]
    fn the_limit_respects_the_backlog_cap_and_deliveries() {
        let mut p = Probe::new(&plan(), 10, 2);
        // 256 KiB over 2 publishers' 64-byte frames: at most 2048 messages each.
        assert_eq!((p.limit, p.max_limit), (2048, 2048));
        assert_eq!(p.allowance(0, 4), 2048);
        (0..2048).for_each(|_| p.on_sent(0));
        assert_eq!(p.allowance(0, 4), 0);
        (0..8).for_each(|_| p.on_delivery(Some(0), 0, 0));
        assert_eq!(p.allowance(0, 4), 2, "8 deliveries to 4 receivers: 2 messages done");
        assert_eq!(p.allowance(0, 0), 0, "no local receivers: one window only");
    }
}
