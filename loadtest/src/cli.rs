//! Command-line flags (clap). Validation that needs more than a type lives in `plan`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load generator for WebSocket push servers.
#[derive(Debug, Parser, Clone)]
#[command(name = "loadtest", version, about, long_about = None)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The three scenarios.
#[derive(Debug, Subcommand, Clone)]
pub enum Scenario {
    /// Open --connections at --rate per second, hold them --duration, report handshake latency,
    /// failures by cause and (with --server-pid) the server's memory per connection.
    Connect {
        /// Connections per second while ramping up (overrides --connect-rate).
        #[arg(long)]
        rate: Option<f64>,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
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
        /// Messages per second sent by all publishers together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// The server also sends each message back to its publisher.
        #[arg(long)]
        expect_echo: bool,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
    },
    /// Each connection sends a message and waits for the server to echo it back (closed loop);
    /// reports round trips per second and round-trip time.
    Echo {
        /// Message size in bytes, header included (minimum 24).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Messages outstanding per connection.
        #[arg(long, default_value_t = 1)]
        in_flight: u32,
        /// Shared flags.
        #[command(flatten)]
        common: Common,
    },
}

/// Flags shared by all scenarios.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Server URL (ws:// only).
    #[arg(long, default_value = "ws://127.0.0.1:9501/chat")]
    pub url: String,
    /// Number of client connections, over all threads and processes.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: u64,
    /// How long to measure (after ramp-up and warm-up), e.g. 10, 10s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
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
    /// Give up on a connection whose TCP connect or handshake takes longer than this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Pause after the ramp-up before any traffic, for late handshakes to finish.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub settle: Duration,
    /// Traffic before measuring starts (broadcast, echo); its messages are not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Time after the last measured send to wait for deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Run the scenario in K processes, each with a slice of the connections (one process can
    /// hold at most its open-file limit of sockets).
    #[arg(long, default_value_t = 1)]
    pub processes: u32,
    /// Read this server process's VmRSS before connecting and while the connections are held.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the latency distribution as an HdrHistogram percentile (.hgrm) file.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write a latency-by-percentile plot as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
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

impl Scenario {
    /// The shared flags of whichever scenario was chosen.
    pub fn common(&self) -> &Common {
        match self {
            Scenario::Connect { common, .. } | Scenario::Broadcast { common, .. } | Scenario::Echo { common, .. } => {
                common
            }
        }
    }

    /// The scenario's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Connect { .. } => "connect",
            Scenario::Broadcast { .. } => "broadcast",
            Scenario::Echo { .. } => "echo",
        }
    }
}

/// Parses `10`, `2.5`, `10s`, `500ms`, `2m` into a duration (bare numbers are seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = num.trim().parse().map_err(|_| format!("bad duration {text:?}: use e.g. 10s, 500ms, 2m"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 {
        return Err(format!("bad duration {text:?}: must be between 0 and 24h"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_common_units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_flags_are_clap_errors() {
        let err = Cli::try_parse_from(["loadtest", "connect", "--bogus"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let ok =
            Cli::try_parse_from(["loadtest", "broadcast", "-c", "10", "--publishers", "2", "--rate", "50"]).unwrap();
        assert_eq!(ok.scenario.common().connections, 10);
    }
}
