//! fanout: a sharded WebSocket push server for chat and high fan-out
//! broadcast.
//!
//! # Module map
//! - [`ws`]: the protocol without sockets: handshake parsing, frame
//!   decoding into events, frame encoding (bytes in, events out).
//! - `shard`: one mio reactor per worker thread; owns its connections,
//!   reads, writes (one `writev` per socket per turn), enforces deadlines.
//! - `bus`: the only cross-worker path: a bounded inbox plus a waker per
//!   worker; broadcasts cross once per worker as a shared encoded frame.
//! - `acceptor`: accepts and hands each socket to the least-loaded worker.
//! - `registry`: which connection ids are open, readable from any thread.
//! - [`sys`]: every OS-specific call (listener, rlimit, CPU pinning).
//! - [`Server`], [`ServerHandle`], [`Handler`]: the embedding API.
//! - [`chat`]: the chat and echo applications the binary runs.
//!
//! # Where channels and other nodes fit
//! - Channels (Pusher-style subscriptions): a worker keeps, next to its
//!   connection table, a map from channel to the slab keys subscribed on
//!   that worker, and each connection its own small subscription set. A
//!   publish becomes one more bus command (`Publish { channel, frame }`)
//!   that crosses once per worker, like `Broadcast`, and is flushed through
//!   the same per-turn `writev` path to the channel's keys only.
//! - Other nodes: a bridge thread subscribes to the cluster engine (Redis
//!   pub/sub) and calls `ServerHandle::broadcast_prepared` for what arrives;
//!   local publishes go out through the same bridge. The bus itself stays
//!   process-local, so no cluster protocol is invented here.
//!
//! # Embedding
//! ```no_run
//! use fanout::{ChatHandler, Config, Server};
//! let config = Config { bind: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
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
pub mod chat;
pub mod cli;
pub mod config;
mod conn_id;
pub mod error;
mod handle;
mod handler;
mod message;
mod registry;
mod server;
mod shard;
mod stats;
pub mod sys;
pub mod ws;

pub use chat::{ChatHandler, EchoHandler};
pub use config::{Config, SlowConsumerPolicy};
pub use conn_id::ConnId;
pub use error::{ConfigError, ServerError};
pub use handle::{Prepared, PushOutcome, ServerHandle};
pub use handler::{CloseInfo, CloseInitiator, Handler, Upgrade};
pub use message::Message;
pub use server::{RunningServer, Server};
pub use stats::Stats;
pub use ws::handshake::Request;
