//! Typed errors of the library, one enum per layer.

use std::io;

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The [`crate::Config`] field `field` is out of range or contradicts
    /// another; `requirement` says what it must be.
    #[error("{field} must be {requirement}")]
    Invalid {
        /// The field's name in [`crate::Config`].
        field: &'static str,
        /// What the field must be.
        requirement: &'static str,
    },
}

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration was rejected before anything started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS certificate or key cannot be used (the error names the file).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The cluster settings cannot work (a bad Redis URL, say).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
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
    /// The whole server was stopped.
    #[error("worker {index} panicked: {message}")]
    WorkerPanicked {
        /// The worker's index.
        index: usize,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// A worker's event loop failed (its poller returned an error); the
    /// whole server was stopped.
    #[error("worker {index} stopped: {source}")]
    WorkerFailed {
        /// The worker's index.
        index: usize,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Installing the SIGINT/SIGTERM handling failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
}
