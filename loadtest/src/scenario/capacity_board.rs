//! `CapacityBoard`: where the threads of one process pool their capacity-probe counts. It is the
//! one piece of state the overload threads share besides the live counters, and it is touched
//! once per thread at the end of the probe and polled until every thread has reported.

use std::sync::Mutex;

/// Probe counts pooled over every thread of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeTotals {
    /// Deliveries received in the probe's measuring half.
    pub deliveries: u64,
    /// Connections open when the measuring half began.
    pub receivers: u64,
}

/// Collects one report per thread; the totals are known once all have reported.
#[derive(Debug)]
pub struct CapacityBoard {
    threads: usize,
    tally: Mutex<(ProbeTotals, usize)>,
}

impl CapacityBoard {
    /// A board expecting `threads` reports.
    pub fn new(threads: usize) -> CapacityBoard {
        CapacityBoard { threads, tally: Mutex::new((ProbeTotals::default(), 0)) }
    }

    /// Adds one thread's counts. Each thread must report exactly once.
    pub fn report(&self, mine: ProbeTotals) {
        let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tally.0.deliveries += mine.deliveries;
        tally.0.receivers += mine.receivers;
        tally.1 += 1;
    }

    /// The pooled totals once every thread has reported, the same for every caller.
    pub fn totals(&self) -> Option<ProbeTotals> {
        let tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (tally.1 >= self.threads).then_some(tally.0)
    }
}

/// Messages per second fully delivered: deliveries per second over the receivers each message
/// goes to (every connection but its publisher, unless the server echoes to the publisher too).
pub fn capacity(totals: ProbeTotals, window_ns: u64, expect_echo: bool) -> f64 {
    let per_message = totals.receivers.saturating_sub(u64::from(!expect_echo));
    if per_message == 0 || window_ns == 0 {
        return 0.0;
    }
    totals.deliveries as f64 * 1e9 / window_ns as f64 / per_message as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_wait_for_every_thread() {
        let board = CapacityBoard::new(2);
        board.report(ProbeTotals { deliveries: 100, receivers: 5 });
        assert_eq!(board.totals(), None);
        board.report(ProbeTotals { deliveries: 50, receivers: 6 });
        assert_eq!(board.totals(), Some(ProbeTotals { deliveries: 150, receivers: 11 }));
    }

    #[test]
    fn capacity_is_messages_fully_delivered_per_second() {
        // 11 connections: each message reaches the 10 that did not publish it.
        let t = ProbeTotals { deliveries: 20_000, receivers: 11 };
        assert_eq!(capacity(t, 2_000_000_000, false), 1_000.0);
        assert!((capacity(t, 2_000_000_000, true) - 909.09).abs() < 0.01);
        assert_eq!(capacity(ProbeTotals { deliveries: 5, receivers: 1 }, 1, false), 0.0);
    }
}
