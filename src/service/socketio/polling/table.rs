//! The polling sessions of the server, found by sid from any worker.
//!
//! Sessions are spread over [`SHARDS`] maps by a hash of their sid, each
//! behind its own lock, held only to find, add or remove a session: a poll,
//! a post and every delivery lock the session itself, never the table.
//! The table is bounded (its limit is the server's connection limit, and
//! each session also holds one slot of that budget through its sink), and
//! one sweep thread, running while sessions exist, ends polls held too long
//! and closes sessions that stopped polling.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;

use super::super::heartbeat::Heartbeat;
use super::session::PollSession;

/// Maps the sessions are spread over.
const SHARDS: usize = 16;

/// One shard of the table: sessions by sid.
type Shard = Mutex<HashMap<Box<str>, Arc<PollSession>>>;

/// Why a session was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the polling session table is full")]
pub(crate) struct TableFull;

/// The timings the sweep enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepTimes {
    /// A poll held this long is answered with a noop.
    pub(crate) hold: Duration,
    /// A session with no poll held and no socket this long is closed
    /// (pingInterval + pingTimeout).
    pub(crate) silence: Duration,
}

/// Every polling session, by sid.
pub(crate) struct SessionTable {
    shards: Box<[Shard]>,
    count: AtomicUsize,
    sweeping: AtomicBool,
    /// Sessions closed away from the service's hooks (expired, overflowed):
    /// their id and core channels, for the service to forget in the
    /// sequencer at its next Socket.IO request.
    ended: Mutex<Vec<(ConnId, Vec<String>)>>,
    room_app: String,
    heartbeat: Heartbeat,
}

impl SessionTable {
    /// An empty table; sessions' channels are named in `room_app`.
    pub(crate) fn new(room_app: &str, heartbeat: Heartbeat) -> SessionTable {
        SessionTable {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
            ended: Mutex::new(Vec::new()),
            room_app: room_app.to_owned(),
            heartbeat,
        }
    }

    fn shard(&self, sid: &str) -> &Shard {
        let mut hasher = DefaultHasher::new();
        sid.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % SHARDS]
    }

    /// Adds `session`, unless `limit` sessions exist already.
    pub(crate) fn insert(&self, session: Arc<PollSession>, limit: usize) -> Result<(), TableFull> {
        if self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).is_err() {
            return Err(TableFull);
        }
        self.shard(session.sid()).lock().insert(session.sid().into(), session);
        Ok(())
    }

    /// The session `sid`, if open.
    pub(crate) fn get(&self, sid: &str) -> Option<Arc<PollSession>> {
        self.shard(sid).lock().get(sid).cloned()
    }

    /// Sessions in the table.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Closes `session` and takes it out of the table: `Some` with its core
    /// channels the first time.
    pub(crate) fn end(&self, session: &PollSession) -> Option<Vec<String>> {
        let channels = session.close(&self.room_app)?;
        if self.shard(session.sid()).lock().remove(session.sid()).is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        self.heartbeat.closed();
        Some(channels)
    }

    /// The sessions ended by the sweep since the last call.
    pub(crate) fn take_ended(&self) -> Vec<(ConnId, Vec<String>)> {
        std::mem::take(&mut *self.ended.lock())
    }

    /// Starts the sweep thread unless it runs; it stops once the table is
    /// empty (the next session starts it again).
    pub(crate) fn sweep_in_background(self: &Arc<Self>, server: &ServerHandle, times: SweepTimes) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let (table, server) = (Arc::clone(self), server.clone());
        let spawned = std::thread::Builder::new().name("fanout-sio-poll".into()).spawn(move || {
            let tick = (times.hold / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
            loop {
                std::thread::sleep(tick);
                table.sweep(times);
                if server.is_shutting_down() || table.len() == 0 {
                    table.sweeping.store(false, Ordering::Release);
                    // A session added since the check would find the flag
                    // still set: look once more before leaving.
                    if table.len() == 0 || table.sweeping.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            self.sweeping.store(false, Ordering::Release);
            log::error!("cannot start the Socket.IO polling sweep: {e}");
        }
    }

    /// One pass: held polls past `hold` end with a noop; silent sessions
    /// close.
    pub(crate) fn sweep(&self, times: SweepTimes) {
        for shard in self.shards.iter() {
            let sessions: Vec<Arc<PollSession>> = shard.lock().values().cloned().collect();
            for session in sessions {
                session.expire_held(times.hold);
                if session.is_silent_for(times.silence) {
                    if let Some(channels) = self.end(&session) {
                        log::debug!("Socket.IO polling session {} expired", session.sid());
                        if let Some(conn) = session.conn() {
                            self.ended.lock().push((conn, channels));
                        }
                    }
                }
            }
        }
    }
}
