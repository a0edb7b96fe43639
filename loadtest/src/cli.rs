//! Command-line flags (clap). Each scenario lists only the flags it uses: `Common` holds what
//! every scenario needs, `Window` and `Output` what the fixed-rate scenarios share. Validation
//! that needs more than a type lives in `plan`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::channels::args::ChannelsArgs;
use crate::header::Payload;
use crate::overload_args::OverloadArgs;
use crate::socketio::args::SocketIoArgs;

/// Load generator for WebSocket push servers.
#[derive(Debug, Parser, Clone)]
#[command(name = "loadtest", version, about, long_about = None, after_help = TLS_HELP)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// What `loadtest --help` says about TLS (each scenario's help has the flags).
const TLS_HELP: &str = "Every scenario takes --url ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (TLS). wss:// needs \
--ca-file PATH (PEM: the CA certificate(s) that signed the server's certificate; there are no built-in roots) or \
--insecure (any certificate accepted, for self-signed benchmark servers). Over wss:// the handshake time includes \
the TLS handshake, and the channels scenario sends its HTTP API requests over https to the same host and port \
(unless --api-url says otherwise). To drive a cluster, broadcast takes --publish-url and channels --api-url and \
--subscriber-url; the same trust flags apply to every wss:// or https:// URL.";

/// The scenarios.
#[derive(Debug, Subcommand, Clone)]
pub enum Scenario {
    /// Open --connections at --connect-rate per second and hold them for --duration; report
    /// handshake latency (TCP connect to 101 answer, the TLS handshake included for wss://),
    /// failures by cause and (with --server-pid) the server's memory per connection.
    Connect {
        /// How long to hold the connections once the ramp-up is over, e.g. 10s, 500ms, 2m.
        #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
        /// Latency output files.
        #[command(flatten)]
        output: Output,
    },
    /// Every connection receives; the first --publishers of them also send --size byte messages
    /// at --rate per second in total. Reports delivery latency (coordinated-omission corrected),
    /// loss, duplicates and reordering.
    Broadcast {
        /// How many of the connections also publish (connections 0..P, spread over threads).
        #[arg(long, default_value_t = 1)]
        publishers: u64,
        /// Message size in bytes, header included (minimum 24).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// What fills each message after its 24-byte header: `padding` ('.' bytes, which
        /// compress to almost nothing) or `json` (JSON-like quote records, e.g.
        /// {"symbol":"ACME","bid":101.25,...}, repeated to --size: realistic text for --deflate).
        #[arg(long, value_enum, default_value_t = Payload::Padding)]
        payload: Payload,
        /// Messages per second sent by all publishers together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// The server also sends each message back to its publisher.
        #[arg(long)]
        expect_echo: bool,
        /// Where the publishing connections (0..P) connect, ws://host:port/path or
        /// wss://host:port/path; the other connections connect to --url. For a cluster: publish
        /// on one node, receive on another. Default: --url, where every connection receives and
        /// each message is owed to all but its publisher (all, with --expect-echo). Given, even
        /// equal to --url, the publishers only send: what reaches them is counted apart and not
        /// as a delivery, and each measured message is owed to every one of the other
        /// connections open when measuring began (so --publishers must be below -c).
        #[arg(long, value_name = "URL")]
        publish_url: Option<String>,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
        /// Measuring window.
        #[command(flatten)]
        window: Window,
        /// Latency output files.
        #[command(flatten)]
        output: Output,
    },
    /// Each connection sends messages the server echoes back. Without --rate: closed loop, each
    /// connection keeps --in-flight messages outstanding. With --rate: open loop, the
    /// connections send R messages per second in total on a fixed schedule whatever the replies,
    /// and round-trip time is measured from the scheduled send time (like wrk2 -R).
    Echo {
        /// Message size in bytes, header included (minimum 24).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Closed loop: messages outstanding per connection.
        #[arg(long, default_value_t = 1, conflicts_with = "rate")]
        in_flight: u32,
        /// Open loop: messages per second sent by all connections together, evenly spread
        /// (each connection sends R / connections per second).
        #[arg(long)]
        rate: Option<f64>,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
        /// Measuring window.
        #[command(flatten)]
        window: Window,
        /// Latency output files.
        #[command(flatten)]
        output: Output,
    },
    /// Offer load in steps from below to above what the server sustains (--steps multiples of
    /// --capacity, probed first when not given) on one set of connections, and report per step
    /// the delivered rate, delivery latency, server RSS, connections the server closed and
    /// messages lost.
    Overload(OverloadArgs),
    /// Benchmark a Pusher Channels server: -c subscribers on --channels public channels (private
    /// ones with --via client-events) receive events published through the signed HTTP API (or
    /// as client events); reports deliveries/s, loss, duplicates and reordering per channel,
    /// delivery latency, API answers by status and (with --server-pid) the server's memory per
    /// subscribed connection. With --rate: one fixed-rate window; without: a saturation search
    /// for the highest rate sustained, then a step at half that rate.
    Channels(Box<ChannelsArgs>),
    /// Benchmark a Socket.IO server over the WebSocket transport (Engine.IO v4, Socket.IO v5):
    /// -c sockets connect to --namespace (and join --room), the first --publishers of them emit
    /// stamped `message` events at --rate per second in total, which the server's app relays to
    /// every other socket of the namespace (with --room: `to` the room). Reports deliveries/s,
    /// loss, duplicates, reordering, delivery latency and (with --server-pid) the server's memory
    /// per connection, as broadcast does.
    #[command(name = "socketio")]
    SocketIo(Box<SocketIoArgs>),
}

/// Flags every scenario uses.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Server URL: ws://host:port/path, or wss://host:port/path for WebSocket over TLS (which
    /// needs --ca-file or --insecure). With wss://, the handshake time reported runs from the TCP
    /// connect through the TLS handshake to the 101 answer.
    #[arg(long, default_value = "ws://127.0.0.1:9501/chat")]
    pub url: String,
    /// wss://: trust the server certificates signed by the CA certificate(s) in this PEM file
    /// (there are no built-in roots).
    #[arg(long, value_name = "PATH", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
    /// wss://: accept any server certificate (self-signed, expired, another name); handshake
    /// signatures are still checked. For benchmarks against throw-away certificates.
    #[arg(long)]
    pub insecure: bool,
    /// Number of client connections, over all threads and processes.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: u64,
    /// Event-loop threads per process (default: number of cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Source addresses to spread client sockets over: ranges and/or a comma list,
    /// e.g. 127.0.0.1-127.0.0.16.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Connections opened per second while ramping up.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Offer permessage-deflate (RFC 7692) in every upgrade request and inflate the messages the
    /// server compresses. The messages loadtest sends stay uncompressed (the RFC allows that per
    /// message), so this measures the server's compressed send path (broadcast: compressing each
    /// message and sending it to every receiver; pair it with --payload json). The report says
    /// on how many connections the server agreed; the others run uncompressed.
    #[arg(long)]
    pub deflate: bool,
    /// Give up on a connection whose TCP connect or handshake takes longer than this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Pause after the ramp-up before any traffic, for late handshakes to finish.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub settle: Duration,
    /// Run the scenario in K processes, each with a slice of the connections (one process can
    /// hold at most its open-file limit of sockets).
    #[arg(long, default_value_t = 1)]
    pub processes: u32,
    /// Read this server process's VmRSS (before connecting, while the connections are held, and
    /// at the end of each step) and, for a fixed-rate window (broadcast, echo, channels with
    /// --rate), its CPU time over the window: the share of a core and the ns per delivery.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Internal: this process is worker I of a --processes run.
    #[arg(long, hide = true)]
    pub worker_index: Option<u32>,
    /// Internal: the shared start time (CLOCK_MONOTONIC ns) of a --processes run.
    #[arg(long, hide = true)]
    pub epoch_ns: Option<u64>,
}

/// The measuring window of a fixed-rate scenario (broadcast, echo).
#[derive(Debug, Args, Clone)]
pub struct Window {
    /// How long to measure (after ramp-up and warm-up), e.g. 10, 10s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Traffic before measuring starts; its messages are not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Time after the last measured send to wait for deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// Files describing the main latency distribution.
#[derive(Debug, Args, Clone)]
pub struct Output {
    /// Write the latency distribution as an HdrHistogram percentile (.hgrm) file.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write a latency-by-percentile plot as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

impl Scenario {
    /// The shared flags of whichever scenario was chosen.
    pub fn common(&self) -> &Common {
        match self {
            Scenario::Connect { common, .. } | Scenario::Broadcast { common, .. } | Scenario::Echo { common, .. } => {
                common
            }
            Scenario::Overload(args) => &args.common,
            Scenario::Channels(args) => &args.common,
            Scenario::SocketIo(args) => &args.common,
        }
    }

    /// The latency output files, for the scenarios that write them.
    pub fn output(&self) -> Option<&Output> {
        match self {
            Scenario::Connect { output, .. } | Scenario::Broadcast { output, .. } | Scenario::Echo { output, .. } => {
                Some(output)
            }
            Scenario::Overload(_) => None,
            Scenario::Channels(args) => Some(&args.output),
            Scenario::SocketIo(args) => Some(&args.output),
        }
    }

    /// The scenario's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Connect { .. } => "connect",
            Scenario::Broadcast { .. } => "broadcast",
            Scenario::Echo { .. } => "echo",
            Scenario::Overload(_) => "overload",
            Scenario::Channels(_) => "channels",
            Scenario::SocketIo(_) => "socketio",
        }
    }
}

/// Parses a duration with units as `humantime` reads them (`10s`, `500ms`, `2m`, `1m30s`,
/// `1.5s`); a bare number is seconds (`10`, `2.5`). Refuses negative and over-a-day values.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if (0.0..=86_400.0).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("bad duration {text:?}: must be between 0 and 24h")),
        Err(_) => {
            humantime::parse_duration(t).map_err(|e| format!("bad duration {text:?} ({e}): use e.g. 10s, 500ms, 2m"))?
        }
    };
    if d > Duration::from_secs(86_400) {
        return Err(format!("bad duration {text:?}: must be between 0 and 24h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["-1", "soon", "10 parsecs", "2d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_flags_are_clap_errors() {
        let err = Cli::try_parse_from(["loadtest", "connect", "--bogus"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let ok =
            Cli::try_parse_from(["loadtest", "broadcast", "-c", "10", "--publishers", "2", "--rate", "50"]).unwrap();
        assert_eq!(ok.scenario.common().connections, 10);
    }

    /// The long flags `scenario --help` lists.
    fn flags(scenario: &str) -> Vec<String> {
        let mut cmd = Cli::command();
        let sub = cmd.find_subcommand_mut(scenario).expect("scenario exists");
        sub.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long().map(String::from)).collect()
    }

    #[test]
    fn each_scenario_lists_only_the_flags_it_uses() {
        let connect = flags("connect");
        for absent in ["rate", "warmup", "drain", "publishers", "size", "in-flight"] {
            assert!(!connect.iter().any(|f| f == absent), "connect lists --{absent}");
        }
        for present in ["connect-rate", "duration", "hgrm", "plot", "server-pid"] {
            assert!(connect.iter().any(|f| f == present), "connect lacks --{present}");
        }
        let echo = flags("echo");
        assert!(!echo.iter().any(|f| f == "publishers" || f == "expect-echo"));
        assert!(echo.iter().any(|f| f == "rate") && echo.iter().any(|f| f == "warmup"));
        assert!(!flags("broadcast").iter().any(|f| f == "in-flight"));
        let overload = flags("overload");
        for absent in ["rate", "duration", "warmup", "hgrm", "in-flight"] {
            assert!(!overload.iter().any(|f| f == absent), "overload lists --{absent}");
        }
        for present in ["capacity", "steps", "step-duration", "server-pid", "plot", "source-ips", "processes"] {
            assert!(overload.iter().any(|f| f == present), "overload lacks --{present}");
        }
    }

    #[test]
    fn every_scenario_takes_a_wss_url_and_its_trust_flags() {
        for scenario in ["connect", "broadcast", "echo", "overload", "channels", "socketio"] {
            let listed = flags(scenario);
            for present in ["url", "ca-file", "insecure"] {
                assert!(listed.iter().any(|f| f == present), "{scenario} lacks --{present}");
            }
        }
        let both = Cli::try_parse_from(["loadtest", "connect", "--insecure", "--ca-file", "ca.pem"]).unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn every_scenario_takes_deflate_and_broadcast_a_payload() {
        for scenario in ["connect", "broadcast", "echo", "overload", "channels"] {
            assert!(flags(scenario).iter().any(|f| f == "deflate"), "{scenario} lacks --deflate");
        }
        assert!(flags("broadcast").iter().any(|f| f == "payload"));
        let cli = Cli::try_parse_from(["loadtest", "broadcast", "--deflate", "--payload", "json"]).unwrap();
        assert!(cli.scenario.common().deflate);
        assert!(matches!(cli.scenario, Scenario::Broadcast { payload: Payload::Json, .. }));
        let plain = Cli::try_parse_from(["loadtest", "broadcast"]).unwrap();
        assert!(matches!(plain.scenario, Scenario::Broadcast { payload: Payload::Padding, .. }));
        assert!(!plain.scenario.common().deflate);
        assert!(Cli::try_parse_from(["loadtest", "broadcast", "--payload", "xml"]).is_err());
    }

    #[test]
    fn channels_needs_the_app_and_a_rate_excludes_the_search_flags() {
        let channels = flags("channels");
        for present in ["app-id", "app-key", "app-secret", "channels", "via", "publishers", "pipeline", "server-pid"] {
            assert!(channels.iter().any(|f| f == present), "channels lacks --{present}");
        }
        let app = ["loadtest", "channels", "--app-id", "1", "--app-key", "k", "--app-secret", "s"];
        assert!(Cli::try_parse_from(&app[..2]).is_err(), "the app credentials are required");
        let mut both = app.to_vec();
        both.extend(["--rate", "10", "--start-rate", "5"]);
        assert_eq!(Cli::try_parse_from(both).unwrap_err().kind(), clap::error::ErrorKind::ArgumentConflict);
        let mut ce = app.to_vec();
        ce.extend(["--via", "client-events", "-c", "7"]);
        assert_eq!(Cli::try_parse_from(ce).unwrap().scenario.common().connections, 7);
    }

    #[test]
    fn the_cluster_flags_belong_to_broadcast_and_channels() {
        assert!(flags("broadcast").iter().any(|f| f == "publish-url"));
        let channels = flags("channels");
        assert!(channels.iter().any(|f| f == "api-url") && channels.iter().any(|f| f == "subscriber-url"));
        for scenario in ["connect", "echo", "overload"] {
            let listed = flags(scenario);
            for absent in ["publish-url", "api-url", "subscriber-url"] {
                assert!(!listed.iter().any(|f| f == absent), "{scenario} lists --{absent}");
            }
        }
        let app = ["loadtest", "channels", "--app-id", "1", "--app-key", "k", "--app-secret", "s"];
        let mut two = app.to_vec();
        two.extend(["--subscriber-url", "ws://a:1", "--subscriber-url", "ws://b:2", "--api-url", "http://c:3"]);
        let Scenario::Channels(args) = Cli::try_parse_from(two).unwrap().scenario else { panic!("channels") };
        assert_eq!(
            (args.subscriber_urls, args.api_url.as_deref()),
            (vec!["ws://a:1".into(), "ws://b:2".into()], Some("http://c:3"))
        );
    }

    #[test]
    fn connect_has_one_rate_flag_and_echo_rate_excludes_in_flight() {
        assert!(Cli::try_parse_from(["loadtest", "connect", "--rate", "5"]).is_err());
        assert!(Cli::try_parse_from(["loadtest", "connect", "--connect-rate", "5"]).is_ok());
        let both = Cli::try_parse_from(["loadtest", "echo", "--rate", "100", "--in-flight", "4"]).unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
