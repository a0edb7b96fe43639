//! Counters the event-loop threads publish while running, read once a second for the progress
//! line. Threads update them every 100 ms, not per message, to keep atomics off the hot path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::hist::Hist;

/// Process-wide live counters shared by all threads.
#[derive(Default)]
pub struct Live {
    /// Connections currently open.
    pub open: AtomicI64,
    /// Connections that failed to open.
    pub failed: AtomicU64,
    /// Messages received (all phases).
    pub deliveries: AtomicU64,
    /// Latency values recorded since the progress printer last took them.
    pub interval: Mutex<Hist>,
}

impl Live {
    /// Takes a snapshot and the interval histogram (leaving it empty).
    pub fn snapshot(&self) -> Snapshot {
        let interval = match self.interval.lock() {
            Ok(mut h) => std::mem::take(&mut *h),
            Err(_) => Hist::new(),
        };
        Snapshot {
            open: self.open.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            deliveries: self.deliveries.load(Ordering::Relaxed),
            interval,
        }
    }

    /// Adds a thread's interval histogram.
    pub fn add_interval(&self, h: &Hist) {
        if h.count() > 0 {
            if let Ok(mut shared) = self.interval.lock() {
                shared.merge(h);
            }
        }
    }
}

/// One reading of the live counters; sent by `--processes` workers to the parent as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Connections open.
    pub open: i64,
    /// Connections that failed.
    pub failed: u64,
    /// Messages received so far.
    pub deliveries: u64,
    /// Latencies recorded since the previous snapshot.
    pub interval: Hist,
}
