//! Validated server settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ConfigError;

/// What a worker does with a frame for a client whose send queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowConsumerPolicy {
    /// Close the connection with code 1008 (policy violation) and count it.
    Close,
    /// Drop the frame for that client only and count it; the connection stays.
    Drop,
}

/// Every setting the server runs with. Start from [`Config::default`] and
/// assign the fields you need (the struct is `#[non_exhaustive]`, so new
/// settings can be added without breaking you), then let
/// [`crate::Server::bind`] validate it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (read it back with
    /// [`crate::Server::local_addr`]).
    pub bind: SocketAddr,
    /// Number of reactor threads; each owns its connections outright.
    pub workers: usize,
    /// Pin worker `i` to core `i % cores` when true.
    pub pin_cores: bool,
    /// Largest accepted message (after reassembling fragments), in bytes.
    /// A larger one closes the connection with 1009.
    pub max_message_size: usize,
    /// Most messages (data or ping) one connection may send per second, in
    /// bursts of up to as many; past it the connection is closed with 1008.
    /// `None`: no limit.
    pub max_message_rate: Option<u32>,
    /// Upper bound on the memory queued in user space for one connection:
    /// frame bytes plus a per-frame overhead (see the README's "Slow readers").
    pub max_backpressure: usize,
    /// What happens when `max_backpressure` would be exceeded.
    pub slow_consumer: SlowConsumerPolicy,
    /// A worker whose draining connections together hold more than this
    /// stops reading the clients that publish until they hold half of it.
    pub max_worker_backpressure: usize,
    /// Bytes of broadcasts and pushes (plus 64 per command) that may wait
    /// in one worker's inbox; past it senders outside the workers wait or
    /// get `Full`, and workers overflow and pause their publishers.
    pub inbox_bytes: usize,
    /// Bytes one worker may hold for incomplete messages and requests over
    /// all its connections; a connection that grows it past this is closed
    /// (1013, or HTTP 503).
    pub max_worker_partial_bytes: usize,
    /// Send a ping to every connection this often; `None` disables pings.
    pub ping_interval: Option<Duration>,
    /// Close a connection from which no complete frame arrived for this long.
    pub idle_timeout: Option<Duration>,
    /// Drop a connection whose request (upgrade or plain HTTP, or the next
    /// one on a kept-alive connection) has not arrived in this time.
    pub handshake_timeout: Duration,
    /// How long a closing connection may take to finish the close handshake.
    pub close_timeout: Duration,
    /// Most established WebSocket connections; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Listen backlog passed to `listen(2)`.
    pub backlog: u32,
    /// Largest HTTP request head accepted, in bytes (HTTP 431 beyond).
    pub max_handshake_size: usize,
    /// Largest plain HTTP request body accepted, in bytes (HTTP 413 beyond).
    pub max_http_body: usize,
    /// Take the client's address from the first `X-Forwarded-For` hop (set
    /// this only behind a proxy that writes that header).
    pub trust_proxy: bool,
    /// On shutdown, how long to wait for clients to take their close frames.
    pub shutdown_timeout: Duration,
    /// On shutdown, how long to keep serving normally first while `/readyz`
    /// answers 503, so a load balancer polling it stops sending new clients
    /// before the listener closes (Kubernetes' pre-stop delay). Zero: drain
    /// at once.
    pub shutdown_grace: Duration,
    /// Subprotocols the server speaks; the first one a client offers that
    /// is in this list is echoed in the upgrade response.
    pub subprotocols: Vec<String>,
    /// Browser origins that may open a WebSocket (see [`crate::origin`] for
    /// the patterns); an upgrade with another `Origin` gets 403 before the
    /// application sees it. Empty: any origin. A request without `Origin`
    /// (not from a browser) is not checked.
    pub allowed_origins: Vec<String>,
    /// Most WebSocket connections open from one client address (an IPv6
    /// client counts by its /64); past it, upgrades get 429. `None`: no limit.
    pub max_connections_per_ip: Option<u32>,
    /// Upgrade attempts one client address may make per second, in bursts
    /// of up to as many; past it, 429 with `Retry-After`. `None`: no limit.
    pub max_handshakes_per_ip: Option<u32>,
    /// Serve TLS (`wss://`, `https://`) with this certificate and key
    /// instead of plain TCP. `None`: plain.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Agree to permessage-deflate with every client that offers it:
    /// messages of [`crate::ws::deflate::MIN_COMPRESSED_SIZE`] bytes or more
    /// go out compressed, and compressed messages are taken in.
    pub compression: bool,
    /// Share channels and broadcasts with the other nodes of a cluster
    /// through Redis (see [`crate::cluster`]). `None`: a single node.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([0, 0, 0, 0], 9501)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_cores: false,
            max_message_size: 1 << 20,
            max_message_rate: None,
            max_backpressure: 1 << 20,
            slow_consumer: SlowConsumerPolicy::Close,
            max_worker_backpressure: 64 << 20,
            inbox_bytes: 16 << 20,
            max_worker_partial_bytes: 256 << 20,
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(2),
            max_connections: 100_000,
            backlog: 4096,
            max_handshake_size: 8 * 1024,
            max_http_body: 1 << 20,
            trust_proxy: false,
            shutdown_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::ZERO,
            subprotocols: Vec::new(),
            allowed_origins: Vec::new(),
            max_connections_per_ip: None,
            max_handshakes_per_ip: None,
            tls: None,
            compression: true,
            cluster: None,
        }
    }
}

/// The most workers one server runs (the worker index is 16 bits of a
/// connection id, and more threads than this would only thrash).
pub const MAX_WORKERS: usize = 1024;

/// Data commands one worker's inbox holds at most, whatever their size.
pub(crate) const INBOX_COMMANDS: usize = 16 * 1024;

impl Config {
    /// Checks that the settings make sense together; the error names the
    /// field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, requirement: &'static str| Err(ConfigError::Invalid { field, requirement });
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return invalid("workers", "between 1 and 1024");
        }
        if self.max_message_size == 0 {
            return invalid("max_message_size", "at least 1 byte");
        }
        if self.max_message_rate == Some(0) {
            return invalid("max_message_rate", "at least 1 message per second (or no limit)");
        }
        if self.max_backpressure < 1024 {
            return invalid("max_backpressure", "at least 1024 bytes");
        }
        if self.max_worker_backpressure < self.max_backpressure {
            return invalid("max_worker_backpressure", "at least max_backpressure");
        }
        if self.inbox_bytes < 64 * 1024 {
            return invalid("inbox_bytes", "at least 65536 bytes");
        }
        if self.max_worker_partial_bytes < self.max_message_size {
            return invalid("max_worker_partial_bytes", "at least max_message_size");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "at least 1");
        }
        if self.backlog == 0 {
            return invalid("backlog", "at least 1");
        }
        if self.max_handshake_size < 256 {
            return invalid("max_handshake_size", "at least 256 bytes");
        }
        if self.handshake_timeout.is_zero() {
            return invalid("handshake_timeout", "positive");
        }
        if self.close_timeout.is_zero() {
            return invalid("close_timeout", "positive");
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return invalid("ping_interval", "positive (or no pings)");
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return invalid("idle_timeout", "positive (or no idle timeout)");
        }
        if let Some(bad) = self.subprotocols.iter().find(|p| !crate::ws::handshake::is_token(p)) {
            log::debug!("invalid subprotocol {bad:?}");
            return invalid("subprotocols", "HTTP tokens (letters, digits and !#$%&'*+-.^_`|~)");
        }
        if let Some(bad) = self.allowed_origins.iter().find(|p| crate::origin::validate(p).is_err()) {
            log::debug!("invalid origin pattern {bad:?}");
            return invalid("allowed_origins", "origin patterns: *, scheme://host[:port], host[:port], *.domain");
        }
        if self.max_connections_per_ip == Some(0) {
            return invalid("max_connections_per_ip", "at least 1 (or no limit)");
        }
        if self.max_handshakes_per_ip == Some(0) {
            return invalid("max_handshakes_per_ip", "at least 1 per second (or no limit)");
        }
        Ok(())
    }

    /// File descriptors the process needs for `max_connections` clients plus
    /// handshakes in flight, listeners, pollers and wakers.
    pub fn needed_open_files(&self) -> u64 {
        let per_worker = 4;
        self.max_connections as u64 + self.max_connections as u64 / 16 + 64 + per_worker * self.workers as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config::default();
        change(&mut config);
        config
    }

    #[test]
    fn default_config_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn errors_name_the_field_not_a_flag() {
        let error = with(|c| c.workers = 0).validate().expect_err("zero workers");
        assert_eq!(error.to_string(), "workers must be between 1 and 1024");
        assert!(matches!(error, ConfigError::Invalid { field: "workers", .. }));
    }

    #[test]
    fn a_message_rate_of_zero_is_rejected() {
        assert!(with(|c| c.max_message_rate = Some(0)).validate().is_err());
        assert!(with(|c| c.max_message_rate = Some(1)).validate().is_ok());
    }

    #[test]
    fn tiny_backpressure_and_inconsistent_bounds_are_rejected() {
        assert!(with(|c| c.max_backpressure = 10).validate().is_err());
        assert!(with(|c| c.max_worker_backpressure = c.max_backpressure - 1).validate().is_err());
        assert!(with(|c| c.max_worker_partial_bytes = 10).validate().is_err());
    }

    #[test]
    fn origin_patterns_and_per_address_limits_are_checked() {
        assert!(with(|c| c.allowed_origins = vec!["https://a.org/x".into()]).validate().is_err());
        assert!(with(|c| c.allowed_origins = vec!["*.a.org".into()]).validate().is_ok());
        assert!(with(|c| c.max_connections_per_ip = Some(0)).validate().is_err());
        assert!(with(|c| c.max_handshakes_per_ip = Some(0)).validate().is_err());
    }

    #[test]
    fn subprotocols_must_be_tokens() {
        assert!(with(|c| c.subprotocols = vec!["chat v2".into()]).validate().is_err());
        assert!(with(|c| c.subprotocols = vec!["v2.chat".into()]).validate().is_ok());
    }
}
