//! `ProcSampler`: reads a figure of the server process (its VmRSS, its CPU time) at given
//! instants from a thread of its own, so a sample lands within a millisecond of a step's end or
//! of the measurement window's edges however the event loops and the progress line are
//! scheduled.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys;

/// Samples running in the background.
pub struct ProcSampler {
    handle: Option<JoinHandle<Vec<Option<u64>>>>,
}

impl ProcSampler {
    /// Calls `read(pid)` at each of `instants` (CLOCK_MONOTONIC ns, in order); with no pid,
    /// samples nothing.
    pub fn start(pid: Option<u32>, instants: Vec<u64>, read: fn(u32) -> io::Result<u64>) -> ProcSampler {
        let Some(pid) = pid else { return ProcSampler { handle: None } };
        let handle = std::thread::Builder::new()
            .name("loadtest-sampler".into())
            .spawn(move || {
                instants
                    .into_iter()
                    .map(|at| {
                        let now = sys::now_ns();
                        if at > now {
                            std::thread::sleep(Duration::from_nanos(at - now));
                        }
                        read(pid).ok()
                    })
                    .collect()
            })
            .ok();
        ProcSampler { handle }
    }

    /// The samples, in the order of the instants; `None` where reading failed (the process had
    /// gone) or no pid was given. Waits for instants still to come.
    pub fn finish(self, count: usize) -> Vec<Option<u64>> {
        let mut samples = self.handle.and_then(|h| h.join().ok()).unwrap_or_default();
        samples.resize(count, None);
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_own_memory_and_cpu_at_each_instant() {
        let now = sys::now_ns();
        let sampler = ProcSampler::start(Some(std::process::id()), vec![now, now + 20_000_000], sys::vm_rss_bytes);
        let samples = sampler.finish(2);
        assert!(sys::now_ns() >= now + 20_000_000, "waited for the last instant");
        assert!(samples.iter().all(|s| s.is_some_and(|b| b > 0)), "{samples:?}");
        assert_eq!(ProcSampler::start(None, vec![now], sys::vm_rss_bytes).finish(1), [None]);
        // Burn 50 ms of CPU between two CPU samples taken 100 ms apart.
        let now = sys::now_ns();
        let sampler = ProcSampler::start(Some(std::process::id()), vec![now, now + 100_000_000], sys::process_cpu_ns);
        while sys::now_ns() < now + 60_000_000 {
            std::hint::black_box(0u64);
        }
        let cpu = sampler.finish(2);
        let used = cpu[1].unwrap() - cpu[0].unwrap();
        assert!(used >= 30_000_000, "{used} ns of CPU counted for a 60 ms busy loop");
    }
}
