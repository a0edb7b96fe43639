//! `RssSampler`: reads a server's VmRSS at given instants from a thread of its own, so a sample
//! lands within a millisecond of a step's end however the event loops and the progress line are
//! scheduled.

use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys;

/// Samples running in the background.
pub struct RssSampler {
    handle: Option<JoinHandle<Vec<Option<u64>>>>,
}

impl RssSampler {
    /// Reads `/proc/PID/status` VmRSS of `pid` at each of `instants` (CLOCK_MONOTONIC ns, in
    /// order); with no pid, samples nothing.
    pub fn start(pid: Option<u32>, instants: Vec<u64>) -> RssSampler {
        let Some(pid) = pid else { return RssSampler { handle: None } };
        let handle = std::thread::Builder::new()
            .name("loadtest-rss".into())
            .spawn(move || {
                instants
                    .into_iter()
                    .map(|at| {
                        let now = sys::now_ns();
                        if at > now {
                            std::thread::sleep(Duration::from_nanos(at - now));
                        }
                        sys::vm_rss_bytes(pid).ok()
                    })
                    .collect()
            })
            .ok();
        RssSampler { handle }
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
    fn samples_own_memory_at_each_instant() {
        let now = sys::now_ns();
        let sampler = RssSampler::start(Some(std::process::id()), vec![now, now + 20_000_000]);
        let samples = sampler.finish(2);
        assert!(sys::now_ns() >= now + 20_000_000, "waited for the last instant");
        assert!(samples.iter().all(|s| s.is_some_and(|b| b > 0)), "{samples:?}");
        assert_eq!(RssSampler::start(None, vec![now]).finish(1), [None]);
    }
}
