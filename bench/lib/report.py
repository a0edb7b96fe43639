"""Writes BENCHMARKS.md from one bench/compare results directory: the commit and machine it
ran on, the servers, the scenarios with fanout's ratio to each peer, the overload steps (E) with
their plot, the memory projection for 1,000,000 connections, the method, every run with its
verdict, and the exact command lines. Stdlib only.

Usage: python3 report.py RESULTS_DIR OUT.md [PLOTS_DIR]
       (PLOTS_DIR: where the SVG plots go, default OUT.md's directory/bench/plots)
"""

import glob
import json
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overload  # noqa: E402  (bench/lib/overload.py)

BASE = "fanout"  # the row every ratio is taken against
SERVERS = ["fanout", "fanout-w2", "bun", "node-ws", "tokio-tungstenite", "picows", "websockets", "swoole"]
# Slab caches that grow by about one object per TCP socket (the socket, its inode, file and
# dentry, its epoll registration, security blobs); the projection uses their sum.
SOCKET_CACHES = ["TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "ep_head",
                 "lsm_inode_cache", "lsm_file_cache"]
BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    out[k] = v
    except OSError:
        pass
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Run:
    def __init__(self, meta_path):
        self.meta = read_kv(meta_path)
        base = meta_path[: -len(".meta")]
        self.result = read_json(base + ".json")
        self.verdict = read_json(base + ".verdict") or {}
        self.server = self.meta.get("server", "?")
        self.scenario = self.meta.get("scenario", "?")
        self.id = self.meta.get("run", "?")
        m = re.search(r"--rate (\S+)", self.meta.get("client_cmd", ""))
        self.rate = float(m.group(1)) if m and self.meta.get("kind") == "broadcast" else None

    @property
    def b(self):
        return (self.result or {}).get("broadcast") or {}

    @property
    def ok(self):
        return self.verdict.get("verdict") == "pass"

    def disturbed(self):
        """Share of core 0 that other processes took during the window (pinned servers only)."""
        share = self.verdict.get("others_core0_share")
        return share if self.meta.get("pinned") == "1" and share is not None else None


# --- formatting --------------------------------------------------------------------------------

def num(x, unit=""):
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M{unit}"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k{unit}"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k{unit}"
    return f"{x:.0f}{unit}" if x >= 10 else f"{x:.2g}{unit}"


def ms(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def nbytes(x):
    if x is None:
        return "–"
    if abs(x) >= 2**30:
        return f"{x / 2**30:.1f} GiB"
    if abs(x) >= 2**20:
        return f"{x / 2**20:.1f} MiB"
    if abs(x) >= 10 * 2**10:
        return f"{x / 2**10:.0f} KiB"
    return f"{x:.0f} B"


def ratio(x, y):
    """x / y as '3.2×', or – when either is missing."""
    if not x or not y:
        return "–"
    r = x / y
    return f"{r:.1f}×" if r < 10 else f"{r:.0f}×"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


# --- per-scenario summaries --------------------------------------------------------------------

def search_summary(runs):
    """Highest passing rate of a search and the first failing step above it."""
    passes = [r for r in runs if r.ok]
    best = max(passes, key=lambda r: r.rate) if passes else None
    above = [r for r in runs if not r.ok and r.rate and (best is None or r.rate > best.rate)]
    over = min(above, key=lambda r: r.rate) if above else None
    return best, over


def client_bound(over):
    """The failing step above the best one had a saturated client: the limit may be the client's."""
    return bool(over) and "client saturated" in over.verdict.get("reason", "")


def client_pct(run):
    c = (run.result or {}).get("client") or {}
    return c.get("busiest_thread_percent")


def load_kernel(path):
    try:
        with open(path) as f:
            samples = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return None
    samples = [s for s in samples if s.get("tcp")]
    if len(samples) < 2:
        return None
    base, top = samples[0], max(samples, key=lambda s: s["tcp"].get("inuse", 0))
    sockets = top["tcp"].get("inuse", 0) - base["tcp"].get("inuse", 0)
    if sockets <= 0:
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    slab_socket = sum(top["slab"].get(c, 0) - base["slab"].get(c, 0) for c in SOCKET_CACHES)
    slab_all = sum(top["slab"].values()) - sum(base["slab"].values())
    mem = (top["tcp"].get("mem", 0) - base["tcp"].get("mem", 0)) * page
    per_cache = {c: (top["slab"].get(c, 0) - base["slab"].get(c, 0)) / sockets for c in SOCKET_CACHES
                 if c in top["slab"] or c in base["slab"]}
    return {"sockets": sockets, "mem_pages_before": base["tcp"].get("mem", 0),
            "mem_pages_after": top["tcp"].get("mem", 0), "mem_per_socket": mem / sockets,
            "slab_per_socket": slab_socket / sockets, "slab_all_per_socket": slab_all / sockets,
            "per_cache": per_cache, "tw_before": base["tcp"].get("tw", 0)}


def versions():
    v = {}
    try:
        with open(os.path.join(BENCH, "peers/node/node_modules/ws/package.json")) as f:
            v["ws"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        v["ws"] = "8"
    try:
        with open(os.path.join(BENCH, "peers/bun/node_modules/bun/package.json")) as f:
            v["bun"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(BENCH, "peers/requirements.txt")) as f:
            for line in f:
                if "==" in line:
                    k, ver = line.strip().split("==")
                    v[k] = ver
    except OSError:
        pass
    try:
        with open(os.path.join(BENCH, "peers/tokio-tungstenite/Cargo.lock")) as f:
            text = f.read()
        for crate in ("tokio", "tokio-tungstenite"):
            m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(crate), text)
            if m:
                v[crate] = m.group(1)
    except OSError:
        pass
    return v


def describe(name, v, machine):
    return {
        "fanout": "this repository, `--workers 1` (one reactor thread), pinned to core 0",
        "fanout-w2": "this repository, `--workers 2`, *not* pinned: it shares core 1 with the client, "
                     "so this extra row shows what a second core buys when the client leaves room",
        "bun": f"Bun {machine.get('bun') if machine.get('bun', '-') != '-' else v.get('bun', '?')} "
               "(npm `bun`; its WebSocket server and pub/sub are uWebSockets inside): every connection "
               "subscribes to one topic, each message goes out with `ws.publish` (all subscribers but the "
               "sender); 1 MiB messages, 1 MiB backpressure limit with close on reaching it, no idle "
               "timeout or pings, as fanout runs here (bench/peers/bun/server.js)",
        "node-ws": f"Node.js {machine.get('node', '?')} + `ws@{v.get('ws', '8')}`: loop over `wss.clients`, "
                   "`send` to each (bench/peers/node/server.js)",
        "tokio-tungstenite": f"tokio {v.get('tokio', '1')} + tokio-tungstenite {v.get('tokio-tungstenite', '?')}: "
                             "one task per connection, a `tokio::sync::broadcast` channel of 1024, default "
                             "`WebSocketConfig` (bench/peers/tokio-tungstenite)",
        "picows": f"picows {v.get('picows', '?')} on uvloop {v.get('uvloop', '?')} with aiofastnet "
                  f"{v.get('aiofastnet', '?')}, CPython {machine.get('python', '?')} "
                  "(bench/peers/picows/server.py)",
        "websockets": f"websockets {v.get('websockets', '?')} (asyncio API, `broadcast()`), uvloop, "
                      f"CPython {machine.get('python', '?')} (bench/peers/websockets/server.py)",
        "swoole": "`Swoole\\WebSocket\\Server`, SWOOLE_BASE, 1 worker, pushing to `$server->connections` "
                  "(bench/peers/swoole/server.php)",
    }.get(name, name)


def provenance(machine):
    """The header's statement of what was measured: the commit, and plainly whether the tree
    had uncommitted changes (recorded by bench/compare when the run began)."""
    commit = machine.get("commit", "unknown")
    subject = machine.get("commit_subject", "")
    short = commit[:12]
    if commit in ("", "unknown", "?"):
        return ("> **From an unknown commit**: the run was not made in a git checkout, so these figures "
                "cannot be tied to any version of the code.\n\n")
    if "dirty_paths" not in machine:  # results from before bench/compare recorded the whole tree
        n = machine.get("dirty", "0")
        if n not in ("", "0"):
            return (f"> **From {short} with uncommitted changes** ({n} files in src/ or loadtest/; other "
                    "paths were not checked by the script of that run): the figures belong to no commit.\n\n")
        return (f"From commit `{short}`; the script of that run checked only src/ and loadtest/ for "
                "uncommitted changes, and found none.\n\n")
    paths = machine.get("dirty_paths", "").split()
    after = machine.get("dirty_paths_after")
    changed = ""
    if machine.get("commit_after", commit) != commit:
        changed = (f" **The checkout moved to `{machine['commit_after'][:12]}` while the run went on**: some "
                   "runs may have measured other code.")
    elif after is not None and after.split() != paths:
        changed = (" **The tree changed while the run went on** (uncommitted paths at the end: "
                   + (", ".join(f"`{p}`" for p in after.split()[:12]) or "none") + ").")
    if paths:
        listed = ", ".join(f"`{p}`" for p in paths[:12]) + (f" and {len(paths) - 12} more" if len(paths) > 12 else "")
        return (f"> **From {short} with uncommitted changes**: the tree differed from commit `{commit}` in "
                f"{len(paths)} path{'s' if len(paths) != 1 else ''} ({listed}) when the run began, so the "
                "figures below belong to no commit. Regenerate from a committed tree before quoting them."
                + changed + "\n\n")
    text = (f"From commit `{commit}`" + (f" ({subject})" if subject else "") + ", a clean tree: `git status "
            "--porcelain` was empty when the run began (bench/results/, this report and its plots, which the "
            "run writes, aside).")
    return (f"> {text}{changed}\n\n" if changed else text + "\n\n")


def overload_section(e_run, servers, machine, a_best, out_path, plots_dir, run_by_id):
    """Section E: method, fanout's verdict against the goal, the capacities, the plot (written
    to plots_dir) and one table of steps per server."""
    w = []
    put = w.append
    reports = {s: e_run[s].result for s in servers}
    first = reports[servers[0]]
    n_conns = first["connections"]["requested"]
    step_s = first.get("step_seconds", 0)
    mults = [st["multiplier"] for st in first.get("steps") or []]
    drain = re.search(r"--drain (\S+)", e_run[servers[0]].meta.get("client_cmd", ""))
    put(f"## E. Overload: {n_conns:,} connections × 64 B, offered "
        f"{mults[0]:g}× to {mults[-1]:g}× of capacity\n\n" if mults else "## E. Overload\n\n")
    put("Each server's capacity comes first, from a run of its own on a fresh server (\"found by\" in "
        "the table below): `loadtest overload`'s closed-loop probe, in which each publisher sends as fast "
        "as the server delivers, keeping a bounded number of messages in flight (doubled while the "
        "delivery rate still grows); the delivery rate of its second half, over the receivers of each "
        "message, is the capacity in messages/s. (It runs apart because the probe may leave seconds of "
        "backlog in a slow server, which would spill into the first steps.) Then, on another fresh "
        f"server, `loadtest overload --capacity` opens {n_conns:,} connections once; "
        f"{first.get('publishers', '?')} of them publish {first.get('size', 64)}-byte binary messages, "
        f"every connection receives, and steps of {step_s:g} s each offer "
        + ", ".join(f"{m:g}×" for m in mults) + " the capacity on a fixed schedule (open loop), back to "
        f"back with no pause between them, then a final drain of {drain.group(1) if drain else '?'}.\n\n")
    put("Per step: *delivered deliveries/s* is what the client received while the step ran, whichever "
        "step's messages it carried (a backlog from earlier steps counts); *% of peak* is that over the "
        "best step's. *p50/p99* are over the step's own messages, from their scheduled send time, so a "
        "message that waited in the client's send queue, in the publisher's TCP buffers or in the "
        "server counts its wait; \"≥\" marks a step some of whose messages had not arrived when the run "
        "ended (*arrived by the end*): the percentile is over the early ones and the true one is higher. "
        "*Server RSS* is `VmRSS` at the end of the step. *Connections closed* counts the connections the "
        "server closed, by close code or cause (1008: fanout's slow-consumer close; Bun, like "
        "uWebSockets, drops a connection over its backpressure limit without a close frame, which the "
        "client sees as an EOF or reset). *Unsent* are scheduled messages the client never wrote because "
        "the server had stopped reading that publisher (loadtest queues up to 4 MiB per publisher first). "
        "*Offered ÷ peak delivered* is the step's offered rate over the best rate the server delivered "
        "in any step: how far past what it actually carried the step went, whatever the probe found "
        "(a probe that stopped short makes \"3×\" a smaller overload, and this column shows it).\n\n")
    put("Where the excess goes differs: a server that reads a publisher only as fast as it relays leaves "
        "the excess in the publishers' TCP buffers and the client's queue, so its latency grows while "
        "its RSS does not; a server that reads everything at once and queues per receiver holds the "
        "excess in its own memory until it drops or closes someone.\n\n")

    # The goal
    if BASE in reports:
        met, parts = overload.goal(reports[BASE])
        mark = {True: "✓", False: "✗", None: "?"}
        put(f"**Goal for fanout** (project issue): at {' and '.join(f'{m:g}×' for m in overload.GOAL_MULTIPLIERS)} "
            f"of capacity it still delivers ≥ {overload.PEAK_GOAL_PCT:.0f}% of its peak, closes no client "
            "that reads (every loadtest connection reads, so any close counts), and its RSS stays flat "
            f"(*flat*: at the end of every step above 1× at most {overload.RSS_FLAT_PCT:.0f}% or "
            f"{overload.RSS_FLAT_PER_CONN:,} B per connection, whichever is larger, above its RSS at the "
            "end of the 1× step). **fanout: " + {True: "goal met", False: "goal not met",
                                                None: "undecided"}[met] + "**: "
            + "; ".join(f"{t} {mark[ok]}" for t, ok in parts)
            + (" († other processes took >10% of the server's core during this run: re-run before "
               "quoting.)" if (e_run[BASE].disturbed() or 0) > 0.1 else "") + "\n\n")

    # Capacities
    rows = []
    for s in servers:
        r, run = reports[s], e_run[s]
        cap = dict(r.get("capacity") or {})
        cap_run = run_by_id.get(run.meta.get("capacity_run", ""))
        if cap_run and cap_run.result and cap_run.result.get("capacity"):
            cap["probe_p99_ms"] = cap_run.result["capacity"].get("probe_p99_ms")
        a = a_best.get(s)
        client = (r.get("client") or {}).get("busiest_thread_percent")
        others = run.disturbed()
        met, _ = overload.goal(r)
        how = "loadtest's probe" if cap.get("found_by") == "probe" else run.meta.get("capacity_from", "given")
        if cap_run:
            how += f" (run {cap_run.id})"
        rows.append([
            f"`{s}`", num(cap.get("msgs_per_sec")), num(cap.get("deliveries_per_sec")), how,
            ms(cap.get("probe_p99_ms")) if cap.get("probe_p99_ms") is not None else "–",
            (f"{a.rate:g} ({ratio(cap.get('msgs_per_sec'), a.rate)})" if a and a.rate else "–"),
            num(max((st["delivered_deliveries_per_sec"] for st in r.get("steps") or []), default=None)),
            nbytes(r.get("server_rss_before_bytes")),
            f"{client:.0f}%" if client is not None else "–",
            f"{others * 100:.0f}%" if others is not None else "–",
            {True: "met", False: "not met", None: "?"}[met],
        ])
    put(table(["server", "capacity msg/s", "capacity deliveries/s", "found by", "probe p99 ms",
               "A: sustained msg/s (capacity ÷ it)", "peak delivered deliveries/s", "RSS before connecting",
               "client busiest thread", "others on core 0", "same goal as fanout's"], rows))
    put("\nA's sustained rate, where A ran, is beside the capacity for comparison: A requires p99 within "
        "its bound, the probe only that the server keeps delivering, so the probe's figure is usually the "
        "higher one and makes each step a harder test. Client busiest thread above 90%: the client, not "
        "the server, may have set the delivered rate.\n\n")

    # The plot
    os.makedirs(plots_dir, exist_ok=True)
    svg_path = os.path.join(plots_dir, "overload.svg")
    commit = machine.get("commit", "?")[:12]
    dirty = machine.get("dirty", "0") not in ("", "0")
    title = f"Overload: {n_conns:,} connections × 64 B, {step_s:g} s per step"
    subtitle = (f"bench/compare {machine.get('mode', '?')} mode, {machine.get('started', '?')}, "
                f"commit {commit}{' with uncommitted changes' if dirty else ''}; capacity per server as in BENCHMARKS.md")
    with open(svg_path, "w") as f:
        f.write(overload.render_svg([(s, reports[s]) for s in servers], title, subtitle))
    rel = os.path.relpath(svg_path, os.path.dirname(os.path.abspath(out_path)))
    put(f"![Delivered deliveries/s, p99, server RSS and connections closed against offered load, per server]({rel})\n\n")
    put(f"Plot: [`{rel}`]({rel}) (four panels; hollow p99 markers are lower bounds, a triangle on the top edge "
        "means none of that step's messages arrived before the run ended).\n\n")

    # One table per server
    for s in servers:
        r = reports[s]
        flat = overload.rss_flatness(r)
        total, by = overload.closes(r)
        put(f"### `{s}`\n\n")
        extra = []
        if r.get("closed_before_steps"):
            extra.append("closed during the probe: " + ", ".join(f"{k}: {v}" for k, v in r["closed_before_steps"].items()))
        if flat:
            extra.append(f"RSS from the end of 1× to its highest later: {'+' if flat[1] >= 0 else '−'}"
                         f"{nbytes(abs(flat[1]))} ({'flat' if flat[0] else 'not flat'} by the definition above)")
        extra.append(f"{r.get('surviving_connections', 0):,} of {r.get('counted_connections', 0):,} connections "
                     "open at the end")
        line = "; ".join(extra)
        put(line[:1].upper() + line[1:] + ".\n\n")
        put(table(overload.STEP_HEAD, overload.step_rows(r)))
        warns = [x for x in r.get("warnings") or [] if "deliveries had not arrived" not in x]
        if warns:
            put("\nloadtest: " + "; ".join(warns) + ".\n")
        put("\n")
    return "".join(w)


# --- the report --------------------------------------------------------------------------------

def main():
    results, out_path = sys.argv[1], sys.argv[2]
    plots_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
        os.path.dirname(os.path.abspath(out_path)), "bench", "plots")
    machine = read_kv(os.path.join(results, "machine"))
    skipped = read_kv(os.path.join(results, "skipped"))
    runs = sorted((Run(p) for p in glob.glob(os.path.join(results, "*.meta"))), key=lambda r: r.id)
    order = [s for s in machine.get("servers", " ".join(SERVERS)).split() if s in SERVERS]
    ran = [s for s in order if any(r.server == s for r in runs)]
    by = {}
    for r in runs:
        by.setdefault((r.server, r.scenario), []).append(r)
    latency_rate = None
    try:
        with open(os.path.join(results, "latency-rate")) as f:
            latency_rate = f.read().strip()
    except OSError:
        pass
    v = versions()
    quick = machine.get("mode") == "quick"
    scen = machine.get("scenarios", "")
    conns = {k: int(x) for k, x in re.findall(r"\b([ABC]) (\d+) conns", scen)}
    w = []
    put = w.append

    put("# Benchmarks: fanout side by side with its peers\n\n")
    put(provenance(machine))
    put(f"Written by `bench/compare` ({machine.get('mode', '?')} mode) on {machine.get('started', '?')}, "
        f"in {int(machine.get('elapsed', 0)) // 60} min {int(machine.get('elapsed', 0)) % 60} s. "
        "Run `bench/compare` for the full comparison (about 25 minutes) or `bench/compare --quick` to try it "
        "(about 6 minutes, smaller scenarios). Every figure below comes from that one run; raw results "
        "(loadtest JSON, server logs, samples) are in `bench/results/` on the machine that ran it.\n\n")
    if quick:
        put("> **Quick mode**: fewer connections and shorter runs than the scenarios named below; the "
            "figures show that the script works, not what the servers can do.\n\n")
    disturbed = [r for r in runs if (r.disturbed() or 0) > 0.1]
    put(f"Load average (1, 5, 15 min) before: {machine.get('load_before', '?')}; after: "
        f"{machine.get('load_after', '?')}. ")
    if disturbed:
        put(f"**Other processes took more than 10% of the server's core during {len(disturbed)} of "
            f"{len(runs)} runs** (marked † below; the share is in the run list): those figures are "
            "lower than a quiet machine gives. Re-run at a quiet moment before quoting them.\n\n")
    else:
        put("No run saw other processes take more than 10% of the server's core.\n\n")

    put("## Machine\n\n")
    dirty = machine.get("dirty", "0")
    put(table(["", ""], [
        ["cores (`nproc`)", machine.get("nproc", "?")],
        ["CPU (`/proc/cpuinfo`)", machine.get("cpu", "?")],
        ["kernel", machine.get("kernel", "?")],
        ["memory", machine.get("memory", "?")],
        ["open files per process", machine.get("nofile", "?")],
        ["fanout commit", f"`{machine.get('commit', '?')}`" + (
            f" **with uncommitted changes** ({dirty} paths)" if dirty not in ("", "0") else " (clean tree)")],
        ["toolchains", f"rustc {machine.get('rustc', '?')}, Node {machine.get('node', '?')}, "
                       f"Bun {machine.get('bun', '?')}, Python {machine.get('python', '?')}"],
    ]))
    put("\nServers run on loopback, one at a time, pinned to core 0 (`taskset -c 0`); the load "
        "generator (`loadtest`, one event-loop thread) is pinned to core 1 (`taskset -c 1 ... --threads 1`). "
        "Each run starts a fresh server process and stops it afterwards.\n\n")

    put("## Servers\n\n")
    rows = [[f"`{s}`", describe(s, v, machine)] for s in order if s not in skipped]
    rows += [[f"`{s}`", f"**skipped**: {skipped[s]}"] for s in order if s in skipped]
    put(table(["name", "what runs"], rows))
    put("\nEach implements fanout's chat semantics: a welcome text on connect, then every message "
        "relayed to every *other* client with its opcode kept. Benchmarks run fanout with "
        "`--ping-interval off --idle-timeout off`; the peers send no pings either.\n\n")

    # Summary ----------------------------------------------------------------------------------
    a_sum = {s: search_summary(by.get((s, "A"), [])) for s in ran}
    b_sum = {s: search_summary(by.get((s, "B"), [])) for s in ran}
    a_best = {s: a_sum[s][0] for s in ran}
    b_best = {s: b_sum[s][0] for s in ran}
    # C and D repeat a run only when its connections were late (slower ramp): the last one counts.
    c_run = {s: (by.get((s, "C")) or [None])[-1] for s in ran}
    d_run = {s: (by.get((s, "D")) or [None])[-1] for s in ran}
    e_run = {s: (by.get((s, "E")) or [None])[-1] for s in ran}
    e_run = {s: r for s, r in e_run.items() if r and r.result and r.result.get("scenario") == "overload"}

    def e_pct(s, m):
        st = overload.step_at(e_run[s].result, m) if s in e_run else None
        return f"{st['delivered_pct_of_peak']:.0f}%" if st else "–"

    def dps(run):
        return run.b.get("deliveries_per_sec") if run else None

    def per_conn(run):
        if not run or not run.result:
            return None
        c = run.result["connections"]
        if c["open_at_measure"] < c["requested"]:
            return None
        return (run.result.get("server") or {}).get("rss_per_connection_bytes")

    def p99(run):
        return run.b.get("latency_ms", {}).get("p99") if run and run.result else None

    put("## Summary\n\n")
    put("Ratios are fanout (`--workers 1`) against each server: throughput fanout ÷ server, memory and "
        "latency server ÷ fanout, so above 1× means fanout is ahead. † = other processes took >10% of "
        "the server's core during the deciding run. ≥ = the next step up failed with the client "
        "saturated: the server may carry more than this one client core can receive.\n\n")
    rows = []
    for s in ran:
        def mark(run):
            return "†" if run and (run.disturbed() or 0) > 0.1 else ""
        def low(summary):
            return "≥ " if client_bound(summary[1]) else ""
        rows.append([
            f"`{s}`",
            (low(a_sum[s]) + num(dps(a_best[s])) + mark(a_best[s])) if a_best[s] else "–",
            ratio(dps(a_best[BASE]) if a_best.get(BASE) else None, dps(a_best[s])) if s != BASE else "",
            (low(b_sum[s]) + num(dps(b_best[s])) + mark(b_best[s])) if b_best[s] else "–",
            ratio(dps(b_best[BASE]) if b_best.get(BASE) else None, dps(b_best[s])) if s != BASE else "",
            nbytes(per_conn(c_run[s])) if per_conn(c_run[s]) is not None else ("not held" if c_run[s] else "–"),
            ratio(per_conn(c_run[s]), per_conn(c_run.get(BASE))) if s != BASE else "",
            (ms(p99(d_run[s])) + mark(d_run[s])) if d_run[s] else "–",
            ratio(p99(d_run[s]), p99(d_run.get(BASE))) if s != BASE else "",
        ] + ([f"{e_pct(s, 2.0)} / {e_pct(s, 3.0)}"] if e_run else []))
    put(table([
        "server", f"A: deliveries/s ({conns.get('A', '?')} conns × 64 B)", "fanout ×",
        f"B: deliveries/s ({conns.get('B', '?')} conns × 4 KiB)", "fanout ×",
        f"C: RSS per idle conn ({conns.get('C', '?')})", "fanout ×",
        f"D: p99 ms at {latency_rate or '?'} msg/s", "fanout ×"]
        + (["E: delivered at 2× / 3× of capacity, % of peak"] if e_run else []), rows))
    put("\n")
    base_a, base_d = a_best.get(BASE), d_run.get(BASE)
    ns_a = base_a.verdict.get("ns_per_delivery") if base_a else None
    ns_d = base_d.verdict.get("ns_per_delivery") if base_d else None
    peers_a = [a_best[s].verdict.get("ns_per_delivery") for s in ran
               if s not in (BASE, "fanout-w2") and a_best.get(s) and a_best[s].verdict.get("ns_per_delivery")]
    if ns_a and ns_d and peers_a:
        put(f"**Reading these figures.** On loopback the kernel charges both ends' TCP work for a write "
            f"to the writer, so a small write costs microseconds of the server's CPU whatever the server: "
            f"at {latency_rate} msg/s (D), where every message goes out in its own write, fanout spends "
            f"{ns_d / 1000:.1f} µs of CPU per delivery and the latencies of all servers are alike (one "
            f"pass over {conns.get('A', 0):,} sockets takes a large part of them). fanout pulls ahead "
            f"once it is busy: it writes each socket once per loop pass with every frame queued since "
            f"the last one, so at its highest sustained rate in A a delivery costs it {ns_a:.0f} ns, "
            f"while the peers, which write message by message, stay at "
            f"{min(peers_a) / 1000:.0f}–{max(peers_a) / 1000:.0f} µs. A's ratios therefore hold for a "
            f"p99 budget of about a second; with a budget near the time of one pass over all "
            f"connections, the servers are much closer (D, and the lower steps of each search in the "
            f"run list).\n\n")

    # A and B ------------------------------------------------------------------------------------
    for key, title, size in (("A", "64-byte", 64), ("B", "4 KiB", 4096)):
        if not any((s, key) in by for s in ran):
            continue
        put(f"## {key}. {conns.get(key, '?'):,} connections × {title} broadcasts: highest sustained rate\n\n")
        put(f"{machine.get('settings', '').split(';')[1].strip() if ';' in machine.get('settings', '') else '10 publishers'}"
            f" send {size}-byte binary messages at the offered rate (messages/s over all publishers); the "
            f"server relays each to the other {conns.get(key, 1) - 1:,} connections. A rate is *sustained* "
            f"when every connection was open while measuring, nothing was lost, duplicated, reordered or "
            f"left unsent, and delivery p99 stayed within its bound: 1 s, or three times the server's "
            f"CPU time to send one message to every receiver (its CPU per delivery in that step × receivers), "
            f"whichever is larger (the bound of each run is in the run list). A bound well above what one "
            f"broadcast to everyone takes lets a server batch (several messages per write) once it is "
            f"busy, which is where the servers differ most; a backlog that grows through the 1 s warm-up "
            f"and the measured seconds exceeds it once the server is more than about 25% short. "
            f"Deliveries/s is what the client received "
            f"per second of the measurement window at the highest sustained rate. Server CPU per delivery "
            f"is the server's CPU time in the window over the deliveries (less sensitive to other load "
            f"than wall-clock rates). \"Next step up\" is the lowest rate tried above it, which failed.\n\n")
        rows = []
        for s in ran:
            runs_s = by.get((s, key), [])
            if not runs_s:
                continue
            best, over = search_summary(runs_s)
            tried = ", ".join(f"{r.rate:g}{'✓' if r.ok else '✗'}" for r in runs_s if r.rate)
            if best:
                b, lat = best.b, best.b.get("latency_ms", {})
                ns = best.verdict.get("ns_per_delivery")
                cells = [f"`{s}`", ("≥ " if client_bound(over) else "") + f"{best.rate:g}",
                         num(b.get("deliveries_per_sec")) + ("†" if (best.disturbed() or 0) > 0.1 else ""),
                         ms(lat.get("p50")), ms(lat.get("p99")), ms(lat.get("p999")),
                         f"{b.get('lost', 0)}/{b.get('duplicates', 0)}/{b.get('reordered', 0)}",
                         f"{ns:.0f}" if ns else "–", f"{client_pct(best):.0f}%" if client_pct(best) is not None else "–"]
                base = a_best if key == "A" else b_best
                cells.append(ratio(dps(base.get(BASE)), dps(best)) if s != BASE else "")
            else:
                first = runs_s[0]
                cells = [f"`{s}`", f"none (< {min(r.rate for r in runs_s if r.rate):g})", "–", "–", "–", "–",
                         "–", "–", "–", "–"]
                if first.verdict.get("verdict") == "invalid":
                    cells[1] = f"invalid: {first.verdict.get('reason', '')}"
            if over and over.result:
                ob = over.b
                closed = sum(over.result["connections"]["ended_early"].values())
                cells.append(f"{over.rate:g}: {num(ob.get('deliveries_per_sec'))}/s, lost {num(ob.get('lost'))}, "
                             f"p99 {ms(ob.get('latency_ms', {}).get('p99'))} ms"
                             + (f", {closed} connections closed by the server" if closed else "")
                             + ("†" if (over.disturbed() or 0) > 0.1 else "")
                             + (", client saturated" if client_bound(over) else ""))
            else:
                cells.append("–")
            cells.append(tried)
            rows.append(cells)
        put(table(["server", "sustained msg/s", "deliveries/s", "p50 ms", "p99 ms", "p99.9 ms",
                   "lost/dup/reord", "server CPU ns/delivery", "client busiest thread", "fanout ×",
                   "next step up: msg/s: delivered, lost, p99", "rates tried (✓ sustained)"], rows))
        put("\n")

    # C -----------------------------------------------------------------------------------------
    kernel = {}
    if any(c_run.get(s) for s in ran):
        put(f"## C. {conns.get('C', 0):,} idle connections: memory\n\n")
        put(f"`loadtest connect` opens the connections over {2} client processes (one process holds fewer "
            "than 20,000 sockets here), each receives its welcome message, then all stay silent. RSS per "
            "connection is the server's `VmRSS` while they are held minus before the first, over the "
            "connections held. Kernel memory is measured machine-wide: `/proc/net/sockstat` `TCP: mem` "
            "(pages of socket buffers) and the slab caches that grow per socket (`/proc/slabinfo`: "
            + ", ".join(f"`{c}`" for c in SOCKET_CACHES) + "), before and while the connections are "
            "held, divided by the sockets added (both ends are on this machine, so two per connection).\n\n")
        rows = []
        for s in ran:
            r = c_run.get(s)
            if not r:
                continue
            kpath = os.path.join(results, r.meta.get("kernel", ""))
            k = load_kernel(kpath) if r.meta.get("kernel") else None
            if k:
                kernel[s] = k
            if not r.result:
                rows.append([f"`{s}`", "no result (see run list)"] + ["–"] * 7)
                continue
            c, srv = r.result["connections"], r.result.get("server") or {}
            held = c["open_at_measure"]
            fails = ", ".join(f"{n} {why}" for why, n in c["failures"].items())
            held_txt = f"{held:,} of {c['requested']:,}" + (f" ({fails})" if fails else "")
            if held < c["requested"]:
                held_txt = f"**cannot hold {c['requested']:,}**: {held_txt}"
            pc = per_conn(r)
            rows.append([f"`{s}`", held_txt, nbytes(srv.get("rss_before_bytes")), nbytes(srv.get("rss_after_bytes")),
                         nbytes(srv.get("rss_per_connection_bytes")),
                         ratio(pc, per_conn(c_run.get(BASE))) if s != BASE else "",
                         ms(r.result["handshake_ms"].get("p99")),
                         nbytes(k["slab_per_socket"]) if k else "–",
                         nbytes(max(0.0, k["mem_per_socket"])) if k else "–"])
        put(table(["server", "connections held", "RSS before", "RSS held", "user space per connection",
                   "server ÷ fanout", "handshake p99 ms", "kernel slab per socket", "kernel socket buffers per socket"],
                  rows))
        if kernel:
            first = BASE if BASE in kernel else next(iter(kernel))
            some = kernel[first]
            put(f"\nKernel slab bytes per socket by cache (`{first}`'s run): "
                + ", ".join(f"`{c}` {b:.0f}" for c, b in some["per_cache"].items()) +
                f". All slab caches together grew by {some['slab_all_per_socket']:.0f} B per socket in that run "
                "(this includes whatever else the machine did meanwhile). `TCP: mem` went from "
                f"{some['mem_pages_before']} to {some['mem_pages_after']} pages in that run; it is machine-wide, "
                "so other programs' sockets move it too (a fall means they released buffers meanwhile; the "
                "table shows a fall as 0). Idle sockets with nothing queued hold no buffer pages.\n\n")

    # D -----------------------------------------------------------------------------------------
    if any(d_run.get(s) for s in ran):
        put(f"## D. Latency at {latency_rate} msg/s, {conns.get('A', 0):,} connections × 64 B\n\n")
        d_measure = re.search(r"D (\S+) measured", scen)
        put(f"One offered rate for every server: half the lowest highest-sustained rate of scenario A, "
            f"rounded down to 1-2-5, so every server runs below its saturation point; measured for "
            f"{d_measure.group(1) if d_measure else '?'}. "
            "Latency is from the intended send time to receipt (coordinated-omission corrected). The "
            "client's own share sits beside it: *send lag* is how late the client sent relative to "
            "schedule, *read delay* is the time from the client's event loop waking to it reading a "
            "socket; one client core reading every connection for each broadcast takes milliseconds by "
            "itself, and that is in every server's figure.\n\n")
        rows = []
        for s in ran:
            r = d_run.get(s)
            if not r:
                continue
            if not r.result:
                rows.append([f"`{s}`", "no result"] + ["–"] * 10)
                continue
            b, cl = r.b, r.result["client"]
            lat = b["latency_ms"]
            ns = r.verdict.get("ns_per_delivery")
            rows.append([f"`{s}`", num(b["deliveries_per_sec"]), ms(lat["p50"]), ms(lat["p99"]) + ("†" if (r.disturbed() or 0) > 0.1 else ""),
                         ms(lat["p999"]), ms(lat["max"]),
                         ratio(lat["p99"], p99(d_run.get(BASE))) if s != BASE else "",
                         f"{ns:.0f}" if ns else "–",
                         ms(cl["send_lag_ms"]["p99"]), ms(cl["read_delay_ms"]["p99"]),
                         f"{b['lost']}/{b['duplicates']}/{b['reordered']}",
                         r.verdict.get("verdict", "?")])
        put(table(["server", "deliveries/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "p99 server ÷ fanout",
                   "server CPU ns/delivery",
                   "client send lag p99 ms", "client read delay p99 ms", "lost/dup/reord", "verdict"], rows))
        put("\n")

    # E -----------------------------------------------------------------------------------------
    if e_run:
        put(overload_section(e_run, [s for s in ran if s in e_run], machine, a_best, out_path, plots_dir,
                             {r.id: r for r in runs}))

    # 1M projection -------------------------------------------------------------------------------
    if kernel:
        slab = statistics.median(k["slab_per_socket"] for k in kernel.values())
        buf = max(0.0, statistics.median(k["mem_per_socket"] for k in kernel.values()))
        put("## What 1,000,000 connections need\n\n")
        put(f"Measured per idle connection on the server: user-space RSS (scenario C) plus the kernel's "
            f"per-socket slab objects ({slab:.0f} B, median over the C runs) plus socket buffers "
            f"({buf:.0f} B: idle sockets hold none). Projected linearly to 1,000,000 connections on one "
            f"server (the client side needs the same kernel memory again, on its own machines):\n\n")
        rows = []
        for s in ran:
            pc = per_conn(c_run.get(s))
            if pc is None:
                continue
            total = (pc + slab + buf) * 1e6
            rows.append([f"`{s}`", nbytes(pc), nbytes(slab + buf), nbytes(total)])
        put(table(["server", "user space / conn", "kernel / conn", "1,000,000 idle connections"], rows))
        try:
            with open("/proc/sys/net/ipv4/tcp_mem") as f:
                tcp_mem = f.read().split()
            tcp_mem_txt = f"`net.ipv4.tcp_mem` here is {' '.join(tcp_mem)} pages"
        except OSError:
            tcp_mem_txt = "`net.ipv4.tcp_mem`"
        put("\nWhat else 1,000,000 connections take: an open-file limit above 1,000,000 for the server "
            "process (`ulimit -n`, `fs.nr_open`, `fs.file-max`; here it is capped at 20,000, which is why C "
            "stops at 19,000); on the client side, source addresses × ports ≥ 1,000,000 towards one server "
            "port (`ip_local_port_range` gives 28,232 ports per source address here, so ≥ 36 addresses: "
            "`loadtest --source-ips 127.0.0.1-127.0.0.40 --processes K` spreads them); and buffer memory "
            "for the connections that are *not* idle: a socket with data queued holds at least one page "
            f"per direction, up to `tcp_wmem`/`tcp_rmem`, bounded machine-wide by `tcp_mem` ({tcp_mem_txt}).\n\n")

    # Method and runs ---------------------------------------------------------------------------
    put("## Method\n\n")
    steps = re.search(r"A [0-9]+ conns, start [0-9.]+ msg/s, ([0-9]+) steps", scen)
    put("- **Highest sustained rate (A, B).** A search per server, each step a fresh server and a full "
        "`loadtest broadcast` run: the first step offers a low rate; after a sustained step the next "
        "offers four times as much, after a failed one half as much, and once a sustained and a failed "
        "step bracket the answer it tries their geometric mean until they are within 25% of each "
        f"other; at most {steps.group(1) if steps else '?'} steps. "
        "The table reports the highest sustained step; the true limit lies between it and the next "
        "step up. A rate found this way is a property of this machine at that moment: see the noise "
        "note at the top.\n")
    put("- **Why a search and not one overload run for A and B.** Offering far more than a server can "
        "carry does not measure its capacity: servers that read faster than they write queue without "
        "bound and collapse (see the \"next step up\" column), others shed load; a sustained rate is "
        "comparable. What happens past that rate is what E shows.\n")
    put(f"- **Ramp-up.** Connections open at a per-server rate (fanout, Bun and tokio-tungstenite 4,000/s, "
        "Node and picows 3,000/s, websockets 1,000/s) because handshake speed is not what A, B, D and E "
        "measure; a run where any connection was not open when measuring began counts as invalid, "
        "never as sustained.\n")
    put("- **Between runs.** Each run listens on its own port and draws its client sockets from its "
        "own four source addresses (127.20+.N.1-4, `IP_BIND_ADDRESS_NO_PORT`), so sockets left in "
        "TIME_WAIT by earlier runs cannot take its ports; the TIME_WAIT count before each run is "
        "recorded below, and the script warns when it reaches half of `net.ipv4.tcp_max_tw_buckets`.\n")
    put("- **Noise.** `bench/compare` samples the server's CPU time and core 0's task time every 0.1 s; "
        "core 0's time minus the server's own is what other processes ran on the server's core during "
        "the measurement window (the \"others\" column below). Any sizeable share means the server "
        "competed for its core: scheduling delays in its latency, and less CPU when it needed all of "
        "it. \"Client busiest\" is loadtest's own event-loop thread while measuring: above 90% the "
        "client, not the server, may be the limit.\n\n")

    put("## Every run\n\n")
    rows = []
    for r in runs:
        vd = r.verdict
        note = vd.get("reason", "")
        if r.scenario in ("E", "Ecap") and r.result and r.result.get("capacity"):
            cap = r.result["capacity"]
            src = r.meta.get("capacity_from") or cap.get("found_by", "?")
            if r.meta.get("capacity_run"):
                src += f", run {r.meta['capacity_run']}"
            note = (f"capacity {cap.get('msgs_per_sec', 0):.4g} msg/s ({src}); "
                    + ("steps in section E" if r.scenario == "E" else "the capacity for E's steps")
                    if vd.get("verdict") != "invalid" else vd.get("reason", ""))
        if r.scenario == "C" and r.result:
            per = (r.result.get("server") or {}).get("rss_per_connection_bytes")
            note = f"held {r.result['connections']['open_at_measure']:,}, {nbytes(per)} per connection"
        if r.meta.get("exit_code") not in ("0", None) and not r.result:
            note = f"loadtest exit {r.meta.get('exit_code')} (see {r.id}-*.stderr)"
        others = r.disturbed()
        rows.append([r.id, f"`{r.server}`", r.scenario, f"{r.rate:g}" if r.rate else "–",
                     vd.get("verdict", "–"), num(r.b.get("deliveries_per_sec")) if r.result and r.b else "–",
                     ms(r.b.get("latency_ms", {}).get("p99")) if r.result and r.b else "–",
                     ms(vd.get("p99_bound_ms")),
                     f"{vd['server_cpu_share'] * 100:.0f}%" if vd.get("server_cpu_share") is not None else "–",
                     f"{others * 100:.0f}%" if others is not None else "–",
                     f"{client_pct(r):.0f}%" if client_pct(r) is not None else "–",
                     r.meta.get("time_wait_before", "–"), note])
    put(table(["run", "server", "scen.", "msg/s", "verdict", "deliveries/s", "p99 ms", "p99 bound ms", "server CPU",
               "others on core 0", "client busiest", "TIME_WAIT before", "note"], rows))

    put("\n## Command lines\n\nServers (each run uses its own port; shown for the first run of each):\n\n```\n")
    seen = set()
    for r in runs:
        if r.server not in seen:
            seen.add(r.server)
            put(r.meta.get("server_cmd", "") + "\n")
    put("```\n\nLoad generator, every run (`target/release/loadtest`):\n\n```\n")
    for r in runs:
        put(f"# {r.id} {r.server} {r.scenario}\n{r.meta.get('client_cmd', '')}\n")
    put("```\n")
    warnings = [(r, wtxt) for r in runs for wtxt in ((r.result or {}).get("warnings") or [])]
    if warnings:
        put("\n<details><summary>loadtest warnings</summary>\n\n")
        for r, wtxt in warnings:
            put(f"- {r.id} `{r.server}` {r.scenario}: {wtxt}\n")
        put("\n</details>\n")

    # Sections measured by hand (the soak, profiles) live below this marker and survive re-runs.
    marker = "<!-- sections below are written by hand and kept by bench/compare -->"
    kept = ""
    if os.path.exists(out_path):
        with open(out_path) as f:
            previous = f.read()
        if marker in previous:
            kept = "\n" + previous[previous.index(marker):]
    with open(out_path, "w") as f:
        f.write("".join(w) + kept)


if __name__ == "__main__":
    main()
