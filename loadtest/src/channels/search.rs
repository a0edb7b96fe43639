//! The saturation search: steps of offered load whose rates are chosen while running. A step
//! is judged once every event was answered and every delivery owed has arrived, or `--step-gap`
//! after it ended, whichever comes first; the next step starts right then, so a backlog the
//! server built never spills into the next step's figures. A step was *sustained* when the
//! server accepted every event, every delivery owed arrived, and the deliveries received while
//! the step ran reached [`SUSTAINED`] of what the schedule offered (a server that only queues
//! what it cannot send fails here, before any loss). The rate doubles until a step fails, then
//! bisects (by geometric mean) between the best sustained and the lowest failed rate; the last
//! step runs at half the best sustained rate, for "latency at half load".

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channels::board::{ChannelsBoard, StepTotals};
use crate::channels::plan::Pace;
use crate::plan::{Kind, Plan};
use crate::sys;

/// Share of the offered deliveries that must arrive during a step for it to count as sustained.
pub const SUSTAINED: f64 = 0.95;
/// Wait after a step's end before looking whether it drained (subscriber threads report every
/// 20 ms).
const SETTLE_NS: u64 = 50_000_000;
/// How often a draining step is looked at.
const POLL_NS: u64 = 10_000_000;
/// How far ahead of its start a step's pace is published, so publishers polling for it start
/// on time.
const LEAD_NS: u64 = 5_000_000;

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
    /// 1-based step number of the step judged.
    pub step: usize,
    /// Its rate, events/s.
    pub rate: f64,
    /// Milliseconds from its end until it drained (or the wait ran out).
    pub waited_ms: f64,
    /// It drained: every event answered and every delivery owed received.
    pub drained: bool,
    /// Deliveries offered by the schedule.
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
    /// Server VmRSS when it was judged (with --server-pid).
    pub server_rss_bytes: Option<u64>,
    /// The pace chosen for the next step (none after the last).
    pub next_start: Option<u64>,
    /// The next step's rate.
    pub next_rate: Option<f64>,
}

fn sleep_until(t: u64) {
    let now = sys::now_ns();
    if t > now {
        std::thread::sleep(Duration::from_nanos(t - now));
    }
}

/// Runs the search on `board` for `plan`: waits for each step to end and drain, judges it and
/// sets the next step's pace; the last step is judged too. Returns the decisions.
pub fn run(plan: Arc<Plan>, board: Arc<ChannelsBoard>) -> Vec<Decision> {
    let Kind::Channels(cp) = &plan.kind else { return Vec::new() };
    let mut search = Search::default();
    let mut decisions = Vec::new();
    let last = cp.steps.len() - 1;
    for step in 0..=last {
        let Some(pace) = board.pace(step) else { break };
        let end = cp.window(step, pace).1;
        sleep_until(end + SETTLE_NS);
        // The next step may start no later than its latest start; the last one has the drain.
        let deadline = if step < last { cp.latest_start(step + 1) } else { plan.drain_end.saturating_sub(SETTLE_NS) };
        let mut t = board.totals(cp, step);
        while !t.drained() && sys::now_ns() < deadline {
            std::thread::sleep(Duration::from_nanos(POLL_NS));
            t = board.totals(cp, step);
        }
        let now = sys::now_ns();
        let ok = sustained(&t);
        let mut next = None;
        if step < last {
            let rate = if step + 1 == last {
                search.next(pace.rate, ok);
                search.half_load()
            } else {
                search.next(pace.rate, ok)
            };
            let pace = Pace { start: (now + LEAD_NS).min(cp.latest_start(step + 1)), rate };
            board.set_pace(step + 1, pace);
            next = Some(pace);
        }
        decisions.push(Decision {
            step: step + 1,
            rate: pace.rate,
            waited_ms: now.saturating_sub(end) as f64 / 1e6,
            drained: t.drained(),
            offered: t.offered,
            expected: t.expected,
            unique: t.unique,
            in_window: t.in_window,
            errors: t.errors,
            sustained: ok,
            server_rss_bytes: cp.server_pid.and_then(|pid| sys::vm_rss_bytes(pid).ok()),
            next_start: next.map(|p| p.start),
            next_rate: next.map(|p| p.rate),
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
        let ok = StepTotals { offered: 1000.0, expected: 1000, unique: 1000, in_window: 960, ..StepTotals::default() };
        assert!(sustained(&ok));
        assert!(!sustained(&StepTotals { in_window: 940, ..ok }), "a backlog: under 95% in time");
        assert!(!sustained(&StepTotals { unique: 999, ..ok }), "a loss");
        assert!(!sustained(&StepTotals { errors: 1, ..ok }), "a refused event");
        assert!(!sustained(&StepTotals::default()), "nothing offered");
    }
}
