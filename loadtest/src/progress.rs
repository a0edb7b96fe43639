//! The live progress line (one per second on stderr): phase, connections, deliveries (or echoes)
//! per second and the p99 latency so far.

use crate::hist::Hist;
use crate::live::Snapshot;
use crate::plan::{Kind, Plan};

/// Accumulates snapshots and formats one line per second.
pub struct Progress {
    so_far: Hist,
    last_deliveries: u64,
    last_at: u64,
}

impl Progress {
    /// Starts counting at `now`.
    pub fn new(now: u64) -> Progress {
        Progress { so_far: Hist::new(), last_deliveries: 0, last_at: now }
    }

    /// Folds in a snapshot taken at `now` and returns the line to print.
    pub fn line(&mut self, plan: &Plan, snap: &Snapshot, now: u64) -> String {
        self.so_far.merge(&snap.interval);
        let dt = (now.saturating_sub(self.last_at)) as f64 / 1e9;
        let rate = if dt > 0.0 { snap.deliveries.saturating_sub(self.last_deliveries) as f64 / dt } else { 0.0 };
        self.last_deliveries = snap.deliveries;
        self.last_at = now;
        let elapsed = now.saturating_sub(plan.epoch) as f64 / 1e9;
        let p99 = if self.so_far.count() > 0 {
            format!("{:.3} ms", self.so_far.quantile_ns(0.99) as f64 / 1e6)
        } else {
            "-".to_string()
        };
        format!(
            "[{elapsed:6.1}s] {:<9} conns {:>6}  failed {:>5}  {} {:>10.0}  p99 so far {p99}",
            phase(plan, now),
            snap.open,
            snap.failed,
            rate_label(plan),
            rate
        )
    }
}

/// What the per-second count on the progress line counts: every message a connection receives
/// is a delivery in broadcast, an echo in echo, and only server-initiated messages in connect.
pub fn rate_label(plan: &Plan) -> &'static str {
    match plan.kind {
        Kind::Broadcast { .. } | Kind::Overload(_) | Kind::Channels(_) | Kind::SocketIo(_) => "deliveries/s",
        Kind::Echo { .. } => "echoes/s",
        Kind::Connect => "msgs/s",
    }
}

/// Name of the phase the plan is in at `now` (overload: the probe and the step number).
pub fn phase(plan: &Plan, now: u64) -> String {
    if let Kind::Overload(o) = &plan.kind {
        if now >= plan.traffic_start && now < plan.measure_start {
            return if o.probe_ns > 0 && now < o.probe_window().1 { "probing" } else { "probe done" }.into();
        }
        if let Some(i) = o.step_at(now) {
            return format!("step {}/{} ({}x)", i + 1, o.len(), o.multipliers[i]);
        }
    }
    if let Kind::Channels(cp) = &plan.kind {
        if cp.saturation() && now >= plan.measure_start && now < plan.measure_end {
            return "searching".into();
        }
    }
    let name = if now < plan.epoch {
        "starting"
    } else if now < plan.traffic_start {
        "ramp-up"
    } else if now < plan.measure_start {
        "warm-up"
    } else if now < plan.measure_end {
        "measuring"
    } else if now < plan.drain_end {
        "draining"
    } else {
        "closing"
    };
    name.into()
}
