//! The human-readable table of an overload run (`--json` prints the same data).

use std::fmt::Write as _;

use crate::overload_report::OverloadReport;

impl OverloadReport {
    /// One line per step under a header saying what was offered and how the capacity was found.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let c = &self.connections;
        let _ = writeln!(
            s,
            "loadtest overload against {}: {} publisher(s) x {} B, steps of {:.1} s",
            self.url, self.publishers, self.size, self.step_seconds
        );
        let _ = writeln!(
            s,
            "connections   requested {}  opened {}  counted {}  still open at the end {}",
            c.requested, c.opened, self.counted_connections, self.surviving_connections
        );
        for (cause, n) in &c.failures {
            let _ = writeln!(s, "  failed      {n:>8}  {cause}");
        }
        crate::table::deflate_line(&mut s, c);
        for (cause, n) in &self.closed_before_steps {
            let _ = writeln!(s, "  closed during the probe {n:>8}  {cause}");
        }
        let cap = &self.capacity;
        let _ =
            writeln!(s, "capacity      {:.0} msgs/s ({:.0} deliveries/s)", cap.msgs_per_sec, cap.deliveries_per_sec);
        let _ = writeln!(s, "  found by    {}", cap.how);
        let _ = writeln!(
            s,
            "{:>4} {:>5} {:>11} {:>13} {:>11} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>5} {:>5}",
            "step",
            "x",
            "offered/s",
            "deliveries/s",
            "msgs/s",
            "%peak",
            "p50 ms",
            "p99 ms",
            "max ms",
            "RSS MiB",
            "closed",
            "lost",
            "dup",
            "reord"
        );
        for st in &self.steps {
            let ms = |v: Option<f64>| v.map_or_else(|| "no samples".to_string(), |v| format!("{v:.3}"));
            let rss = st.server_rss_bytes.map_or_else(|| "-".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0));
            let _ = writeln!(
                s,
                "{:>4} {:>5} {:>11.0} {:>13.0} {:>11.0} {:>6.1} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>5} {:>5}",
                st.step,
                st.multiplier,
                st.offered_msgs_per_sec,
                st.delivered_deliveries_per_sec,
                st.delivered_msgs_per_sec,
                st.delivered_pct_of_peak,
                ms(st.p50_ms),
                ms(st.p99_ms),
                ms(st.max_ms),
                rss,
                st.closed,
                st.lost,
                st.duplicates,
                st.reordered
            );
        }
        for st in self.steps.iter().filter(|st| st.closed > 0) {
            let codes: Vec<String> = st.close_codes.iter().map(|(k, v)| format!("{v} x {k}")).collect();
            let _ = writeln!(s, "  step {} closes: {}", st.step, codes.join(", "));
        }
        crate::table::client_and_warnings(&mut s, &self.client, &self.warnings);
        s
    }
}
