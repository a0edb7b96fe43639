//! Runs a scenario from the command line: checks the client's own limits, probes the server,
//! runs the connections here or in `--processes` children, prints progress, samples the server's
//! memory, and returns the report.

use std::io::{BufRead as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use crate::cli::Cli;
use crate::live::{Live, Snapshot};
use crate::plan::{Kind, Plan, Target};
use crate::proc_sampler::ProcSampler;
use crate::progress::Progress;
use crate::report::{Report, Server};
use crate::scenario::capacity_board::CapacityBoard;
use crate::stats::Partial;
use crate::{multiproc, scenario, sys};

/// File descriptors a process needs besides its connections (stdio, epoll and timer per thread,
/// the probe, /proc reads).
const FD_SLACK: u64 = 64;
/// How long the probe before the run waits for the server (each step of a TLS handshake).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// channels: how long before traffic starts the server's memory is read "once subscribed".
const RSS_BEFORE_TRAFFIC_NS: u64 = 20_000_000;

/// A finished run: the report and the raw merged results (for --hgrm and --plot).
pub struct Finished {
    /// The report.
    pub report: Report,
    /// The merged measurements.
    pub partial: Partial,
    /// The plan that ran.
    pub plan: Arc<Plan>,
    /// The server's VmRSS before the first connection (with --server-pid).
    pub rss_before: Option<u64>,
    /// Overload: the server's VmRSS at the end of each step (with --server-pid).
    pub step_rss: Vec<Option<u64>>,
    /// The server's CPU time over the measurement window (with --server-pid; not for scenarios
    /// whose windows move: connect, overload, a saturation search).
    pub server_cpu_ns: Option<u64>,
}

/// Runs the scenario; `Ok(None)` for a `--processes` worker, which reports through stdout.
pub fn execute(cli: &Cli) -> Result<Option<Finished>, String> {
    let nofile = sys::raise_nofile_limit();
    let common = cli.scenario.common();
    let worker = common.worker_index.is_some();
    let lead_ns = if common.processes > 1 { 1_000_000_000 } else { 200_000_000 };
    let epoch = common.epoch_ns.unwrap_or_else(|| sys::now_ns() + lead_ns);
    let plan = Arc::new(Plan::new(&cli.scenario, epoch).map_err(|e| e.to_string())?);
    check_fd_limit(&plan, nofile)?;
    if worker {
        let board = relayed_board(&plan);
        run_here(&plan, board, |snap, _| {
            println_flush(&format!("progress {}", serde_json::to_string(snap).unwrap_or_default()));
        })
        .map(|p| println_flush(&format!("result {}", serde_json::to_string(&p).unwrap_or_default())))?;
        return Ok(None);
    }
    probe(&plan)?;
    warn_ports(&plan);
    let rss_before = match common.server_pid {
        Some(pid) => {
            Some(sys::vm_rss_bytes(pid).map_err(|e| format!("cannot read the memory of --server-pid {pid}: {e}"))?)
        }
        None => None,
    };
    let step_ends: Vec<u64> = match &plan.kind {
        Kind::Overload(o) => (0..o.len()).map(|i| o.bounds(i).1).collect(),
        // Once subscribed (just before traffic), then at the end of a fixed-rate step.
        // (The search samples its steps itself: they start and end when it decides.)
        Kind::Channels(cp) => std::iter::once(plan.traffic_start.saturating_sub(RSS_BEFORE_TRAFFIC_NS))
            .chain(cp.steps.iter().filter(|_| !cp.saturation()).map(|s| s.end))
            .collect(),
        _ => Vec::new(),
    };
    let steps = step_ends.len();
    let step_sampler = ProcSampler::start(common.server_pid.filter(|_| steps > 0), step_ends, sys::vm_rss_bytes);
    let fixed_window = match &plan.kind {
        Kind::Broadcast { .. } | Kind::Echo { .. } | Kind::SocketIo(_) => true,
        Kind::Channels(cp) => !cp.saturation(),
        _ => false,
    };
    let window = vec![plan.measure_start, plan.measure_end];
    let cpu_sampler = ProcSampler::start(common.server_pid.filter(|_| fixed_window), window, sys::process_cpu_ns);
    let sample_at = plan.measure_start + (plan.measure_end - plan.measure_start) / 2;
    let mut rss_after = None;
    let mut progress = Progress::new(sys::now_ns());
    let quiet = common.quiet;
    let mut on_tick = |snap: &Snapshot, now: u64| {
        if let (Some(pid), None) = (common.server_pid, rss_after) {
            if now >= sample_at {
                rss_after = sys::vm_rss_bytes(pid).ok();
            }
        }
        if !quiet {
            eprintln!("{}", progress.line(&plan, snap, now));
        }
    };
    let partial = if common.processes > 1 {
        multiproc::run(common.processes, epoch, |snap| on_tick(snap, sys::now_ns()))?
    } else {
        run_here(&plan, Arc::new(CapacityBoard::new(plan.threads)), |snap, now| on_tick(snap, now))?
    };
    let server_cpu_ns = match cpu_sampler.finish(2)[..] {
        [Some(start), Some(end)] => Some(end.saturating_sub(start)),
        _ => None,
    };
    let secs = (plan.measure_end - plan.measure_start) as f64 / 1e9;
    let server = match (common.server_pid, rss_before, rss_after) {
        (Some(pid), Some(before), Some(after)) => Some(Server {
            pid,
            rss_before_bytes: before,
            rss_after_bytes: after,
            rss_per_connection_bytes: after.saturating_sub(before) as f64 / partial.open_at_measure.max(1) as f64,
            cpu_percent_while_measuring: server_cpu_ns.map(|ns| ns as f64 / 1e7 / secs),
            cpu_ns_per_delivery: server_cpu_ns
                .filter(|_| matches!(plan.kind, Kind::Broadcast { .. } | Kind::SocketIo(_)) && partial.received > 0)
                .map(|ns| ns as f64 / partial.received as f64),
        }),
        (Some(pid), _, _) => {
            eprintln!("warning: could not read the memory of --server-pid {pid} while connections were held");
            None
        }
        _ => None,
    };
    let report = Report::new(&plan, &partial, server);
    let step_rss = step_sampler.finish(steps);
    Ok(Some(Finished { report, partial, plan, rss_before, step_rss, server_cpu_ns }))
}

/// Runs this process's share on its threads, calling `tick` once a second with live counters.
fn run_here(
    plan: &Arc<Plan>,
    board: Arc<CapacityBoard>,
    mut tick: impl FnMut(&Snapshot, u64),
) -> Result<Partial, String> {
    let live = Arc::new(Live::default());
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (p, l) = (Arc::clone(plan), Arc::clone(&live));
    std::thread::spawn(move || {
        let _ = tx.send(scenario::run_local(p, l, board));
    });
    let mut next = sys::now_ns() + 1_000_000_000;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => return result.map_err(|e| format!("event loop failed: {e}")),
            Err(RecvTimeoutError::Disconnected) => return Err("event loop thread died".into()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = sys::now_ns();
        if now >= next {
            next += 1_000_000_000;
            tick(&live.snapshot(), now);
        }
    }
}

/// A `--processes` child's probe board: its sum goes to the parent as a `probe {json}` line, and
/// the totals over all children come back on stdin as `probe-totals {json}`.
fn relayed_board(plan: &Plan) -> Arc<CapacityBoard> {
    let board = Arc::new(CapacityBoard::relayed(
        plan.threads,
        Box::new(|totals| println_flush(&format!("probe {}", serde_json::to_string(&totals).unwrap_or_default()))),
    ));
    let answer = Arc::clone(&board);
    // Blocks on stdin for the life of the process; the process does not wait for it at exit.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if let Some(totals) = line.strip_prefix("probe-totals ").and_then(|j| serde_json::from_str(j).ok()) {
                answer.set_totals(totals);
            }
        }
    });
    board
}

/// Refuses to start when this process cannot hold its connections.
fn check_fd_limit(plan: &Plan, nofile: u64) -> Result<(), String> {
    let per_process = plan.local_connections().max(plan.connections.div_ceil(plan.proc_count));
    let usable = nofile.saturating_sub(FD_SLACK);
    if per_process > usable {
        let needed = plan.connections.div_ceil(usable.max(1));
        return Err(format!(
            "one loadtest process can hold at most {usable} connections here (its open-file limit is {nofile} \
             and cannot be raised further), but {per_process} per process were asked for: \
             use --processes {needed} or more"
        ));
    }
    Ok(())
}

/// One plain TCP connect before the real run (and for wss:// one TLS handshake) to every server
/// the run uses (`--url`, and `--publish-url`, `--subscriber-url`, `--api-url` when given), so a
/// server that is not there, or whose certificate is not trusted, is reported at once and in one
/// line, not as thousands of failed connections.
fn probe(plan: &Plan) -> Result<(), String> {
    for target in plan.targets_in_use() {
        probe_one(target)?;
    }
    Ok(())
}

fn probe_one(target: &Target) -> Result<(), String> {
    let addr = target.url.addr;
    // The flag is named when it is not the usual --url.
    let via = if target.flag == "--url" { String::new() } else { format!(" ({})", target.flag) };
    match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(format!(
                "cannot connect to {addr}{via}: connection refused (is the server running on {}?)",
                target.host
            ))
        }
        Err(e) => return Err(format!("cannot connect to {addr}{via}: {e}")),
    }
    match &target.tls {
        Some(tls) => crate::tls::probe::handshake(addr, tls, PROBE_TIMEOUT).map_err(|e| {
            if via.is_empty() {
                e
            } else {
                format!("{}: {e}", target.flag)
            }
        }),
        None => Ok(()),
    }
}

/// Warns when the connections need more local ports than the source addresses provide.
fn warn_ports(plan: &Plan) {
    let sources = if plan.source_ips.is_empty() { 1 } else { plan.source_ips.len() as u64 };
    let ports = sys::local_port_count();
    if plan.connections.div_ceil(sources) > ports {
        eprintln!(
            "warning: {} connections from {sources} source address(es) to one server address need more than the \
             {ports} local ports available; spread them with --source-ips 127.0.0.1-127.0.0.16",
            plan.connections
        );
    }
}

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
