//! The human-readable table printed at the end of a run (`--json` prints the same data).

use std::fmt::Write as _;

use crate::header::Payload;
use crate::report::{Client, Connections, Percentiles, Report};

impl Report {
    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let c = &self.connections;
        let _ =
            writeln!(s, "loadtest {} against {}  ({:.1} s measured)", self.scenario, self.url, self.measure_seconds);
        let _ = writeln!(
            s,
            "connections   requested {}  opened {}  open at measure {}  open at end {}",
            c.requested, c.opened, c.open_at_measure, c.open_at_end
        );
        connection_failures(&mut s, c);
        if let Some(sio) = &self.socketio {
            sio.lines(&mut s);
        }
        let _ = writeln!(
            s,
            "{:<24}{:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "count"
        );
        let row = |s: &mut String, name: &str, p: &Percentiles| {
            if p.count == 0 {
                // Zeros would read as "instant"; nothing was measured.
                let _ = writeln!(s, "{name:<24}{:>9}", "no samples");
                return;
            }
            let _ = writeln!(
                s,
                "{name:<24}{:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
                p.p50, p.p90, p.p99, p.p999, p.max, p.count
            );
        };
        row(&mut s, "  handshake", &self.handshake_ms);
        if let Some(b) = &self.broadcast {
            row(&mut s, "  delivery", &b.latency_ms);
        }
        if let Some(e) = &self.echo {
            row(&mut s, "  round trip", &e.rtt_ms);
        }
        if self.client.send_lag_ms.count > 0 {
            row(&mut s, "  client send lag", &self.client.send_lag_ms);
        }
        row(&mut s, "  client read delay", &self.client.read_delay_ms);
        if let Some(b) = &self.broadcast {
            let json = if b.payload == Payload::Json { " (json)" } else { "" };
            let _ = writeln!(
                s,
                "broadcast     {} publishers ({} active) x {} B{json} at {} msg/s",
                b.publishers, b.publishers_active, b.size, b.rate
            );
            if let Some(url) = &b.publish_url {
                let _ = writeln!(
                    s,
                    "  publishers on {url}, receivers on {}  (messages reaching publishers, not counted: {})",
                    self.url,
                    b.received_by_publishers.unwrap_or(0)
                );
            }
            let _ = writeln!(
                s,
                "  sent {}  unsent {}  receivers {}  expected {}  received {}",
                b.sent, b.unsent, b.receivers, b.expected, b.received
            );
            let _ = writeln!(
                s,
                "  lost (not received by the end of --drain) {}  duplicated {}  reordered {}  other {}",
                b.lost, b.duplicates, b.reordered, b.other
            );
            let _ = writeln!(s, "  deliveries/s {:.0}", b.deliveries_per_sec);
        }
        if let Some(e) = &self.echo {
            let mode = match e.rate {
                Some(r) => format!("open loop at {r} msg/s"),
                None => "closed loop".to_string(),
            };
            let _ = writeln!(
                s,
                "echo          {} B, {mode}  sent {}  unsent {}  round trips {}  unanswered {}  round trips/s {:.0}",
                e.size, e.sent, e.unsent, e.round_trips, e.unanswered, e.round_trips_per_sec
            );
        }
        if let Some(m) = &self.server {
            let _ = writeln!(
                s,
                "server pid {}  RSS before {:.1} MiB  after {:.1} MiB  per connection {:.0} B",
                m.pid,
                m.rss_before_bytes as f64 / 1048576.0,
                m.rss_after_bytes as f64 / 1048576.0,
                m.rss_per_connection_bytes
            );
            if let Some(cpu) = m.cpu_percent_while_measuring {
                let per = m.cpu_ns_per_delivery.map_or_else(String::new, |ns| format!("  {ns:.0} ns per delivery"));
                let _ = writeln!(s, "server CPU    {cpu:.0}% of a core while measuring{per}");
            }
        }
        client_and_warnings(&mut s, &self.client, &self.warnings);
        s
    }
}

/// The lines for connections that failed or ended early, by cause, and with `--deflate` how many
/// agreed to compression.
pub(crate) fn connection_failures(s: &mut String, c: &Connections) {
    for (cause, n) in &c.failures {
        let _ = writeln!(s, "  failed      {n:>8}  {cause}");
    }
    for (cause, n) in &c.ended_early {
        let _ = writeln!(s, "  ended early {n:>8}  {cause}");
    }
    deflate_line(s, c);
}

/// `--deflate`: "permessage-deflate agreed on N of M connections", and what arrived compressed.
pub(crate) fn deflate_line(s: &mut String, c: &Connections) {
    let Some(d) = &c.permessage_deflate else { return };
    let _ = write!(s, "  permessage-deflate agreed on {} of {} connections", d.agreed, c.opened);
    if d.compressed_messages > 0 {
        let _ = write!(
            s,
            "; {} messages arrived compressed, {:.1}:1 ({:.0} B inflated from {:.0} B on average)",
            d.compressed_messages,
            d.ratio(),
            d.inflated_bytes as f64 / d.compressed_messages as f64,
            d.compressed_bytes as f64 / d.compressed_messages as f64
        );
    }
    let _ = writeln!(s);
}

/// The client's own CPU line and the warnings that end every scenario's table.
pub(crate) fn client_and_warnings(s: &mut String, cl: &Client, warnings: &[String]) {
    let _ = writeln!(
        s,
        "client        {} process(es), {} thread(s), CPU {:.0}% of capacity, busiest thread {:.0}%",
        cl.processes, cl.threads, cl.cpu_percent, cl.busiest_thread_percent
    );
    for w in warnings {
        let _ = writeln!(s, "WARNING: {w}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;
    use crate::plan::Plan;
    use crate::report::Report;
    use crate::stats::Partial;

    fn report(args: &[&str], p: &Partial) -> Report {
        let cli = Cli::try_parse_from(["loadtest"].iter().chain(args)).unwrap();
        Report::new(&Plan::new(&cli.scenario, 1_000_000_000).unwrap(), p, None)
    }

    #[test]
    fn deflate_says_on_how_many_connections_it_was_agreed() {
        let mut p = Partial { attempted: 10, opened: 10, deflate_agreed: 7, ..Default::default() };
        (p.compressed_messages, p.compressed_bytes, p.inflated_bytes) = (100, 25_000, 100_000);
        let r = report(&["broadcast", "-c", "10", "--deflate", "--payload", "json", "--size", "1000"], &p);
        let table = r.to_table();
        assert!(
            table.contains(
                "permessage-deflate agreed on 7 of 10 connections; 100 messages arrived compressed, 4.0:1 \
                 (1000 B inflated from 250 B on average)"
            ),
            "{table}"
        );
        assert!(table.contains("x 1000 B (json) at"), "{table}");
        assert!(r.warnings.iter().any(|w| w.contains("did not agree to permessage-deflate on 3 of 10")));
        let json = r.to_json();
        assert!(json.contains("\"not_compressed\": 3") && json.contains("\"payload\": \"json\""), "{json}");
        let plain = report(&["broadcast", "-c", "10"], &Partial { opened: 10, ..Default::default() });
        assert!(!plain.to_table().contains("permessage-deflate") && !plain.to_json().contains("deflate"));
        assert!(plain.to_json().contains("\"payload\": \"padding\""));
    }
}
