//! Sinks on the worker: members that are queues, not sockets (see
//! [`crate::channels::Sink`]). The worker that owns a sink keeps its
//! memberships in its own channel index, under a key at or above
//! [`SINK_BASE`], and hands it its members' frames as it delivers them.

use bytes::Bytes;

use super::transport::Transport;
use super::Worker;
use crate::channels::{SharedSink, SINK_BASE};
use crate::conn_id::ConnId;
use crate::handler::Handler;

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Makes `conn` a member-capable id of this worker, delivering to `sink`.
    pub(super) fn attach_sink(&mut self, conn: ConnId, sink: SharedSink) {
        if self.ids.contains_key(&conn) {
            return;
        }
        let key = SINK_BASE + self.sinks.insert((conn, sink));
        self.ids.insert(conn, key);
    }

    /// Takes the sink `conn` out of every channel and forgets it.
    pub(super) fn detach_sink(&mut self, conn: ConnId) {
        self.deliver_publishes();
        let Some(&key) = self.ids.get(&conn) else { return };
        if key < SINK_BASE {
            return;
        }
        self.ids.remove(&conn);
        self.leave_channels(key);
        self.sinks.try_remove(key - SINK_BASE);
    }

    /// A push to a sink's id goes to the sink; a full sink is detached.
    pub(super) fn push_to_sink(&mut self, key: usize, frame: &Bytes) {
        let Some((id, sink)) = self.sinks.get(key - SINK_BASE) else { return };
        if !sink.deliver(frame) {
            let id = *id;
            self.sink_dropped(id);
        }
    }

    /// A sink refused a frame, or its id was disconnected: it is detached
    /// and told (its owner closes the session), as a socket that cannot
    /// keep up is closed.
    pub(super) fn sink_dropped(&mut self, conn: ConnId) {
        let Some(&key) = self.ids.get(&conn) else { return };
        let sink = self.sinks.get(key.wrapping_sub(SINK_BASE)).map(|(_, sink)| sink.clone());
        self.detach_sink(conn);
        if let Some(sink) = sink {
            sink.dropped();
        }
    }
}
