//! The final report: built from the merged `Partial`, printed as a table or as JSON, plus the
//! warnings a person needs to trust (or distrust) the numbers.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::header::Payload;
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::socketio::report::SocketIoReport;
use crate::stats::Partial;

/// Share of a thread's time spent on CPU above which the client, not the server, may be what
/// limits the figures.
pub const SATURATED: f64 = 0.90;

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// Summarises `h` (nanoseconds) in milliseconds.
    pub fn of(h: &Hist) -> Percentiles {
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            count: h.count(),
            mean: h.mean_ns() / 1e6,
            p50: ms(h.quantile_ns(0.5)),
            p90: ms(h.quantile_ns(0.9)),
            p99: ms(h.quantile_ns(0.99)),
            p999: ms(h.quantile_ns(0.999)),
            max: ms(h.max_ns()),
        }
    }
}

/// Connection counts.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Requested with --connections.
    pub requested: u64,
    /// Connects attempted.
    pub attempted: u64,
    /// Handshakes completed.
    pub opened: u64,
    /// Open when measuring started (the receivers that count).
    pub open_at_measure: u64,
    /// Open when the client began closing.
    pub open_at_end: u64,
    /// Never opened, by cause.
    pub failures: BTreeMap<String, u64>,
    /// Opened, then ended before the end of the test, by cause.
    pub ended_early: BTreeMap<String, u64>,
    /// With `--deflate`: how many connections the server agreed permessage-deflate with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permessage_deflate: Option<Deflate>,
}

/// `--deflate`: what the handshakes agreed, and what arrived compressed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Deflate {
    /// Connections that opened with permessage-deflate agreed.
    pub agreed: u64,
    /// Connections that opened without it (the server did not agree): not compressed.
    pub not_compressed: u64,
    /// Compressed messages received over the whole run (warm-up and drain included).
    pub compressed_messages: u64,
    /// Their payload bytes as they arrived.
    pub compressed_bytes: u64,
    /// Their payload bytes once inflated.
    pub inflated_bytes: u64,
}

impl Deflate {
    /// Inflated over compressed bytes (0 when nothing arrived compressed).
    pub fn ratio(&self) -> f64 {
        if self.compressed_bytes == 0 {
            0.0
        } else {
            self.inflated_bytes as f64 / self.compressed_bytes as f64
        }
    }
}

/// Broadcast results.
#[derive(Debug, Clone, Serialize)]
pub struct Broadcast {
    /// Publishers requested / open at measurement start.
    pub publishers: u64,
    /// Publishers whose connection was open when measuring started.
    pub publishers_active: u64,
    /// Message size in bytes.
    pub size: usize,
    /// What filled each message after its header (`padding` or `json`).
    pub payload: Payload,
    /// Offered message rate (messages/s over all publishers).
    pub rate: f64,
    /// Measured messages sent.
    pub sent: u64,
    /// Measured messages the client could not send on time (see warnings).
    pub unsent: u64,
    /// The connections each measured message is owed to: every connection open when measuring
    /// began but its publisher (--expect-echo: and its publisher); with --publish-url, every
    /// connection open then that does not publish.
    pub receivers: u64,
    /// sent × receivers.
    pub expected: u64,
    /// Deliveries received with a valid header.
    pub received: u64,
    /// expected − unique received.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Arrived after a later message of the same publisher.
    pub reordered: u64,
    /// Messages without the loadtest header (server welcome texts etc.).
    pub other: u64,
    /// Own messages echoed back although --expect-echo was not given.
    pub self_received: u64,
    /// `--publish-url`: where the publishers connected (the receivers: `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_url: Option<String>,
    /// `--publish-url`: measured messages that reached a publisher, not counted as deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_by_publishers: Option<u64>,
    /// Deliveries per second over the measurement window.
    pub deliveries_per_sec: f64,
    /// Send→receive latency, intended send time based.
    pub latency_ms: Percentiles,
}

/// Echo results.
#[derive(Debug, Clone, Serialize)]
pub struct Echo {
    /// Message size in bytes.
    pub size: usize,
    /// Open loop: offered messages per second over all connections; `null`: closed loop.
    pub rate: Option<f64>,
    /// Measured messages sent.
    pub sent: u64,
    /// Open loop: measured messages not sent (the connection had ended or its socket backed up).
    pub unsent: u64,
    /// Measured messages sent whose echo did not come back by the end of --drain.
    pub unanswered: u64,
    /// Messages that were not this connection's own echo (a chat server's relays, welcomes).
    pub other: u64,
    /// Messages were sent (warm-up included) and not one came back: the server does not echo.
    pub no_echo: bool,
    /// Round trips completed in the measurement window.
    pub round_trips: u64,
    /// Round trips per second.
    pub round_trips_per_sec: f64,
    /// Round-trip time.
    pub rtt_ms: Percentiles,
}

/// The client's own cost, to tell client limits from server limits.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Processes used.
    pub processes: usize,
    /// Event-loop threads over all processes.
    pub threads: usize,
    /// Process CPU time over (wall time × threads), in percent.
    pub cpu_percent: f64,
    /// The busiest event-loop thread's CPU time over its wall time, in percent, while measuring
    /// (`connect`: over the whole run, ramp-up included).
    pub busiest_thread_percent: f64,
    /// How late publishers sent relative to schedule.
    pub send_lag_ms: Percentiles,
    /// From the loop waking up to reading a ready socket.
    pub read_delay_ms: Percentiles,
}

/// Server memory and CPU, from `/proc/PID/status` and `/proc/PID/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The server's pid.
    pub pid: u32,
    /// VmRSS before the first connection.
    pub rss_before_bytes: u64,
    /// VmRSS with the connections held.
    pub rss_after_bytes: u64,
    /// (after − before) / connections open.
    pub rss_per_connection_bytes: f64,
    /// CPU time over the measurement window, in percent of one core (broadcast, echo).
    pub cpu_percent_while_measuring: Option<f64>,
    /// broadcast: CPU time in the window over the deliveries counted, in nanoseconds (what one
    /// delivery costs the server, less sensitive to other load than a rate).
    pub cpu_ns_per_delivery: Option<f64>,
}

/// Everything reported at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub url: String,
    /// Length of the measurement window in seconds.
    pub measure_seconds: f64,
    /// Connection counts and failures.
    pub connections: Connections,
    /// Handshake latency.
    pub handshake_ms: Percentiles,
    /// Broadcast results, for that scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Broadcast>,
    /// Echo results, for that scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<Echo>,
    /// socketio: the sessions (its deliveries are in `broadcast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socketio: Option<SocketIoReport>,
    /// The client's own CPU use.
    pub client: Client,
    /// Server memory, with --server-pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// Plain-language warnings (client limits, saturation, failures).
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds the report from the merged results.
    pub fn new(plan: &Plan, p: &Partial, server: Option<Server>) -> Report {
        let secs = (plan.measure_end - plan.measure_start) as f64 / 1e9;
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let broadcast = match plan.kind {
            Kind::Broadcast { publishers, size, payload, rate, expect_echo, separate_publishers } => {
                // Both counts judge the same connections at the same instant (`Conn::open_at`
                // the measure start), so their difference is exactly the receivers that are not
                // publishers.
                let receivers = if separate_publishers {
                    p.open_at_measure.saturating_sub(p.publishers_at_measure)
                } else {
                    p.open_at_measure.saturating_sub(u64::from(!expect_echo))
                };
                let expected = p.sent * receivers;
                Some(Broadcast {
                    publishers,
                    publishers_active: p.publishers_at_measure,
                    size,
                    payload,
                    rate,
                    sent: p.sent,
                    unsent: p.unsent,
                    receivers,
                    expected,
                    received: p.received,
                    lost: expected.saturating_sub(p.received - p.duplicates.min(p.received)),
                    duplicates: p.duplicates,
                    reordered: p.reordered,
                    other: p.other,
                    self_received: p.self_received,
                    publish_url: plan.publish.as_ref().map(|t| t.url.display()),
                    received_by_publishers: separate_publishers.then_some(p.publisher_received),
                    deliveries_per_sec: per_sec(p.received),
                    latency_ms: Percentiles::of(&p.latency),
                })
            }
            Kind::SocketIo(ref sp) => {
                let ready = p.socketio.as_ref().map_or(0, |s| s.ready_at_measure);
                // The app relays to every other socket: each measured event, sent by a
                // publisher that was ready itself, is owed to the ready sockets but its sender.
                let receivers = ready.saturating_sub(1);
                let expected = p.sent * receivers;
                Some(Broadcast {
                    publishers: sp.publishers,
                    publishers_active: p.publishers_at_measure,
                    size: sp.size,
                    payload: Payload::Padding,
                    rate: sp.rate,
                    sent: p.sent,
                    unsent: p.unsent,
                    receivers,
                    expected,
                    received: p.received,
                    lost: expected.saturating_sub(p.received - p.duplicates.min(p.received)),
                    duplicates: p.duplicates,
                    reordered: p.reordered,
                    other: p.other,
                    self_received: p.self_received,
                    publish_url: None,
                    received_by_publishers: None,
                    deliveries_per_sec: per_sec(p.received),
                    latency_ms: Percentiles::of(&p.latency),
                })
            }
            _ => None,
        };
        let socketio = match &plan.kind {
            Kind::SocketIo(sp) => Some(SocketIoReport::new(sp, p.socketio.as_ref().unwrap_or(&Default::default()))),
            _ => None,
        };
        let echo = match plan.kind {
            Kind::Echo { size, rate, .. } => Some(Echo {
                size,
                rate,
                sent: p.sent,
                unsent: p.unsent,
                unanswered: p.sent.saturating_sub(p.round_trips),
                other: p.other,
                no_echo: p.sent_total > 0 && p.round_trips + p.warmup_received == 0,
                round_trips: p.round_trips,
                round_trips_per_sec: per_sec(p.round_trips),
                rtt_ms: Percentiles::of(&p.latency),
            }),
            _ => None,
        };
        let ratio = |cpu: &[u64], wall: &[u64], threads: &[u64]| {
            let c: u64 = cpu.iter().sum();
            let w: f64 =
                wall.iter().zip(threads.iter().chain(std::iter::repeat(&1))).map(|(w, t)| (*w * *t) as f64).sum();
            if w > 0.0 {
                100.0 * c as f64 / w
            } else {
                0.0
            }
        };
        let busiest = p
            .thread_cpu_ns
            .iter()
            .zip(&p.thread_wall_ns)
            .map(|(c, w)| if *w > 0 { 100.0 * *c as f64 / *w as f64 } else { 0.0 })
            .fold(0.0, f64::max);
        let client = Client {
            processes: p.process_wall_ns.len(),
            threads: p.thread_wall_ns.len(),
            cpu_percent: ratio(&p.process_cpu_ns, &p.process_wall_ns, &p.process_threads),
            busiest_thread_percent: busiest,
            send_lag_ms: Percentiles::of(&p.send_lag),
            read_delay_ms: Percentiles::of(&p.read_delay),
        };
        let mut report = Report {
            scenario: plan.name.to_string(),
            url: plan.main.url.display(),
            measure_seconds: secs,
            connections: Connections {
                requested: plan.connections,
                attempted: p.attempted,
                opened: p.opened,
                open_at_measure: p.open_at_measure,
                open_at_end: p.open_at_end,
                failures: p.failures.clone(),
                ended_early: p.ended_early.clone(),
                permessage_deflate: plan.deflate.then(|| Deflate {
                    agreed: p.deflate_agreed,
                    not_compressed: p.opened.saturating_sub(p.deflate_agreed),
                    compressed_messages: p.compressed_messages,
                    compressed_bytes: p.compressed_bytes,
                    inflated_bytes: p.inflated_bytes,
                }),
            },
            handshake_ms: Percentiles::of(&p.handshake),
            broadcast,
            echo,
            socketio,
            client,
            server,
            warnings: Vec::new(),
        };
        report.warnings = crate::warnings::collect(&report, p);
        report
    }

    /// JSON for machines.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
