//! One socket owned by a worker and the phase its protocol is in.

use std::io::{self, Write};

use mio::net::TcpStream;

use super::send_queue::SendQueue;
use crate::conn_id::ConnId;
use crate::http::RequestReader;
use crate::ws::Decoder;

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Plain HTTP/1.1: reading requests (an upgrade, or requests answered
    /// one after another on a kept-alive connection).
    Http { reader: RequestReader },
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

    /// True when bytes the socket reported written still wait inside it for
    /// the kernel (TLS records): flush again once writable, even with an
    /// empty send queue.
    fn has_pending_output(&self) -> bool {
        false
    }

    /// Writes what waits inside; `WouldBlock` when the kernel takes no more.
    fn flush_pending(&mut self) -> io::Result<()> {
        Ok(())
    }
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
    /// Bytes this connection's input buffers held when last counted in the
    /// worker's total (`Worker::sync_held_input`).
    pub(crate) held_input: u32,
    /// Valid once open; a never-issued id before that.
    pub(crate) id: ConnId,
    /// When the current phase began (worker clock, milliseconds).
    pub(crate) phase_since: u64,
    /// When bytes last arrived (worker clock, milliseconds).
    pub(crate) last_seen: u64,
    /// Broadcasts of this turn already moved into `queue` (to keep them in
    /// order with a push that arrived after them).
    pub(crate) cursor: u32,
    pub(crate) flags: Flags,
}

/// One of a connection's yes/no facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum Flag {
    /// False after a short write until mio reports the socket writable.
    Writable = 1,
    /// Listed in the worker's flush list for this turn.
    Dirty = 1 << 1,
    /// Listed in the worker's read-again list (read budget ran out).
    ReadPending = 1 << 2,
    /// Reported to the registry as backlogged (drop policy).
    Backlogged = 1 << 3,
    /// Tracked by the worker's pressure record (its queue is not empty).
    Behind = 1 << 4,
    /// Has sent a data message: not read while the worker is under pressure.
    Publisher = 1 << 5,
    /// Listed in the worker's paused-reads list.
    ReadPaused = 1 << 6,
    /// HTTP: pipelined requests wait until the responses before them drain.
    HttpHeld = 1 << 7,
    /// HTTP: at least one request was answered (a later silence is the end
    /// of a keep-alive, not a failed handshake).
    ServedHttp = 1 << 8,
    /// Accepted without whole-server broadcasts (`Accept::without_broadcasts`).
    NoBroadcasts = 1 << 9,
    /// HTTP: a deferred response is owed; no further request is read.
    HttpAwaiting = 1 << 10,
    /// permessage-deflate agreed with a full window: messages large enough
    /// go out compressed (the decoder knows to inflate on its own).
    Deflate = 1 << 11,
}

/// A connection's flags in two bytes: nine `bool`s would cost a word of
/// every connection record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags(u16);

impl Flags {
    /// True when `flag` is set.
    pub(crate) fn is(self, flag: Flag) -> bool {
        self.0 & flag as u16 != 0
    }

    /// Sets or clears `flag`.
    pub(crate) fn set(&mut self, flag: Flag, on: bool) {
        if on {
            self.0 |= flag as u16;
        } else {
            self.0 &= !(flag as u16);
        }
    }
}

impl<S> Connection<S> {
    /// A connection that has just been accepted.
    pub(crate) fn accepted(socket: S, now: u64) -> Self {
        Connection {
            socket,
            phase: Phase::Http { reader: RequestReader::new() },
            queue: SendQueue::default(),
            held_input: 0,
            id: ConnId::from_u64(0),
            phase_since: now,
            last_seen: now,
            cursor: 0,
            flags: Flags(Flag::Writable as u16),
        }
    }

    /// True while the connection receives broadcasts.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// HTTP: no further request is read for now (responses before it must
    /// drain, or a deferred response is owed).
    pub(crate) fn input_held(&self) -> bool {
        self.flags.is(Flag::HttpHeld) || self.flags.is(Flag::HttpAwaiting)
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

    #[test]
    fn flags_set_and_clear_one_at_a_time() {
        let mut flags = Flags::default();
        flags.set(Flag::Dirty, true);
        flags.set(Flag::ServedHttp, true);
        assert!(flags.is(Flag::Dirty) && flags.is(Flag::ServedHttp) && !flags.is(Flag::Writable));
        flags.set(Flag::Dirty, false);
        assert!(!flags.is(Flag::Dirty) && flags.is(Flag::ServedHttp));
    }
}
