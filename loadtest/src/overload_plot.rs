//! `--plot FILE.svg` for `overload`: four small panels sharing the x axis (offered load as a
//! multiple of the capacity): delivered rate against offered, p99 delivery latency, server RSS,
//! and connections the server closed. Plain SVG, like the latency plot.

use std::fmt::Write as _;

use crate::overload_report::OverloadReport;
use crate::plot::{escape, fmt_ms, nice_ceiling};

const W: f64 = 1000.0;
const H: f64 = 640.0;
const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 220.0;
/// Top-left corners of the four panels.
const ORIGINS: [(f64, f64); 4] = [(90.0, 70.0), (570.0, 70.0), (90.0, 370.0), (570.0, 370.0)];

/// One line in a panel: label, colour, and a value per step (`None`: not measured).
struct Line {
    label: &'static str,
    color: &'static str,
    values: Vec<Option<f64>>,
}

/// Renders the report as a standalone SVG document.
pub fn render(r: &OverloadReport) -> String {
    let xs: Vec<f64> = r.steps.iter().map(|s| s.multiplier).collect();
    let col = |f: &dyn Fn(&crate::overload_report::Step) -> Option<f64>| r.steps.iter().map(f).collect::<Vec<_>>();
    let panels = [
        (
            "messages/s (delivered vs offered)",
            vec![
                Line { label: "delivered", color: "#1f77b4", values: col(&|s| Some(s.delivered_msgs_per_sec)) },
                Line { label: "offered", color: "#999999", values: col(&|s| Some(s.offered_msgs_per_sec)) },
            ],
        ),
        ("p99 delivery latency (ms)", vec![Line { label: "p99", color: "#d62728", values: col(&|s| s.p99_ms) }]),
        (
            "server RSS (MiB)",
            vec![Line {
                label: "RSS",
                color: "#2ca02c",
                values: col(&|s| s.server_rss_bytes.map(|b| b as f64 / 1048576.0)),
            }],
        ),
        (
            "connections closed by the server",
            vec![Line { label: "closed", color: "#9467bd", values: col(&|s| Some(s.closed as f64)) }],
        ),
    ];
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#);
    let title = format!(
        "loadtest overload: {} connections, capacity {:.0} msgs/s ({}), {}",
        r.counted_connections, r.capacity.msgs_per_sec, r.capacity.found_by, r.url
    );
    let _ =
        writeln!(s, r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#, W / 2.0, escape(&title));
    // The x axis runs from 0 to the largest multiplier rounded up to a half, ticked at each step.
    let x_max = (xs.iter().copied().fold(0.0, f64::max) * 2.0).ceil().max(1.0) / 2.0;
    for ((title, lines), origin) in panels.iter().zip(ORIGINS) {
        panel(&mut s, origin, title, &xs, x_max, lines);
    }
    s.push_str("</svg>\n");
    s
}

/// Draws one panel with its frame, grid, axis labels, lines and legend.
fn panel(s: &mut String, (x0, y0): (f64, f64), title: &str, xs: &[f64], x_max: f64, lines: &[Line]) {
    let y_max = nice_ceiling(lines.iter().flat_map(|l| l.values.iter().flatten()).copied().fold(0.0, f64::max));
    let x = |v: f64| x0 + PANEL_W * v / x_max;
    let y = |v: f64| y0 + PANEL_H - PANEL_H * v / y_max;
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        x0 + PANEL_W / 2.0,
        y0 - 10.0,
        escape(title)
    );
    for &xv in xs {
        let xi = x(xv);
        let _ = writeln!(s, r##"<line x1="{xi:.1}" y1="{y0}" x2="{xi:.1}" y2="{:.1}" stroke="#ddd"/>"##, y0 + PANEL_H);
        let _ = writeln!(s, r#"<text x="{xi:.1}" y="{:.1}" text-anchor="middle">{xv}x</text>"#, y0 + PANEL_H + 16.0);
    }
    for i in 0..=4 {
        let yv = y_max * f64::from(i) / 4.0;
        let yi = y(yv);
        let _ = writeln!(s, r##"<line x1="{x0}" y1="{yi:.1}" x2="{:.1}" y2="{yi:.1}" stroke="#ddd"/>"##, x0 + PANEL_W);
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, x0 - 6.0, yi + 4.0, fmt_ms(yv));
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">offered load (x capacity)</text>"#,
        x0 + PANEL_W / 2.0,
        y0 + PANEL_H + 34.0
    );
    let _ =
        writeln!(s, r##"<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>"##);
    for (n, line) in lines.iter().enumerate() {
        let points: Vec<String> =
            xs.iter().zip(&line.values).filter_map(|(xv, v)| v.map(|v| format!("{:.1},{:.1}", x(*xv), y(v)))).collect();
        if !points.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                line.color,
                points.join(" ")
            );
        }
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{}"/>"#, line.color);
        }
        let ly = y0 + 14.0 + 16.0 * n as f64;
        let _ = writeln!(s, r#"<text x="{:.1}" y="{ly:.1}" fill="{}">{}</text>"#, x0 + 8.0, line.color, line.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload_report::{Capacity, Step};
    use crate::report::{Client, Connections, Percentiles};

    fn step(n: usize, m: f64, p99: Option<f64>) -> Step {
        Step {
            step: n,
            multiplier: m,
            offered_msgs_per_sec: 1000.0 * m,
            scheduled: 0,
            sent: 0,
            unsent: 0,
            receivers: 10,
            delivered_deliveries_per_sec: 9000.0 * m,
            delivered_msgs_per_sec: 1000.0 * m.min(1.0),
            delivered_pct_of_peak: 100.0 * m.min(1.0),
            p50_ms: p99,
            p99_ms: p99,
            max_ms: p99,
            latency_samples: u64::from(p99.is_some()),
            server_rss_bytes: None,
            closed: u64::from(m > 1.0),
            close_codes: Default::default(),
            expected: 0,
            received: 0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
        }
    }

    fn report(steps: Vec<Step>) -> OverloadReport {
        let p = Percentiles { count: 0, mean: 0.0, p50: 0.0, p90: 0.0, p99: 0.0, p999: 0.0, max: 0.0 };
        OverloadReport {
            scenario: "overload".into(),
            url: "ws://h/<chat>".into(),
            connections: Connections {
                requested: 10,
                attempted: 10,
                opened: 10,
                open_at_measure: 10,
                open_at_end: 10,
                failures: Default::default(),
                ended_early: Default::default(),
                permessage_deflate: None,
            },
            publishers: 1,
            size: 64,
            step_seconds: 1.0,
            counted_connections: 10,
            surviving_connections: 9,
            capacity: Capacity {
                msgs_per_sec: 1000.0,
                deliveries_per_sec: 9000.0,
                found_by: "given".into(),
                how: "given".into(),
                probe_seconds: None,
                probe_receivers: None,
                probe_in_flight_per_publisher: None,
                probe_p99_ms: None,
            },
            peak_delivered_msgs_per_sec: 1000.0,
            closed_before_steps: Default::default(),
            server_pid: None,
            server_rss_before_bytes: None,
            steps,
            client: Client {
                processes: 1,
                threads: 1,
                cpu_percent: 0.0,
                busiest_thread_percent: 0.0,
                send_lag_ms: p.clone(),
                read_delay_ms: p,
            },
            warnings: Vec::new(),
        }
    }

    #[test]
    fn plot_is_well_formed_with_gaps_for_unmeasured_values() {
        let svg = render(&report(vec![step(1, 0.5, Some(1.0)), step(2, 1.0, None), step(3, 3.0, Some(80.0))]));
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4, "RSS was never sampled: no line for it");
        assert!(svg.contains("ws://h/&lt;chat&gt;") && svg.contains(">3x<") && svg.contains(">0.5x<"));
        // The p99 line skips the step without samples: two points, not three.
        let p99 = svg.lines().find(|l| l.contains("<polyline") && l.contains("#d62728")).expect("p99 line");
        assert_eq!(p99.matches(',').count(), 2, "{p99}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn table_says_no_samples_instead_of_zero() {
        let table = report(vec![step(1, 0.5, Some(1.0)), step(2, 1.0, None)]).to_table();
        let row = table.lines().find(|l| l.trim_start().starts_with("2 ")).expect("row of step 2");
        assert!(row.contains("no samples"), "{row}");
        assert!(!row.contains("0.000"), "{row}");
    }
}
