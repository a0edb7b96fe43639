//! Loss, duplication and reordering detection for one (receiver, publisher) pair, from the
//! sequence numbers publishers stamp on their messages.

use std::collections::VecDeque;

/// Sequence numbers remembered bit by bit behind the highest one seen. Older numbers are judged
/// by the list of holes instead: a number that was skipped and never arrived is late when it
/// comes, anything else that old is a duplicate.
pub const WINDOW: u64 = 64;

/// Most separate hole ranges kept per tracker. Past this the oldest are forgotten, and a
/// message older than every hole still remembered can no longer be told apart: it is counted
/// as reordered, the conservative reading. Only a stream with over a thousand separate losses
/// gets there.
pub const MAX_HOLE_RANGES: usize = 1024;

/// What one received sequence number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next expected number.
    InOrder,
    /// Ahead of the expected number: this many were skipped (lost unless they arrive late).
    Gap(u64),
    /// Already received.
    Duplicate,
    /// Older than the newest seen but not received before.
    Late,
}

/// Numbers skipped and not yet received, older than the bit window: ascending, disjoint
/// `[start, end)` ranges, plus the floor below which nothing is known any more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Holes {
    ranges: VecDeque<(u64, u64)>,
    floor: u64,
}

impl Holes {
    /// Adds `[start, end)`, which lies above every range already held.
    fn push(&mut self, start: u64, end: u64) {
        match self.ranges.back_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.ranges.push_back((start, end)),
        }
        if self.ranges.len() > MAX_HOLE_RANGES {
            if let Some((_, end)) = self.ranges.pop_front() {
                self.floor = end;
            }
        }
    }

    /// Removes `seq` if it is a hole; true when it was.
    fn take(&mut self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= seq);
        let Some(&(start, end)) = self.ranges.get(i) else { return false };
        if seq < start {
            return false;
        }
        match (seq == start, seq + 1 == end) {
            (true, true) => {
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i].0 = seq + 1,
            (false, true) => self.ranges[i].1 = seq,
            (false, false) => {
                self.ranges[i].1 = seq;
                self.ranges.insert(i + 1, (seq + 1, end));
            }
        }
        true
    }
}

/// Tracks one publisher's stream as seen by one receiver. 24 bytes while nothing is missing (a
/// receiver holds one per publisher); the hole list is allocated at the first loss.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// The sequence number expected next (one past the highest seen).
    next: u64,
    /// Bit `i` set: sequence `next - 1 - i` was received.
    window: u64,
    /// Missing numbers that fell out of the window.
    holes: Option<Box<Holes>>,
}

impl SeqTracker {
    /// Classifies `seq` and updates the state. Publishers number measured messages from 0.
    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            let skipped = seq - self.next;
            self.advance(seq);
            return if skipped == 0 { Seen::InOrder } else { Seen::Gap(skipped) };
        }
        let back = self.next - 1 - seq;
        if back >= WINDOW {
            let Some(holes) = self.holes.as_deref_mut() else { return Seen::Duplicate };
            return if seq < holes.floor || holes.take(seq) { Seen::Late } else { Seen::Duplicate };
        }
        let bit = 1u64 << back;
        if self.window & bit != 0 {
            Seen::Duplicate
        } else {
            self.window |= bit;
            Seen::Late
        }
    }

    /// Moves the window up so that `seq` (at or above `next`) is its newest entry, turning the
    /// missing numbers that leave it into holes, in ascending order.
    fn advance(&mut self, seq: u64) {
        // Saturating: the number comes from the server, and u64::MAX must not overflow.
        let shift = (seq - self.next).saturating_add(1);
        // Bits leaving the window: the top `shift` ones; only those standing for numbers >= 0.
        let mut leaving = if shift >= WINDOW { u64::MAX } else { !(u64::MAX >> shift) };
        if self.next < WINDOW {
            leaving &= (1u64 << self.next) - 1;
        }
        let mut missing = !self.window & leaving;
        while missing != 0 {
            let i = 63 - u64::from(missing.leading_zeros());
            let lost = self.next - 1 - i;
            self.holes.get_or_insert_default().push(lost, lost + 1);
            missing &= !(1u64 << i);
        }
        // Skipped numbers that are already below the new window go straight into the holes.
        let window_low = seq.saturating_add(1).saturating_sub(WINDOW);
        if window_low > self.next {
            self.holes.get_or_insert_default().push(self.next, window_low);
        }
        self.window = if shift >= WINDOW { 1 } else { (self.window << shift) | 1 };
        self.next = seq.saturating_add(1);
    }
}

/// Totals over many trackers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqCounts {
    /// Messages received more than once (extra copies).
    pub duplicates: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub reordered: u64,
    /// Sequence numbers skipped at the time (some may have arrived late).
    pub gaps: u64,
}

impl SeqCounts {
    /// Adds one observation.
    pub fn add(&mut self, seen: Seen) {
        match seen {
            Seen::InOrder => {}
            Seen::Gap(n) => self.gaps += n,
            Seen::Duplicate => self.duplicates += 1,
            Seen::Late => self.reordered += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: impl IntoIterator<Item = u64>) -> SeqCounts {
        let mut t = SeqTracker::default();
        let mut c = SeqCounts::default();
        for s in seqs {
            c.add(t.observe(s));
        }
        c
    }

    #[test]
    fn in_order_stream_counts_nothing() {
        assert_eq!(run([0, 1, 2, 3, 4]), SeqCounts::default());
        let mut t = SeqTracker::default();
        (0..10_000).for_each(|s| assert_eq!(t.observe(s), Seen::InOrder));
        assert!(t.holes.is_none(), "no loss, no hole list");
    }

    #[test]
    fn gaps_are_counted_by_size() {
        assert_eq!(run([0, 1, 5, 6, 10]), SeqCounts { gaps: 3 + 3, ..Default::default() });
        assert_eq!(run([3]).gaps, 3, "a missing head is a gap too");
    }

    #[test]
    fn duplicates_and_late_arrivals_are_told_apart() {
        let c = run([0, 2, 1, 1, 2, 3]);
        assert_eq!(c, SeqCounts { duplicates: 2, reordered: 1, gaps: 1 });
    }

    #[test]
    fn a_duplicate_older_than_the_window_is_a_duplicate() {
        let c = run((0..200).chain([5]));
        assert_eq!(c, SeqCounts { duplicates: 1, ..Default::default() });
        let c = run([0, 1, 100, 0]);
        assert_eq!(c, SeqCounts { duplicates: 1, reordered: 0, gaps: 98 });
    }

    #[test]
    fn a_late_arrival_older_than_the_window_is_reordered_once() {
        // 7 is skipped, the window moves far past it, then 7 arrives twice.
        let c = run((0..7).chain(8..300).chain([7, 7]));
        assert_eq!(c, SeqCounts { duplicates: 1, reordered: 1, gaps: 1 });
        // Numbers skipped by a jump straight past the window are holes too.
        let c = run([0, 200, 50, 50, 150, 199, 1]);
        assert_eq!(c, SeqCounts { duplicates: 1, reordered: 4, gaps: 199 });
    }

    #[test]
    fn holes_split_and_merge_correctly() {
        let mut t = SeqTracker::default();
        t.observe(0);
        t.observe(500); // 1..500 missing
        assert_eq!(t.observe(250), Seen::Late);
        assert_eq!(t.observe(1), Seen::Late);
        assert_eq!(t.observe(436), Seen::Late, "top of the hole, just below the window");
        for s in [250, 1, 436, 0] {
            assert_eq!(t.observe(s), Seen::Duplicate, "{s}");
        }
        for s in [2, 249, 251, 435] {
            assert_eq!(t.observe(s), Seen::Late, "{s}");
        }
    }

    #[test]
    fn any_number_a_server_sends_is_classified_without_panicking() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(u64::MAX), Seen::Gap(u64::MAX));
        assert_eq!(t.observe(5), Seen::Late, "skipped by the jump: a hole");
        assert_eq!(t.observe(5), Seen::Duplicate);
        // At the very top the counter saturates; what matters is that nothing overflows.
        for s in [u64::MAX, u64::MAX - 1, 0, u64::MAX - 100] {
            t.observe(s);
        }
    }

    #[test]
    fn memory_stays_bounded_under_scattered_loss() {
        let mut t = SeqTracker::default();
        let mut c = SeqCounts::default();
        for s in (0..20_000u64).filter(|s| s % 2 == 0) {
            c.add(t.observe(s));
        }
        assert_eq!(c.gaps, 9_999);
        assert!(t.holes.as_ref().is_some_and(|h| h.ranges.len() <= MAX_HOLE_RANGES));
        // Forgotten holes: the oldest numbers can only be reported as reordered.
        assert_eq!(t.observe(1), Seen::Late);
        // Remembered ones are still exact.
        assert_eq!(t.observe(19_001), Seen::Late);
        assert_eq!(t.observe(19_001), Seen::Duplicate);
        assert_eq!(t.observe(19_000), Seen::Duplicate);
    }
}
