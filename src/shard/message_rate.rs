//! The per-connection message rate limit (`--max-message-rate`).
//!
//! A token bucket holding one second's worth of messages: each message (or
//! ping) a client sends takes one, and they come back at the configured
//! rate, so a client may burst up to the limit but not sustain more.
//! Checking costs a subtraction and a comparison; nothing is allocated.

/// The bucket counts thousandths of a message, so that refills of less than
/// one message per millisecond are not rounded away.
const MILLI: u64 = 1000;

/// One connection's bucket, kept as the debt below full so that a fresh
/// bucket is all zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct MessageRate {
    /// Worker-clock milliseconds of the last refill.
    at: u64,
    /// Thousandths of a message taken and not yet given back.
    debt: u64,
}

impl MessageRate {
    /// A full bucket at `now` (worker clock, milliseconds).
    pub(super) fn new(now: u64) -> Self {
        MessageRate { at: now, debt: 0 }
    }

    /// Takes one message at `now` under a limit of `per_second`; false (and
    /// nothing taken) when the bucket is empty: the sender is past its rate.
    pub(super) fn admit(&mut self, now: u64, per_second: u32) -> bool {
        let per_second = u64::from(per_second);
        // per_second messages a second are per_second thousandths a millisecond.
        let refill = now.saturating_sub(self.at).saturating_mul(per_second);
        self.at = self.at.max(now);
        self.debt = self.debt.saturating_sub(refill);
        let taken = self.debt + MILLI;
        if taken > per_second * MILLI {
            return false;
        }
        self.debt = taken;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_passes_and_one_more_does_not() {
        let mut rate = MessageRate::new(0);
        assert!((0..10).all(|_| rate.admit(5, 10)));
        assert!(!rate.admit(5, 10));
    }

    #[test]
    fn tokens_come_back_at_the_configured_rate() {
        let mut rate = MessageRate::new(0);
        assert!((0..100).all(|_| rate.admit(0, 100)));
        assert!(!rate.admit(0, 100));
        // 100 a second: one every 10 ms, fractions included.
        let mut rate = MessageRate::new(0);
        assert!((0..100).all(|_| rate.admit(0, 100)));
        assert!(!rate.admit(9, 100), "a token came back after 9 ms");
        let mut rate = MessageRate::new(0);
        assert!((0..100).all(|_| rate.admit(0, 100)));
        assert!(rate.admit(10, 100));
        assert!(!rate.admit(15, 100));
        assert!(rate.admit(20, 100));
    }

    #[test]
    fn a_sender_at_the_limit_is_never_refused() {
        let mut rate = MessageRate::new(0);
        // 3 a second for a minute, evenly spaced (one every 334 ms).
        assert!((0..180u64).all(|i| rate.admit(i * 334, 3)));
        // 50 a second sent as one message every 20 ms, after a full burst.
        let mut rate = MessageRate::new(0);
        assert!((0..50).all(|_| rate.admit(0, 50)));
        assert!((1..1000u64).all(|i| rate.admit(i * 20, 50)));
    }

    #[test]
    fn a_long_silence_refills_only_up_to_one_second() {
        let mut rate = MessageRate::new(0);
        assert!(rate.admit(0, 5));
        assert!((0..5).all(|_| rate.admit(3_600_000, 5)));
        assert!(!rate.admit(3_600_000, 5));
    }

    #[test]
    fn a_clock_that_does_not_advance_or_huge_limits_do_not_overflow() {
        let mut rate = MessageRate::new(u64::MAX - 1);
        assert!(rate.admit(u64::MAX, u32::MAX));
        assert!(rate.admit(3, u32::MAX), "an earlier `now` refills nothing but must not panic");
    }
}
