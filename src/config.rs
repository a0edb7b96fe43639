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

/// Every setting the server runs with. Build one with [`Config::default`] and
/// override fields, then let [`crate::Server::bind`] validate it.
#[derive(Debug, Clone)]
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
    /// Upper bound on the bytes queued in user space for one connection.
    pub max_backpressure: usize,
    /// What happens when `max_backpressure` would be exceeded.
    pub slow_consumer: SlowConsumerPolicy,
    /// Send a ping to every connection this often; `None` disables pings.
    pub ping_interval: Option<Duration>,
    /// Close a connection from which nothing arrived for this long.
    pub idle_timeout: Option<Duration>,
    /// Drop a connection that has not completed its upgrade in this time.
    pub handshake_timeout: Duration,
    /// How long a closing connection may take to finish the close handshake.
    pub close_timeout: Duration,
    /// Most established WebSocket connections; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Listen backlog passed to `listen(2)`.
    pub backlog: u32,
    /// Largest HTTP upgrade request accepted, in bytes (HTTP 431 beyond).
    pub max_handshake_size: usize,
    /// On shutdown, how long to wait for clients to take their close frames.
    pub shutdown_timeout: Duration,
    /// Subprotocols the server speaks; the first one a client offers that
    /// is in this list is echoed in the upgrade response.
    pub subprotocols: Vec<String>,
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
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(2),
            max_connections: 100_000,
            backlog: 4096,
            max_handshake_size: 8 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            subprotocols: Vec::new(),
        }
    }
}

/// The most workers one server runs (the worker index is 16 bits of a
/// connection id, and more threads than this would only thrash).
pub const MAX_WORKERS: usize = 1024;

impl Config {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(what.to_string()));
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return invalid("workers must be between 1 and 1024");
        }
        if self.max_message_size == 0 {
            return invalid("max-message-size must be at least 1 byte");
        }
        if self.max_message_rate == Some(0) {
            return invalid("max-message-rate must be at least 1 message per second (omit it for no limit)");
        }
        if self.max_backpressure < 1024 {
            return invalid("max-backpressure must be at least 1024 bytes");
        }
        if self.max_connections == 0 {
            return invalid("max-connections must be at least 1");
        }
        if self.backlog == 0 {
            return invalid("backlog must be at least 1");
        }
        if self.max_handshake_size < 256 {
            return invalid("max-handshake-size must be at least 256 bytes");
        }
        if self.handshake_timeout.is_zero() || self.close_timeout.is_zero() {
            return invalid("handshake and close timeouts must be positive");
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return invalid("ping-interval must be positive (0 is not allowed; omit pings with --ping-interval off)");
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return invalid("idle-timeout must be positive (use --idle-timeout off to disable)");
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

    #[test]
    fn default_config_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn zero_workers_is_rejected() {
        let config = Config { workers: 0, ..Config::default() };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_message_rate_of_zero_is_rejected() {
        assert!(Config { max_message_rate: Some(0), ..Config::default() }.validate().is_err());
        assert!(Config { max_message_rate: Some(1), ..Config::default() }.validate().is_ok());
    }

    #[test]
    fn tiny_backpressure_is_rejected() {
        let config = Config { max_backpressure: 10, ..Config::default() };
        assert!(config.validate().is_err());
    }
}
