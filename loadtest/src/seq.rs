//! Loss, duplication and reordering detection for one (receiver, publisher) pair, from the
//! sequence numbers publishers stamp on their messages.

/// Sequence numbers remembered behind the highest one seen; a message older than this can no
/// longer be told apart as duplicate or late and is counted as reordered.
pub const WINDOW: u64 = 64;

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

/// Tracks one publisher's stream as seen by one receiver: 16 bytes, so a receiver can afford one
/// per publisher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// The sequence number expected next (one past the highest seen).
    next: u64,
    /// Bit `i` set: sequence `next - 1 - i` was received.
    window: u64,
}

impl SeqTracker {
    /// Classifies `seq` and updates the state. Publishers number measured messages from 0.
    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq == self.next {
            self.window = (self.window << 1) | 1;
            self.next += 1;
            return Seen::InOrder;
        }
        if seq > self.next {
            let skipped = seq - self.next;
            let shift = skipped + 1;
            self.window = if shift >= 64 { 1 } else { (self.window << shift) | 1 };
            self.next = seq + 1;
            return Seen::Gap(skipped);
        }
        let back = self.next - 1 - seq;
        if back >= WINDOW {
            return Seen::Late;
        }
        let bit = 1u64 << back;
        if self.window & bit != 0 {
            Seen::Duplicate
        } else {
            self.window |= bit;
            Seen::Late
        }
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

    fn run(seqs: &[u64]) -> SeqCounts {
        let mut t = SeqTracker::default();
        let mut c = SeqCounts::default();
        for &s in seqs {
            c.add(t.observe(s));
        }
        c
    }

    #[test]
    fn in_order_stream_counts_nothing() {
        assert_eq!(run(&[0, 1, 2, 3, 4]), SeqCounts::default());
    }

    #[test]
    fn gaps_are_counted_by_size() {
        assert_eq!(run(&[0, 1, 5, 6, 10]), SeqCounts { gaps: 3 + 3, ..Default::default() });
        assert_eq!(run(&[3]).gaps, 3, "a missing head is a gap too");
    }

    #[test]
    fn duplicates_and_late_arrivals_are_told_apart() {
        let c = run(&[0, 2, 1, 1, 2, 3]);
        assert_eq!(c, SeqCounts { duplicates: 2, reordered: 1, gaps: 1 });
    }

    #[test]
    fn duplicates_are_detected_after_large_gaps() {
        let c = run(&[0, 200, 200, 150]);
        assert_eq!((c.duplicates, c.reordered, c.gaps), (1, 1, 199));
        let c = run(&[0, 1, 100, 0]);
        assert_eq!(c.reordered, 1, "beyond the window: counted as late, not duplicate");
    }
}
