//! Closing connections whose login token expires: each connection opened
//! with a token that has an `exp` is closed at that second with
//! [`TOKEN_EXPIRED`] (the client reconnects with a fresh token).
//!
//! One thread, running only while some connection has an expiry: it sleeps
//! until the earliest one, never on a worker, and costs nothing per
//! message. A connection that closes first leaves the schedule at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;

/// The close code of a connection whose token expired (an application
/// code, 4000–4999: 4401 reads as HTTP's 401).
pub const TOKEN_EXPIRED: u16 = 4401;

#[derive(Default)]
struct Schedule {
    /// (expiry, connection), earliest first.
    due: BTreeSet<(u64, ConnId)>,
    /// A thread is running (it exits once `due` is empty).
    running: bool,
}

/// The schedule of token expiries.
#[derive(Default, Clone)]
pub(crate) struct TokenExpiry {
    inner: Arc<(Mutex<Schedule>, Condvar)>,
}

impl TokenExpiry {
    /// Closes `conn` at `expires_at` (seconds since 1970) unless it goes first.
    pub(crate) fn watch(&self, server: &ServerHandle, conn: ConnId, expires_at: u64) {
        let (schedule, wake) = &*self.inner;
        let mut schedule = schedule.lock();
        schedule.due.insert((expires_at, conn));
        if schedule.running {
            wake.notify_one();
            return;
        }
        let (this, server) = (self.clone(), server.clone());
        let spawned = std::thread::Builder::new().name("fanout-token-expiry".into()).spawn(move || this.run(&server));
        match spawned {
            Ok(_) => schedule.running = true,
            // Without the thread the token is still checked at every upgrade;
            // the next watch tries again.
            Err(e) => log::error!("cannot start the token expiry thread: {e}"),
        }
    }

    /// `conn` closed: no need to close it at its expiry.
    pub(crate) fn forget(&self, conn: ConnId, expires_at: u64) {
        self.inner.0.lock().due.remove(&(expires_at, conn));
    }

    fn run(&self, server: &ServerHandle) {
        let (schedule, wake) = &*self.inner;
        let mut guard = schedule.lock();
        loop {
            let Some(&(at, conn)) = guard.due.first() else {
                guard.running = false;
                return;
            };
            let now_ms = crate::history::store::wall_ms();
            let at_ms = at.saturating_mul(1000);
            if at_ms > now_ms {
                wake.wait_for(&mut guard, Duration::from_millis(at_ms - now_ms));
                continue;
            }
            guard.due.pop_first();
            drop(guard);
            server.disconnect(conn, TOKEN_EXPIRED, "token expired");
            guard = schedule.lock();
        }
    }
}
