//! `Plan`: the validated settings of one run and its timeline. Every thread and every process
//! derives the same schedule from the same epoch, so they agree on when connections open, when
//! measuring starts and stops, and when each publisher sends, without talking to each other.

use std::time::Duration;

use thiserror::Error;

use crate::cli::{Common, Scenario};
use crate::header::HEADER_LEN;
pub use crate::kind::Kind;
use crate::pusher::stamp::STAMP_LEN;
use crate::source_ips::{SourceIps, SourceIpsError};
use crate::tls::{TlsClient, TlsSetupError};
use crate::url::{UrlError, WsUrl};

const NS: f64 = 1e9;
/// How long connections are given to finish the closing handshake at the end.
const CLOSE_WAIT_NS: u64 = 2_000_000_000;

/// Invalid settings, reported before anything connects.
#[derive(Debug, Error)]
pub enum PlanError {
    /// Bad `--url`.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Bad `--source-ips`.
    #[error(transparent)]
    SourceIps(#[from] SourceIpsError),
    /// `wss://` without usable trust settings, or TLS flags without `wss://`.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// Any other inconsistent flag.
    #[error("{0}")]
    Invalid(String),
}

/// Validated settings plus the absolute timeline (CLOCK_MONOTONIC ns).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenario name.
    pub name: &'static str,
    /// Scenario details.
    pub kind: Kind,
    /// Target server.
    pub url: WsUrl,
    /// For a `wss://` URL: the TLS settings every connection of this process shares.
    pub tls: Option<TlsClient>,
    /// Offer permessage-deflate on every connection (`--deflate`).
    pub deflate: bool,
    /// Connections over all processes.
    pub connections: u64,
    /// Event-loop threads in this process.
    pub threads: usize,
    /// Source addresses, round-robin by global connection index.
    pub source_ips: SourceIps,
    /// Connections opened per second over all processes.
    pub connect_rate: f64,
    /// Per-connection connect + handshake deadline.
    pub connect_timeout_ns: u64,
    /// This process's index among `proc_count`.
    pub proc_index: u64,
    /// Number of loadtest processes.
    pub proc_count: u64,
    /// Connection 0 opens at this instant.
    pub epoch: u64,
    /// Traffic (warm-up) begins.
    pub traffic_start: u64,
    /// Measuring begins.
    pub measure_start: u64,
    /// No measured message is scheduled at or after this.
    pub measure_end: u64,
    /// Deliveries in flight are awaited until this; then connections are closed.
    pub drain_end: u64,
    /// Connections that have not closed by now are aborted and the threads exit.
    pub close_end: u64,
}

impl Plan {
    /// Validates the command line and lays out the timeline from `epoch`.
    pub fn new(scenario: &Scenario, epoch: u64) -> Result<Plan, PlanError> {
        let c: &Common = scenario.common();
        let invalid = |m: String| Err(PlanError::Invalid(m));
        let url = WsUrl::parse(&c.url)?;
        let tls = TlsClient::from_flags(&url, c.ca_file.as_deref(), c.insecure)?;
        let source_ips = match &c.source_ips {
            Some(text) => SourceIps::parse(text)?,
            None => SourceIps::default(),
        };
        let zero = Duration::ZERO;
        let (kind, duration, warmup, drain) = match scenario {
            Scenario::Connect { duration, .. } => (Kind::Connect, *duration, zero, zero),
            Scenario::Broadcast { publishers, size, payload, rate, expect_echo, window, .. } => (
                Kind::Broadcast {
                    publishers: *publishers,
                    size: *size,
                    payload: *payload,
                    rate: *rate,
                    expect_echo: *expect_echo,
                },
                window.duration,
                window.warmup,
                window.drain,
            ),
            Scenario::Echo { size, in_flight, rate, window, .. } => (
                Kind::Echo { size: *size, in_flight: *in_flight, rate: *rate },
                window.duration,
                window.warmup,
                window.drain,
            ),
            Scenario::Overload(a) => {
                let (o, before_steps, steps) = a.plan();
                (Kind::Overload(o), steps, before_steps, a.drain)
            }
            Scenario::Channels(a) => {
                let (cp, warmup, measured, drain) = a.plan();
                (Kind::Channels(cp), measured, warmup, drain)
            }
        };
        let mut url = url;
        let connections = match &kind {
            Kind::Channels(cp) => {
                url.path = cp.ws_path();
                cp.total_connections()
            }
            _ => c.connections,
        };
        let connect_rate = c.connect_rate;
        if c.connections == 0 {
            return invalid("--connections must be at least 1".into());
        }
        if !(connect_rate > 0.0 && connect_rate.is_finite()) {
            return invalid("--connect-rate must be a positive number of connections per second".into());
        }
        if c.processes == 0 || u64::from(c.processes) > c.connections {
            return invalid(format!("--processes must be between 1 and --connections ({})", c.connections));
        }
        match &kind {
            Kind::Broadcast { publishers, size, rate, .. } => {
                if *publishers == 0 || *publishers > c.connections {
                    return invalid(format!("--publishers must be between 1 and --connections ({})", c.connections));
                }
                check_size(*size)?;
                if !(*rate > 0.0 && rate.is_finite()) {
                    return invalid("--rate must be a positive number of messages per second".into());
                }
            }
            Kind::Echo { size, in_flight, rate } => {
                check_size(*size)?;
                if *in_flight == 0 {
                    return invalid("--in-flight must be at least 1".into());
                }
                if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                    return invalid("--rate must be a positive number of messages per second".into());
                }
            }
            Kind::Overload(o) => {
                check_size(o.size)?;
                o.check(c.connections).map_err(PlanError::Invalid)?;
            }
            Kind::Channels(cp) => {
                if cp.size < STAMP_LEN || cp.size > 16 << 20 {
                    return invalid(format!("--size must be between {STAMP_LEN} bytes (the stamp) and 16 MiB"));
                }
                cp.check(c.processes).map_err(PlanError::Invalid)?;
            }
            Kind::Connect => {}
        }
        let proc_index = u64::from(c.worker_index.unwrap_or(0));
        let proc_count = u64::from(c.processes);
        if proc_index >= proc_count {
            return invalid("internal: worker index out of range".into());
        }
        let mine = share(connections, proc_count, proc_index);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = c.threads.unwrap_or(cores);
        if threads == 0 {
            return invalid("--threads must be at least 1".into());
        }
        let threads = threads.min(mine.max(1) as usize);
        let ns = |d: std::time::Duration| d.as_nanos().min(u128::from(u64::MAX / 4)) as u64;
        let ramp_end = epoch + (connections as f64 * NS / connect_rate) as u64;
        let traffic_start = ramp_end + ns(c.settle);
        let measure_start = traffic_start + ns(warmup);
        let measure_end = measure_start + ns(duration);
        let drain_end = measure_end + ns(drain);
        let mut kind = kind;
        if let Kind::Overload(o) = &mut kind {
            o.probe_start = traffic_start;
            o.start = measure_start;
        }
        if let Kind::Channels(cp) = &mut kind {
            cp.lay_out(traffic_start, measure_start);
        }
        Ok(Plan {
            name: scenario.name(),
            kind,
            url,
            tls,
            deflate: c.deflate,
            connections,
            threads,
            source_ips,
            connect_rate,
            connect_timeout_ns: ns(c.connect_timeout).max(1),
            proc_index,
            proc_count,
            epoch,
            traffic_start,
            measure_start,
            measure_end,
            drain_end,
            close_end: drain_end + CLOSE_WAIT_NS,
        })
    }

    /// Connections handled by this process.
    pub fn local_connections(&self) -> u64 {
        share(self.connections, self.proc_count, self.proc_index)
    }

    /// Connections handled by `thread` of this process.
    pub fn thread_connections(&self, thread: usize) -> u64 {
        share(self.local_connections(), self.threads as u64, thread as u64)
    }

    /// Global index of the `slot`-th connection of `thread` in this process. Consecutive global
    /// indices alternate between processes, then threads, so every thread ramps at the same pace
    /// and publishers (indices 0..P) land on different threads.
    pub fn global_index(&self, thread: usize, slot: usize) -> u64 {
        self.proc_index + self.proc_count * (thread as u64 + self.threads as u64 * slot as u64)
    }

    /// When global connection `index` is due to connect.
    pub fn connect_at(&self, index: u64) -> u64 {
        self.epoch + (index as f64 * NS / self.connect_rate) as u64
    }

    /// Broadcast: intended send time of message `k` of publisher `j`. Publishers interleave so
    /// the total stream is evenly spaced at `rate`.
    pub fn intended(&self, j: u64, k: u64) -> u64 {
        match self.kind {
            Kind::Broadcast { publishers, rate, .. } => {
                self.traffic_start + ((j + k * publishers) as f64 * NS / rate) as u64
            }
            _ => u64::MAX,
        }
    }

    /// Broadcast: the first message number of publisher `j` intended at or after `t`.
    pub fn first_at_or_after(&self, j: u64, t: u64) -> u64 {
        let Kind::Broadcast { publishers, rate, .. } = self.kind else { return 0 };
        let offset = t.saturating_sub(self.traffic_start) as f64 * rate / NS;
        let mut k = ((offset - j as f64) / publishers as f64).floor().max(0.0) as u64;
        k = k.saturating_sub(2);
        while self.intended(j, k) < t {
            k += 1;
        }
        k
    }
}

/// Items `0..total` whose index modulo `parts` is `part`.
fn share(total: u64, parts: u64, part: u64) -> u64 {
    if part >= total {
        0
    } else {
        (total - part).div_ceil(parts)
    }
}

fn check_size(size: usize) -> Result<(), PlanError> {
    if size < HEADER_LEN {
        return Err(PlanError::Invalid(format!(
            "--size must be at least {HEADER_LEN} bytes (the header: magic, publisher id, sequence, send time)"
        )));
    }
    if size > 16 << 20 {
        return Err(PlanError::Invalid("--size must be at most 16 MiB".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::overload_plan::PROBE_GAP_NS;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, PlanError> {
        let mut all = vec!["loadtest"];
        all.extend_from_slice(args);
        Plan::new(&Cli::try_parse_from(all).unwrap().scenario, 1_000_000_000)
    }

    #[test]
    fn connections_split_exactly_over_processes_and_threads() {
        let mut seen = Vec::new();
        for w in 0..3 {
            let w = w.to_string();
            let p = plan(&["connect", "-c", "10", "--processes", "3", "-t", "2", "--worker-index", &w]).unwrap();
            for t in 0..p.threads {
                for s in 0..p.thread_connections(t) as usize {
                    seen.push(p.global_index(t, s));
                }
            }
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn timeline_is_ordered_and_publishers_interleave() {
        let p =
            plan(&["broadcast", "-c", "100", "--publishers", "4", "--rate", "1000", "--connect-rate", "100"]).unwrap();
        assert_eq!(p.connect_at(100), p.epoch + 1_000_000_000);
        assert!(p.traffic_start < p.measure_start && p.measure_start < p.measure_end);
        assert!(p.measure_end < p.drain_end && p.drain_end < p.close_end);
        let times: Vec<u64> = (0..8).map(|n| p.intended(n % 4, n / 4) - p.traffic_start).collect();
        assert_eq!(times, (0..8).map(|n| n * 1_000_000).collect::<Vec<_>>());
        for j in 0..4 {
            let k = p.first_at_or_after(j, p.measure_start);
            assert!(p.intended(j, k) >= p.measure_start);
            assert!(k == 0 || p.intended(j, k - 1) < p.measure_start);
        }
    }

    #[test]
    fn overload_steps_follow_the_probe_and_fill_the_measuring_window() {
        let args = ["overload", "-c", "10", "--steps", "0.5,1,2", "--step-duration", "2s", "--probe-duration", "3s"];
        let p = plan(&args).unwrap();
        let Kind::Overload(o) = &p.kind else { panic!("overload plan") };
        assert_eq!((o.probe_start, o.probe_ns), (p.traffic_start, 3_000_000_000));
        assert_eq!(o.start, p.traffic_start + 3_000_000_000 + PROBE_GAP_NS);
        assert_eq!((o.start, o.end()), (p.measure_start, p.measure_end));
        let given = plan(&["overload", "-c", "10", "--capacity", "500", "--steps", "1,2"]).unwrap();
        let Kind::Overload(o) = &given.kind else { panic!("overload plan") };
        assert_eq!((o.probe_ns, o.start), (0, given.traffic_start), "no probe when the capacity is given");
    }

    #[test]
    fn wss_urls_carry_shared_tls_settings() {
        assert!(plan(&["connect"]).unwrap().tls.is_none());
        let p = plan(&["broadcast", "--url", "wss://127.0.0.1:9502/chat", "--insecure"]).unwrap();
        assert!(p.url.tls && p.tls.is_some());
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let err = |a: &[&str]| plan(a).unwrap_err().to_string();
        assert!(err(&["broadcast", "--size", "8"]).contains("at least 24"));
        assert!(err(&["broadcast", "-c", "2", "--publishers", "3"]).contains("--publishers"));
        assert!(err(&["connect", "--url", "wss://127.0.0.1:1/"]).contains("needs --ca-file PATH"));
        assert!(err(&["connect", "--insecure"]).contains("only apply to a wss:// --url"));
        assert!(err(&["connect", "--url", "wss://127.0.0.1:1/", "--ca-file", "/nonexistent"]).contains("/nonexistent"));
        assert!(err(&["connect", "-c", "0"]).contains("at least 1"));
        assert!(err(&["echo", "--in-flight", "0"]).contains("--in-flight"));
        assert!(err(&["echo", "--rate", "0"]).contains("--rate"));
        assert!(err(&["connect", "--connect-rate", "0"]).contains("--connect-rate"));
        assert!(err(&["overload", "-c", "5", "--publishers", "5"]).contains("--publishers"));
        assert!(err(&["overload", "--capacity", "0"]).contains("--capacity"));
        assert!(err(&["connect", "--source-ips", "1.2.3"]).contains("--source-ips"));
    }
}
