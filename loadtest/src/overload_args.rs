//! Flags of the `overload` scenario.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::{parse_duration, Common};
use crate::overload_plan::{parse_steps, OverloadPlan, PROBE_GAP_NS};

/// Offered-load multipliers from `--steps` (a newtype so clap takes the list as one value).
#[derive(Debug, Clone, PartialEq)]
pub struct Multipliers(pub Vec<f64>);

/// Flags of `loadtest overload`.
#[derive(Debug, Args, Clone)]
pub struct OverloadArgs {
    /// How many of the connections also publish (connections 0..P, spread over threads).
    #[arg(long, default_value_t = 1)]
    pub publishers: u64,
    /// Message size in bytes, header included (minimum 24).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second the server sustains (each delivered to every receiver). Without it,
    /// a closed-loop probe finds it first.
    #[arg(long, value_name = "MSGS_PER_S")]
    pub capacity: Option<f64>,
    /// Offered load of each step, as multiples of the capacity, in order.
    #[arg(long, default_value = "0.5,1,1.5,2,2.5,3", value_parser = |s: &str| parse_steps(s).map(Multipliers))]
    pub steps: Multipliers,
    /// How long each step offers its load, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// How long the capacity probe runs when --capacity is not given (its second half counts).
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    pub probe_duration: Duration,
    /// Time after the last step to wait for deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// The server also sends each message back to its publisher.
    #[arg(long)]
    pub expect_echo: bool,
    /// Write an SVG of delivered rate, p99, server RSS and closes against the offered multiplier.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

impl OverloadArgs {
    /// The overload settings (the plan fills in the instants), the time before the first step
    /// (the probe plays the part of a warm-up) and the time all steps take.
    pub fn plan(&self) -> (OverloadPlan, Duration, Duration) {
        let probe = if self.capacity.is_some() { Duration::ZERO } else { self.probe_duration };
        let before_steps = if probe.is_zero() { probe } else { probe + Duration::from_nanos(PROBE_GAP_NS) };
        let o = OverloadPlan {
            publishers: self.publishers,
            size: self.size,
            expect_echo: self.expect_echo,
            capacity: self.capacity,
            multipliers: self.steps.0.clone(),
            step_ns: self.step_duration.as_nanos().min(u128::from(u64::MAX / 1024)) as u64,
            probe_ns: probe.as_nanos() as u64,
            probe_start: 0,
            start: 0,
        };
        (o, before_steps, self.step_duration * self.steps.0.len() as u32)
    }
}
