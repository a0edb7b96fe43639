//! The saturation search: steps of offered load whose rates are chosen while running. Each step
//! is judged a short gap after it ends: it was *sustained* when the server accepted every event,
//! every delivery owed arrived, and the deliveries received while the step ran reached
//! [`SUSTAINED`] of what the schedule offered (a server that only queues what it cannot send
//! fails here, before any loss). The rate doubles until a step fails, then bisects (by
//! geometric mean) between the best sustained and the lowest failed rate; the last step runs at
//! half the best sustained rate, for "latency at half load".

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channels::board::{ChannelsBoard, StepTotals};
use crate::plan::{Kind, Plan};
use crate::sys;

/// Share of the offered deliveries that must arrive during a step for it to count as sustained.
pub const SUSTAINED: f64 = 0.95;
/// How long before a step starts its rate is decided: late deliveries of the previous step
/// arriving in this last moment of the gap are not seen by the decision.
const DECIDE_EARLY_NS: u64 = 2_000_000;

/// True when a step with these totals was sustained.
pub fn sustained(t: &StepTotals) -> bool {
    t.offered > 0.0 && t.errors == 0 && t.unique >= t.expected && t.in_window as f64 >= SUSTAINED * t.offered
}

/// The bracket of the search: the best sustained rate and the lowest failed one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    best: f64,
    failed: f64,
}

impl Default for Search {
    fn default() -> Search {
        Search { best: 0.0, failed: f64::INFINITY }
    }
}

impl Search {
    /// Takes the verdict on a step at `rate` and returns the next rate to try.
    pub fn next(&mut self, rate: f64, ok: bool) -> f64 {
        if ok {
            self.best = self.best.max(rate);
        } else {
            self.failed = self.failed.min(rate);
        }
        if self.failed.is_infinite() {
            self.best * 2.0
        } else if self.best == 0.0 {
            self.failed / 2.0
        } else {
            (self.best * self.failed).sqrt()
        }
    }

    /// The half-load rate: half the best sustained rate, or half the lowest tried when none was.
    pub fn half_load(&self) -> f64 {
        if self.best > 0.0 {
            self.best / 2.0
        } else {
            self.failed / 2.0
        }
    }
}

/// One decision of the search, as taken while running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    /// 1-based step number.
    pub step: usize,
    /// Its rate, events/s.
    pub rate: f64,
    /// Deliveries offered, owed, received and received in time when it was judged.
    pub offered: f64,
    /// Deliveries owed for accepted events.
    pub expected: u64,
    /// Distinct deliveries received by then.
    pub unique: u64,
    /// Deliveries received while the step ran.
    pub in_window: u64,
    /// Publishing errors.
    pub errors: u64,
    /// The verdict.
    pub sustained: bool,
    /// The rate chosen for the next step.
    pub next_rate: f64,
}

/// Runs the search on `board` for `plan`: sleeps until each step's decision is due, judges the
/// step before, sets the next rate. Returns the decisions.
pub fn run(plan: Arc<Plan>, board: Arc<ChannelsBoard>) -> Vec<Decision> {
    let Kind::Channels(cp) = &plan.kind else { return Vec::new() };
    let mut search = Search::default();
    let mut decisions = Vec::new();
    for next in 1..cp.steps.len() {
        let at = cp.steps[next].send_start.saturating_sub(DECIDE_EARLY_NS);
        let now = sys::now_ns();
        if at > now {
            std::thread::sleep(Duration::from_nanos(at - now));
        }
        let step = next - 1;
        let rate = board.rate(step).unwrap_or(0.0);
        let t = board.totals(cp, step);
        let ok = sustained(&t);
        let mut next_rate = search.next(rate, ok);
        if next == cp.steps.len() - 1 {
            next_rate = search.half_load();
        }
        board.set_rate(next, next_rate);
        decisions.push(Decision {
            step: step + 1,
            rate,
            offered: t.offered,
            expected: t.expected,
            unique: t.unique,
            in_window: t.in_window,
            errors: t.errors,
            sustained: ok,
            next_rate,
        });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_doubles_then_bisects_between_sustained_and_failed() {
        let mut s = Search::default();
        assert_eq!(s.next(100.0, true), 200.0);
        assert_eq!(s.next(200.0, true), 400.0);
        assert_eq!(s.next(400.0, false), (200.0f64 * 400.0).sqrt());
        let r = s.next(283.0, false);
        assert!((r - (200.0f64 * 283.0).sqrt()).abs() < 1e-9);
        assert_eq!(s.half_load(), 100.0);
    }

    #[test]
    fn a_first_failure_halves_downwards() {
        let mut s = Search::default();
        assert_eq!(s.next(100.0, false), 50.0);
        assert_eq!(s.next(50.0, false), 25.0);
        assert_eq!(s.half_load(), 25.0, "nothing sustained: half the lowest tried");
        assert_eq!(s.next(25.0, true), (25.0f64 * 50.0).sqrt());
    }

    #[test]
    fn a_step_is_sustained_only_without_errors_loss_or_a_backlog() {
        let ok = StepTotals { offered: 1000.0, expected: 1000, unique: 1000, in_window: 960, errors: 0 };
        assert!(sustained(&ok));
        assert!(!sustained(&StepTotals { in_window: 940, ..ok }), "a backlog: under 95% in time");
        assert!(!sustained(&StepTotals { unique: 999, ..ok }), "a loss");
        assert!(!sustained(&StepTotals { errors: 1, ..ok }), "a refused event");
        assert!(!sustained(&StepTotals::default()), "nothing offered");
    }
}
