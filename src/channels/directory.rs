//! The process-wide view of channels: subscriptions per channel and per
//! worker. Workers write it when memberships change (never on the publish
//! path); publishers and the HTTP API read it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::ChannelChange;

/// Subscriptions per channel and worker; a channel with none is absent.
pub(crate) struct ChannelDirectory {
    workers: usize,
    map: RwLock<HashMap<Arc<str>, Box<[u32]>>>,
}

impl ChannelDirectory {
    /// A directory for `workers` workers.
    pub(crate) fn new(workers: usize) -> Self {
        ChannelDirectory { workers, map: RwLock::new(HashMap::new()) }
    }

    /// Counts one more subscription of `name` on `worker`; `Occupied` when
    /// the channel had none anywhere before.
    pub(crate) fn add(&self, name: &Arc<str>, worker: usize) -> Option<ChannelChange> {
        let mut map = self.map.write();
        let counts = map.entry(name.clone()).or_insert_with(|| vec![0; self.workers].into_boxed_slice());
        let was_empty = counts.iter().all(|&n| n == 0);
        if let Some(n) = counts.get_mut(worker) {
            *n += 1;
        }
        was_empty.then_some(ChannelChange::Occupied)
    }

    /// Counts one subscription fewer; `Vacated` when that was the last
    /// anywhere.
    pub(crate) fn remove(&self, name: &str, worker: usize) -> Option<ChannelChange> {
        let mut map = self.map.write();
        let counts = map.get_mut(name)?;
        if let Some(n) = counts.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
        if counts.iter().any(|&n| n > 0) {
            return None;
        }
        map.remove(name);
        Some(ChannelChange::Vacated)
    }

    /// Forgets every subscription of a worker whose thread ended; returns
    /// the channels that are now vacated.
    pub(crate) fn forget_worker(&self, worker: usize) -> Vec<Arc<str>> {
        let mut map = self.map.write();
        let mut vacated = Vec::new();
        map.retain(|name, counts| {
            if let Some(n) = counts.get_mut(worker) {
                *n = 0;
            }
            let keep = counts.iter().any(|&n| n > 0);
            if !keep {
                vacated.push(name.clone());
            }
            keep
        });
        vacated
    }

    /// Fills `out` with the workers that have subscribers of `name`.
    pub(crate) fn workers_with(&self, name: &str, out: &mut Vec<usize>) {
        out.clear();
        if let Some(counts) = self.map.read().get(name) {
            out.extend(counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(w, _)| w));
        }
    }

    /// Subscriptions of `name` over every worker (0 when unoccupied).
    pub(crate) fn subscriptions(&self, name: &str) -> usize {
        self.map.read().get(name).map_or(0, |c| c.iter().map(|&n| n as usize).sum())
    }

    /// Occupied channels whose name starts with `prefix`, with their
    /// subscription counts, sorted by name.
    pub(crate) fn channels(&self, prefix: &str) -> Vec<(String, usize)> {
        let map = self.map.read();
        let mut found: Vec<(String, usize)> = map
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, counts)| (name.to_string(), counts.iter().map(|&n| n as usize).sum()))
            .collect();
        found.sort_unstable();
        found
    }

    /// Subscriptions over every channel and worker.
    pub(crate) fn total_subscriptions(&self) -> usize {
        self.map.read().values().flat_map(|c| c.iter()).map(|&n| n as usize).sum()
    }

    /// Occupied channels in all.
    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_changes_once_across_workers() {
        let directory = ChannelDirectory::new(2);
        let name: Arc<str> = Arc::from("room");
        assert_eq!(directory.add(&name, 0), Some(ChannelChange::Occupied));
        assert_eq!(directory.add(&name, 1), None);
        assert_eq!(directory.add(&name, 1), None);
        assert_eq!(directory.subscriptions("room"), 3);
        let mut workers = Vec::new();
        directory.workers_with("room", &mut workers);
        assert_eq!(workers, vec![0, 1]);
        assert_eq!(directory.remove("room", 0), None);
        directory.workers_with("room", &mut workers);
        assert_eq!(workers, vec![1]);
        assert_eq!(directory.remove("room", 1), None);
        assert_eq!(directory.remove("room", 1), Some(ChannelChange::Vacated));
        assert_eq!(directory.len(), 0);
        assert_eq!(directory.remove("room", 1), None, "already gone");
    }

    #[test]
    fn listing_filters_by_prefix_and_sorts() {
        let directory = ChannelDirectory::new(1);
        for name in ["presence-b", "public", "presence-a", "presence-a"] {
            directory.add(&Arc::from(name), 0);
        }
        assert_eq!(directory.channels("presence-"), vec![("presence-a".into(), 2), ("presence-b".into(), 1)]);
        assert_eq!(directory.channels("").len(), 3);
    }

    #[test]
    fn a_dead_worker_takes_its_subscriptions_with_it() {
        let directory = ChannelDirectory::new(2);
        directory.add(&Arc::from("only-0"), 0);
        directory.add(&Arc::from("both"), 0);
        directory.add(&Arc::from("both"), 1);
        assert_eq!(directory.forget_worker(0), vec![Arc::<str>::from("only-0")]);
        assert_eq!(directory.subscriptions("both"), 1);
    }
}
