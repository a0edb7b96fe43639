//! Output pressure: when a worker stops reading the clients that publish.
//!
//! The rule (stated in the README):
//! - A connection is *behind* while bytes wait in its user-space queue
//!   (the kernel's socket buffer was full).
//! - It is *stalled* once its socket has taken nothing for [`STALL_AFTER_MS`],
//!   *lagging* once it has held more than half its bound for
//!   [`LAG_GRACE_MS`] without emptying, and *past its bound* once a frame
//!   was dropped for it. None of these count any more: they are judged by
//!   their own bound (closed with 1008 or dropped), never waited for.
//! - Every other behind connection is *draining*. The worker pauses when a
//!   draining connection holds more than half its bound or all of them
//!   together hold more than the worker's high watermark, and resumes when
//!   every draining connection is under a quarter of its bound and all of
//!   them under half the watermark.
//! - While paused, the worker neither reads the connections that publish
//!   nor takes new broadcasts in, so TCP flow control slows the publishers
//!   down at the source and healthy readers catch up instead of being
//!   closed. One slow reader alone can pause the worker for at most
//!   [`LAG_GRACE_MS`], once per time it falls behind.

use std::collections::HashMap;

/// A queue whose socket took nothing for this long is stalled.
pub(crate) const STALL_AFTER_MS: u64 = 500;

/// A queue above half its bound for this long without emptying is lagging.
pub(crate) const LAG_GRACE_MS: u64 = 1000;

/// How the worker sees one behind connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Making progress within its bound: it holds the watermark up.
    Draining,
    /// Its socket took nothing for `STALL_AFTER_MS`.
    Stalled,
    /// Above half its bound for `LAG_GRACE_MS`.
    Lagging,
    /// A frame was dropped for it.
    PastBound,
}

#[derive(Debug, Clone, Copy)]
struct Behind {
    /// Bytes its queue holds, per-frame overhead included.
    cost: usize,
    /// When its socket last took bytes (or when it fell behind).
    progress_at: u64,
    /// Since when it holds more than half its bound; `None` below that.
    over_half_since: Option<u64>,
    /// Lagging sticks until the queue empties.
    lagging: bool,
    past_bound: bool,
}

/// What the last evaluation found, for gauges and the pause decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Bytes queued by every behind connection.
    pub(crate) queued: usize,
    /// Bytes queued by draining connections only.
    pub(crate) draining: usize,
    /// Behind connections that are not draining.
    pub(crate) not_draining: usize,
}

/// The worker's record of its behind connections and its pause state.
#[derive(Debug)]
pub(crate) struct Pressure {
    behind: HashMap<usize, Behind>,
    bound: usize,
    high: usize,
    paused: bool,
    last: Reading,
}

impl Pressure {
    /// Pressure for connections bounded at `bound` bytes each and a worker
    /// high watermark of `high` bytes.
    pub(crate) fn new(bound: usize, high: usize) -> Self {
        Pressure { behind: HashMap::new(), bound, high, paused: false, last: Reading::default() }
    }

    /// Records connection `key` after a flush: its queue's cost, whether
    /// its socket took bytes, and whether a frame was dropped for it.
    /// Returns true while the connection is tracked (it is behind).
    pub(crate) fn observe(&mut self, key: usize, cost: usize, progressed: bool, dropped: bool, now: u64) -> bool {
        if cost == 0 {
            self.behind.remove(&key);
            return false;
        }
        let half = self.bound / 2;
        let entry = self.behind.entry(key).or_insert(Behind {
            cost,
            progress_at: now,
            over_half_since: None,
            lagging: false,
            past_bound: false,
        });
        entry.cost = cost;
        if progressed {
            entry.progress_at = now;
        }
        entry.past_bound |= dropped;
        entry.over_half_since = if cost > half { Some(entry.over_half_since.unwrap_or(now)) } else { None };
        true
    }

    /// Forgets connection `key` (closed, or its queue emptied).
    pub(crate) fn forget(&mut self, key: usize) {
        self.behind.remove(&key);
    }

    /// How connection `key` stands now; `None` when it is not behind.
    #[cfg(test)]
    pub(crate) fn standing(&self, key: usize, now: u64) -> Option<Standing> {
        self.behind.get(&key).map(|b| standing(b, now))
    }

    /// Re-judges every behind connection at `now` and updates the pause
    /// state; returns true while the worker should stay paused.
    pub(crate) fn evaluate(&mut self, now: u64) -> bool {
        let mut reading = Reading::default();
        let (half, quarter) = (self.bound / 2, self.bound / 4);
        let (mut over_half, mut over_quarter) = (false, false);
        for b in self.behind.values_mut() {
            if b.over_half_since.is_some_and(|since| now.saturating_sub(since) >= LAG_GRACE_MS) {
                b.lagging = true;
            }
            reading.queued += b.cost;
            if standing(b, now) != Standing::Draining {
                reading.not_draining += 1;
                continue;
            }
            reading.draining += b.cost;
            over_half |= b.cost > half;
            over_quarter |= b.cost > quarter;
        }
        self.paused = if self.paused {
            over_quarter || reading.draining > self.high / 2
        } else {
            over_half || reading.draining > self.high
        };
        self.last = reading;
        self.paused
    }

    /// True while the worker is paused (as of the last evaluation).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// True while some connection is behind (the pause state can change
    /// with time alone, so the worker must not sleep long).
    pub(crate) fn has_behind(&self) -> bool {
        !self.behind.is_empty()
    }

    /// The last evaluation's figures.
    pub(crate) fn reading(&self) -> Reading {
        self.last
    }
}

fn standing(b: &Behind, now: u64) -> Standing {
    if b.past_bound {
        Standing::PastBound
    } else if b.lagging {
        Standing::Lagging
    } else if now.saturating_sub(b.progress_at) >= STALL_AFTER_MS {
        Standing::Stalled
    } else {
        Standing::Draining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: usize = 1000;

    fn pressure() -> Pressure {
        Pressure::new(BOUND, 10_000)
    }

    #[test]
    fn a_draining_connection_over_half_its_bound_pauses_until_under_a_quarter() {
        let mut p = pressure();
        p.observe(1, 400, true, false, 0);
        assert!(!p.evaluate(0));
        p.observe(1, 600, true, false, 10);
        assert!(p.evaluate(10));
        p.observe(1, 300, true, false, 20);
        assert!(p.evaluate(20), "still above a quarter");
        p.observe(1, 200, true, false, 30);
        assert!(!p.evaluate(30));
    }

    #[test]
    fn many_small_queues_pause_at_the_watermark_and_resume_under_half_of_it() {
        let mut p = pressure();
        for key in 0..30 {
            p.observe(key, 400, true, false, 0);
        }
        assert!(p.evaluate(0), "12,000 draining bytes pass the 10,000 watermark");
        assert_eq!(p.reading().draining, 12_000);
        for key in 0..30 {
            p.observe(key, 200, true, false, 5);
        }
        assert!(p.evaluate(5), "6,000 is still above half the watermark");
        for key in 0..30 {
            p.observe(key, 100, true, false, 6);
        }
        assert!(!p.evaluate(6));
    }

    #[test]
    fn a_stalled_connection_stops_holding_the_pause() {
        let mut p = pressure();
        p.observe(7, 900, true, false, 0);
        assert!(p.evaluate(0));
        p.observe(7, 900, false, false, STALL_AFTER_MS - 1);
        assert!(p.evaluate(STALL_AFTER_MS - 1));
        assert!(!p.evaluate(STALL_AFTER_MS));
        assert_eq!(p.standing(7, STALL_AFTER_MS), Some(Standing::Stalled));
        assert_eq!(p.reading().not_draining, 1);
        p.observe(7, 850, true, false, STALL_AFTER_MS + 1);
        assert_eq!(p.standing(7, STALL_AFTER_MS + 1), Some(Standing::Draining), "progress revives it");
    }

    #[test]
    fn a_slow_reader_holds_the_pause_for_the_grace_period_only() {
        let mut p = pressure();
        let mut now = 0;
        while now < LAG_GRACE_MS {
            p.observe(3, 700, true, false, now);
            assert!(p.evaluate(now), "a slow but draining reader pauses the worker at {now} ms");
            now += 100;
        }
        p.observe(3, 700, true, false, now);
        assert!(!p.evaluate(now));
        assert_eq!(p.standing(3, now), Some(Standing::Lagging));
        p.observe(3, 300, true, false, now + 1);
        p.evaluate(now + 1);
        assert_eq!(p.standing(3, now + 1), Some(Standing::Lagging), "lagging sticks until the queue empties");
        p.observe(3, 0, true, false, now + 2);
        assert_eq!(p.standing(3, now + 2), None);
    }

    #[test]
    fn a_connection_past_its_bound_never_counts() {
        let mut p = pressure();
        p.observe(9, 990, true, true, 0);
        assert!(!p.evaluate(0));
        assert_eq!(p.standing(9, 0), Some(Standing::PastBound));
        assert_eq!(p.reading(), Reading { queued: 990, draining: 0, not_draining: 1 });
    }
}
