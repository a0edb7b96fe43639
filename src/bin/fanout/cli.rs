//! Command-line flags of the `fanout` binary and their mapping to [`Config`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use fanout::token::TokenVerifier;
use fanout::{Config, ConfigError, SlowConsumerPolicy};

/// Which application the binary serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `/chat`: welcome, then every message relayed to the other clients;
    /// rooms on `/chat/ROOM` and `/`; Pusher clients on `/app/KEY` and the
    /// Pusher HTTP API when an app is configured.
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
    /// Address to listen on: HOST:PORT, :PORT or PORT (all interfaces).
    #[arg(long, default_value = "0.0.0.0:9501", value_parser = parse_bind)]
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
    /// Memory queued per client (frame bytes plus 128 per frame) before the
    /// slow-consumer policy applies.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_backpressure: usize,
    /// Policy for a client whose send queue is full.
    #[arg(long, value_enum, default_value_t = SlowConsumerFlag::Close)]
    pub slow_consumer: SlowConsumerFlag,
    /// Bytes a worker's draining clients may hold in all before it stops
    /// reading the clients that publish [default: 64 MiB, or
    /// --max-backpressure if that is larger].
    #[arg(long)]
    pub max_worker_backpressure: Option<usize>,
    /// Bytes of broadcasts and pushes that may wait in one worker's inbox.
    #[arg(long, default_value_t = 16 << 20)]
    pub inbox_bytes: usize,
    /// Bytes a worker may hold for incomplete messages and requests over all
    /// its clients (past it: close 1013 or HTTP 503).
    #[arg(long, default_value_t = 256 << 20)]
    pub max_worker_partial_bytes: usize,
    /// Time between server pings (e.g. 25s, 500ms, 2m; plain numbers are
    /// seconds), or "off".
    #[arg(long, default_value = "25s", value_parser = parse_optional_duration)]
    pub ping_interval: OptionalDuration,
    /// Close a client from which no complete frame arrived for this long, or "off".
    #[arg(long, default_value = "60s", value_parser = parse_optional_duration)]
    pub idle_timeout: OptionalDuration,
    /// Time a client has to send its request (upgrade, or the next one on a
    /// kept-alive HTTP connection).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Most open WebSocket connections (more: HTTP 503).
    #[arg(long, default_value_t = 100_000)]
    pub max_connections: usize,
    /// Listen backlog.
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
    /// Largest plain HTTP request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_http_body: usize,
    /// Take client addresses from the first X-Forwarded-For hop (only behind
    /// a proxy that sets it).
    #[arg(long)]
    pub trust_proxy: bool,
    /// Serve TLS (wss://, https://) with this certificate chain (PEM: the
    /// certificate, then intermediates); needs --tls-key. SIGHUP reloads both.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Join a cluster: share channels and broadcasts with every node on this
    /// Redis (redis://[:password@]host:port[/db] or rediss://...). Repeat it
    /// to spread channels over several Redis instances (every node must list
    /// the same ones in the same order) [default: a single node].
    #[arg(long = "redis", value_name = "URL")]
    pub redis: Vec<String>,
    /// What this cluster's Redis channel names start with (several clusters
    /// can share one Redis under different prefixes).
    #[arg(long, value_name = "PREFIX", default_value = "fanout", requires = "redis")]
    pub redis_prefix: String,
    /// The CA certificate (PEM) rediss:// servers must chain to [default: the
    /// system's trusted roots].
    #[arg(long, value_name = "PATH", requires = "redis")]
    pub redis_ca_file: Option<PathBuf>,
    /// The --redis URLs are nodes of one Redis Cluster (7.0 or later; one
    /// is enough, more are tried if it is down): channels spread over its
    /// masters by hash slot, with sharded pub/sub (SPUBLISH, SSUBSCRIBE).
    #[arg(long, requires = "redis")]
    pub redis_cluster: bool,
    /// Do not agree to permessage-deflate (by default every client that
    /// offers it gets messages of 128 bytes or more compressed).
    #[arg(long)]
    pub no_compression: bool,
    /// A browser origin that may connect (repeatable): https://chat.example.com,
    /// *.example.com, localhost:8080 or *; others get 403 before the upgrade
    /// [default: any origin].
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    pub allowed_origins: Vec<String>,
    /// Most WebSocket connections from one client address (IPv6: per /64);
    /// more get 429 before the upgrade [default: no limit].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<u32>,
    /// Upgrade attempts one client address may make per second, in bursts of
    /// up to as many; more get 429 [default: no limit].
    #[arg(long, value_name = "N")]
    pub max_handshakes_per_ip: Option<u32>,
    /// Time to wait for clients to take their close frames on shutdown.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// On SIGTERM, keep serving this long with /readyz answering 503 before
    /// draining (for load balancers), or "off".
    #[arg(long, default_value = "off", value_parser = parse_optional_duration)]
    pub shutdown_grace: OptionalDuration,
    /// A subprotocol the server speaks (repeatable); echoed when offered.
    #[arg(long = "subprotocol")]
    pub subprotocols: Vec<String>,
    /// Write the process id to this file once listening; removed on exit.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace, off, or an env_logger
    /// filter such as "fanout=debug" [default: RUST_LOG, else info].
    #[arg(long, value_parser = parse_log_filter)]
    pub log_level: Option<String>,
    /// Pusher apps (chat mode).
    #[command(flatten)]
    pub apps: crate::apps::AppFlags,
    /// Keep the last N messages of every channel and room, with offsets a
    /// resubscribing client recovers from [default: no history].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub history_size: Option<u64>,
    /// Keep messages of every channel and room this long (with or without
    /// --history-size) [default: no limit by age].
    #[arg(long, value_parser = parse_duration)]
    pub history_ttl: Option<Duration>,
    /// Memory all history may take, in bytes; the oldest messages of any
    /// channel go first. With --redis, history is in Redis, bounded per
    /// channel by --history-size and --history-ttl (and by Redis's maxmemory).
    #[arg(long, default_value_t = 64 << 20)]
    pub history_max_bytes: usize,
    /// Keep history on disk in this directory too (a redb file): API
    /// publishes answer once their events are written, and a restart keeps
    /// epochs and offsets. Needs --history-size or --history-ttl. Not with
    /// --redis: a cluster keeps its history in Redis.
    #[arg(long, conflicts_with = "redis")]
    pub history_dir: Option<PathBuf>,
    /// Raw chat clients (/chat, /chat/ROOM, /) must present a JWT signed
    /// with this HS256 secret: ?token=, Authorization: Bearer, or the
    /// subprotocols "fanout.token" and the token. Prefer --auth-secret-file:
    /// a flag shows in the process list.
    #[arg(long, value_name = "SECRET", group = "auth")]
    pub auth_secret: Option<String>,
    /// Like --auth-secret, the secret read from this file (surrounding
    /// whitespace ignored).
    #[arg(long, value_name = "PATH", group = "auth")]
    pub auth_secret_file: Option<PathBuf>,
    /// Like --auth-secret, for RS256 or ES256 tokens: the issuer's RSA or EC
    /// P-256 public key (PEM).
    #[arg(long, value_name = "PATH", group = "auth")]
    pub auth_public_key: Option<PathBuf>,
}

/// A duration that may be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// `10s`, `500ms`, `2m`, `1h`, or a plain (possibly fractional) number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 * 365.0 => {
            Duration::from_secs_f64(seconds)
        }
        Ok(_) => return Err(format!("'{text}' must be a positive duration")),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("'{text}' is not a duration ({e}); use e.g. 10s, 500ms, 2m or plain seconds"))?,
    };
    if duration.is_zero() {
        return Err(format!("'{text}' must be a positive duration"));
    }
    Ok(duration)
}

fn parse_optional_duration(text: &str) -> Result<OptionalDuration, String> {
    match text.trim() {
        "off" | "none" | "0" => Ok(OptionalDuration(None)),
        _ => parse_duration(text).map(|d| OptionalDuration(Some(d))),
    }
}

/// `HOST:PORT`, `:PORT` or `PORT` (the last two on every interface);
/// host names are resolved, the first address wins.
pub fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let expected = "expected HOST:PORT, :PORT or PORT (e.g. 0.0.0.0:9501, 127.0.0.1:9501, localhost:9501, :9501)";
    if let Ok(port) = text.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!("'{text}' has no port: {expected}"));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("'{text}' resolves to no address: {expected}")),
        Err(e) => Err(format!("cannot use '{text}' ({e}): {expected}")),
    }
}

/// Checks a log filter: comma-separated `LEVEL` or `MODULE=LEVEL` items.
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    check_log_filter(text).map(|()| text.to_owned())
}

/// Ok when every item of `filter` names a real level.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    let levels = "error, warn, info, debug, trace or off";
    for item in filter.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let level = item.rsplit_once('=').map_or(item, |(_, level)| level);
        if level.parse::<log::LevelFilter>().is_err() {
            // A bare module name (no '=') turns everything on for it in env_logger.
            if item.contains('=') || !item.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                return Err(format!("'{item}' is not a log level: use {levels}, optionally as MODULE=LEVEL"));
            }
        }
    }
    Ok(())
}

impl Cli {
    /// The token verifier the --auth-* flags ask for; the error names the
    /// flag and file at fault.
    pub fn token_verifier(&self) -> Result<Option<Arc<TokenVerifier>>, String> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("--{flag} {}: cannot read it: {e}", path.display()))
        };
        let verifier = if let Some(secret) = &self.auth_secret {
            TokenVerifier::hs256(secret.as_bytes()).map_err(|e| format!("--auth-secret: {e}"))?
        } else if let Some(path) = &self.auth_secret_file {
            let secret = read("auth-secret-file", path)?;
            TokenVerifier::hs256(secret.trim_ascii())
                .map_err(|e| format!("--auth-secret-file {}: {e}", path.display()))?
        } else if let Some(path) = &self.auth_public_key {
            TokenVerifier::public_key_pem(&read("auth-public-key", path)?)
                .map_err(|e| format!("--auth-public-key {}: {e}", path.display()))?
        } else {
            return Ok(None);
        };
        Ok(Some(Arc::new(verifier)))
    }

    /// History as the flags ask: on when --history-size or --history-ttl is given.
    pub fn history(&self) -> Option<fanout::history::HistoryConfig> {
        (self.history_size.is_some() || self.history_ttl.is_some()).then_some(fanout::history::HistoryConfig {
            size: self.history_size.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            ttl: self.history_ttl,
            max_bytes: self.history_max_bytes,
        })
    }

    /// The server settings these flags ask for (validated by `Config::validate`).
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.bind = self.bind;
        config.workers = self.workers.unwrap_or(config.workers);
        config.pin_cores = self.pin_cores;
        config.max_message_size = self.max_message_size;
        config.max_message_rate = self.max_message_rate;
        config.max_backpressure = self.max_backpressure;
        config.slow_consumer = match self.slow_consumer {
            SlowConsumerFlag::Close => SlowConsumerPolicy::Close,
            SlowConsumerFlag::Drop => SlowConsumerPolicy::Drop,
        };
        config.max_worker_backpressure =
            self.max_worker_backpressure.unwrap_or(config.max_worker_backpressure.max(self.max_backpressure));
        config.inbox_bytes = self.inbox_bytes;
        config.max_worker_partial_bytes = self.max_worker_partial_bytes;
        config.ping_interval = self.ping_interval.0;
        config.idle_timeout = self.idle_timeout.0;
        config.handshake_timeout = self.handshake_timeout;
        config.max_connections = self.max_connections;
        config.backlog = self.backlog;
        config.max_http_body = self.max_http_body;
        config.trust_proxy = self.trust_proxy;
        config.shutdown_timeout = self.shutdown_timeout;
        config.shutdown_grace = self.shutdown_grace.0.unwrap_or(Duration::ZERO);
        config.subprotocols = self.subprotocols.clone();
        config.allowed_origins = self.allowed_origins.clone();
        config.compression = !self.no_compression;
        config.tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(fanout::tls::TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        config.max_connections_per_ip = self.max_connections_per_ip;
        config.max_handshakes_per_ip = self.max_handshakes_per_ip;
        config.cluster = (!self.redis.is_empty()).then(|| {
            let mut cluster = fanout::cluster::ClusterConfig::new(self.redis.clone());
            cluster.prefix = self.redis_prefix.clone();
            cluster.ca_file = self.redis_ca_file.clone();
            cluster.redis_cluster = self.redis_cluster;
            cluster
        });
        config
    }
}

fn parse_origin(pattern: &str) -> Result<String, String> {
    fanout::origin::validate(pattern).map(|()| pattern.to_owned()).map_err(|e| e.to_string())
}

/// A configuration error in the words of the command line: the flag that
/// sets the field, and what it must be.
pub fn describe(error: &ConfigError) -> String {
    match error {
        ConfigError::Invalid { field, requirement } => {
            let flag = match *field {
                "subprotocols" => "subprotocol".to_owned(),
                "allowed_origins" => "allowed-origin".to_owned(),
                "close_timeout" => return format!("the close timeout must be {requirement}"),
                other => other.replace('_', "-"),
            };
            format!("invalid --{flag}: must be {requirement}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_library_defaults() {
        let config = Cli::parse_from(["fanout"]).config();
        let library = Config::default();
        assert_eq!(config.bind.port(), 9501);
        assert_eq!(config.ping_interval, library.ping_interval);
        assert_eq!(config.idle_timeout, library.idle_timeout);
        assert_eq!(config.max_worker_backpressure, library.max_worker_backpressure);
        assert_eq!(config.inbox_bytes, library.inbox_bytes);
        assert_eq!(config.max_worker_partial_bytes, library.max_worker_partial_bytes);
        assert_eq!(config.max_http_body, library.max_http_body);
        assert_eq!(config.slow_consumer, SlowConsumerPolicy::Close);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn durations_take_units_fractions_and_off() {
        let cli = Cli::parse_from(["fanout", "--idle-timeout", "off", "--handshake-timeout", "0.25"]);
        assert_eq!(cli.config().idle_timeout, None);
        assert_eq!(cli.config().handshake_timeout, Duration::from_millis(250));
        let cli = Cli::parse_from(["fanout", "--ping-interval", "500ms", "--shutdown-timeout", "2m"]);
        assert_eq!(cli.config().ping_interval, Some(Duration::from_millis(500)));
        assert_eq!(cli.config().shutdown_timeout, Duration::from_secs(120));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("e.g. 10s"));
    }

    #[test]
    fn bind_takes_a_port_a_colon_port_or_a_host_name() {
        assert_eq!(parse_bind("9501"), Ok(SocketAddr::from(([0, 0, 0, 0], 9501))));
        assert_eq!(parse_bind(":9502"), Ok(SocketAddr::from(([0, 0, 0, 0], 9502))));
        assert_eq!(parse_bind("127.0.0.1:9503"), Ok(SocketAddr::from(([127, 0, 0, 1], 9503))));
        let localhost = parse_bind("localhost:9504").expect("localhost resolves");
        assert!(localhost.ip().is_loopback() && localhost.port() == 9504);
        assert!(parse_bind("localhost").unwrap_err().contains("HOST:PORT"));
        assert!(parse_bind("1.2.3.4:99999").is_err());
    }

    #[test]
    fn log_levels_are_checked() {
        assert!(check_log_filter("debug").is_ok());
        assert!(check_log_filter("fanout=trace,warn").is_ok());
        assert!(check_log_filter("verbose").is_ok(), "a bare module name is a valid env_logger filter");
        assert!(check_log_filter("fanout=loud").is_err());
        assert!(check_log_filter("info,x=y=z").is_err());
        assert!(Cli::try_parse_from(["fanout", "--log-level", "fanout=loud"]).is_err());
    }

    #[test]
    fn the_worker_watermark_follows_a_larger_connection_bound_unless_given() {
        let cli = Cli::parse_from(["fanout", "--max-backpressure", "134217728"]);
        assert_eq!(cli.config().max_worker_backpressure, 128 << 20);
        assert!(cli.config().validate().is_ok());
        let cli = Cli::parse_from(["fanout", "--max-backpressure", "134217728", "--max-worker-backpressure", "1024"]);
        assert!(cli.config().validate().is_err(), "an explicit watermark below the bound is refused");
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
    fn config_errors_name_the_flag() {
        let error = Cli::parse_from(["fanout", "--workers", "0"]).config().validate().expect_err("0 workers");
        assert_eq!(describe(&error), "invalid --workers: must be between 1 and 1024");
        let error = Cli::parse_from(["fanout", "--subprotocol", "a b"]).config().validate().expect_err("not a token");
        assert!(describe(&error).starts_with("invalid --subprotocol:"));
    }

    #[test]
    fn unknown_flags_and_bad_values_are_errors() {
        assert!(Cli::try_parse_from(["fanout", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["fanout", "--handshake-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["fanout", "--slow-consumer", "maybe"]).is_err());
    }

    #[test]
    fn origins_and_per_address_limits_reach_the_config() {
        let cli = Cli::parse_from([
            "fanout",
            "--allowed-origin",
            "https://chat.example.com",
            "--allowed-origin",
            "*.example.org",
            "--max-connections-per-ip",
            "10",
            "--max-handshakes-per-ip",
            "20",
        ]);
        let config = cli.config();
        assert_eq!(config.allowed_origins, ["https://chat.example.com", "*.example.org"]);
        assert_eq!((config.max_connections_per_ip, config.max_handshakes_per_ip), (Some(10), Some(20)));
        let error = Cli::try_parse_from(["fanout", "--allowed-origin", "https://a.org/x"]).expect_err("a path");
        assert!(error.to_string().contains("https://a.org/x"), "{error}");
        let zero = Cli::parse_from(["fanout", "--max-connections-per-ip", "0"]).config().validate().expect_err("zero");
        assert_eq!(describe(&zero), "invalid --max-connections-per-ip: must be at least 1 (or no limit)");
    }
}
