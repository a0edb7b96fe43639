//! One socket owned by a worker and the phase its protocol is in.

use std::io::{self, Write};

use mio::net::TcpStream;

use super::send_queue::SendQueue;
use crate::conn_id::ConnId;
use crate::ws::Decoder;

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Reading the HTTP upgrade request; `buf` holds what arrived so far.
    Handshake { buf: Vec<u8> },
    /// Upgraded: frames in, frames out.
    Open { decoder: Decoder },
    /// A final answer (close frame or HTTP error) is queued. Once it is
    /// written the server half-closes (FIN first, so the server side keeps
    /// TIME_WAIT) and waits for the client's EOF, discarding its input.
    Closing { fin_sent: bool },
}

/// What the flush path needs from a socket; a trait so the fan-out path can
/// be unit-tested and benchmarked on in-memory sockets.
pub(crate) trait Socket: Write {
    /// Sends FIN: no more bytes from this side.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// A worker's record of one socket.
///
/// Kept small on purpose: this, the decoder and an empty queue are what an
/// idle connection costs in user space.
pub(crate) struct Connection<S = TcpStream> {
    pub(crate) socket: S,
    pub(crate) phase: Phase,
    pub(crate) queue: SendQueue,
    /// Valid once open; a never-issued id before that.
    pub(crate) id: ConnId,
    /// When the current phase began (worker clock, milliseconds).
    pub(crate) phase_since: u64,
    /// When bytes last arrived (worker clock, milliseconds).
    pub(crate) last_seen: u64,
    /// Broadcasts of this turn already moved into `queue` (to keep them in
    /// order with a push that arrived after them).
    pub(crate) cursor: u32,
    /// False after a short write until mio reports the socket writable.
    pub(crate) writable: bool,
    /// Listed in the worker's flush list for this turn.
    pub(crate) dirty: bool,
    /// Listed in the worker's read-again list (read budget ran out).
    pub(crate) read_pending: bool,
    /// Reported to the registry as backlogged (drop policy).
    pub(crate) backlogged: bool,
}

impl<S> Connection<S> {
    /// A connection that has just been accepted.
    pub(crate) fn accepted(socket: S, now: u64) -> Self {
        Connection {
            socket,
            phase: Phase::Handshake { buf: Vec::new() },
            queue: SendQueue::default(),
            id: ConnId::from_u64(0),
            phase_since: now,
            last_seen: now,
            cursor: 0,
            writable: true,
            dirty: false,
            read_pending: false,
            backlogged: false,
        }
    }

    /// True while the connection receives broadcasts.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle cost stated in the README rests on this size.
    #[test]
    fn a_connection_record_stays_small() {
        let size = std::mem::size_of::<Connection>();
        assert!(size <= 160, "Connection grew to {size} bytes");
    }
}
