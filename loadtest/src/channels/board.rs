//! `ChannelsBoard`: what the threads of one process share during a `channels` run: each step's
//! pace (decided by the saturation search while running), the subscribers counted per channel,
//! and per-step totals the search judges a step by. Publishers add to it per event; subscriber
//! threads add their delivery counts every few milliseconds, not per delivery.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::channels::plan::{ChannelsPlan, Pace};

use Ordering::Relaxed;

/// A step's totals as the board has them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTotals {
    /// Events the schedule put in the step.
    pub scheduled: u64,
    /// Events answered: accepted or refused.
    pub answered: u64,
    /// Deliveries the schedule offered: events scheduled × subscribers of their channel.
    pub offered: f64,
    /// Deliveries owed for events the server accepted.
    pub expected: u64,
    /// Distinct deliveries received so far.
    pub unique: u64,
    /// Deliveries received while the step ran.
    pub in_window: u64,
    /// API answers other than 2xx, and `pusher:error`s on publishing connections.
    pub errors: u64,
}

impl StepTotals {
    /// Every event was answered and every delivery owed has arrived.
    pub fn drained(&self) -> bool {
        self.answered >= self.scheduled && self.unique >= self.expected
    }
}

/// Shared counters of one process.
pub struct ChannelsBoard {
    channels: usize,
    starts: Vec<AtomicU64>,
    rates: Vec<AtomicU64>,
    subs: Vec<AtomicU64>,
    accepted: Vec<AtomicU64>,
    errors: Vec<AtomicU64>,
    unique: Vec<AtomicU64>,
    in_window: Vec<AtomicU64>,
}

fn zeros(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl ChannelsBoard {
    /// A board for `plan`'s steps and channels, with the first step's pace set.
    pub fn new(plan: &ChannelsPlan) -> ChannelsBoard {
        let (steps, channels) = (plan.step_count(), plan.channels as usize);
        let board = ChannelsBoard {
            channels,
            starts: zeros(steps),
            rates: zeros(steps),
            subs: zeros(channels),
            accepted: zeros(steps * channels),
            errors: zeros(steps),
            unique: zeros(steps),
            in_window: zeros(steps),
        };
        if !plan.steps.is_empty() {
            board.set_pace(0, plan.first_pace());
        }
        board
    }

    /// The pace of `step`, once decided.
    pub fn pace(&self, step: usize) -> Option<Pace> {
        let bits = self.rates.get(step)?.load(Ordering::Acquire);
        (bits != 0).then(|| Pace { start: self.starts[step].load(Relaxed), rate: f64::from_bits(bits) })
    }

    /// Decides the pace of `step`.
    pub fn set_pace(&self, step: usize, pace: Pace) {
        if let Some(r) = self.rates.get(step) {
            self.starts[step].store(pace.start, Relaxed);
            // Release: whoever sees the rate sees the start.
            r.store(pace.rate.max(f64::MIN_POSITIVE).to_bits(), Ordering::Release);
        }
    }

    /// The last step whose pace started at or before `now`.
    pub fn step_at(&self, now: u64) -> Option<usize> {
        (0..self.rates.len()).rev().find(|&i| self.pace(i).is_some_and(|p| p.start <= now))
    }

    /// `n` more subscribers counted on `channel`.
    pub fn add_subscribers(&self, channel: u64, n: u64) {
        self.subs[channel as usize].fetch_add(n, Relaxed);
    }

    /// The server accepted an event of `step` on `channel`.
    pub fn add_accepted(&self, step: usize, channel: u64) {
        self.accepted[step * self.channels + channel as usize].fetch_add(1, Relaxed);
    }

    /// A publishing error during `step`.
    pub fn add_error(&self, step: usize) {
        self.errors[step].fetch_add(1, Relaxed);
    }

    /// Deliveries of `step`'s events: `unique` distinct ones, `in_window` of them during it.
    pub fn add_received(&self, step: usize, unique: u64, in_window: u64) {
        self.unique[step].fetch_add(unique, Relaxed);
        self.in_window[step].fetch_add(in_window, Relaxed);
    }

    /// `step`'s totals so far, its schedule computed from `plan` at the step's pace.
    pub fn totals(&self, plan: &ChannelsPlan, step: usize) -> StepTotals {
        let Some(pace) = self.pace(step) else { return StepTotals::default() };
        let subs: Vec<u64> = self.subs.iter().map(|s| s.load(Relaxed)).collect();
        let (mut scheduled, mut offered) = (0, 0.0);
        for s in 0..plan.streams() {
            let n = plan.scheduled(step, pace, s);
            scheduled += n;
            offered += n as f64 * subs[plan.channel_of_stream(s) as usize] as f64;
        }
        let accepted = &self.accepted[step * self.channels..(step + 1) * self.channels];
        let errors = self.errors[step].load(Relaxed);
        StepTotals {
            scheduled,
            answered: accepted.iter().map(|a| a.load(Relaxed)).sum::<u64>() + errors,
            offered,
            expected: accepted.iter().zip(&subs).map(|(a, s)| a.load(Relaxed) * s).sum(),
            unique: self.unique[step].load(Relaxed),
            in_window: self.in_window[step].load(Relaxed),
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::plan::{tests::plan, Via};

    #[test]
    fn totals_weigh_events_by_their_channels_subscribers() {
        let p = plan(Via::Api, None);
        let b = ChannelsBoard::new(&p);
        assert_eq!((b.pace(0).map(|p| p.rate), b.pace(1)), (Some(100.0), None));
        b.add_subscribers(0, 10);
        b.add_subscribers(1, 5);
        b.add_accepted(0, 0);
        b.add_accepted(0, 1);
        b.add_accepted(0, 1);
        b.add_received(0, 19, 18);
        b.add_error(0);
        let t = b.totals(&p, 0);
        assert_eq!((t.expected, t.unique, t.in_window, t.errors, t.answered), (20, 19, 18, 1, 4));
        // 100/s for 1 s: 25 events per channel; channels 2 and 3 have no subscribers.
        assert_eq!((t.scheduled, t.offered), (100, 25.0 * 15.0));
        assert!(!t.drained());
        assert_eq!(b.totals(&p, 1), StepTotals::default(), "nothing yet, pace undecided");
        b.set_pace(1, Pace { start: 7, rate: 2.5 });
        assert_eq!(b.pace(1), Some(Pace { start: 7, rate: 2.5 }));
    }
}
