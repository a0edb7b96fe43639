//! Channel members that are queues rather than sockets: a session served
//! over plain HTTP requests (Engine.IO long-polling) has no connection on
//! any worker, yet must be a member of channels like one, so that every
//! publish reaches it through the same index and the same shared frames.
//!
//! A sink is attached to one worker (the session's owner) under an id of
//! its own; from then on the worker treats it as a member in every channel
//! it is subscribed to, and hands it what it would have queued for a
//! socket: the shared frame, never a copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::bus::{Command, Wait};
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;

/// Keys of sinks in a worker's channel index start here: connection slab
/// keys stay far below it, so one index holds both kinds of member.
pub(crate) const SINK_BASE: usize = 1 << 31;

/// A channel member that takes frames instead of writing them to a socket.
/// Called on the owning worker's thread, so it must not block: take the
/// frame, or refuse it when the sink is at its bound.
pub(crate) trait Sink: Send + Sync + std::fmt::Debug {
    /// Takes one WebSocket frame (unmasked, as the server would send it).
    /// False when the sink is full: the worker then detaches it, so a
    /// slow sink is dropped like a slow consumer, never grown.
    fn deliver(&self, frame: &Bytes) -> bool;

    /// The worker detached the sink: it refused a frame, or its id was
    /// disconnected ([`crate::ServerHandle::disconnect`]). Its owner should
    /// end what it stands for.
    fn dropped(&self);
}

/// A shared sink, as the worker keeps it.
pub(crate) type SharedSink = Arc<dyn Sink>;

/// The payload of one unmasked server frame (header stripped): a slice of
/// the same shared buffer, so a publication's text is never copied. `None`
/// for what is not one whole frame.
pub(crate) fn frame_payload(frame: &Bytes) -> Option<Bytes> {
    let (&second, rest) = frame.get(1..)?.split_first()?;
    let (header, len): (usize, usize) = match second & 0x7f {
        126 => (4, u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize),
        127 => {
            let bytes: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            (10, usize::try_from(u64::from_be_bytes(bytes)).ok()?)
        }
        small => (2, small as usize),
    };
    if second & 0x80 != 0 || frame.len() != header.checked_add(len)? {
        return None;
    }
    Some(frame.slice(header..))
}

/// Sequence numbers of sink ids: a space of their own (bit 47 set), apart
/// from the workers' connection sequences, so ids are never shared.
static NEXT_SINK: AtomicU64 = AtomicU64::new(0);
const SINK_SEQ_BIT: u64 = 1 << 47;

impl ServerHandle {
    /// Attaches `sink` to a worker (in turn) under a fresh id, counted as an
    /// open connection: against `Config::max_connections`, and reported by
    /// `exists` so that `subscribe_as`, `unsubscribe` and pushes to the id
    /// reach the sink. `None` when the connection budget is exhausted or
    /// the worker is gone.
    pub(crate) fn attach_sink(&self, sink: SharedSink) -> Option<ConnId> {
        let shared = &self.shared;
        if !shared.registry.try_reserve() {
            return None;
        }
        let n = NEXT_SINK.fetch_add(1, Ordering::Relaxed);
        let worker = (n % shared.bus.workers().max(1) as u64) as usize;
        let id = ConnId::new(worker, SINK_SEQ_BIT | n);
        shared.registry.insert(id);
        let command = Command::Attach { conn: id, sink };
        if shared.bus.send(worker, command, Wait::Forever).is_err() {
            shared.registry.remove(id);
            return None;
        }
        Some(id)
    }

    /// Detaches the sink `id`: out of every channel, its budget slot given
    /// back. Nothing when it is detached already.
    pub(crate) fn detach_sink(&self, id: ConnId) {
        self.shared.registry.remove(id);
        let _ = self.shared.bus.send(id.worker(), Command::Detach { conn: id }, Wait::Forever);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Prepared;
    use crate::Message;

    #[test]
    fn payloads_are_slices_of_frames_of_every_length_class() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let text = "x".repeat(len);
            let frame = Prepared::new(&Message::text(text.clone())).frame;
            assert_eq!(frame_payload(&frame).as_deref(), Some(text.as_bytes()), "{len}");
        }
        assert_eq!(frame_payload(&Bytes::from_static(b"\x81")), None);
        assert_eq!(frame_payload(&Bytes::from_static(b"\x81\x05ab")), None, "truncated");
    }
}
