//! Output pressure: when a worker stops reading the clients that publish.
//!
//! The rule (stated in the README):
//! - A connection is *behind* while bytes wait in its user-space queue
//!   (the kernel's socket buffer was full).
//! - It is *stalled* once its socket has taken nothing for [`STALL_AFTER_MS`],
//!   *lagging* once it has kept the worker paused for [`LAG_GRACE_MS`]
//!   while few connections were behind (it is slower than its peers, not
//!   merely behind), and *past its bound* once a frame was dropped for it.
//!   None of these count any more: they are judged by their own bound
//!   (closed with 1008 or dropped), never waited for.
//! - Every other behind connection is *draining*. The worker pauses when a
//!   draining connection holds more than half its bound or all of them
//!   together hold more than the worker's high watermark, and resumes when
//!   every draining connection is under a quarter of its bound and all of
//!   them under half the watermark.
//! - While paused, the worker neither reads the connections that publish
//!   nor takes new broadcasts in, so TCP flow control slows the publishers
//!   down at the source and healthy readers catch up instead of being
//!   closed. When many readers are behind together (an eighth of the
//!   connections or more: the clients' machine is the bottleneck) nobody
//!   is singled out, a socket is stalled only after [`STALL_AFTER_BUSY_MS`],
//!   and the pause lasts as long as they need; one reader slower than the
//!   rest holds it for at most [`LAG_GRACE_MS`] each time it falls behind.

use std::collections::HashMap;

/// A queue whose socket took nothing for this long is stalled, while few of
/// the worker's connections are behind.
pub(crate) const STALL_AFTER_MS: u64 = 500;

/// Behind connections, at least, and an eighth of all, that make the worker
/// *busy*: many readers behind together rather than a few slow ones.
const BUSY_AT_LEAST: usize = 8;

/// The same while the worker is busy (many connections behind): a client machine
/// that is the bottleneck may leave one of its sockets unread this long
/// without that socket being any slower than the rest.
pub(crate) const STALL_AFTER_BUSY_MS: u64 = 5000;

/// A connection that has kept the worker paused this long in all, while few
/// of the worker's connections were behind, is lagging.
pub(crate) const LAG_GRACE_MS: u64 = 1000;

/// A connection that has not kept the worker paused for this long starts
/// afresh: its holding time is forgotten (and it is lagging no more).
pub(crate) const LAG_FORGET_MS: u64 = 5000;

/// The longest gap between two evaluations counted as holding time (the
/// worker evaluates every turn, and at least every 20 ms while paused).
const MAX_STEP_MS: u64 = 100;

/// How the worker sees one behind connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Making progress within its bound: it holds the watermark up.
    Draining,
    /// Its socket took nothing for `STALL_AFTER_MS`.
    Stalled,
    /// Kept the worker paused for `LAG_GRACE_MS` while most others had
    /// caught up.
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
    /// Copied from its `Suspect` record at each evaluation.
    lagging: bool,
    past_bound: bool,
}

/// A connection that has kept the worker paused while most others had
/// caught up. Kept apart from `Behind` because a slow reader's queue may
/// empty for a moment during each pause, and that must not wipe its record.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    /// Milliseconds it has held the pause in all.
    held_ms: u64,
    /// When it last held it.
    last_held_at: u64,
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
    suspects: HashMap<usize, Suspect>,
    /// When `evaluate` last ran.
    evaluated_at: u64,
    /// The stall threshold the last evaluation used.
    stall_after: u64,
    bound: usize,
    high: usize,
    paused: bool,
    last: Reading,
}

impl Pressure {
    /// Pressure for connections bounded at `bound` bytes each and a worker
    /// high watermark of `high` bytes.
    pub(crate) fn new(bound: usize, high: usize) -> Self {
        Pressure {
            behind: HashMap::new(),
            suspects: HashMap::new(),
            evaluated_at: 0,
            stall_after: STALL_AFTER_MS,
            bound,
            high,
            paused: false,
            last: Reading::default(),
        }
    }

    /// Records connection `key` after a flush: its queue's cost, whether
    /// its socket took bytes, and whether a frame was dropped for it.
    /// Returns true while the connection is tracked (it is behind).
    pub(crate) fn observe(&mut self, key: usize, cost: usize, progressed: bool, dropped: bool, now: u64) -> bool {
        if cost == 0 {
            self.behind.remove(&key);
            return false;
        }
        let lagging = self.suspects.get(&key).is_some_and(|s| s.held_ms >= LAG_GRACE_MS);
        let entry = self.behind.entry(key).or_insert(Behind { cost, progress_at: now, lagging, past_bound: false });
        entry.cost = cost;
        if progressed {
            entry.progress_at = now;
        }
        entry.past_bound |= dropped;
        true
    }

    /// Forgets connection `key` (closed).
    pub(crate) fn forget(&mut self, key: usize) {
        self.behind.remove(&key);
        self.suspects.remove(&key);
    }

    /// How connection `key` stands now; `None` when it is not behind.
    #[cfg(test)]
    pub(crate) fn standing(&self, key: usize, now: u64) -> Option<Standing> {
        self.behind.get(&key).map(|b| standing(b, now, self.stall_after))
    }

    /// Re-judges every behind connection at `now`, out of `connections`
    /// open on the worker, and updates the pause state; returns true while
    /// the worker should stay paused.
    pub(crate) fn evaluate(&mut self, now: u64, connections: usize) -> bool {
        let (half, quarter) = (self.bound / 2, self.bound / 4);
        // Slowness is judged against peers only while few of the worker's
        // connections are behind. When many are behind together (the
        // clients' machine is the bottleneck, and it reads some sockets
        // seconds later than others), nobody is singled out as lagging, and
        // a socket counts as stalled only after a much longer silence.
        let busy = self.behind.len() >= (connections / 8).max(BUSY_AT_LEAST);
        self.stall_after = if busy { STALL_AFTER_BUSY_MS } else { STALL_AFTER_MS };
        let stall_after = self.stall_after;
        // Those over a quarter are what keeps a paused worker paused.
        let holds = |b: &Behind| b.cost > quarter && standing(b, now, stall_after) == Standing::Draining;
        let minority = !busy;
        let step = now.saturating_sub(self.evaluated_at).min(MAX_STEP_MS);
        self.evaluated_at = now;
        if self.paused && minority {
            for (&key, b) in &self.behind {
                if holds(b) {
                    let suspect = self.suspects.entry(key).or_insert(Suspect { held_ms: 0, last_held_at: now });
                    suspect.held_ms += step;
                    suspect.last_held_at = now;
                }
            }
        }
        self.suspects.retain(|_, s| now.saturating_sub(s.last_held_at) < LAG_FORGET_MS);
        for (key, b) in self.behind.iter_mut() {
            b.lagging = self.suspects.get(key).is_some_and(|s| s.held_ms >= LAG_GRACE_MS);
        }
        let mut reading = Reading::default();
        let (mut over_half, mut over_quarter) = (false, false);
        for b in self.behind.values() {
            reading.queued += b.cost;
            if standing(b, now, stall_after) != Standing::Draining {
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

fn standing(b: &Behind, now: u64, stall_after: u64) -> Standing {
    if b.past_bound {
        Standing::PastBound
    } else if b.lagging {
        Standing::Lagging
    } else if now.saturating_sub(b.progress_at) >= stall_after {
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
        assert!(!p.evaluate(0, 100));
        p.observe(1, 600, true, false, 10);
        assert!(p.evaluate(10, 100));
        p.observe(1, 300, true, false, 20);
        assert!(p.evaluate(20, 100), "still above a quarter");
        p.observe(1, 200, true, false, 30);
        assert!(!p.evaluate(30, 100));
    }

    #[test]
    fn many_small_queues_pause_at_the_watermark_and_resume_under_half_of_it() {
        let mut p = pressure();
        for key in 0..30 {
            p.observe(key, 400, true, false, 0);
        }
        assert!(p.evaluate(0, 100), "12,000 draining bytes pass the 10,000 watermark");
        assert_eq!(p.reading().draining, 12_000);
        for key in 0..30 {
            p.observe(key, 200, true, false, 5);
        }
        assert!(p.evaluate(5, 100), "6,000 is still above half the watermark");
        for key in 0..30 {
            p.observe(key, 100, true, false, 6);
        }
        assert!(!p.evaluate(6, 100));
    }

    #[test]
    fn a_stalled_connection_stops_holding_the_pause() {
        let mut p = pressure();
        p.observe(7, 900, true, false, 0);
        assert!(p.evaluate(0, 100));
        p.observe(7, 900, false, false, STALL_AFTER_MS - 1);
        assert!(p.evaluate(STALL_AFTER_MS - 1, 100));
        assert!(!p.evaluate(STALL_AFTER_MS, 100));
        assert_eq!(p.standing(7, STALL_AFTER_MS), Some(Standing::Stalled));
        assert_eq!(p.reading().not_draining, 1);
        p.observe(7, 850, true, false, STALL_AFTER_MS + 1);
        assert_eq!(p.standing(7, STALL_AFTER_MS + 1), Some(Standing::Draining), "progress revives it");
    }

    #[test]
    fn a_reader_slower_than_its_peers_holds_the_pause_for_the_grace_period_only() {
        let mut p = pressure();
        let mut now = 0;
        // Connection 3 of 10 never drains below a quarter; the others are not behind.
        p.observe(3, 700, true, false, now);
        assert!(p.evaluate(now, 10));
        loop {
            now += 100;
            // It drains a little and falls back again: progress, never caught up.
            p.observe(3, if now % 200 == 0 { 300 } else { 600 }, true, false, now);
            if !p.evaluate(now, 10) {
                break;
            }
            assert!(now < 2 * LAG_GRACE_MS, "the slow reader still holds the pause at {now} ms");
        }
        assert!(now >= LAG_GRACE_MS, "released after {now} ms, before the grace");
        assert_eq!(p.standing(3, now), Some(Standing::Lagging));
        p.observe(3, 300, true, false, now + 1);
        p.evaluate(now + 1, 10);
        // Its queue emptying for a moment does not wipe its record.
        p.observe(3, 0, true, false, now + 2);
        assert_eq!(p.standing(3, now + 2), None);
        p.observe(3, 700, true, false, now + 3);
        p.evaluate(now + 3, 10);
        assert_eq!(p.standing(3, now + 3), Some(Standing::Lagging), "lagging outlives a moment of catching up");
        // Not holding the pause for a while, it starts afresh.
        let later = now + 3 + LAG_FORGET_MS;
        p.observe(3, 700, true, false, later);
        p.evaluate(later, 10);
        assert_eq!(p.standing(3, later), Some(Standing::Draining));
    }

    #[test]
    fn readers_behind_together_hold_the_pause_as_long_as_they_need() {
        let mut p = pressure();
        // All ten connections behind: the clients' machine is the bottleneck.
        for now in (0..5 * LAG_GRACE_MS).step_by(100) {
            for key in 0..10 {
                p.observe(key, 600, true, false, now);
            }
            assert!(p.evaluate(now, 10), "paused at {now} ms");
        }
        assert_eq!(p.standing(0, 5 * LAG_GRACE_MS), Some(Standing::Draining), "nobody is singled out");
    }

    #[test]
    fn while_most_are_behind_a_socket_left_unread_is_stalled_only_after_the_longer_silence() {
        let mut p = pressure();
        for key in 0..10 {
            p.observe(key, 300, true, false, 0);
        }
        p.observe(0, 900, true, false, 0);
        // Socket 0 takes nothing for a while; the others keep draining.
        for now in (100..STALL_AFTER_BUSY_MS).step_by(100) {
            for key in 1..10 {
                p.observe(key, 300, true, false, now);
            }
            p.evaluate(now, 10);
            assert_eq!(p.standing(0, now), Some(Standing::Draining), "at {now} ms");
        }
        p.evaluate(STALL_AFTER_BUSY_MS, 10);
        assert_eq!(p.standing(0, STALL_AFTER_BUSY_MS), Some(Standing::Stalled));
    }

    #[test]
    fn a_connection_past_its_bound_never_counts() {
        let mut p = pressure();
        p.observe(9, 990, true, true, 0);
        assert!(!p.evaluate(0, 100));
        assert_eq!(p.standing(9, 0), Some(Standing::PastBound));
        assert_eq!(p.reading(), Reading { queued: 990, draining: 0, not_draining: 1 });
    }
}
