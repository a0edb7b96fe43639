//! `OverloadPlan`: the `overload` scenario's settings and its schedule of steps. Like the rest of
//! the plan it is pure arithmetic on the shared timeline, so every thread (and process) agrees on
//! when each step starts, how fast it offers, and which step a message belongs to, from the
//! message's scheduled send time alone.

const NS: f64 = 1e9;

/// Pause between the end of the capacity probe and the first step: the probe's last messages
/// drain (the probe keeps little in flight) and every thread reports its count.
pub const PROBE_GAP_NS: u64 = 1_000_000_000;

/// Settings and schedule of an overload run.
#[derive(Debug, Clone, PartialEq)]
pub struct OverloadPlan {
    /// Connections `0..publishers` also send.
    pub publishers: u64,
    /// Message size in bytes.
    pub size: usize,
    /// The server sends each message back to its publisher too.
    pub expect_echo: bool,
    /// Messages per second the server sustains, when given with `--capacity`; `None`: probe it.
    pub capacity: Option<f64>,
    /// Offered load of each step as a multiple of the capacity.
    pub multipliers: Vec<f64>,
    /// Length of each step.
    pub step_ns: u64,
    /// Length of the capacity probe (0 when the capacity is given).
    pub probe_ns: u64,
    /// When the probe starts (the plan's traffic start).
    pub probe_start: u64,
    /// When step 0 starts (the plan's measure start); steps follow back to back.
    pub start: u64,
}

impl OverloadPlan {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.multipliers.len()
    }

    /// Start and end of step `i`.
    pub fn bounds(&self, i: usize) -> (u64, u64) {
        let start = self.start + i as u64 * self.step_ns;
        (start, start + self.step_ns)
    }

    /// When the last step ends.
    pub fn end(&self) -> u64 {
        self.start + self.len() as u64 * self.step_ns
    }

    /// The probe's measuring half: its first half only brings the server up to speed.
    pub fn probe_window(&self) -> (u64, u64) {
        (self.probe_start + self.probe_ns / 2, self.probe_start + self.probe_ns)
    }

    /// The step instant `t` falls in; `None` before the first step or after the last.
    pub fn step_at(&self, t: u64) -> Option<usize> {
        if t < self.start || t >= self.end() {
            return None;
        }
        Some(((t - self.start) / self.step_ns) as usize)
    }

    /// Refuses settings the scenario cannot run with, saying which flag to change.
    pub fn check(&self, connections: u64, processes: u32) -> Result<(), String> {
        if self.publishers == 0 || self.publishers >= connections {
            return Err(format!(
                "--publishers must be between 1 and --connections - 1 ({}): overload needs receivers",
                connections.saturating_sub(1)
            ));
        }
        if self.capacity.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err("--capacity must be a positive number of messages per second".into());
        }
        if self.step_ns < 100_000_000 {
            return Err("--step-duration must be at least 100ms".into());
        }
        if self.capacity.is_none() && self.probe_ns < 200_000_000 {
            return Err("--probe-duration must be at least 200ms".into());
        }
        if self.capacity.is_none() && processes > 1 {
            // The threads of one process pool their probe counts in memory; processes would need
            // a channel back from the parent to every child.
            return Err("overload with --processes needs --capacity: the capacity probe runs in one process \
                        (find it with a one-process run, or pass the figure you have)"
                .into());
        }
        Ok(())
    }

    /// Messages per second offered in step `i` for a server sustaining `capacity`.
    pub fn rate(&self, i: usize, capacity: f64) -> f64 {
        self.multipliers[i] * capacity
    }

    /// Intended send time of message `k` of publisher `j` in step `i` at `rate`: publishers
    /// interleave so the total stream is evenly spaced, as in `broadcast`.
    pub fn intended(&self, i: usize, rate: f64, j: u64, k: u64) -> u64 {
        self.bounds(i).0 + ((j + k * self.publishers) as f64 * NS / rate) as u64
    }

    /// How many messages publisher `j` is scheduled to send in step `i` at `rate`.
    pub fn scheduled(&self, i: usize, rate: f64, j: u64) -> u64 {
        if !(rate > 0.0 && rate.is_finite()) {
            return 0;
        }
        let end = self.bounds(i).1;
        let slots = self.step_ns as f64 * rate / NS;
        let mut k = ((slots - j as f64) / self.publishers as f64).ceil().max(0.0) as u64;
        // The float estimate can be off by one either way at the edge; settle it exactly.
        while k > 0 && self.intended(i, rate, j, k - 1) >= end {
            k -= 1;
        }
        while self.intended(i, rate, j, k) < end {
            k += 1;
        }
        k
    }
}

/// Parses `--steps`: comma-separated positive multipliers such as `0.5,1,1.5,2`.
pub fn parse_steps(text: &str) -> Result<Vec<f64>, String> {
    let steps: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().trim_end_matches(['x', 'X']).parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad --steps {text:?}: use multipliers such as 0.5,1,1.5,2"))?;
    if steps.is_empty() || steps.iter().any(|m| !(*m > 0.0 && m.is_finite())) {
        return Err(format!("bad --steps {text:?}: every multiplier must be a positive number"));
    }
    if steps.len() > 100 {
        return Err("--steps: at most 100 steps".into());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(publishers: u64) -> OverloadPlan {
        OverloadPlan {
            publishers,
            size: 64,
            expect_echo: false,
            capacity: Some(1000.0),
            multipliers: vec![0.5, 1.0, 3.0],
            step_ns: 1_000_000_000,
            probe_ns: 0,
            probe_start: 5,
            start: 10_000,
        }
    }

    #[test]
    fn steps_follow_back_to_back_and_place_instants() {
        let p = plan(3);
        assert_eq!(p.bounds(1), (1_000_010_000, 2_000_010_000));
        assert_eq!(p.end(), 3_000_010_000);
        assert_eq!(p.step_at(9_999), None);
        assert_eq!(p.step_at(10_000), Some(0));
        assert_eq!(p.step_at(2_000_010_000), Some(2));
        assert_eq!(p.step_at(3_000_010_000), None);
    }

    #[test]
    fn schedules_offer_the_multiplied_rate_exactly() {
        for publishers in [1, 3, 7] {
            let p = plan(publishers);
            for (i, m) in [0.5, 1.0, 3.0].into_iter().enumerate() {
                let rate = p.rate(i, 1000.0);
                let total: u64 = (0..publishers).map(|j| p.scheduled(i, rate, j)).sum();
                assert_eq!(total, (1000.0 * m) as u64, "{publishers} publishers, step {i}");
                for j in 0..publishers {
                    let n = p.scheduled(i, rate, j);
                    assert!(p.intended(i, rate, j, n - 1) < p.bounds(i).1);
                    assert!(p.intended(i, rate, j, n) >= p.bounds(i).1);
                }
            }
        }
        assert_eq!(plan(2).scheduled(0, 0.0, 0), 0);
    }

    #[test]
    fn steps_parse_and_refuse_nonsense() {
        assert_eq!(parse_steps("0.5, 1,1.5x,3").unwrap(), vec![0.5, 1.0, 1.5, 3.0]);
        for bad in ["", "1,,2", "0", "-1", "fast", "1,inf"] {
            assert!(parse_steps(bad).is_err(), "{bad}");
        }
    }
}
