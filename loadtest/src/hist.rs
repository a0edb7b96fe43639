//! `Hist`: an HdrHistogram of nanosecond latencies that can be merged across threads and sent
//! between processes as JSON.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency tracked: one minute. Larger values are clamped, not dropped, so a stall
/// still shows up as the maximum.
pub const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds with 3 significant digits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "Vec<[u64; 2]>", into = "Vec<[u64; 2]>")]
pub struct Hist {
    h: Histogram<u64>,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist::new()
    }
}

impl Hist {
    /// An empty histogram covering 1 ns .. 60 s.
    pub fn new() -> Hist {
        // Bounds are constants that satisfy HdrHistogram's requirements, so this cannot fail.
        Hist { h: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds") }
    }

    /// Records one value (clamped into the tracked range).
    pub fn record(&mut self, ns: u64) {
        self.h.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Hist) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.h.add(&other.h);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The value at `quantile` (0.0..=1.0), in nanoseconds; 0 when empty.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.value_at_quantile(quantile)
        }
    }

    /// Largest value recorded (equivalent-range upper bound).
    pub fn max_ns(&self) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.highest_equivalent(self.h.max())
        }
    }

    /// Mean in nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        self.h.mean()
    }

    /// Standard deviation in nanoseconds.
    pub fn stdev_ns(&self) -> f64 {
        self.h.stdev()
    }

    /// Empties the histogram, keeping its memory.
    pub fn reset(&mut self) {
        self.h.reset();
    }

    /// The underlying histogram, for percentile iteration.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.h
    }
}

impl From<Vec<[u64; 2]>> for Hist {
    fn from(pairs: Vec<[u64; 2]>) -> Hist {
        let mut hist = Hist::new();
        for [value, count] in pairs {
            let _ = hist.h.record_n(value.clamp(1, MAX_NS), count);
        }
        hist
    }
}

impl From<Hist> for Vec<[u64; 2]> {
    fn from(hist: Hist) -> Vec<[u64; 2]> {
        // One pair per non-empty bucket: compact, and exact because each value re-records into
        // the same bucket on the other side.
        hist.h.iter_recorded().map(|v| [v.value_iterated_to(), v.count_at_value()]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_merge_and_survive_json() {
        let mut a = Hist::new();
        let mut b = Hist::new();
        for v in 1..=1000u64 {
            a.record(v * 1000);
        }
        b.record(5_000_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        let p50 = a.quantile_ns(0.5);
        assert!((495_000..=505_000).contains(&p50), "{p50}");
        assert!(a.max_ns() >= 5_000_000_000);
        let json = serde_json::to_string(&a).unwrap();
        let back: Hist = serde_json::from_str(&json).unwrap();
        assert_eq!(back.count(), a.count());
        assert_eq!(back.quantile_ns(0.99), a.quantile_ns(0.99));
        assert_eq!(back.max_ns(), a.max_ns());
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = Hist::new();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.count(), 2);
        assert!(h.max_ns() >= MAX_NS);
        assert_eq!(Hist::new().quantile_ns(0.99), 0);
    }
}
