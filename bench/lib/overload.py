"""Scenario E (`loadtest overload`) for report.py: the goal fanout is held to, the per-step
figures as table cells, and the four-panel SVG (delivered deliveries/s, p99, server RSS and
connections closed against offered load, one line per server). Plain Python, stdlib only.

The goal (from the project issue): at 2x and 3x of capacity fanout still delivers at least 90%
of its peak, closes no client that reads, and its RSS stays flat. Here:
- "% of peak" is loadtest's `delivered_pct_of_peak`: deliveries received while a step ran over
  the best step's;
- "closes no client that reads": every loadtest connection reads as fast as its one client
  thread can, so *any* connection the server closed (1008 or otherwise, during the probe or a
  step) counts against the goal;
- "flat": the server's RSS at the end of every step above 1x exceeds its RSS at the end of the
  1x step by at most RSS_FLAT_PCT percent or RSS_FLAT_PER_CONN bytes per connection, whichever
  is larger. Queuing the excess of even one second of 2x load for every client would take
  far more than that (at capacity c msg/s and N receivers, c x N queue entries per second).

Usage as a script (to look at one run): python3 overload.py RESULT.json [OUT.svg]
"""

import html
import json
import math
import sys

PEAK_GOAL_PCT = 90.0
GOAL_MULTIPLIERS = (2.0, 3.0)
RSS_FLAT_PCT = 25.0
RSS_FLAT_PER_CONN = 1024  # bytes

# One colour per server, fanout first and darkest; others in a fixed order.
COLOURS = {
    "fanout": "#1b4f9c", "fanout-w2": "#6a9ad6", "bun": "#e07b00", "node-ws": "#2e8b57",
    "tokio-tungstenite": "#b22222", "picows": "#8a2be2", "websockets": "#8b6914", "swoole": "#555555",
}


def step_at(report, multiplier):
    for s in report.get("steps") or []:
        if abs(s["multiplier"] - multiplier) < 1e-9:
            return s
    return None


def closes(report):
    """Connections the server closed, over the probe and every step, by code or cause."""
    by = dict(report.get("closed_before_steps") or {})
    for s in report.get("steps") or []:
        for k, v in (s.get("close_codes") or {}).items():
            by[k] = by.get(k, 0) + v
    return sum(by.values()), by


def arrived_pct(step):
    """Share of the deliveries owed for this step's messages that had arrived when the run
    ended; below 100 the step's latency percentiles are over the early ones only."""
    expected = step.get("expected") or 0
    if not expected:
        return None
    return 100.0 * (expected - step.get("lost", 0)) / expected


def rss_flatness(report):
    """(flat, growth_bytes, allowed_bytes, base_bytes) against the 1x step, or None when the
    run has no 1x step or no RSS samples."""
    base_step = step_at(report, 1.0)
    if not base_step or base_step.get("server_rss_bytes") is None:
        return None
    base = base_step["server_rss_bytes"]
    later = [s["server_rss_bytes"] for s in report["steps"]
             if s["multiplier"] > 1.0 and s.get("server_rss_bytes") is not None]
    if not later:
        return None
    growth = max(later) - base
    allowed = max(base * RSS_FLAT_PCT / 100, RSS_FLAT_PER_CONN * report.get("counted_connections", 0))
    return growth <= allowed, growth, allowed, base


def goal(report):
    """(met, parts): met is True/False, or None when the run cannot tell; parts are
    (text, ok) pairs for the verdict line, ok True/False/None."""
    parts = []
    for m in GOAL_MULTIPLIERS:
        s = step_at(report, m)
        if s is None:
            parts.append((f"no {m:g}× step", None))
        else:
            eff = effective(report, s)
            parts.append((f"{s['delivered_pct_of_peak']:.0f}% of peak at {m:g}×"
                          + (f" ({eff:.1f}× its peak delivered rate)" if eff is not None else ""),
                          s["delivered_pct_of_peak"] >= PEAK_GOAL_PCT))
    n, by = closes(report)
    parts.append(("no connection closed" if n == 0 else
                  f"{n} connections closed (" + ", ".join(f"{k}: {v}" for k, v in sorted(by.items())) + ")",
                  n == 0))
    flat = rss_flatness(report)
    if flat is None:
        parts.append(("RSS not sampled at 1× and above", None))
    else:
        ok, growth, allowed, base = flat
        sign = "+" if growth >= 0 else "−"
        parts.append((f"RSS {fmt_bytes(base)} at 1×, at most {sign}{fmt_bytes(abs(growth))} above it later "
                      f"(flat: ≤ +{fmt_bytes(allowed)})", ok))
    oks = [ok for _, ok in parts]
    met = False if False in oks else None if None in oks else True
    return met, parts


# --- formatting ----------------------------------------------------------------------------------

def fmt_bytes(x):
    if x is None:
        return "–"
    if abs(x) >= 2**30:
        return f"{x / 2**30:.2f} GiB"
    if abs(x) >= 2**20:
        return f"{x / 2**20:.1f} MiB"
    if abs(x) >= 2**10:
        return f"{x / 2**10:.0f} KiB"
    return f"{x:.0f} B"


def fmt_num(x):
    if x is None:
        return "–"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{x:.3g}"


def fmt_ms(x):
    if x is None:
        return "–"
    if x >= 100_000:
        return f"{x / 1000:.0f} s"
    if x >= 1000:
        return f"{x / 1000:.3g} s"
    if x >= 100:
        return f"{x:.0f} ms"
    return f"{x:.3g} ms"


def effective(report, step):
    """Offered load over the best delivered rate of the run: how far past what the server
    actually delivered the step was (the multiplier is of the probed capacity, which can be
    lower or higher than that)."""
    peak = report.get("peak_delivered_msgs_per_sec") or 0
    return step["offered_msgs_per_sec"] / peak if peak > 0 else None


def step_rows(report):
    """Table rows for one server's steps."""
    rows = []
    for s in report.get("steps") or []:
        eff = effective(report, s)
        arrived = arrived_pct(s)
        p99 = s.get("p99_ms")
        if p99 is None:
            p99_txt = "none arrived"
        else:
            p99_txt = ("≥ " if arrived is not None and arrived < 99.95 else "") + fmt_ms(p99)
        codes = s.get("close_codes") or {}
        closed = str(s.get("closed", 0)) + (
            " (" + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())) + ")" if codes else "")
        rows.append([
            f"{s['multiplier']:g}×", fmt_num(s["offered_msgs_per_sec"]), "–" if eff is None else f"{eff:.2f}",
            fmt_num(s["delivered_deliveries_per_sec"]),
            f"{s['delivered_pct_of_peak']:.0f}%", fmt_ms(s.get("p50_ms")) if s.get("p50_ms") is not None else "–",
            p99_txt, fmt_bytes(s.get("server_rss_bytes")), closed, f"{s.get('unsent', 0):,}",
            "–" if arrived is None else f"{arrived:.1f}%",
        ])
    return rows


STEP_HEAD = ["offered", "offered msg/s", "offered ÷ peak delivered", "delivered deliveries/s", "% of peak", "p50", "p99",
             "server RSS at step end", "connections closed", "unsent", "arrived by the end"]


# --- the figure ----------------------------------------------------------------------------------

W, H = 1000, 720          # whole figure
PW, PH = 400, 230         # one panel's plotting area
MARGIN_L, MARGIN_T = 80, 90
GAP_X, GAP_Y = 100, 110


def _log_ticks(lo, hi):
    """Tick values (1-2-5 per decade when the range is short, decades otherwise)."""
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mult = (1, 2, 5) if d1 - d0 <= 3 else (1,)
    ticks = [m * 10 ** d for d in range(d0, d1 + 1) for m in mult]
    return [t for t in ticks if lo * 0.999 <= t <= hi * 1.001] or [lo, hi]


def _lin_ticks(lo, hi):
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    t, out = math.floor(lo / step) * step, []
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            out.append(t)
        t += step
    return out


def _panel(out, x0, y0, title, series, xs_all, log, yfmt, note=None):
    """One panel: series is [(name, [(x, y or None, open_marker)])]."""
    ys = [y for _, pts in series for _, y, _ in pts if y is not None and (y > 0 or not log)]
    if log:
        lo, hi = (min(ys), max(ys)) if ys else (1, 10)
        lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
        if hi <= lo:
            hi = lo * 10
        ticks = _log_ticks(lo, hi)
        fy = lambda v: y0 + PH - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * PH
    else:
        lo, hi = 0.0, max(ys + [1.0]) * 1.1
        ticks = _lin_ticks(lo, hi)
        hi = max(hi, ticks[-1])
        fy = lambda v: y0 + PH - (v - lo) / (hi - lo) * PH
    xlo, xhi = 0.0, max(xs_all + [3.0]) + 0.25
    fx = lambda v: x0 + (v - xlo) / (xhi - xlo) * PW
    out.append(f'<text x="{x0 + PW / 2}" y="{y0 - 12}" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{PW}" height="{PH}" fill="none" stroke="#888"/>')
    for t in ticks:
        y = fy(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PW}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{html.escape(yfmt(t))}</text>')
    for m in sorted(set(xs_all)):
        x = fx(m)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + PH}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + PH + 16}" text-anchor="middle" font-size="11">{m:g}×</text>')
    out.append(f'<text x="{x0 + PW / 2}" y="{y0 + PH + 34}" text-anchor="middle" font-size="11">'
               'offered load (× capacity)</text>')
    if note:
        out.append(f'<text x="{x0 + PW}" y="{y0 + PH + 52}" text-anchor="end" font-size="10" fill="#666">'
                   f'{html.escape(note)}</text>')
    for name, pts in series:
        colour = COLOURS.get(name, "#000")
        width = 3 if name == "fanout" else 1.6
        line = [(fx(x), fy(y)) for x, y, _ in pts if y is not None and (y > 0 or not log)]
        if len(line) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="{width}"/>')
        for x, y, hollow in pts:
            if y is None or (log and y <= 0):
                continue
            fill = "white" if hollow else colour
            out.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3.5" fill="{fill}" stroke="{colour}" '
                       f'stroke-width="1.5"><title>{html.escape(name)} {x:g}×: {html.escape(yfmt(y))}</title></circle>')
        for x, y, hollow in pts:
            if y is None and hollow:  # no value: a marker on the top edge
                out.append(f'<path d="M{fx(x) - 5:.1f},{y0 + 8} L{fx(x) + 5:.1f},{y0 + 8} L{fx(x):.1f},{y0:.1f} Z" '
                           f'fill="white" stroke="{colour}" stroke-width="1.5"><title>{html.escape(name)} {x:g}×: '
                           'none of this step\'s messages arrived before the run ended</title></path>')


def render_svg(runs, title, subtitle):
    """runs: [(server name, overload report dict)] in legend order. Returns the SVG text."""
    xs_all = sorted({s["multiplier"] for _, r in runs for s in r.get("steps") or []})
    delivered, p99, rss, closed = [], [], [], []
    for name, r in runs:
        steps = r.get("steps") or []
        delivered.append((name, [(s["multiplier"], s["delivered_deliveries_per_sec"], False) for s in steps]))
        p99.append((name, [(s["multiplier"], s.get("p99_ms"),
                            s.get("p99_ms") is None or (arrived_pct(s) or 100) < 99.95) for s in steps]))
        rss.append((name, [(s["multiplier"], s.get("server_rss_bytes") and s["server_rss_bytes"] / 2**20, False)
                           for s in steps]))
        total = sum((r.get("closed_before_steps") or {}).values())
        pts = []
        for s in steps:
            total += s.get("closed", 0)
            pts.append((s["multiplier"], total, False))
        closed.append((name, pts))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="{W / 2}" y="44" text-anchor="middle" font-size="11" fill="#444">{html.escape(subtitle)}</text>']
    # Legend
    x = 60
    for name, _ in runs:
        colour = COLOURS.get(name, "#000")
        out.append(f'<line x1="{x}" y1="64" x2="{x + 24}" y2="64" stroke="{colour}" '
                   f'stroke-width="{3 if name == "fanout" else 1.6}"/>')
        out.append(f'<text x="{x + 30}" y="68">{html.escape(name)}</text>')
        x += 40 + 8 * len(name)
    cols = [MARGIN_L, MARGIN_L + PW + GAP_X]
    rows = [MARGIN_T + 10, MARGIN_T + 10 + PH + GAP_Y]
    _panel(out, cols[0], rows[0], "delivered deliveries/s (log)", delivered, xs_all, True, fmt_num)
    _panel(out, cols[1], rows[0], "delivery p99 (log)", p99, xs_all, True, fmt_ms,
           note="hollow: not all of the step's messages arrived (a lower bound); △: none did")
    _panel(out, cols[0], rows[1], "server RSS at the end of each step, MiB (log)", rss, xs_all, True,
           lambda v: f"{v:g}")
    _panel(out, cols[1], rows[1], "connections closed by the server, so far", closed, xs_all, False,
           lambda v: f"{v:g}")
    if not any(y for _, pts in closed for _, y, _ in pts):
        out.append(f'<text x="{cols[1] + PW / 2}" y="{rows[1] + PH / 2}" text-anchor="middle" fill="#444">'
                   'no server closed any connection</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    with open(sys.argv[1]) as f:
        r = json.load(f)
    met, parts = goal(r)
    print(("met" if met else "not met" if met is not None else "undecided") + ": "
          + "; ".join(f"{t} {'✓' if ok else '✗' if ok is not None else '?'}" for t, ok in parts))
    for row in step_rows(r):
        print(" | ".join(row))
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(render_svg([("fanout", r)], "overload", r.get("url", "")))


if __name__ == "__main__":
    main()
