//! Typed errors of the library, one enum per layer.

use std::io;

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named setting is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration was rejected before anything started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding or configuring the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Creating a poller, waker or thread failed.
    #[error("cannot start {what}: {source}")]
    Start {
        /// Which part failed to start.
        what: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A worker thread panicked; the message is the panic payload if any.
    #[error("worker {index} panicked: {message}")]
    WorkerPanicked {
        /// The worker's index.
        index: usize,
        /// The panic payload, when it was a string.
        message: String,
    },
}
