//! `ChannelsReport`: the `channels` scenario's result, one row per step plus the subscriptions,
//! the API's answers, the search's verdict and the server's memory; printed as a table
//! (`table`) or JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::channels::board::StepTotals;
use crate::channels::plan::{ChannelsPlan, Pace, Via};
use crate::channels::search::{self, Decision};
use crate::channels::stats::ChannelsPartial;
use crate::report::{Client, Connections, Percentiles, Report};
use crate::stats::Partial;

/// The server's VmRSS samples (before connecting, once subscribed, then at the end of each step)
/// and its CPU time over a fixed-rate step's window.
pub struct Rss<'a> {
    /// --server-pid.
    pub pid: Option<u32>,
    /// Before the first connection.
    pub before: Option<u64>,
    /// Once subscribed, then one per step.
    pub samples: &'a [Option<u64>],
    /// CPU time over the measured window (fixed rate only).
    pub cpu_ns: Option<u64>,
}

/// Subscription counts.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriptions {
    /// Subscribers asked for (-c).
    pub requested: u64,
    /// Connections whose subscription succeeded (publishers included), whenever.
    pub subscribed: u64,
    /// Subscribers subscribed before measuring began: the ones every event is owed to.
    pub counted: u64,
    /// Fewest and most counted subscribers on one channel.
    pub per_channel_min: u64,
    /// Most counted subscribers on one channel.
    pub per_channel_max: u64,
    /// Client-event publishers subscribed before measuring began.
    pub publishers: u64,
    /// From the WebSocket opening to `subscription_succeeded`.
    pub subscribe_ms: Percentiles,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// 1-based.
    pub step: usize,
    /// `fixed`, `search` or `half load`.
    pub role: String,
    /// Events/s offered over all channels.
    pub rate: f64,
    /// Events the schedule put in the step.
    pub scheduled: u64,
    /// Of those, sent (the rest: publishers backed up or down).
    pub sent: u64,
    /// Accepted by the server (api: 2xx).
    pub accepted: u64,
    /// Refused or unanswered API requests; `pusher:error`s on publishers.
    pub errors: u64,
    /// Deliveries owed: accepted events × counted subscribers of their channel.
    pub expected: u64,
    /// Distinct deliveries received by the end of the drain.
    pub received: u64,
    /// expected − received.
    pub lost: u64,
    /// Extra copies.
    pub duplicates: u64,
    /// Arrived after a later event of their stream.
    pub reordered: u64,
    /// Deliveries per second the schedule offered.
    pub offered_deliveries_per_sec: f64,
    /// Deliveries per second received while the step ran.
    pub deliveries_per_sec: f64,
    /// deliveries_per_sec over offered, percent.
    pub pct_of_offered: f64,
    /// Delivery latency from the intended send time.
    pub latency_ms: Percentiles,
    /// Server VmRSS at the end of the step (with --server-pid).
    pub server_rss_bytes: Option<u64>,
    /// No error, nothing lost, and at least 95% of the offered deliveries in time.
    pub sustained: bool,
}

/// The HTTP API's side.
#[derive(Debug, Clone, Serialize)]
pub struct Api {
    /// Answers by status over the whole run, warm-up included.
    pub answers: BTreeMap<String, u64>,
    /// Requests never answered.
    pub unanswered: u64,
    /// Connections opened again after a failure or a `Connection: close`.
    pub reconnects: u64,
    /// Answers after which the server closed the connection: it does not keep API connections
    /// alive, so each request costs a connection.
    pub closed_by_server: u64,
    /// From request to answer.
    pub latency_ms: Percentiles,
    /// TCP connect time of API connections.
    pub connect_ms: Percentiles,
    /// Connects abandoned after 200 ms and tried again from another port.
    pub connect_timeouts: u64,
}

/// What the saturation search found.
#[derive(Debug, Clone, Serialize)]
pub struct Saturation {
    /// The highest rate sustained, events/s (`null`: none was).
    pub sustained_rate: Option<f64>,
    /// Deliveries per second received at that rate.
    pub sustained_deliveries_per_sec: Option<f64>,
    /// The half-load step's rate and p99 latency.
    pub half_load_rate: f64,
    /// p99 delivery latency at half load, ms.
    pub half_load_p99_ms: Option<f64>,
    /// The decisions taken while running.
    pub decisions: Vec<Decision>,
}

/// Server memory and CPU, from `/proc/PID/status` and `/proc/PID/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// The server's pid.
    pub pid: u32,
    /// VmRSS before the first connection.
    pub rss_before_bytes: u64,
    /// VmRSS once the connections subscribed, before any event.
    pub rss_subscribed_bytes: Option<u64>,
    /// (subscribed − before) / subscribed connections.
    pub rss_per_subscribed_connection_bytes: Option<f64>,
    /// Fixed rate: CPU time over the measured window, in percent of one core.
    pub cpu_percent_while_measuring: Option<f64>,
    /// Fixed rate: CPU time in the window over the deliveries received in it, in nanoseconds.
    pub cpu_ns_per_delivery: Option<f64>,
}

/// Everything reported at the end of a `channels` run.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelsReport {
    /// `channels`.
    pub scenario: String,
    /// The WebSocket URL (`--url`).
    pub url: String,
    /// `--via api`: where the API requests went (`--api-url`, or the `--url`'s host and port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `--subscriber-url`, in order: subscriber i connected to the (i mod N)-th (none: to `url`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriber_urls: Vec<String>,
    /// `--api-url` or `--subscriber-url` was given: the table names the servers.
    #[serde(skip)]
    pub split: bool,
    /// How events were published.
    pub via: Via,
    /// `fixed rate` or `saturation search`.
    pub mode: String,
    /// Channels, event size, publishers (HTTP or WebSocket connections), API pipeline depth.
    pub channels: u64,
    /// Bytes of each event's data.
    pub size: usize,
    /// HTTP connections (api) or publishing connections (client events).
    pub publishers: u64,
    /// Measured seconds per step.
    pub step_seconds: f64,
    /// Connection counts.
    pub connections: Connections,
    /// WebSocket handshake latency.
    pub handshake_ms: Percentiles,
    /// Subscriptions.
    pub subscriptions: Subscriptions,
    /// The steps.
    pub steps: Vec<Step>,
    /// API answers (api only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// `pusher:error`s by code, and unexpected events by name.
    pub pusher_errors: BTreeMap<String, u64>,
    /// `pusher:ping`s answered.
    pub pings_answered: u64,
    /// Events delivered to a subscriber of another channel.
    pub misrouted: u64,
    /// Messages that were neither protocol events nor stamped events.
    pub other: u64,
    /// The search's result (saturation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturation: Option<Saturation>,
    /// Server memory (with --server-pid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Memory>,
    /// The client's own load.
    pub client: Client,
    /// What a reader should know before trusting the figures.
    pub warnings: Vec<String>,
}

impl ChannelsReport {
    /// Builds the report from the merged measurements, the generic report's connection and
    /// client figures, and the server's memory samples.
    pub fn new(cp: &ChannelsPlan, partial: &Partial, base: &Report, rss: &Rss<'_>) -> ChannelsReport {
        let empty = ChannelsPartial::default();
        let p = partial.channels.as_ref().unwrap_or(&empty);
        let secs = cp.step_ns as f64 / 1e9;
        let mut subs = p.subscribers.clone();
        subs.resize(cp.channels as usize, 0);
        let mut steps = Vec::new();
        for (i, st) in p.steps.iter().enumerate() {
            let judged = p.decisions.iter().find(|d| d.step == i + 1);
            let pace = if i == 0 {
                Some(cp.first_pace())
            } else {
                let before = p.decisions.iter().find(|d| d.step == i);
                before.and_then(|d| Some(Pace { start: d.next_start?, rate: d.next_rate? }))
            };
            let Some(pace) = pace else { break };
            let rate = pace.rate;
            let offered: f64 = (0..cp.streams())
                .map(|s| cp.scheduled(i, pace, s) as f64 * subs[cp.channel_of_stream(s) as usize] as f64)
                .sum();
            let expected = st.expected(&subs);
            let totals = StepTotals {
                offered,
                expected,
                unique: st.unique,
                in_window: st.in_window,
                errors: st.errors,
                ..StepTotals::default()
            };
            let server_rss_bytes = if cp.saturation() {
                judged.and_then(|d| d.server_rss_bytes)
            } else {
                rss.samples.get(i + 1).copied().flatten()
            };
            let role = match (cp.saturation(), i == cp.reference_step()) {
                (false, _) => "fixed",
                (true, false) => "search",
                (true, true) => "half load",
            };
            steps.push(Step {
                step: i + 1,
                role: role.into(),
                rate,
                scheduled: st.scheduled,
                sent: st.sent,
                accepted: st.accepted.iter().sum(),
                errors: st.errors,
                expected,
                received: st.unique,
                lost: expected.saturating_sub(st.unique),
                duplicates: st.duplicates,
                reordered: st.reordered,
                offered_deliveries_per_sec: offered / secs,
                deliveries_per_sec: st.in_window as f64 / secs,
                pct_of_offered: if offered > 0.0 { 100.0 * st.in_window as f64 / offered } else { 0.0 },
                latency_ms: Percentiles::of(&st.latency),
                server_rss_bytes,
                sustained: search::sustained(&totals),
            });
        }
        let saturation = cp.saturation().then(|| {
            let best =
                steps.iter().filter(|s| s.role == "search" && s.sustained).max_by(|a, b| a.rate.total_cmp(&b.rate));
            let half = steps.last();
            Saturation {
                sustained_rate: best.map(|s| s.rate),
                sustained_deliveries_per_sec: best.map(|s| s.deliveries_per_sec),
                half_load_rate: half.map_or(0.0, |s| s.rate),
                half_load_p99_ms: half.filter(|s| s.latency_ms.count > 0).map(|s| s.latency_ms.p99),
                decisions: p.decisions.clone(),
            }
        });
        let server = rss.pid.zip(rss.before).map(|(pid, before)| {
            let subscribed = rss.samples.first().copied().flatten();
            Memory {
                pid,
                rss_before_bytes: before,
                rss_subscribed_bytes: subscribed,
                rss_per_subscribed_connection_bytes: subscribed
                    .filter(|_| p.subscribed > 0)
                    .map(|s| s.saturating_sub(before) as f64 / p.subscribed as f64),
                cpu_percent_while_measuring: rss.cpu_ns.map(|ns| ns as f64 / 1e7 / secs),
                cpu_ns_per_delivery: rss
                    .cpu_ns
                    .zip(p.steps.first().map(|st| st.in_window).filter(|&n| n > 0))
                    .map(|(ns, n)| ns as f64 / n as f64),
            }
        });
        let mut report = ChannelsReport {
            scenario: "channels".into(),
            url: base.url.clone(),
            api_url: None,
            subscriber_urls: Vec::new(),
            split: false,
            via: cp.via,
            mode: if cp.saturation() { "saturation search" } else { "fixed rate" }.into(),
            channels: cp.channels,
            size: cp.size,
            publishers: cp.publishers,
            step_seconds: secs,
            connections: base.connections.clone(),
            handshake_ms: base.handshake_ms.clone(),
            subscriptions: Subscriptions {
                requested: cp.subscribers,
                subscribed: p.subscribed,
                counted: subs.iter().sum(),
                per_channel_min: subs.iter().copied().min().unwrap_or(0),
                per_channel_max: subs.iter().copied().max().unwrap_or(0),
                publishers: p.publishers_subscribed,
                subscribe_ms: Percentiles::of(&p.subscribe),
            },
            steps,
            api: (cp.via == Via::Api).then(|| Api {
                answers: p.answers.clone(),
                unanswered: p.unanswered,
                reconnects: p.reconnects,
                closed_by_server: p.closed_by_server,
                latency_ms: Percentiles::of(&p.api_latency),
                connect_ms: Percentiles::of(&p.api_connect),
                connect_timeouts: p.connect_timeouts,
            }),
            pusher_errors: p.pusher_errors.clone(),
            pings_answered: p.pings,
            misrouted: p.misrouted,
            other: partial.other,
            saturation,
            server,
            client: base.client.clone(),
            warnings: Vec::new(),
        };
        report.warnings = crate::channels::warnings::collect(&report, cp, base, partial);
        report
    }

    /// JSON for machines.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
