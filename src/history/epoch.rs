//! Epochs: short strings that name one stream of a channel. Two streams
//! must never share one, within a run or across restarts, or a client would
//! take offsets of one for offsets of the other: each is a hash of a seed
//! drawn at start (time, process id) and a counter.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Hands out epochs, each different from the ones before.
#[derive(Debug, Clone)]
pub struct EpochSource {
    seed: u64,
    count: u64,
}

impl EpochSource {
    /// A source seeded from the clock and the process id: a restarted
    /// server never reuses the epochs of the run before.
    pub fn from_clock() -> EpochSource {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        EpochSource::seeded(nanos ^ (u64::from(std::process::id()) << 40))
    }

    /// A source whose epochs follow from `seed` (the same seed, the same
    /// epochs: for tests, and for a store that keeps its seed on disk).
    pub fn seeded(seed: u64) -> EpochSource {
        EpochSource { seed, count: 0 }
    }

    /// The next epoch: 12 lowercase hex digits.
    pub fn next_epoch(&mut self) -> Arc<str> {
        let epoch = self.peek();
        self.count += 1;
        epoch
    }

    /// The epoch [`EpochSource::next_epoch`] will give next.
    pub fn peek(&self) -> Arc<str> {
        let digest =
            Sha256::new().chain_update(self.seed.to_le_bytes()).chain_update(self.count.to_le_bytes()).finalize();
        Arc::from(hex::encode(&digest[..6]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_differ_within_a_source_and_between_seeds() {
        let mut a = EpochSource::seeded(1);
        let first = a.next_epoch();
        assert_eq!(first.len(), 12);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a.peek(), a.peek(), "peeking takes nothing");
        let peeked = a.peek();
        assert_eq!(a.next_epoch(), peeked);
        assert_ne!(peeked, first);
        assert_eq!(EpochSource::seeded(1).next_epoch(), first, "a seed gives the same epochs");
        assert_ne!(EpochSource::seeded(2).next_epoch(), first);
    }
}
