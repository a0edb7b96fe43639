//! `--plot FILE.svg`: latency by percentile, drawn as plain SVG. The x axis is in "nines"
//! (-log10(1 - p)), so 90%, 99%, 99.9% … are evenly spaced and the tail is as visible as the
//! median, which is what a latency plot is for.

use std::fmt::Write as _;

use crate::hist::Hist;

const W: f64 = 860.0;
const H: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// 99.999%: five nines.
const MAX_NINES: f64 = 5.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One line on the plot.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Values in nanoseconds.
    pub hist: &'a Hist,
}

/// Renders the series as a standalone SVG document titled `title`.
pub fn render(title: &str, series: &[Series<'_>]) -> String {
    let points: Vec<Vec<(f64, f64)>> = series.iter().map(|s| curve(s.hist)).collect();
    let max_ms = points.iter().flatten().map(|p| p.1).fold(0.0, f64::max);
    let y_top = nice_ceiling(max_ms);
    let x = |nines: f64| LEFT + (W - LEFT - RIGHT) * nines / MAX_NINES;
    let y = |ms: f64| H - BOTTOM - (H - TOP - BOTTOM) * ms / y_top;
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#, W / 2.0, escape(title));
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let xi = x(i as f64);
        let _ = writeln!(s, r##"<line x1="{xi:.1}" y1="{TOP}" x2="{xi:.1}" y2="{:.1}" stroke="#ddd"/>"##, H - BOTTOM);
        let _ = writeln!(s, r#"<text x="{xi:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#, H - BOTTOM + 18.0);
    }
    for i in 0..=5 {
        let v = y_top * i as f64 / 5.0;
        let yi = y(v);
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{yi:.1}" x2="{:.1}" y2="{yi:.1}" stroke="#ddd"/>"##, W - RIGHT);
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, yi + 4.0, fmt_ms(v));
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency (ms)</text>"#,
        H / 2.0,
        H / 2.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for (i, (serie, pts)) in series.iter().zip(&points).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(n, ms)| format!("{:.1},{:.1}", x(*n), y(*ms))).collect();
        if !path.is_empty() {
            let _ =
                writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, path.join(" "));
        }
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/>"#,
            LEFT + 12.0,
            LEFT + 36.0
        );
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, LEFT + 42.0, ly + 4.0, escape(&serie.label));
    }
    s.push_str("</svg>\n");
    s
}

/// (nines, milliseconds) points along the distribution, capped at five nines.
fn curve(h: &Hist) -> Vec<(f64, f64)> {
    if h.count() == 0 {
        return Vec::new();
    }
    let inner = h.inner();
    let mut pts = Vec::new();
    for v in inner.iter_quantiles(10) {
        let q = v.quantile_iterated_to();
        let nines = if q >= 1.0 { MAX_NINES } else { (-(1.0 - q).log10()).min(MAX_NINES) };
        pts.push((nines, inner.highest_equivalent(v.value_iterated_to()) as f64 / 1e6));
        if nines >= MAX_NINES {
            break;
        }
    }
    pts
}

/// A round axis maximum at or above `v` (1, 2 or 5 times a power of ten).
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * base).find(|c| *c >= v).unwrap_or(10.0 * base)
}

/// An axis label: no more digits than the magnitude needs.
pub fn fmt_ms(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `text` made safe inside SVG text and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every element opened is closed in order (a small well-formedness check).
    fn balanced(svg: &str) -> bool {
        let mut stack = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let end = match rest[i..].find('>') {
                Some(e) => i + e,
                None => return false,
            };
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop() != Some(name.to_string()) {
                    return false;
                }
            } else {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        stack.is_empty()
    }

    #[test]
    fn svg_is_well_formed_with_escaped_text() {
        let mut h = Hist::new();
        for i in 1..=100_000u64 {
            h.record(i * 100);
        }
        let svg = render("a <b> & \"c\"", &[Series { label: "delivery & more".into(), hist: &h }]);
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(balanced(&svg), "{svg}");
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;") && svg.contains("99.999%"));
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn empty_series_and_axis_rounding() {
        assert!(balanced(&render("empty", &[Series { label: "none".into(), hist: &Hist::new() }])));
        assert_eq!(nice_ceiling(0.37), 0.5);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
    }
}
