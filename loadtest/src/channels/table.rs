//! The human-readable table of a `channels` run (`--json` prints the same data).

use std::fmt::Write as _;

use crate::channels::plan::Via;
use crate::channels::report::ChannelsReport;
use crate::report::Percentiles;

const MIB: f64 = 1048576.0;

impl ChannelsReport {
    /// A header, the subscriptions, one line per step, then the API's answers, the search's
    /// verdict, the server's memory and the client's load.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let via = match self.via {
            Via::Api => format!("the HTTP API ({} connections)", self.publishers),
            Via::ClientEvents => format!("client events ({} publishing connections)", self.publishers),
        };
        let sub = &self.subscriptions;
        let _ = writeln!(
            s,
            "loadtest channels against {}: {} subscribers on {} channels, {} B events via {via}, {}",
            self.url, sub.requested, self.channels, self.size, self.mode
        );
        if self.split {
            let subscribers = if self.subscriber_urls.is_empty() { &self.url } else { &self.subscriber_urls.join(" ") };
            let api = self.api_url.as_deref().map(|a| format!("api {a}  ")).unwrap_or_default();
            let _ = writeln!(s, "servers       {api}subscribers {subscribers}");
        }
        let c = &self.connections;
        let _ = writeln!(
            s,
            "connections   requested {}  opened {}  subscribed {}  counted {} ({}..{} per channel)  open at end {}",
            c.requested, c.opened, sub.subscribed, sub.counted, sub.per_channel_min, sub.per_channel_max, c.open_at_end
        );
        crate::table::connection_failures(&mut s, c);
        let _ = writeln!(
            s,
            "{:<24}{:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "count"
        );
        row(&mut s, "  handshake", &self.handshake_ms);
        row(&mut s, "  subscribe", &sub.subscribe_ms);
        if let Some(api) = &self.api {
            row(&mut s, "  api answer", &api.latency_ms);
            row(&mut s, "  api connect", &api.connect_ms);
        }
        if self.client.send_lag_ms.count > 0 {
            row(&mut s, "  client send lag", &self.client.send_lag_ms);
        }
        let _ = writeln!(
            s,
            "{:>4} {:>9} {:>6} {:>9} {:>9} {:>10} {:>10} {:>6} {:>5} {:>5} {:>13} {:>6} {:>8} {:>8} {:>8} {:>8} {:>5}",
            "step",
            "role",
            "errors",
            "events/s",
            "sent",
            "expected",
            "received",
            "lost",
            "dup",
            "reord",
            "deliveries/s",
            "%offer",
            "p50 ms",
            "p99 ms",
            "max ms",
            "RSS MiB",
            "ok"
        );
        for st in &self.steps {
            let ms = |v: f64| if st.latency_ms.count > 0 { format!("{v:.3}") } else { "-".into() };
            let rss = st.server_rss_bytes.map_or_else(|| "-".to_string(), |b| format!("{:.1}", b as f64 / MIB));
            let _ = writeln!(
                s,
                "{:>4} {:>9} {:>6} {:>9.1} {:>9} {:>10} {:>10} {:>6} {:>5} {:>5} {:>13.0} {:>6.1} {:>8} {:>8} {:>8} {:>8} {:>5}",
                st.step,
                st.role,
                st.errors,
                st.rate,
                st.sent,
                st.expected,
                st.received,
                st.lost,
                st.duplicates,
                st.reordered,
                st.deliveries_per_sec,
                st.pct_of_offered,
                ms(st.latency_ms.p50),
                ms(st.latency_ms.p99),
                ms(st.latency_ms.max),
                rss,
                if st.sustained { "yes" } else { "no" }
            );
        }
        if let Some(api) = &self.api {
            let answers: Vec<String> = api.answers.iter().map(|(k, v)| format!("{k} x {v}")).collect();
            let _ = writeln!(
                s,
                "api answers   {}  unanswered {}  reconnects {} ({} after the server closed the connection, {} \
                 connects timed out)",
                if answers.is_empty() { "none".into() } else { answers.join(", ") },
                api.unanswered,
                api.reconnects,
                api.closed_by_server,
                api.connect_timeouts
            );
        }
        if !self.pusher_errors.is_empty() {
            let errors: Vec<String> = self.pusher_errors.iter().map(|(k, v)| format!("{k} x {v}")).collect();
            let _ = writeln!(s, "pusher errors {}", errors.join(", "));
        }
        if let Some(sat) = &self.saturation {
            let best = match (sat.sustained_rate, sat.sustained_deliveries_per_sec) {
                (Some(r), Some(d)) => format!("{r:.1} events/s ({d:.0} deliveries/s)"),
                _ => "none of the rates tried".into(),
            };
            let p99 = sat.half_load_p99_ms.map_or_else(|| "no samples".to_string(), |v| format!("{v:.3} ms"));
            let _ = writeln!(
                s,
                "saturation    highest sustained {best}; at half load ({:.1} events/s) p99 {p99}",
                sat.half_load_rate
            );
        }
        if let Some(m) = &self.server {
            let mib = |b: Option<u64>| b.map_or_else(|| "-".to_string(), |b| format!("{:.1} MiB", b as f64 / MIB));
            let per = m.rss_per_subscribed_connection_bytes.map_or_else(|| "-".to_string(), |b| format!("{b:.0} B"));
            let _ = writeln!(
                s,
                "server pid {}  RSS before {}  subscribed {}  per subscribed connection {per}",
                m.pid,
                mib(Some(m.rss_before_bytes)),
                mib(m.rss_subscribed_bytes)
            );
            if let Some(cpu) = m.cpu_percent_while_measuring {
                let per = m.cpu_ns_per_delivery.map_or_else(String::new, |ns| format!("  {ns:.0} ns per delivery"));
                let _ = writeln!(s, "server CPU    {cpu:.0}% of a core while measuring{per}");
            }
        }
        crate::table::client_and_warnings(&mut s, &self.client, &self.warnings);
        s
    }
}

fn row(s: &mut String, name: &str, p: &Percentiles) {
    if p.count == 0 {
        let _ = writeln!(s, "{name:<24}{:>9}", "no samples");
        return;
    }
    let _ = writeln!(
        s,
        "{name:<24}{:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
        p.p50, p.p90, p.p99, p.p999, p.max, p.count
    );
}
