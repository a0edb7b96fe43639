//! Which connections are open, readable from any thread.
//!
//! Workers own their connections outright; this registry only mirrors ids
//! and a status so that `exists`, `connections` and `push` can answer from
//! any thread. It is written on open, close and slow-consumer transitions,
//! never on the broadcast path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::conn_id::ConnId;

/// What the registry knows about one open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnStatus {
    /// Open, and its send queue is below its bound.
    Open,
    /// Open, but its send queue is full: frames for it are being dropped.
    Backlogged,
}

/// One worker's slice of the registry.
#[derive(Default)]
#[repr(align(128))]
struct WorkerEntry {
    conns: RwLock<HashMap<u64, ConnStatus>>,
    /// Sockets the worker holds in any phase (handshake, open, closing); the
    /// acceptor balances on this.
    sockets: AtomicUsize,
}

/// Open connections of every worker, plus the global connection budget.
pub(crate) struct Registry {
    workers: Box<[WorkerEntry]>,
    established: AtomicUsize,
    max_connections: usize,
}

impl Registry {
    /// A registry for `workers` workers admitting `max_connections` at once.
    pub(crate) fn new(workers: usize, max_connections: usize) -> Self {
        Registry {
            workers: (0..workers).map(|_| WorkerEntry::default()).collect(),
            established: AtomicUsize::new(0),
            max_connections,
        }
    }

    /// Takes one slot of the connection budget; false when it is exhausted.
    pub(crate) fn try_reserve(&self) -> bool {
        self.established
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_connections).then_some(n + 1))
            .is_ok()
    }

    /// Records a connection that took a budget slot as open.
    pub(crate) fn insert(&self, id: ConnId) {
        self.workers[id.worker()].conns.write().insert(id.as_u64(), ConnStatus::Open);
    }

    /// Forgets a connection and gives its budget slot back.
    pub(crate) fn remove(&self, id: ConnId) {
        if self.workers[id.worker()].conns.write().remove(&id.as_u64()).is_some() {
            self.established.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Forgets every connection of a worker whose thread has ended, giving
    /// their budget slots back: `exists`, `connections` and the counts must
    /// not report sockets that died with it.
    pub(crate) fn forget_worker(&self, worker: usize) {
        let Some(entry) = self.workers.get(worker) else { return };
        let forgotten = std::mem::take(&mut *entry.conns.write()).len();
        self.established.fetch_sub(forgotten, Ordering::AcqRel);
    }

    /// Updates the slow-consumer status of an open connection.
    pub(crate) fn set_status(&self, id: ConnId, status: ConnStatus) {
        if let Some(entry) = self.workers[id.worker()].conns.write().get_mut(&id.as_u64()) {
            *entry = status;
        }
    }

    /// The status of `id`, or `None` when it is not open (or never was).
    pub(crate) fn status(&self, id: ConnId) -> Option<ConnStatus> {
        self.workers.get(id.worker())?.conns.read().get(&id.as_u64()).copied()
    }

    /// Open connections across all workers.
    pub(crate) fn count(&self) -> usize {
        self.established.load(Ordering::Acquire)
    }

    /// Open connections per worker.
    pub(crate) fn per_worker(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.conns.read().len()).collect()
    }

    /// Every open connection id, worker by worker.
    pub(crate) fn ids(&self) -> Vec<ConnId> {
        let mut ids = Vec::with_capacity(self.count());
        for worker in self.workers.iter() {
            ids.extend(worker.conns.read().keys().map(|&raw| ConnId::from_u64(raw)));
        }
        ids
    }

    /// Counts a socket handed to `worker` (any phase).
    pub(crate) fn socket_added(&self, worker: usize) {
        self.workers[worker].sockets.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a socket `worker` closed.
    pub(crate) fn socket_removed(&self, worker: usize) {
        self.workers[worker].sockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// The worker holding the fewest sockets among those `eligible` says
    /// are running; ties go to the lowest index at or after `start`, so
    /// equal loads rotate. `None` when no worker is eligible.
    pub(crate) fn least_loaded(&self, start: usize, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.workers.len();
        (0..n)
            .map(|i| (start + i) % n)
            .filter(|&w| eligible(w))
            .min_by_key(|&w| self.workers[w].sockets.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_the_limit_and_recovers() {
        let registry = Registry::new(2, 2);
        assert!(registry.try_reserve());
        assert!(registry.try_reserve());
        assert!(!registry.try_reserve());
        let id = ConnId::new(1, 1);
        registry.insert(id);
        registry.remove(id);
        assert!(registry.try_reserve());
    }

    #[test]
    fn status_follows_open_backlog_and_close() {
        let registry = Registry::new(2, 10);
        let id = ConnId::new(1, 5);
        assert_eq!(registry.status(id), None);
        assert!(registry.try_reserve());
        registry.insert(id);
        assert_eq!(registry.status(id), Some(ConnStatus::Open));
        registry.set_status(id, ConnStatus::Backlogged);
        assert_eq!(registry.status(id), Some(ConnStatus::Backlogged));
        assert_eq!(registry.ids(), vec![id]);
        registry.remove(id);
        assert_eq!(registry.status(id), None);
        assert_eq!(registry.count(), 0);
    }

    #[test]
    fn least_loaded_rotates_between_equal_workers() {
        let registry = Registry::new(3, 10);
        let any = |_| true;
        registry.socket_added(0);
        assert_eq!(registry.least_loaded(0, any), Some(1));
        registry.socket_added(1);
        assert_eq!(registry.least_loaded(0, any), Some(2));
        assert_eq!(registry.least_loaded(2, any), Some(2));
    }

    #[test]
    fn least_loaded_skips_workers_that_are_gone() {
        let registry = Registry::new(3, 10);
        registry.socket_added(0);
        registry.socket_added(0);
        assert_eq!(registry.least_loaded(0, |w| w == 0), Some(0));
        assert_eq!(registry.least_loaded(0, |_| false), None);
    }

    #[test]
    fn a_dead_workers_connections_are_forgotten_and_their_slots_freed() {
        let registry = Registry::new(2, 3);
        for id in [ConnId::new(0, 1), ConnId::new(1, 1), ConnId::new(1, 2)] {
            assert!(registry.try_reserve());
            registry.insert(id);
        }
        registry.forget_worker(1);
        assert_eq!(registry.ids(), vec![ConnId::new(0, 1)]);
        assert_eq!(registry.count(), 1);
        assert!(registry.try_reserve() && registry.try_reserve() && !registry.try_reserve());
    }

    #[test]
    fn unknown_worker_index_is_not_open() {
        let registry = Registry::new(1, 10);
        assert_eq!(registry.status(ConnId::new(7, 1)), None);
    }
}
