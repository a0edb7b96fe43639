//! `--processes K`: one process can hold only as many sockets as its open-file limit, so the
//! scenario is split over K copies of this binary. Each child runs the same plan with a shared
//! epoch and its own slice of connection indices, prints `progress {json}` lines each second and
//! a final `result {json}` on stdout; the parent merges them. In `overload` each child also
//! prints its capacity-probe sum (`probe {json}`), and the parent answers every child on stdin
//! with the totals over all of them (`probe-totals {json}`), so all agree on one capacity.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crossbeam_channel::{unbounded, RecvTimeoutError};

use crate::live::Snapshot;
use crate::scenario::capacity_board::ProbeTotals;
use crate::stats::Partial;

/// A line from a child.
enum Line {
    Progress(usize, Snapshot),
    Probe(ProbeTotals),
    Result(usize, Box<Partial>),
    Closed,
}

/// Runs `processes` children with `epoch`; calls `on_progress` about once a second with the
/// summed snapshot. Returns the merged result, or a message saying which child failed.
pub fn run(processes: u32, epoch: u64, mut on_progress: impl FnMut(&Snapshot)) -> Result<Partial, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (tx, rx) = unbounded();
    let mut children: Vec<Child> = Vec::new();
    // Overload: the children's probe sums, and the pipes the totals go back through.
    let mut inputs: Vec<Option<ChildStdin>> = Vec::new();
    let (mut probe_totals, mut probes) = (ProbeTotals::default(), 0);
    for i in 0..processes as usize {
        let spawned = Command::new(&exe)
            .args(&args)
            .args(["--worker-index", &i.to_string(), "--epoch-ns", &epoch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                kill_all(&mut children);
                return Err(format!("cannot start worker process {i}: {e}"));
            }
        };
        inputs.push(child.stdin.take());
        let Some(out) = child.stdout.take() else {
            kill_all(&mut children);
            return Err(format!("worker process {i} has no stdout"));
        };
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let parsed = if let Some(json) = line.strip_prefix("progress ") {
                    serde_json::from_str(json).ok().map(|s| Line::Progress(i, s))
                } else if let Some(json) = line.strip_prefix("probe ") {
                    serde_json::from_str(json).ok().map(Line::Probe)
                } else if let Some(json) = line.strip_prefix("result ") {
                    serde_json::from_str(json).ok().map(|p| Line::Result(i, Box::new(p)))
                } else {
                    None
                };
                if let Some(msg) = parsed {
                    let _ = tx.send(msg);
                }
            }
            let _ = tx.send(Line::Closed);
        });
        children.push(child);
    }
    drop(tx);
    let n = children.len();
    let mut latest: Vec<Snapshot> = vec![Snapshot::default(); n];
    let mut results: Vec<Option<Box<Partial>>> = vec![None; n];
    let mut open_children = n;
    let mut interval = Snapshot::default();
    let mut next_print = crate::sys::now_ns() + 1_000_000_000;
    while open_children > 0 {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Line::Progress(i, snap)) => {
                interval.interval.merge(&snap.interval);
                latest[i] = snap;
            }
            Ok(Line::Result(i, p)) => results[i] = Some(p),
            Ok(Line::Probe(t)) => {
                probe_totals.deliveries += t.deliveries;
                probe_totals.receivers += t.receivers;
                probes += 1;
                if probes == n {
                    let line = format!("probe-totals {}\n", serde_json::to_string(&probe_totals).unwrap_or_default());
                    for input in inputs.iter_mut().flatten() {
                        // A child that already died reports its own failure below.
                        let _ = input.write_all(line.as_bytes()).and_then(|()| input.flush());
                    }
                }
            }
            Ok(Line::Closed) => open_children -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if crate::sys::now_ns() >= next_print {
            next_print += 1_000_000_000;
            interval.open = latest.iter().map(|s| s.open).sum();
            interval.failed = latest.iter().map(|s| s.failed).sum();
            interval.deliveries = latest.iter().map(|s| s.deliveries).sum();
            on_progress(&interval);
            interval.interval.reset();
        }
    }
    let mut total = Partial::default();
    for (i, (child, result)) in children.iter_mut().zip(results).enumerate() {
        let status = child.wait().map_err(|e| format!("worker process {i}: {e}"))?;
        match result {
            Some(p) if status.success() => total.merge(&p),
            _ => return Err(format!("worker process {i} failed ({status}); its error is above")),
        }
    }
    Ok(total)
}

fn kill_all(children: &mut [Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
