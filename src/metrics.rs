//! `GET /metrics`: the server's counters in the OpenMetrics text format,
//! encoded by the `prometheus-client` crate.
//!
//! Workers only bump their own atomics (see `stats`); a scrape reads them
//! once into a snapshot and lets the crate encode it, so scraping costs the
//! hot path nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::handle::Shared;
use crate::stats::{Refusal, WorkerCounters, LATENCY_BUCKETS};

/// The `Content-Type` of a scrape.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The whole scrape, the application's figures (`Handler::metrics`)
/// included, or a one-line error if encoding failed.
pub(crate) fn render(shared: &Shared, application: MetricsOut) -> String {
    encode(Snapshot::take(shared), application)
}

fn encode(snapshot: Snapshot, application: MetricsOut) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    registry.register_collector(Box::new(application));
    let mut out = String::with_capacity(8 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        log::error!("cannot encode /metrics: {e}");
        return format!("# encoding failed: {e}\n# EOF\n");
    }
    out
}

/// Figures an application adds to the server's `/metrics`
/// (`Handler::metrics`): counters and gauges with labels. Samples given
/// under one name form one metric family; its help and type are those of
/// its first sample.
#[derive(Debug, Default)]
pub struct MetricsOut {
    families: Vec<Family>,
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    gauge: bool,
    samples: Vec<(Vec<(String, String)>, u64)>,
}

impl MetricsOut {
    /// Adds a sample of a counter (a total that only grows). `name` should
    /// not end in `_total`: the encoder adds it.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(name, help, false, labels, value);
    }

    /// Adds a sample of a gauge (a value now).
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(name, help, true, labels, value);
    }

    fn sample(&mut self, name: &str, help: &str, gauge: bool, labels: &[(&str, &str)], value: u64) {
        let labels = labels.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect();
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(family) => family.samples.push((labels, value)),
            None => self.families.push(Family {
                name: name.to_owned(),
                help: help.to_owned(),
                gauge,
                samples: vec![(labels, value)],
            }),
        }
    }
}

impl Collector for MetricsOut {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.families {
            let kind = if family.gauge { MetricType::Gauge } else { MetricType::Counter };
            let mut metric = encoder.encode_descriptor(&family.name, &family.help, None, kind)?;
            for (labels, value) in &family.samples {
                let mut sample = metric.encode_family(labels)?;
                if family.gauge {
                    sample.encode_gauge(&(i64::try_from(*value).unwrap_or(i64::MAX)))?;
                } else {
                    sample.encode_counter::<NoLabelSet, _, u64>(value, None)?;
                }
            }
        }
        Ok(())
    }
}

/// One worker's gauges at scrape time.
#[derive(Debug, Clone, Default)]
struct WorkerGauges {
    connections: u64,
    queued_bytes: u64,
    inbox_commands: u64,
    inbox_bytes: u64,
    paused_reads: u64,
    paused: u64,
    partial_bytes: u64,
}

/// Everything a scrape reports, read once.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    counters: Vec<(&'static str, &'static str, u64)>,
    refused: Vec<(&'static str, u64)>,
    handshake_failures: Vec<(&'static str, u64)>,
    workers: Vec<WorkerGauges>,
    /// Upper bound and observations of each bucket (not cumulative).
    latency_buckets: Vec<(f64, u64)>,
    latency_sum: f64,
    latency_count: u64,
    /// Occupied channels and subscriptions over every worker.
    channels: u64,
    subscriptions: u64,
    deferred_responses: u64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Snapshot {
        let workers = &shared.counters;
        let sum = |f: fn(&WorkerCounters) -> &AtomicU64| -> u64 {
            workers.iter().map(|w| f(w).load(Ordering::Relaxed)).sum()
        };
        let counters = vec![
            ("fanout_connections_accepted", "TCP connections accepted", sum(|w| &w.accepted)),
            ("fanout_connections_opened", "WebSocket upgrades completed", sum(|w| &w.opened)),
            ("fanout_messages_in", "Complete messages received from clients", sum(|w| &w.messages_in)),
            ("fanout_message_bytes_in", "Payload bytes of messages received", sum(|w| &w.bytes_in)),
            ("fanout_deliveries", "Frames queued to clients (data and control)", sum(|w| &w.frames_out)),
            ("fanout_bytes_out", "Bytes written to client sockets", sum(|w| &w.bytes_out)),
            ("fanout_frames_dropped", "Frames dropped for a full send queue (drop policy)", sum(|w| &w.frames_dropped)),
            (
                "fanout_slow_consumer_closes",
                "Connections closed with 1008 for a full send queue",
                sum(|w| &w.slow_consumers_closed),
            ),
            (
                "fanout_rate_limited_closes",
                "Connections closed with 1008 for sending too fast",
                sum(|w| &w.rate_limited),
            ),
            ("fanout_handler_panics", "Application hook calls that panicked", sum(|w| &w.handler_panics)),
            ("fanout_protocol_errors", "Connections closed for a protocol violation", sum(|w| &w.protocol_errors)),
            ("fanout_idle_timeouts", "Connections closed for silence", sum(|w| &w.idle_timeouts)),
            (
                "fanout_input_overflows",
                "Connections closed because the worker held too much incomplete input",
                sum(|w| &w.input_overflows),
            ),
            ("fanout_http_requests", "Plain HTTP requests answered", sum(|w| &w.http_requests)),
        ];
        let by_cause = |cause: Refusal| workers.iter().map(|w| w.refusals(cause)).sum::<u64>();
        let mut refused: Vec<(&'static str, u64)> =
            Refusal::ALL.iter().filter(|c| !c.is_handshake_failure()).map(|&c| (c.label(), by_cause(c))).collect();
        refused.push(("descriptors", shared.refused_descriptors.load(Ordering::Relaxed)));
        let handshake_failures =
            Refusal::ALL.iter().filter(|c| c.is_handshake_failure()).map(|&c| (c.label(), by_cause(c))).collect();
        let per_worker = shared.registry.per_worker();
        let gauges = workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let inbox = shared.bus.inbox(i);
                WorkerGauges {
                    connections: per_worker.get(i).copied().unwrap_or(0) as u64,
                    queued_bytes: w.queued_bytes.load(Ordering::Relaxed) as u64,
                    inbox_commands: inbox.map_or(0, |b| b.queued() as u64),
                    inbox_bytes: inbox.map_or(0, |b| b.queued_bytes() as u64),
                    paused_reads: w.paused_reads.load(Ordering::Relaxed) as u64,
                    paused: w.paused.load(Ordering::Relaxed) as u64,
                    partial_bytes: w.partial_bytes.load(Ordering::Relaxed) as u64,
                }
            })
            .collect();
        let latency_buckets = latency_buckets(workers);
        let latency_count = latency_buckets.iter().map(|&(_, count)| count).sum();
        let latency_sum = workers.iter().map(|w| w.broadcast_latency.sum_micros.load(Ordering::Relaxed)).sum::<u64>();
        Snapshot {
            counters,
            refused,
            handshake_failures,
            workers: gauges,
            latency_buckets,
            latency_sum: latency_sum as f64 / 1e6,
            latency_count,
            channels: shared.channels.len() as u64,
            subscriptions: shared.channels.total_subscriptions() as u64,
            deferred_responses: shared.deferrals.in_flight() as u64,
        }
    }

    fn encode_gauge(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: fn(&WorkerGauges) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (i, worker) in self.workers.iter().enumerate() {
            let labels = [("worker", i.to_string())];
            metric.encode_family(&labels)?.encode_gauge(&(value(worker) as i64))?;
        }
        Ok(())
    }
}

/// The workers' latency histograms summed, as (upper bound, observations)
/// per bucket. Not cumulative: the encoder accumulates them itself. The last
/// bound is `f64::MAX`, which the encoder writes as `le="+Inf"` (it would
/// write infinity as `inf`, which parsers refuse).
fn latency_buckets(workers: &[WorkerCounters]) -> Vec<(f64, u64)> {
    LATENCY_BUCKETS
        .iter()
        .copied()
        .chain([f64::MAX])
        .enumerate()
        .map(|(i, bound)| (bound, workers.iter().map(|w| w.broadcast_latency.buckets[i].load(Ordering::Relaxed)).sum()))
        .collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in &self.counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            metric.encode_counter::<NoLabelSet, _, u64>(value, None)?;
        }
        for (name, help, causes) in [
            ("fanout_connections_refused", "Upgrades refused by the server, by cause", &self.refused),
            ("fanout_handshake_failures", "Requests that failed to upgrade, by cause", &self.handshake_failures),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (cause, value) in causes {
                let labels = [("cause", *cause)];
                metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(value, None)?;
            }
        }
        self.encode_gauge(&mut encoder, "fanout_connections", "Open WebSocket connections", |w| w.connections)?;
        self.encode_gauge(&mut encoder, "fanout_queued_bytes", "Bytes queued in user space for clients", |w| {
            w.queued_bytes
        })?;
        self.encode_gauge(&mut encoder, "fanout_inbox_depth", "Broadcasts and pushes waiting in the inbox", |w| {
            w.inbox_commands
        })?;
        self.encode_gauge(&mut encoder, "fanout_inbox_bytes", "Bytes of broadcasts and pushes in the inbox", |w| {
            w.inbox_bytes
        })?;
        self.encode_gauge(
            &mut encoder,
            "fanout_paused_publishers",
            "Publishers not read under output pressure",
            |w| w.paused_reads,
        )?;
        self.encode_gauge(
            &mut encoder,
            "fanout_worker_paused",
            "1 while the worker is paused by output pressure",
            |w| w.paused,
        )?;
        self.encode_gauge(
            &mut encoder,
            "fanout_partial_input_bytes",
            "Bytes held for incomplete messages and requests",
            |w| w.partial_bytes,
        )?;
        for (name, help, value) in [
            ("fanout_channels", "Occupied channels", self.channels),
            ("fanout_subscriptions", "Channel subscriptions over every channel", self.subscriptions),
            ("fanout_deferred_responses", "Deferred HTTP responses not yet answered", self.deferred_responses),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            metric.encode_gauge(&(i64::try_from(value).unwrap_or(i64::MAX)))?;
        }
        let mut metric = encoder.encode_descriptor(
            "fanout_broadcast_write_latency_seconds",
            "Time from a broadcast or publish call to the worker taking it to its clients",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(self.latency_sum, self.latency_count, &self.latency_buckets, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Verifies that the latency histogram is written with cumulative buckets ending in `+Inf`.

    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_once_and_end_in_plus_inf() {
        let workers = [WorkerCounters::default(), WorkerCounters::default()];
        workers[0].broadcast_latency.observe_micros(100);
        workers[1].broadcast_latency.observe_micros(300);
        workers[1].broadcast_latency.observe_micros(60_000_000);
        let latency_buckets = latency_buckets(&workers);
        let snapshot = Snapshot { latency_buckets, latency_count: 3, ..Snapshot::default() };
        let text = encode(snapshot, MetricsOut::default());
        let bucket = |le: &str| {
            let prefix = format!("fanout_broadcast_write_latency_seconds_bucket{{le=\"{le}\"}} ");
            text.lines().find_map(|line| line.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("{text}"))
        };
        assert_eq!((bucket("0.0005"), bucket("10.0"), bucket("+Inf")), ("2", "2", "3"));
        assert!(text.contains("fanout_broadcast_write_latency_seconds_count 3\n"), "{text}");
    }

    #[test]
    fn application_figures_group_by_name_with_their_labels() {
        let mut out = MetricsOut::default();
        out.gauge("fanout_app_connections", "Connections per app", &[("app", "1")], 3);
        out.gauge("fanout_app_connections", "Connections per app", &[("app", "2")], 4);
        out.counter("fanout_api_requests", "API requests", &[("endpoint", "events"), ("status", "200")], 9);
        let text = encode(Snapshot::default(), out);
        assert_eq!(text.matches("# TYPE fanout_app_connections gauge").count(), 1, "{text}");
        assert!(text.contains("fanout_app_connections{app=\"2\"} 4\n"), "{text}");
        assert!(text.contains("fanout_api_requests_total{endpoint=\"events\",status=\"200\"} 9\n"), "{text}");
    }
}
