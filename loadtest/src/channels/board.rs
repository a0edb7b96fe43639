//! `ChannelsBoard`: what the threads of one process share during a `channels` run: each step's
//! rate (decided by the saturation search while running), the subscribers counted per channel,
//! and per-step totals the search judges a step by. Publishers add to it per event; subscriber
//! threads add their delivery counts every few milliseconds, not per delivery.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::channels::plan::ChannelsPlan;

/// A step's totals as the board has them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTotals {
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

/// Shared counters of one process.
pub struct ChannelsBoard {
    channels: usize,
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
    /// A board for `plan`'s steps and channels, with the first step's rate set.
    pub fn new(plan: &ChannelsPlan) -> ChannelsBoard {
        let (steps, channels) = (plan.step_count(), plan.channels as usize);
        let board = ChannelsBoard {
            channels,
            rates: zeros(steps),
            subs: zeros(channels),
            accepted: zeros(steps * channels),
            errors: zeros(steps),
            unique: zeros(steps),
            in_window: zeros(steps),
        };
        board.set_rate(0, plan.rate.unwrap_or(plan.start_rate));
        board
    }

    /// The rate of `step`, once decided.
    pub fn rate(&self, step: usize) -> Option<f64> {
        let bits = self.rates.get(step)?.load(Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Decides the rate of `step`.
    pub fn set_rate(&self, step: usize, rate: f64) {
        if let Some(r) = self.rates.get(step) {
            r.store(rate.max(f64::MIN_POSITIVE).to_bits(), Relaxed);
        }
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

    /// `step`'s totals so far, its offered deliveries computed from `plan` at the board's rate.
    pub fn totals(&self, plan: &ChannelsPlan, step: usize) -> StepTotals {
        let subs: Vec<u64> = self.subs.iter().map(|s| s.load(Relaxed)).collect();
        let rate = self.rate(step).unwrap_or(0.0);
        let offered = (0..plan.streams())
            .map(|s| plan.scheduled(step, rate, s) as f64 * subs[plan.channel_of_stream(s) as usize] as f64)
            .sum();
        let accepted = &self.accepted[step * self.channels..(step + 1) * self.channels];
        StepTotals {
            offered,
            expected: accepted.iter().zip(&subs).map(|(a, s)| a.load(Relaxed) * s).sum(),
            unique: self.unique[step].load(Relaxed),
            in_window: self.in_window[step].load(Relaxed),
            errors: self.errors[step].load(Relaxed),
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
        assert_eq!((b.rate(0), b.rate(1)), (Some(100.0), None));
        b.add_subscribers(0, 10);
        b.add_subscribers(1, 5);
        b.add_accepted(0, 0);
        b.add_accepted(0, 1);
        b.add_accepted(0, 1);
        b.add_received(0, 19, 18);
        b.add_error(0);
        let t = b.totals(&p, 0);
        assert_eq!((t.expected, t.unique, t.in_window, t.errors), (20, 19, 18, 1));
        // 100/s for 1 s: 25 events per channel; channels 2 and 3 have no subscribers.
        assert_eq!(t.offered, 25.0 * 15.0);
        assert_eq!(b.totals(&p, 1), StepTotals::default(), "nothing yet, rate undecided");
    }
}
