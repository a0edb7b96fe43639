//! `Plan`: the validated settings of one run and its timeline. Every thread and every process
//! derives the same schedule from the same epoch, so they agree on when connections open, when
//! measuring starts and stops, and when each publisher sends, without talking to each other.

use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::channels::plan::Via;
use crate::cli::{Common, Scenario};
use crate::header::HEADER_LEN;
pub use crate::kind::Kind;
use crate::pusher::stamp::STAMP_LEN;
use crate::socketio::plan::ENGINE_PATH;
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

/// One server address connections go to: `--url`, `--publish-url`, a `--subscriber-url`, or the
/// channels scenario's HTTP API (`--api-url`), with what connecting to it takes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The flag that named it, for messages.
    pub flag: &'static str,
    /// Where to connect, and the request path of a WebSocket upgrade (the API ignores it).
    pub url: WsUrl,
    /// For `wss://` (`https://`): the TLS settings, shared with every other target of this
    /// process but for the server name, which is this URL's host.
    pub tls: Option<TlsClient>,
    /// The `Host:` header sent to it.
    pub host: String,
}

/// Validated settings plus the absolute timeline (CLOCK_MONOTONIC ns).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenario name.
    pub name: &'static str,
    /// Scenario details.
    pub kind: Kind,
    /// `--url`: where every connection goes unless one of the fields below sends it elsewhere
    /// (channels: its path is `/app/{key}?...`).
    pub main: Target,
    /// broadcast `--publish-url`: where the publishers (connections `0..P`) go.
    pub publish: Option<Target>,
    /// channels `--subscriber-url`, in order: subscriber `s` goes to `subscribe[s % N]` (empty:
    /// to `main`).
    pub subscribe: Vec<Target>,
    /// channels `--via api`: where the HTTP API requests go (`--api-url`, or `main`'s host and
    /// port).
    pub api: Option<Target>,
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
        let mut url = WsUrl::parse(&c.url)?;
        let mut urls = Urls::parse(scenario).map_err(PlanError::Invalid)?;
        let source_ips = match &c.source_ips {
            Some(text) => SourceIps::parse(text)?,
            None => SourceIps::default(),
        };
        let zero = Duration::ZERO;
        let (kind, duration, warmup, drain) = match scenario {
            Scenario::Connect { duration, .. } => (Kind::Connect, *duration, zero, zero),
            Scenario::Broadcast { publishers, size, payload, rate, expect_echo, publish_url, window, .. } => (
                Kind::Broadcast {
                    publishers: *publishers,
                    size: *size,
                    payload: *payload,
                    rate: *rate,
                    expect_echo: *expect_echo,
                    separate_publishers: publish_url.is_some(),
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
            Scenario::SocketIo(a) => (Kind::SocketIo(a.plan()), a.window.duration, a.window.warmup, a.window.drain),
        };
        let connections = match &kind {
            Kind::Channels(cp) => {
                url.path = cp.ws_path();
                for u in &mut urls.subscribe {
                    u.path = cp.ws_path();
                }
                if cp.via == Via::ClientEvents && urls.api.is_some() {
                    return invalid(
                        "--api-url only applies to --via api (client events go over the publishers' WebSocket \
                         connections to --url)"
                            .into(),
                    );
                }
                if cp.via == Via::Api && urls.api.is_none() {
                    (urls.api, urls.api_flag) = (Some(url.clone()), "--url");
                }
                cp.total_connections()
            }
            Kind::SocketIo(_) => {
                url.path = ENGINE_PATH.to_owned();
                c.connections
            }
            _ => c.connections,
        };
        let targets = Targets::new(url, urls, c.ca_file.as_deref(), c.insecure)?;
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
            Kind::Broadcast { publishers, size, rate, separate_publishers, .. } => {
                if *publishers == 0 || *publishers > c.connections {
                    return invalid(format!("--publishers must be between 1 and --connections ({})", c.connections));
                }
                if *separate_publishers && *publishers >= c.connections {
                    return invalid(format!(
                        "--publishers must be below --connections ({}) with --publish-url: the connections that \
                         do not publish are the receivers",
                        c.connections
                    ));
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
            Kind::SocketIo(sp) => sp.check(c.connections).map_err(PlanError::Invalid)?,
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
            main: targets.main,
            publish: targets.publish,
            subscribe: targets.subscribe,
            api: targets.api,
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

    /// Where global connection `index` connects: a broadcast publisher to `--publish-url`, a
    /// channels subscriber to its `--subscriber-url`, anything else to `--url`.
    pub fn target(&self, index: u64) -> &Target {
        match &self.kind {
            Kind::Broadcast { publishers, .. } if index < *publishers => self.publish.as_ref().unwrap_or(&self.main),
            Kind::Channels(cp) if !cp.is_publisher(index) && !self.subscribe.is_empty() => {
                let s = index - cp.ws_publishers();
                &self.subscribe[(s % self.subscribe.len() as u64) as usize]
            }
            _ => &self.main,
        }
    }

    /// Every target something connects to, each address once: what the probe before the run
    /// tries. (A channels `--url` that only names the default of `--api-url`, with every
    /// subscriber sent elsewhere, is not one.)
    pub fn targets_in_use(&self) -> Vec<&Target> {
        let main_used = match &self.kind {
            Kind::Channels(cp) => cp.ws_publishers() > 0 || self.subscribe.is_empty(),
            _ => true,
        };
        let all =
            main_used.then_some(&self.main).into_iter().chain(&self.publish).chain(&self.subscribe).chain(&self.api);
        let mut used: Vec<&Target> = Vec::new();
        for t in all {
            if !used.iter().any(|u| u.url.addr == t.url.addr && u.url.tls == t.url.tls && u.host == t.host) {
                used.push(t);
            }
        }
        used
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

    /// Broadcast and socketio: the publishers and their total rate, messages/s.
    fn publishing(&self) -> Option<(u64, f64)> {
        match &self.kind {
            Kind::Broadcast { publishers, rate, .. } => Some((*publishers, *rate)),
            Kind::SocketIo(sp) => Some((sp.publishers, sp.rate)),
            _ => None,
        }
    }

    /// Broadcast and socketio: intended send time of message `k` of publisher `j`. Publishers
    /// interleave so the total stream is evenly spaced at `rate`.
    pub fn intended(&self, j: u64, k: u64) -> u64 {
        match self.publishing() {
            Some((publishers, rate)) => self.traffic_start + ((j + k * publishers) as f64 * NS / rate) as u64,
            None => u64::MAX,
        }
    }

    /// Broadcast and socketio: the first message number of publisher `j` intended at or after `t`.
    pub fn first_at_or_after(&self, j: u64, t: u64) -> u64 {
        let Some((publishers, rate)) = self.publishing() else { return 0 };
        let offset = t.saturating_sub(self.traffic_start) as f64 * rate / NS;
        let mut k = ((offset - j as f64) / publishers as f64).floor().max(0.0) as u64;
        k = k.saturating_sub(2);
        while self.intended(j, k) < t {
            k += 1;
        }
        k
    }
}

/// The URLs given besides `--url`, parsed.
struct Urls {
    publish: Option<WsUrl>,
    subscribe: Vec<WsUrl>,
    api: Option<WsUrl>,
    /// The flag `api` came from: `--api-url`, or `--url` for the default.
    api_flag: &'static str,
}

impl Urls {
    /// Parses the scenario's `--publish-url`, `--subscriber-url` and `--api-url`; the error
    /// names the flag and the value.
    fn parse(scenario: &Scenario) -> Result<Urls, String> {
        let mut urls = Urls { publish: None, subscribe: Vec::new(), api: None, api_flag: "--api-url" };
        match scenario {
            Scenario::Broadcast { publish_url: Some(text), .. } => {
                urls.publish = Some(WsUrl::parse_flag("--publish-url", text, false)?);
            }
            Scenario::Channels(a) => {
                for text in &a.subscriber_urls {
                    urls.subscribe.push(WsUrl::parse_flag("--subscriber-url", text, false)?);
                }
                if let Some(text) = &a.api_url {
                    urls.api = Some(WsUrl::parse_flag("--api-url", text, true)?);
                }
            }
            _ => {}
        }
        Ok(urls)
    }
}

/// The plan's targets, with their TLS settings.
struct Targets {
    main: Target,
    publish: Option<Target>,
    subscribe: Vec<Target>,
    api: Option<Target>,
}

impl Targets {
    /// Builds one TLS configuration from `--ca-file` / `--insecure` when any URL is `wss://` (or
    /// `https://`), and gives each TLS target its own server name. The trust flags without any
    /// such URL are refused, as are TLS URLs without them.
    fn new(main: WsUrl, urls: Urls, ca_file: Option<&Path>, insecure: bool) -> Result<Targets, PlanError> {
        let first_tls =
            std::iter::once(&main).chain(&urls.publish).chain(&urls.subscribe).chain(&urls.api).find(|u| u.tls);
        let base = TlsClient::from_flags(first_tls.unwrap_or(&main), ca_file, insecure)?;
        let target = |flag: &'static str, url: WsUrl| -> Result<Target, PlanError> {
            let tls = match &base {
                Some(base) if url.tls => Some(base.for_url(&url)?),
                _ => None,
            };
            Ok(Target { flag, host: url.host_header(), url, tls })
        };
        Ok(Targets {
            main: target("--url", main)?,
            publish: urls.publish.map(|u| target("--publish-url", u)).transpose()?,
            subscribe: urls.subscribe.into_iter().map(|u| target("--subscriber-url", u)).collect::<Result<_, _>>()?,
            api: urls.api.map(|u| target(urls.api_flag, u)).transpose()?,
        })
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
        assert!(plan(&["connect"]).unwrap().main.tls.is_none());
        let p = plan(&["broadcast", "--url", "wss://127.0.0.1:9502/chat", "--insecure"]).unwrap();
        assert!(p.main.url.tls && p.main.tls.is_some());
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

    #[test]
    fn socketio_opens_engine_io_whatever_the_url_path_and_checks_its_flags() {
        let p = plan(&["socketio", "--url", "ws://127.0.0.1:1/chat", "-c", "10", "--publishers", "2", "--rate", "40"])
            .unwrap();
        assert_eq!(p.main.url.path, "/socket.io/?EIO=4&transport=websocket");
        let times: Vec<u64> = (0..4).map(|n| p.intended(n % 2, n / 2) - p.traffic_start).collect();
        assert_eq!(times, [0, 25_000_000, 50_000_000, 75_000_000], "the broadcast schedule");
        let err = |a: &[&str]| plan(&[&["socketio", "-c", "4"][..], a].concat()).unwrap_err().to_string();
        assert!(err(&["--publishers", "5"]).contains("--publishers"));
        assert!(err(&["--size", "45"]).contains("46 bytes"));
        assert!(err(&["--rate", "0"]).contains("--rate"));
        assert!(err(&["--namespace", "admin"]).contains("--namespace"));
        assert!(err(&["--namespace", "/a,b"]).contains("--namespace"));
        assert!(err(&["--room", ""]).contains("--room"));
    }

    const APP: [&str; 9] =
        ["channels", "--app-id", "1", "--app-key", "k", "--app-secret", "s", "--url", "ws://127.0.0.1:1/ignored"];

    fn channels(extra: &[&str]) -> Result<Plan, PlanError> {
        plan(&[&APP[..], &["--rate", "10", "-c", "6"], extra].concat())
    }

    fn ports(targets: &[&Target]) -> Vec<u16> {
        targets.iter().map(|t| t.url.port).collect()
    }

    #[test]
    fn broadcast_publishers_go_to_the_publish_url() {
        let args = ["broadcast", "-c", "10", "--publishers", "3", "--url", "ws://127.0.0.1:1/chat"];
        let split = plan(&[&args[..], &["--publish-url", "ws://127.0.0.1:2/pub"]].concat()).unwrap();
        assert!(matches!(split.kind, Kind::Broadcast { separate_publishers: true, .. }));
        let (publisher, receiver) = (split.target(2), split.target(3));
        assert_eq!((publisher.flag, publisher.url.port, publisher.url.path.as_str()), ("--publish-url", 2, "/pub"));
        assert_eq!((receiver.flag, receiver.url.port, receiver.url.path.as_str()), ("--url", 1, "/chat"));
        assert_eq!(ports(&split.targets_in_use()), [1, 2]);
        let plain = plan(&args).unwrap();
        assert!(matches!(plain.kind, Kind::Broadcast { separate_publishers: false, .. }));
        assert_eq!((plain.target(0).flag, ports(&plain.targets_in_use())), ("--url", vec![1]));
    }

    #[test]
    fn channels_subscribers_spread_over_the_subscriber_urls_and_the_api_has_its_own() {
        let p = channels(&[
            "--subscriber-url",
            "ws://127.0.0.1:2/x",
            "--subscriber-url",
            "ws://127.0.0.1:3",
            "--api-url",
            "https://localhost:4/ignored",
            "--insecure",
        ])
        .unwrap();
        let Kind::Channels(cp) = &p.kind else { panic!("channels plan") };
        assert_eq!((0..6).map(|i| p.target(i).url.port).collect::<Vec<_>>(), [2, 3, 2, 3, 2, 3]);
        assert!((0..6).all(|i| p.target(i).url.path == cp.ws_path()), "every subscriber opens /app/{{key}}");
        let api = p.api.as_ref().expect("an API target");
        assert_eq!(
            (api.flag, api.url.tls, api.host.as_str(), api.tls.is_some()),
            ("--api-url", true, "localhost:4", true)
        );
        assert!(p.main.tls.is_none() && p.subscribe[0].tls.is_none(), "only the https:// URL runs TLS");
        assert_eq!(ports(&p.targets_in_use()), [2, 3, 4], "--url is not used: nothing connects there");
        // The default: everything, the API included, at --url's host and port.
        let d = channels(&[]).unwrap();
        let api = d.api.as_ref().expect("an API target");
        assert_eq!(
            (api.flag, api.url.addr, api.url.tls, api.host.as_str()),
            ("--url", d.main.url.addr, false, "127.0.0.1:1")
        );
        assert_eq!((d.target(5).flag, ports(&d.targets_in_use())), ("--url", vec![1]));
        // Client-event publishers (connections 0..P) stay on --url; subscriber s goes to s % N.
        let ce =
            channels(&["--via", "client-events", "--publishers", "2", "--subscriber-url", "ws://127.0.0.1:2"]).unwrap();
        assert!(ce.api.is_none());
        assert_eq!((0..8).map(|i| ce.target(i).url.port).collect::<Vec<_>>(), [1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!(ports(&ce.targets_in_use()), [1, 2]);
    }

    #[test]
    fn bad_cluster_urls_name_their_flag() {
        let err = |a: &[&str]| plan(a).unwrap_err().to_string();
        let c = |a: &[&str]| channels(a).unwrap_err().to_string();
        let e = c(&["--api-url", "ftp://x"]);
        assert!(e.starts_with("--api-url ftp://x: unsupported URL scheme"), "{e}");
        assert!(c(&["--subscriber-url", "http://127.0.0.1:2/"]).starts_with("--subscriber-url http://127.0.0.1:2/: "));
        assert!(c(&["--subscriber-url", "ws://127.0.0.1:0/"]).contains("--subscriber-url ws://127.0.0.1:0/: bad host"));
        assert!(c(&["--via", "client-events", "--api-url", "http://127.0.0.1:2"]).contains("--api-url only applies"));
        assert!(c(&["--api-url", "https://127.0.0.1:2"]).contains("needs --ca-file PATH"));
        let e = err(&["broadcast", "--publish-url", "http://127.0.0.1:2/"]);
        assert!(e.starts_with("--publish-url http://127.0.0.1:2/: unsupported URL scheme"), "{e}");
        let e = err(&["broadcast", "-c", "3", "--publishers", "3", "--publish-url", "ws://127.0.0.1:2/"]);
        assert!(e.contains("--publishers must be below --connections (3) with --publish-url"), "{e}");
        assert!(err(&["broadcast", "--publish-url", "ws://127.0.0.1:2/", "--insecure"]).contains("only apply to"));
        // The trust flags are for any TLS URL, not only --url.
        let p = plan(&["broadcast", "--publish-url", "wss://localhost:2/", "--insecure"]).unwrap();
        assert!(p.main.tls.is_none() && p.publish.as_ref().is_some_and(|t| t.tls.is_some()));
    }
}
