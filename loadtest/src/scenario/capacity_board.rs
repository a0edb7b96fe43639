//! `CapacityBoard`: where the threads of one process pool their capacity-probe counts. It is the
//! one piece of state the overload threads share besides the live counters, and it is touched
//! once per thread at the end of the probe and polled until the totals are known.
//!
//! In a `--processes` run each child's board relays its process's sum to the parent instead,
//! and learns the totals over all processes when the parent sends them back.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Hands a process's probe sum on (to the parent of a `--processes` run).
pub type Relay = Box<dyn Fn(ProbeTotals) + Send + Sync>;

/// Probe counts pooled over threads (and processes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTotals {
    /// Deliveries received in the probe's measuring half.
    pub deliveries: u64,
    /// Connections open when the measuring half began.
    pub receivers: u64,
}

/// Collects one report per thread; the totals are known once all have reported (and, when
/// relaying, once the totals over all processes came back).
pub struct CapacityBoard {
    threads: usize,
    tally: Mutex<(ProbeTotals, usize)>,
    totals: Mutex<Option<ProbeTotals>>,
    relay: Option<Relay>,
}

impl CapacityBoard {
    /// A board expecting `threads` reports, whose sum is the answer.
    pub fn new(threads: usize) -> CapacityBoard {
        CapacityBoard { threads, tally: Mutex::new((ProbeTotals::default(), 0)), totals: Mutex::new(None), relay: None }
    }

    /// A board expecting `threads` reports whose sum goes to `relay`; the answer arrives through
    /// [`CapacityBoard::set_totals`].
    pub fn relayed(threads: usize, relay: Relay) -> CapacityBoard {
        CapacityBoard { relay: Some(relay), ..CapacityBoard::new(threads) }
    }

    /// Adds one thread's counts. Each thread must report exactly once.
    pub fn report(&self, mine: ProbeTotals) {
        let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tally.0.deliveries += mine.deliveries;
        tally.0.receivers += mine.receivers;
        tally.1 += 1;
        if tally.1 == self.threads {
            match &self.relay {
                Some(relay) => relay(tally.0),
                None => self.set_totals(tally.0),
            }
        }
    }

    /// Sets the totals every thread will read (the sum over all processes, when relaying).
    pub fn set_totals(&self, totals: ProbeTotals) {
        *self.totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(totals);
    }

    /// The pooled totals once known, the same for every caller.
    pub fn totals(&self) -> Option<ProbeTotals> {
        *self.totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    fn a_relayed_board_hands_its_sum_on_and_waits_for_the_answer() {
        let sent = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&sent);
        let board = CapacityBoard::relayed(2, Box::new(move |t| seen.lock().unwrap().push(t)));
        board.report(ProbeTotals { deliveries: 1, receivers: 1 });
        board.report(ProbeTotals { deliveries: 2, receivers: 3 });
        assert_eq!(*sent.lock().unwrap(), [ProbeTotals { deliveries: 3, receivers: 4 }]);
        assert_eq!(board.totals(), None, "the process's own sum is not the answer");
        board.set_totals(ProbeTotals { deliveries: 10, receivers: 9 });
        assert_eq!(board.totals(), Some(ProbeTotals { deliveries: 10, receivers: 9 }));
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
