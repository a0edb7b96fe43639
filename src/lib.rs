//! fanout: a sharded WebSocket push server for chat and high fan-out
//! broadcast.
//!
//! # Module map
//! - [`ws`]: the WebSocket protocol without sockets: upgrade validation,
//!   frame decoding into events, frame encoding (bytes in, events out).
//! - [`http`]: HTTP/1.1 without sockets: the incremental request reader
//!   (keep-alive, pipelining, bodies) and responses; the upgrade request
//!   and plain requests share it.
//! - `shard`: one mio reactor per worker thread; owns its connections,
//!   reads, writes (one `writev` per socket per turn), enforces deadlines,
//!   pauses its publishers under output pressure, serves plain HTTP.
//! - `bus`: the only cross-worker path: an inbox (data bounded in commands
//!   and bytes, control unbounded) plus a waker per worker; broadcasts
//!   cross once per worker as a shared encoded frame.
//! - `acceptor`: accepts and hands each socket to the least-loaded worker.
//! - `registry`: which connection ids are open, readable from any thread.
//! - `stats`, `metrics`: per-worker counters, and their `/metrics` scrape.
//! - `guard`, `log_limit`: hooks that panic cost one connection; storms
//!   of events log a few lines.
//! - [`pusher`]: Pusher protocol 7 without sockets: frames, auth, API, apps.
//! - [`socketio`]: Engine.IO (v3, v4) and Socket.IO (v4, v5) packets without
//!   sockets: frames, polling payloads, binary attachments; [`service`]
//!   serves Engine.IO v4 over a WebSocket and HTTP long-polling with them.
//! - [`history`]: channel history: offsets, epochs, recovery, bounded by
//!   messages, age and bytes; `history::store`, the durable redb store.
//! - `deferred`: HTTP responses given later ([`Responder`]).
//! - [`sys`]: every OS-specific call (listener, rlimit, CPU pinning).
//! - [`Server`], [`ServerHandle`], [`Handler`]: the embedding API.
//! - [`chat`]: the chat and echo applications the binary runs.
//!
//! # Where channels and other nodes fit
//! - Channels (Pusher-style subscriptions): a worker keeps, next to its
//!   connection table, a map from channel to the slab keys subscribed on
//!   that worker; a connection's subscriptions live in its
//!   [`Handler::State`]. A publish becomes one more bus command that
//!   crosses once per worker, like a broadcast, and is flushed through the
//!   same per-turn `writev` path to the channel's keys only. A member may
//!   also be a sink (`channels::Sink`) rather than a socket: a queue kept
//!   by the service, such as a long-polling session, attached to one
//!   worker and handed the same shared frames.
//! - The Pusher HTTP API and the chat page answer through
//!   [`Handler::on_http`], on the same port and workers.
//! - Other nodes: a bridge thread subscribes to the cluster engine (Redis
//!   pub/sub) and publishes what arrives through a [`ServerHandle`]; the
//!   bus itself stays process-local, so no cluster protocol is invented.
//!
//! # Embedding
//! ```no_run
//! use fanout::{ChatHandler, Config, Server};
//! let mut config = Config::default();
//! config.bind = "127.0.0.1:0".parse().expect("an address");
//! let server = Server::bind(config, ChatHandler::default())?.start()?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown()?;
//! # Ok::<(), fanout::ServerError>(())
//! ```
#![deny(missing_docs)]

mod acceptor;
#[doc(hidden)]
pub mod bench_support;
mod bus;
mod channels;
pub mod chat;
pub mod cluster;
pub mod config;
mod conn_id;
mod deferred;
pub mod error;
mod guard;
mod handle;
mod handler;
pub mod history;
pub mod http;
mod log_limit;
mod message;
mod metrics;
pub mod origin;
mod per_ip;
pub mod pusher;
mod registry;
mod server;
pub mod service;
mod shard;
mod signals;
pub mod socketio;
mod stats;
pub mod sys;
pub mod tls;
pub mod token;
pub mod ws;

pub use bus::SendError;
pub use channels::{ChannelChange, ChannelInfo, Dialect, Publication};
pub use chat::{ChatHandler, EchoHandler};
pub use config::{Config, SlowConsumerPolicy};
pub use conn_id::ConnId;
pub use deferred::Responder;
pub use error::{ConfigError, ServerError};
pub use handle::{Prepared, PushOutcome, ServerHandle};
pub use handler::{Accept, CloseInfo, CloseInitiator, Handler, Rejection};
pub use http::{Request, Response};
pub use message::{Message, Text};
pub use metrics::MetricsOut;
pub use server::{RunningServer, Server};
pub use stats::Stats;

/// The README's code, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
