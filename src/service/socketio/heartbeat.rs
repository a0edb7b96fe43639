//! Engine.IO v4 heartbeats for every session at once.
//!
//! In v4 the server pings (`2`) and the client answers (`3`). Rather than a
//! timer per session, every session joins one channel
//! ([`names::heartbeat`]) and one thread publishes a single shared ping
//! frame there every ping interval: a worker gives it to its sessions as it
//! gives any publication, one shared chunk, no per-session encoding or
//! timer. The answer needs no bookkeeping either: a session that answers
//! sends a frame every interval, and one that stops is closed by the
//! worker's idle sweep (`--idle-timeout`), which already watches every
//! connection. Sessions are kept out of the WebSocket-level pings
//! (`Accept::without_broadcasts`), so a client library that answers those
//! by itself cannot keep a session alive that stopped answering Engine.IO's.
//!
//! The thread runs only while sessions exist, like the token expiry clock,
//! and each node pings its own sessions only (the ping never goes to the
//! cluster).

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::channels::Publication;
use crate::handle::{Prepared, ServerHandle};
use crate::Message;

use super::super::audience::SOCKETIO;
use super::handshake::Timing;
use super::{frames, names};

#[derive(Default)]
struct Beat {
    /// Open Engine.IO v4 sessions.
    sessions: usize,
    /// A thread is running (it exits once `sessions` is 0).
    running: bool,
}

/// The sessions' pinger.
#[derive(Default, Clone)]
pub(crate) struct Heartbeat {
    inner: Arc<(Mutex<Beat>, Condvar)>,
}

impl Heartbeat {
    /// A session opened (it joined the heartbeat channel): starts the
    /// thread if it is not running.
    pub(crate) fn opened(&self, server: &ServerHandle) {
        let (beat, _) = &*self.inner;
        let mut beat = beat.lock();
        beat.sessions += 1;
        if beat.running {
            return;
        }
        let (this, server) = (self.clone(), server.clone());
        let spawned = std::thread::Builder::new().name("fanout-sio-ping".into()).spawn(move || this.run(&server));
        match spawned {
            Ok(_) => beat.running = true,
            // Sessions then time out on the client side, which reconnects;
            // the next session to open tries again.
            Err(e) => log::error!("cannot start the Socket.IO heartbeat thread: {e}"),
        }
    }

    /// A session closed.
    pub(crate) fn closed(&self) {
        let (beat, wake) = &*self.inner;
        let mut beat = beat.lock();
        beat.sessions = beat.sessions.saturating_sub(1);
        if beat.sessions == 0 {
            wake.notify_one();
        }
    }

    /// Open sessions now.
    pub(crate) fn sessions(&self) -> usize {
        self.inner.0.lock().sessions
    }

    fn run(&self, server: &ServerHandle) {
        let interval = Timing::of(server.config()).ping_interval;
        let ping = Publication::new().with(SOCKETIO, &Prepared::new(&Message::text(frames::PING)));
        // Waiting for room in a full inbox is fine on this thread; waiting
        // past a quarter interval would make the pings irregular.
        let patience = interval / 4;
        let (beat, wake) = &*self.inner;
        let mut guard = beat.lock();
        loop {
            let due = Instant::now() + interval;
            while guard.sessions > 0 && !server.is_shutting_down() {
                if wake.wait_until(&mut guard, due).timed_out() {
                    break;
                }
            }
            if guard.sessions == 0 || server.is_shutting_down() {
                guard.running = false;
                return;
            }
            drop(guard);
            if let Err(e) = server.publish_on_this_node(names::heartbeat(), &ping, patience) {
                log::warn!("Socket.IO heartbeat skipped: {e}");
            }
            guard = beat.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_opens_and_closes_and_never_goes_below_zero() {
        let heartbeat = Heartbeat::default();
        heartbeat.closed();
        assert_eq!(heartbeat.sessions(), 0);
        {
            let mut beat = heartbeat.inner.0.lock();
            beat.sessions = 2;
        }
        heartbeat.closed();
        assert_eq!(heartbeat.sessions(), 1);
    }
}
