//! What crosses the bus: commands, their cost against an inbox's bounds,
//! and how long a sender outside the workers may wait.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::channels::{Dialect, Publication};
use crate::conn_id::ConnId;
use crate::http::Response;

/// Bytes charged per queued command on top of its frame: the command
/// itself and the channel slot it occupies.
pub(crate) const COMMAND_OVERHEAD: usize = 64;

/// A frame's compressed form (permessage-deflate), made by the first worker
/// that has a compressing recipient for it and shared by every other worker
/// through the clones of the command: a broadcast is compressed once.
/// `None` inside: the frame does not compress (too small, or no smaller).
#[derive(Debug, Clone, Default)]
pub(crate) struct DeflateCache(Arc<std::sync::OnceLock<Option<Bytes>>>);

impl DeflateCache {
    /// The compressed form of `frame`, computed with `deflate` the first time.
    pub(crate) fn get_or_deflate(&self, frame: &Bytes, deflate: impl FnOnce(&Bytes) -> Option<Bytes>) -> Bytes {
        self.0.get_or_init(|| deflate(frame)).clone().unwrap_or_else(|| frame.clone())
    }
}

/// A broadcast on its way to a worker's connections.
#[derive(Debug, Clone)]
pub(crate) struct Broadcast {
    /// The encoded frame, shared by every recipient.
    pub(crate) frame: Bytes,
    /// A connection that must not receive it (the chat relay's sender).
    pub(crate) except: Option<ConnId>,
    /// When the application asked for it; `None` for the server's pings.
    pub(crate) sent_at: Option<Instant>,
    /// Its compressed frame, shared by the workers.
    pub(crate) deflated: DeflateCache,
}

/// A publish to one channel on its way to a worker with members of it.
#[derive(Debug, Clone)]
pub(crate) struct Publish {
    pub(crate) channel: Arc<str>,
    /// The frames, shared by every recipient on every worker.
    pub(crate) publication: Publication,
    /// A connection that must not receive it (the sender of a client event).
    pub(crate) except: Option<ConnId>,
    /// When the application asked for it.
    pub(crate) sent_at: Option<Instant>,
}

/// Commands in a worker's inbox.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send the frame to every open connection of the worker but `except`.
    Broadcast(Broadcast),
    /// Send `frame` to one connection.
    Push { conn: ConnId, frame: Bytes },
    /// Send to the worker's members of a channel.
    Publish(Publish),
    /// Make a connection a member of a channel, receiving `dialect`.
    Subscribe { conn: ConnId, channel: Box<str>, dialect: Dialect },
    /// End a connection's membership of a channel.
    Unsubscribe { conn: ConnId, channel: Box<str> },
    /// Make `sink` a member-capable id on this worker (see
    /// [`crate::channels::Sink`]); in order with the subscribes after it.
    Attach { conn: ConnId, sink: crate::channels::SharedSink },
    /// Take the sink `conn` out of every channel and forget it.
    Detach { conn: ConnId },
    /// The response to a deferred HTTP request.
    Respond { id: u64, response: Response },
    /// Close one connection with a close frame (control).
    Disconnect { conn: ConnId, code: u16, reason: String },
    /// Take ownership of a freshly accepted socket (control).
    Adopt(mio::net::TcpStream),
    /// Close every connection with 1001 and stop (control).
    Shutdown,
}

impl Command {
    /// True for the commands that go through the unbounded control channel.
    #[cfg(test)]
    pub(crate) fn is_control(&self) -> bool {
        matches!(self, Command::Disconnect { .. } | Command::Adopt(_) | Command::Shutdown)
    }

    /// What the command counts against an inbox's byte bound; 0 for control.
    pub(crate) fn cost(&self) -> usize {
        match self {
            Command::Broadcast(b) => b.frame.len() + COMMAND_OVERHEAD,
            Command::Push { frame, .. } => frame.len() + COMMAND_OVERHEAD,
            Command::Respond { response, .. } => response.body_bytes().len() + COMMAND_OVERHEAD,
            Command::Publish(p) => p.publication.bytes() + p.channel.len() + COMMAND_OVERHEAD,
            Command::Subscribe { channel, .. } | Command::Unsubscribe { channel, .. } => {
                channel.len() + COMMAND_OVERHEAD
            }
            _ => 0,
        }
    }
}

/// How long a thread outside the workers may wait for room in an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: answer `Full`.
    No,
    /// Until this instant, then answer `Full`.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// Why a message was not handed to the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A worker's inbox is at its bound (and waiting, if allowed, did not
    /// free room in time). Nothing was sent.
    #[error("a worker's inbox is full")]
    Full,
    /// The target connection or worker is gone, or the server is stopping.
    #[error("the connection or server is closed")]
    Closed,
}
