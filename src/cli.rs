//! Command-line flags of the `fanout` binary and their mapping to [`Config`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{Config, SlowConsumerPolicy};

/// Which application the binary serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `/chat`: welcome, then every message relayed to the other clients.
    Chat,
    /// Any path: every message sent back to its sender only.
    Echo,
}

/// What to do with frames for a client whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlowConsumerFlag {
    /// Close the client with 1008.
    Close,
    /// Drop the frame for that client.
    Drop,
}

/// `fanout`: a WebSocket push server for chat and broadcast.
#[derive(Debug, Clone, Parser)]
#[command(name = "fanout", version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:9501")]
    pub bind: SocketAddr,
    /// Reactor threads [default: number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Pin each worker thread to its own core.
    #[arg(long)]
    pub pin_cores: bool,
    /// Application to serve.
    #[arg(long, value_enum, default_value_t = Mode::Chat)]
    pub mode: Mode,
    /// Chat: send each message back to its sender too (swoole's push-to-all).
    #[arg(long)]
    pub echo_to_sender: bool,
    /// Largest message accepted, in bytes (larger: close 1009).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_message_size: usize,
    /// Messages (data or ping) a client may send per second, in bursts of up
    /// to as many; past it: close 1008 [default: no limit].
    #[arg(long)]
    pub max_message_rate: Option<u32>,
    /// Bytes queued per client before the slow-consumer policy applies.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_backpressure: usize,
    /// Policy for a client whose send queue is full.
    #[arg(long, value_enum, default_value_t = SlowConsumerFlag::Close)]
    pub slow_consumer: SlowConsumerFlag,
    /// Seconds between server pings, or "off".
    #[arg(long, default_value = "25", value_parser = parse_optional_seconds)]
    pub ping_interval: OptionalSeconds,
    /// Close a client silent for this many seconds, or "off".
    #[arg(long, default_value = "60", value_parser = parse_optional_seconds)]
    pub idle_timeout: OptionalSeconds,
    /// Seconds a client has to complete its upgrade request.
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub handshake_timeout: Duration,
    /// Most open WebSocket connections (more: HTTP 503).
    #[arg(long, default_value_t = 100_000)]
    pub max_connections: usize,
    /// Listen backlog.
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
    /// Seconds to wait for clients to take their close frames on shutdown.
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
    /// A subprotocol the server speaks (repeatable); echoed when offered.
    #[arg(long = "subprotocol")]
    pub subprotocols: Vec<String>,
    /// Log level: error, warn, info, debug, trace [default: RUST_LOG, else info].
    #[arg(long)]
    pub log_level: Option<String>,
}

/// A duration that may be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalSeconds(pub Option<Duration>);

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 * 365.0 {
        return Err(format!("'{text}' must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_optional_seconds(text: &str) -> Result<OptionalSeconds, String> {
    match text {
        "off" | "none" | "0" => Ok(OptionalSeconds(None)),
        _ => parse_seconds(text).map(|d| OptionalSeconds(Some(d))),
    }
}

impl Cli {
    /// The server settings these flags ask for (validated by `Server::bind`).
    pub fn config(&self) -> Config {
        let defaults = Config::default();
        Config {
            bind: self.bind,
            workers: self.workers.unwrap_or(defaults.workers),
            pin_cores: self.pin_cores,
            max_message_size: self.max_message_size,
            max_message_rate: self.max_message_rate,
            max_backpressure: self.max_backpressure,
            slow_consumer: match self.slow_consumer {
                SlowConsumerFlag::Close => SlowConsumerPolicy::Close,
                SlowConsumerFlag::Drop => SlowConsumerPolicy::Drop,
            },
            ping_interval: self.ping_interval.0,
            idle_timeout: self.idle_timeout.0,
            handshake_timeout: self.handshake_timeout,
            max_connections: self.max_connections,
            backlog: self.backlog,
            shutdown_timeout: self.shutdown_timeout,
            subprotocols: self.subprotocols.clone(),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_library_defaults() {
        let cli = Cli::parse_from(["fanout"]);
        let config = cli.config();
        assert_eq!(config.bind.port(), 9501);
        assert_eq!(config.ping_interval, Some(Duration::from_secs(25)));
        assert_eq!(config.slow_consumer, SlowConsumerPolicy::Close);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn timeouts_accept_fractions_and_off() {
        let cli = Cli::parse_from(["fanout", "--idle-timeout", "off", "--handshake-timeout", "0.25"]);
        assert_eq!(cli.config().idle_timeout, None);
        assert_eq!(cli.config().handshake_timeout, Duration::from_millis(250));
    }

    #[test]
    fn max_message_rate_is_off_unless_given() {
        assert_eq!(Cli::parse_from(["fanout"]).config().max_message_rate, None);
        let cli = Cli::parse_from(["fanout", "--max-message-rate", "50"]);
        assert_eq!(cli.config().max_message_rate, Some(50));
        assert!(Cli::try_parse_from(["fanout", "--max-message-rate", "-1"]).is_err());
        assert!(Cli::parse_from(["fanout", "--max-message-rate", "0"]).config().validate().is_err());
    }

    #[test]
    fn unknown_flags_and_bad_values_are_errors() {
        assert!(Cli::try_parse_from(["fanout", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["fanout", "--handshake-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["fanout", "--slow-consumer", "maybe"]).is_err());
    }
}
