//! The worker's real fan-out path (`flush_one`) on in-memory sockets, for
//! the criterion benches and for unit tests of partial writes.

use std::io::{self, IoSlice, Write};

use bytes::Bytes;

use super::connection::{Connection, Phase, Socket};
use super::flush_one::{flush_one, QueueLimit};
use crate::bus::Broadcast;
use crate::config::SlowConsumerPolicy;
use crate::conn_id::ConnId;
use crate::stats::WorkerCounters;
use crate::ws::Decoder;

/// An in-memory socket: takes up to `room` bytes, then would block.
#[derive(Debug, Default)]
pub struct Sink {
    /// Bytes written so far.
    pub written: Vec<u8>,
    /// Bytes it will still take before returning `WouldBlock` (`None`: unlimited).
    pub room: Option<usize>,
    /// Number of `write`/`writev` calls that took bytes.
    pub writes: usize,
    keep: bool,
}

impl Sink {
    /// A sink that counts bytes without keeping them (for benches).
    pub fn discarding() -> Self {
        Sink::default()
    }

    /// A sink that keeps what it was given, taking at most `room` bytes.
    pub fn keeping(room: Option<usize>) -> Self {
        Sink { room, keep: true, ..Sink::default() }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        let take = self.room.map_or(offered, |room| room.min(offered));
        if take == 0 && offered > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(room) = self.room.as_mut() {
            *room -= take;
        }
        let mut left = take;
        for buf in bufs {
            let n = left.min(buf.len());
            if self.keep {
                self.written.extend_from_slice(&buf[..n]);
            }
            left -= n;
        }
        self.writes += 1;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Sink {
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `n` open connections on discarding sinks, flushed the way a worker
/// flushes its sockets at the end of a turn.
pub struct FanoutRig {
    conns: Vec<Connection<Sink>>,
    batch: Vec<Broadcast>,
    counters: WorkerCounters,
    limit: QueueLimit,
}

impl FanoutRig {
    /// `connections` open connections with unlimited sockets.
    pub fn new(connections: usize) -> Self {
        let conns = (0..connections).map(|i| open_connection(Sink::discarding(), i as u64)).collect();
        let limit = QueueLimit { max_bytes: 1 << 20, policy: SlowConsumerPolicy::Close };
        FanoutRig { conns, batch: Vec::new(), counters: WorkerCounters::default(), limit }
    }

    /// Writes `frames` (one turn's broadcasts) to every connection with one
    /// vectored write each; returns the bytes written in all.
    pub fn fan_out(&mut self, frames: &[Bytes]) -> usize {
        self.batch.clear();
        self.batch.extend(frames.iter().map(|frame| Broadcast {
            frame: frame.clone(),
            except: None,
            sent_at: None,
            deflated: Default::default(),
        }));
        // As the worker does: a busy turn is joined into one run first.
        let joined = super::coalesce::Joined::of(&self.batch);
        let mut total = 0;
        for conn in &mut self.conns {
            let before = conn.socket.writes;
            let items = joined.as_ref().and_then(|j| j.for_conn(conn.id)).unwrap_or(&self.batch[..]);
            flush_one(conn, items, self.limit, &self.counters);
            total += conn.socket.writes - before;
        }
        total
    }
}

/// An open connection with id `seq` of worker 0 on `socket`.
pub(crate) fn open_connection<S>(socket: S, seq: u64) -> Connection<S> {
    let mut conn = Connection::accepted(socket, 0);
    conn.id = ConnId::new(0, seq + 1);
    conn.phase = Phase::Open { decoder: Decoder::new(1 << 20) };
    conn
}
