//! `--hgrm FILE`: the latency distribution in HdrHistogram's percentile-distribution text format
//! (values in milliseconds), which HdrHistogram's plotter and other tools read.

use std::fmt::Write as _;

use crate::hist::Hist;

/// Percentile ticks per halving of the distance to 100%, as HdrHistogram's own output uses.
const TICKS_PER_HALF: u32 = 5;

/// Renders `h` (nanoseconds) as a `.hgrm` percentile distribution in milliseconds.
pub fn render(h: &Hist) -> String {
    let inner = h.inner();
    let mut out = String::new();
    let _ = writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if h.count() > 0 {
        let mut last_total = 0;
        for v in inner.iter_quantiles(TICKS_PER_HALF) {
            let q = v.quantile_iterated_to();
            let value = inner.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
            let total = last_total + v.count_since_last_iteration();
            last_total = total;
            if q < 1.0 {
                let _ = writeln!(out, "{value:>12.3} {q:>14.12} {total:>10} {:>14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{value:>12.3} {q:>14.12} {total:>10}");
            }
        }
    }
    let _ = writeln!(out, "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]", h.mean_ns() / 1e6, h.stdev_ns() / 1e6);
    let _ = writeln!(out, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max_ns() as f64 / 1e6, h.count());
    let _ = writeln!(out, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", inner.buckets(), sub_buckets(inner.sigfig()));
    out
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits: the power of two at or above
/// 2 × 10^sigfig (2048 for 3 digits).
fn sub_buckets(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_has_header_rows_and_footer() {
        let mut h = Hist::new();
        for i in 1..=10_000u64 {
            h.record(i * 1_000); // 1 µs .. 10 ms
        }
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<f64>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert!(rows.len() > 20);
        assert!(rows.windows(2).all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]), "monotone");
        let last = rows.last().unwrap();
        assert_eq!((last[1], last[2]), (1.0, 10_000.0));
        assert!((last[0] - 10.0).abs() < 0.02, "max ~10 ms, got {}", last[0]);
        assert!(text.contains("#[Max     =") && text.contains("Total count    =        10000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn empty_histogram_still_renders() {
        assert!(render(&Hist::new()).contains("Total count    =            0]"));
    }
}
