//! `OverloadReport`: the `overload` scenario's result, one row per step plus how the capacity
//! was found, built from the merged measurements; printed as JSON, a table or an SVG.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::hist::Hist;
use crate::overload_plan::OverloadPlan;
use crate::overload_stats::{OverloadPartial, StepPartial};
use crate::plan::Plan;
use crate::report::{Client, Connections, Report};
use crate::scenario::capacity_board::{self, ProbeTotals};

/// How the capacity the steps multiply was obtained.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// Messages per second fully delivered (to every receiver).
    pub msgs_per_sec: f64,
    /// The same in deliveries per second (over the receivers of the probe, or of step 1).
    pub deliveries_per_sec: f64,
    /// `"given"` (--capacity) or `"probe"`.
    pub found_by: String,
    /// One sentence saying how.
    pub how: String,
    /// Probe: length of its measuring half, in seconds.
    pub probe_seconds: Option<f64>,
    /// Probe: connections open in its measuring half.
    pub probe_receivers: Option<u64>,
    /// Probe: messages each publisher kept in flight at most.
    pub probe_in_flight_per_publisher: Option<u64>,
    /// Probe: p99 delivery latency in the measuring half, in ms.
    pub probe_p99_ms: Option<f64>,
}

/// One step of offered load.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// 1-based step number.
    pub step: usize,
    /// Offered load as a multiple of the capacity.
    pub multiplier: f64,
    /// Messages per second offered (multiplier × capacity).
    pub offered_msgs_per_sec: f64,
    /// Messages the publishers were scheduled to send in this step.
    pub scheduled: u64,
    /// Messages of this step sent.
    pub sent: u64,
    /// Scheduled but never sent (the server stopped reading a publisher, or it was closed).
    pub unsent: u64,
    /// Counted connections still open when the step began.
    pub receivers: u64,
    /// Deliveries per second received while the step ran.
    pub delivered_deliveries_per_sec: f64,
    /// The same over the receivers each message goes to: messages fully delivered per second.
    pub delivered_msgs_per_sec: f64,
    /// delivered_msgs_per_sec as a percentage of the best step's.
    pub delivered_pct_of_peak: f64,
    /// Delivery latency of this step's messages from their scheduled send time; `null` when none
    /// arrived.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Maximum, ms.
    pub max_ms: Option<f64>,
    /// Deliveries the latency figures are drawn from.
    pub latency_samples: u64,
    /// Server VmRSS at the end of the step (with --server-pid).
    pub server_rss_bytes: Option<u64>,
    /// Counted connections the server closed (or lost) during the step.
    pub closed: u64,
    /// Those closes by WebSocket close code ("1008": slow consumer) or cause.
    pub close_codes: BTreeMap<String, u64>,
    /// Deliveries of this step's messages owed to connections that stayed open to the end,
    /// from publishers that did too.
    pub expected: u64,
    /// Unique deliveries of this step's messages to counted connections (closed ones included).
    pub received: u64,
    /// expected − what those connections had received when the drain after the last step ended
    /// (a backlog still queued in the server then counts here: see the warnings).
    pub lost: u64,
    /// Extra copies of this step's messages.
    pub duplicates: u64,
    /// This step's messages that arrived after a later one of the same publisher.
    pub reordered: u64,
}

/// The server's memory as sampled during the run (with --server-pid).
#[derive(Debug, Clone, Default)]
pub struct RssSamples {
    /// The server's pid.
    pub pid: Option<u32>,
    /// VmRSS before the first connection.
    pub before: Option<u64>,
    /// VmRSS at the end of each step.
    pub steps: Vec<Option<u64>>,
}

/// The whole overload result.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadReport {
    /// Always "overload".
    pub scenario: String,
    /// Target URL.
    pub url: String,
    /// Connection counts and failures.
    pub connections: Connections,
    /// Publishers requested.
    pub publishers: u64,
    /// Message size in bytes.
    pub size: usize,
    /// Length of each step in seconds.
    pub step_seconds: f64,
    /// Connections open when the first step began: the ones that count.
    pub counted_connections: u64,
    /// Counted connections still open at the end.
    pub surviving_connections: u64,
    /// The capacity and how it was found.
    pub capacity: Capacity,
    /// The best step's delivered messages per second.
    pub peak_delivered_msgs_per_sec: f64,
    /// Connections closed during the probe, by close code or cause.
    pub closed_before_steps: BTreeMap<String, u64>,
    /// --server-pid, if given.
    pub server_pid: Option<u32>,
    /// Server VmRSS before the first connection.
    pub server_rss_before_bytes: Option<u64>,
    /// One object per step, in order.
    pub steps: Vec<Step>,
    /// The client's own CPU use.
    pub client: Client,
    /// Plain-language warnings.
    pub warnings: Vec<String>,
}

impl OverloadReport {
    /// Builds the report; `base` is the generic report of the same run (connections, client).
    pub fn new(plan: &Plan, o: &OverloadPlan, p: &OverloadPartial, base: &Report, rss: &RssSamples) -> Self {
        let echo = u64::from(!o.expect_echo);
        let secs = o.step_ns as f64 / 1e9;
        let capacity = capacity(o, p, echo);
        let mut steps: Vec<Step> = (0..o.len())
            .map(|i| {
                let empty = StepPartial::default();
                let s = p.steps.get(i).unwrap_or(&empty);
                let per_message = s.receivers_at_start.saturating_sub(echo).max(1);
                let delivered = s.delivered_in_window as f64 / secs;
                let (expected, survived) = judged(s, p, echo);
                let ms = |q: f64| (s.latency.count() > 0).then(|| quantile_ms(&s.latency, q));
                Step {
                    step: i + 1,
                    multiplier: o.multipliers[i],
                    offered_msgs_per_sec: o.rate(i, capacity.msgs_per_sec),
                    scheduled: s.scheduled,
                    sent: s.sent,
                    unsent: s.scheduled.saturating_sub(s.sent),
                    receivers: s.receivers_at_start,
                    delivered_deliveries_per_sec: delivered,
                    delivered_msgs_per_sec: delivered / per_message as f64,
                    delivered_pct_of_peak: 0.0,
                    p50_ms: ms(0.5),
                    p99_ms: ms(0.99),
                    max_ms: ms(1.0),
                    latency_samples: s.latency.count(),
                    server_rss_bytes: rss.steps.get(i).copied().flatten(),
                    closed: s.closes.values().sum(),
                    close_codes: s.closes.clone(),
                    expected,
                    received: s.received,
                    lost: expected.saturating_sub(survived),
                    duplicates: s.duplicates,
                    reordered: s.reordered,
                }
            })
            .collect();
        let peak = steps.iter().map(|s| s.delivered_msgs_per_sec).fold(0.0, f64::max);
        for s in &mut steps {
            s.delivered_pct_of_peak = if peak > 0.0 { 100.0 * s.delivered_msgs_per_sec / peak } else { 0.0 };
        }
        let mut report = OverloadReport {
            scenario: "overload".into(),
            url: base.url.clone(),
            connections: base.connections.clone(),
            publishers: o.publishers,
            size: o.size,
            step_seconds: secs,
            counted_connections: p.counted,
            surviving_connections: p.survivors,
            capacity,
            peak_delivered_msgs_per_sec: peak,
            closed_before_steps: p.closed_before_steps.clone(),
            server_pid: rss.pid,
            server_rss_before_bytes: rss.before,
            steps,
            client: base.client.clone(),
            warnings: Vec::new(),
        };
        report.warnings = warnings(&report, base, plan);
        report
    }

    /// JSON for machines.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Deliveries owed to, and received by, connections that stayed open, of messages from
/// publishers that stayed open: a closed connection's missing messages went down with it, and a
/// closed publisher's last messages may never have left its socket, so neither is loss.
fn judged(s: &StepPartial, p: &OverloadPartial, echo: u64) -> (u64, u64) {
    let receivers = p.survivors.saturating_sub(echo);
    let open = |j: &usize| !p.publisher_closed.get(*j).copied().unwrap_or(false);
    let expected = (0..s.sent_by.len()).filter(open).map(|j| s.sent_by[j] * receivers).sum();
    let received = (0..s.survivors_received_from.len()).filter(open).map(|j| s.survivors_received_from[j]).sum();
    (expected, received)
}

fn capacity(o: &OverloadPlan, p: &OverloadPartial, echo: u64) -> Capacity {
    let receivers = p.survivors.saturating_sub(echo);
    if let Some(given) = o.capacity {
        return Capacity {
            msgs_per_sec: given,
            deliveries_per_sec: given * receivers as f64,
            found_by: "given".into(),
            how: format!("given with --capacity; × {receivers} receivers per message"),
            probe_seconds: None,
            probe_receivers: None,
            probe_in_flight_per_publisher: None,
            probe_p99_ms: None,
        };
    }
    let q = &p.probe;
    let (w0, w1) = o.probe_window();
    let secs = (w1 - w0) as f64 / 1e9;
    let totals = ProbeTotals { deliveries: q.deliveries, receivers: q.receivers };
    let msgs = capacity_board::capacity(totals, w1 - w0, o.expect_echo);
    let per_message = q.receivers.saturating_sub(echo);
    Capacity {
        msgs_per_sec: msgs,
        deliveries_per_sec: q.deliveries as f64 / secs,
        found_by: "probe".into(),
        how: format!(
            "closed-loop probe: {} publisher(s) sent as fast as the server delivered, each keeping at most {} \
             messages in flight, for {:.1} s; in the last {secs:.1} s {:.0} deliveries/s reached {per_message} \
             receivers per message",
            o.publishers,
            q.in_flight_limit,
            o.probe_ns as f64 / 1e9,
            q.deliveries as f64 / secs
        ),
        probe_seconds: Some(secs),
        probe_receivers: Some(q.receivers),
        probe_in_flight_per_publisher: Some(q.in_flight_limit),
        probe_p99_ms: (q.latency.count() > 0).then(|| quantile_ms(&q.latency, 0.99)),
    }
}

fn quantile_ms(h: &Hist, q: f64) -> f64 {
    if q >= 1.0 {
        h.max_ns() as f64 / 1e6
    } else {
        h.quantile_ns(q) as f64 / 1e6
    }
}

/// What a reader should know before trusting the steps.
fn warnings(r: &OverloadReport, base: &Report, plan: &Plan) -> Vec<String> {
    // The generic warnings minus the ones that treat a server close as a failure: here closes are
    // a result, reported per step.
    let mut w: Vec<String> =
        base.warnings.iter().filter(|m| !m.contains("closed by the server (or dropped)")).cloned().collect();
    if r.capacity.msgs_per_sec <= 0.0 {
        w.push("the capacity is 0: the probe delivered nothing, so no step offered any load".into());
    }
    let unsent: u64 = r.steps.iter().map(|s| s.unsent).sum();
    if unsent > 0 {
        w.push(format!(
            "{unsent} scheduled messages were never sent: a publisher's socket backed up (the server stopped \
             reading it) or the server closed it"
        ));
    }
    let lost: u64 = r.steps.iter().map(|s| s.lost).sum();
    let drain_ms = (plan.drain_end - plan.measure_end) as f64 / 1e6;
    let slowest = r.steps.iter().filter_map(|s| s.max_ms).fold(0.0, f64::max);
    if lost > 0 && slowest >= drain_ms {
        w.push(format!(
            "{lost} deliveries had not arrived when the drain ended, and deliveries took up to {slowest:.0} ms \
             (--drain is {drain_ms:.0} ms): part of that \"lost\" may be a backlog the server was still \
             working through; raise --drain to tell the two apart"
        ));
    }
    if r.counted_connections < plan.connections {
        w.push(format!(
            "only {} of {} connections were open when the first step began",
            r.counted_connections, plan.connections
        ));
    }
    w
}
