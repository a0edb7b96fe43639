"""Judges one `loadtest broadcast --json` result for bench/compare's rate search, and charges
the server's CPU time (from procstat.py's samples) to the measurement window.

Prints one line: `VERDICT DELIVERIES_PER_SEC P99_MS NS_PER_DELIVERY REASON...` and writes the
same as JSON to VERDICT_OUT. VERDICT is
- `pass`: every connection open while measuring, nothing lost, duplicated, reordered or left
  unsent, no connection dropped, and delivery p99 within the bound: the server sustained it;
- `fail`: the server fell behind (loss, unsent, reordering, or p99 over the bound);
- `invalid`: the run says nothing about the server's rate (no result, or connections missing
  when measuring began, e.g. handshakes slower than the ramp).
NS_PER_DELIVERY is `-` when the server's CPU could not be sampled.

The latency bound is P99_BOUND_MS or three times the server's CPU time for one message to all
RECEIVERS (its CPU time per delivery in this run x RECEIVERS / CORES), whichever is larger: a
server that needs 2 s of CPU to write one message to every connection cannot show a p99 below
that at any rate, yet it can keep up with a low one; a backlog that grows through the run soon
exceeds three such times.

For a `loadtest connect` result it prints how many connections were held and the server's
RSS per connection instead (the other arguments are then ignored). For a `loadtest overload`
result (scenario E) it prints `ok` or `invalid` (connections missing when the first step began)
and a one-line summary of the steps, and charges the server's CPU to the steps' window as above;
what the steps mean is lib/overload.py's business.

Usage: python3 judge.py RESULT.json P99_BOUND_MS PROCSTAT WINDOW_START WINDOW_END VERDICT_OUT
                       [RECEIVERS CORES]
"""

import json
import sys


def judge(report, bound_ms):
    c = report["connections"]
    b = report["broadcast"]
    p99 = b["latency_ms"]["p99"]
    if c["open_at_measure"] < c["requested"]:
        missing = c["requested"] - c["open_at_measure"]
        return "invalid", f"{missing} of {c['requested']} connections were not open when measuring began"
    reasons = []
    ended = sum(c["ended_early"].values())
    if ended:
        reasons.append(f"{ended} connections ended early")
    for key in ("lost", "duplicates", "reordered", "unsent"):
        if b[key]:
            reasons.append(f"{b[key]} {key}")
    if p99 > bound_ms:
        reasons.append(f"p99 {p99:.1f} ms > {bound_ms:g} ms")
    verdict = "fail" if reasons else "pass"
    busiest = report["client"]["busiest_thread_percent"]
    if busiest > 90:
        # Not a failure in itself, but a failure next to it may be the client's, not the server's.
        reasons.append(f"client saturated ({busiest:.0f}% busy)")
    return verdict, "; ".join(reasons) or "ok"


def between(path, t0, t1, column):
    """Growth of procstat.py's `column` (1: server CPU s, 3: core 0 busy s, 4: core 1 busy s)
    between wall times t0 and t1, interpolating between samples; None without samples."""
    samples = []
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) > column:
                    samples.append((float(w[0]), float(w[column])))
    except OSError:
        return None
    if len(samples) < 2 or samples[0][0] > t0 + 0.3 or samples[-1][0] < t1 - 0.3:
        return None

    def at(t):
        prev = samples[0]
        for s in samples:
            if s[0] >= t:
                if s[0] == prev[0]:
                    return s[1]
                return prev[1] + (s[1] - prev[1]) * (t - prev[0]) / (s[0] - prev[0])
            prev = s
        return samples[-1][1]

    return max(0.0, at(t1) - at(t0))


def connect_summary(report, out):
    """For an idle-connections run: how many were held and their user-space cost."""
    c, server = report["connections"], report.get("server") or {}
    held = c["open_at_measure"]
    verdict, note = "pass", ""
    if c["opened"] < c["requested"]:
        verdict = "fail"
    elif held < c["requested"]:
        # All opened, but some only after the hold began: the memory sample is not for them all.
        verdict, note = "invalid", f" ({c['requested'] - held} connections were not open when measuring began)"
    result = {"verdict": verdict, "held": held, "bytes_per_connection": server.get("rss_per_connection_bytes")}
    with open(out, "w") as f:
        json.dump(result, f)
    per = result["bytes_per_connection"]
    print(f"{verdict} held {held} of {c['requested']}, "
          f"{'?' if per is None else f'{per:.0f}'} B of server RSS per connection{note}")


def overload_summary(report, out, procstat, t0, t1):
    """For an overload run: valid or not, what the steps did in one line, noise on core 0."""
    c, steps = report["connections"], report.get("steps") or []
    counted = report.get("counted_connections", 0)
    result = {"verdict": "ok", "reason": "", "others_core0_share": None, "server_cpu_share": None}
    if counted < c["requested"]:
        result["verdict"] = "invalid"
        result["reason"] = f"{c['requested'] - counted} of {c['requested']} connections were not open when measuring began"
    cpu, core0 = between(procstat, t0, t1, 1), between(procstat, t0, t1, 3)
    if cpu is not None and t1 > t0:
        result["server_cpu_share"] = cpu / (t1 - t0)
        if core0 is not None:
            result["others_core0_share"] = max(0.0, core0 - cpu) / (t1 - t0)
    cap = report.get("capacity") or {}
    parts = [f"capacity {cap.get('msgs_per_sec', 0):.4g} msg/s ({cap.get('found_by', '?')})"]
    for s in steps:
        p99 = s.get("p99_ms")
        parts.append(f"{s['multiplier']:g}x: {s['delivered_pct_of_peak']:.0f}% of peak, p99 "
                     + ("-" if p99 is None else f"{p99:.0f} ms") + f", {s['closed']} closed")
    if not result["reason"]:
        result["reason"] = "; ".join(parts)
    with open(out, "w") as f:
        json.dump(result, f)
    print(f"{result['verdict']} {result['reason']}")


def main():
    path, bound, procstat, t0, t1, out = sys.argv[1:7]
    given = sys.argv[7:9]
    receivers, cores = given + ["0", "1"][len(given):]
    bound, t0, t1 = float(bound), float(t0), float(t1)
    result = {"verdict": "invalid", "deliveries_per_sec": 0, "p99_ms": 0, "server_cpu_s": None,
              "server_cpu_share": None, "others_core0_share": None, "ns_per_delivery": None, "reason": ""}
    try:
        with open(path) as f:
            report = json.load(f)
        if report["scenario"] == "connect":
            return connect_summary(report, out)
        if report["scenario"] == "overload":
            return overload_summary(report, out, procstat, t0, t1)
        b = report["broadcast"]
        cpu = between(procstat, t0, t1, 1)
        delivered = b["deliveries_per_sec"] * report["measure_seconds"]
        own_ns = cpu * 1e9 / delivered if cpu and delivered > 0 else None
        if own_ns:
            bound = max(bound, 3 * float(receivers) * own_ns / float(cores) / 1e6)
        result["p99_bound_ms"] = bound
        result["verdict"], result["reason"] = judge(report, bound)
        result["deliveries_per_sec"] = b["deliveries_per_sec"]
        result["p99_ms"] = b["latency_ms"]["p99"]
        core0 = between(procstat, t0, t1, 3)
        if cpu is not None and core0 is not None and t1 > t0:
            # Only meaningful for a server pinned to core 0: what the rest of the machine took.
            result["others_core0_share"] = max(0.0, core0 - cpu) / (t1 - t0)
        if cpu is not None and t1 > t0:
            result["server_cpu_s"] = cpu
            result["server_cpu_share"] = cpu / (t1 - t0)
            result["ns_per_delivery"] = own_ns
    except (OSError, ValueError, KeyError, TypeError) as e:
        result["reason"] = f"no usable result ({e.__class__.__name__})"
    with open(out, "w") as f:
        json.dump(result, f)
    ns = result["ns_per_delivery"]
    print(f"{result['verdict']} {result['deliveries_per_sec']:.0f} {result['p99_ms']:.3f} "
          f"{'-' if ns is None else f'{ns:.1f}'} {result['reason']}")


if __name__ == "__main__":
    main()
