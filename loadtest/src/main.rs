//! `loadtest`: a load generator for WebSocket push servers (fanout or any other `ws://` or
//! `wss://` server).
//!
//! Module map:
//! - `cli`, `overload_args`, `plan`, `kind`, `overload_plan`: flags, validated settings and the
//!   shared timeline (overload: its steps)
//! - `url`, `source_ips`, `sys`: the target, source addresses, and every OS call
//! - `stream`: a client socket, plain or TLS; `tls/`: the TLS settings (`--ca-file`,
//!   `--insecure`), the session over a non-blocking socket, and the handshake probe
//! - `client/`: frames, handshake and one connection's state machine
//! - `worker`: one mio event loop per thread; `scenario/`: what connections do once open
//! - `header`, `seq`, `hist`, `stats`, `overload_stats`, `live`: message stamps, loss detection,
//!   histograms, totals
//! - `report`, `table`, `warnings`, `hgrm`, `plot`, `progress`: output; `overload_report`,
//!   `overload_table`, `overload_plot`: the overload scenario's output; `proc_sampler`: server memory and CPU
//! - `socketio/`: Engine.IO and Socket.IO packets without sockets, the socketio scenario's flags,
//!   counts and report section
//! - `pusher/`: the Pusher protocol's client side without sockets (signatures, envelopes,
//!   stamps); `channels/`: the channels scenario's plan, API publisher, search and report
//! - `multiproc`, `run`: spreading over processes, running a scenario end to end
#![deny(missing_docs)]

mod channels;
mod cli;
mod client;
mod header;
mod hgrm;
mod hist;
mod kind;
mod live;
mod multiproc;
mod overload_args;
mod overload_plan;
mod overload_plot;
mod overload_report;
mod overload_stats;
mod overload_table;
mod plan;
mod plot;
mod proc_sampler;
mod progress;
mod pusher;
mod report;
mod run;
mod scenario;
mod seq;
mod socketio;
mod source_ips;
mod stats;
mod stream;
mod sys;
mod table;
mod tls;
mod url;
mod warnings;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::plot::Series;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let finished = match run::execute(&cli) {
        Ok(Some(f)) => f,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadtest: error: {message}");
            return ExitCode::FAILURE;
        }
    };
    if let cli::Scenario::Overload(args) = &cli.scenario {
        return overload_output(args, &finished);
    }
    if let cli::Scenario::Channels(args) = &cli.scenario {
        return channels::output::print(args, &finished);
    }
    let common = cli.scenario.common();
    let (report, partial) = (&finished.report, &finished.partial);
    if common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    let (main_hist, main_label) = match cli.scenario.name() {
        "connect" => (&partial.handshake, "handshake"),
        "echo" => (&partial.latency, "round trip"),
        _ => (&partial.latency, "delivery"),
    };
    let output = cli.scenario.output();
    if let Some(path) = output.and_then(|o| o.hgrm.as_ref()) {
        if let Err(e) = std::fs::write(path, hgrm::render(main_hist)) {
            eprintln!("loadtest: error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = output.and_then(|o| o.plot.as_ref()) {
        let mut series = vec![Series { label: format!("{main_label} latency"), hist: main_hist }];
        if partial.send_lag.count() > 0 {
            series.push(Series { label: "client send lag".into(), hist: &partial.send_lag });
        }
        let title =
            format!("loadtest {}: {} connections, {}", report.scenario, report.connections.requested, report.url);
        if let Err(e) = std::fs::write(path, plot::render(&title, &series)) {
            eprintln!("loadtest: error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    exit_status(report)
}

/// Prints an overload run's result. Connections the server closed are a result here, not a
/// failure; a run fails when nothing opened, nothing could be offered, or connections never
/// opened.
fn overload_output(args: &overload_args::OverloadArgs, finished: &run::Finished) -> ExitCode {
    let plan = &finished.plan;
    let plan::Kind::Overload(o) = &plan.kind else { return ExitCode::FAILURE };
    let empty = overload_stats::OverloadPartial::default();
    let measured = finished.partial.overload.as_ref().unwrap_or(&empty);
    let rss = overload_report::RssSamples {
        pid: args.common.server_pid,
        before: finished.rss_before,
        steps: finished.step_rss.clone(),
    };
    let report = overload_report::OverloadReport::new(plan, o, measured, &finished.report, &rss);
    if args.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(path) = &args.plot {
        if let Err(e) = std::fs::write(path, overload_plot::render(&report)) {
            eprintln!("loadtest: error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let c = &report.connections;
    if c.opened == 0 {
        eprintln!("loadtest: error: no connection could be opened");
        return ExitCode::FAILURE;
    }
    if report.capacity.msgs_per_sec <= 0.0 {
        eprintln!(
            "loadtest: error: the capacity probe delivered nothing: is the server relaying to the other connections?"
        );
        return ExitCode::FAILURE;
    }
    if partial_failed(c) > 0 {
        eprintln!("loadtest: error: {} connections failed to open (see above)", partial_failed(c));
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn partial_failed(c: &report::Connections) -> u64 {
    c.failures.values().sum()
}

/// Non-zero unless every connection opened and stayed open: a run that silently lost its
/// connections must not look like a success to a script.
fn exit_status(report: &report::Report) -> ExitCode {
    let c = &report.connections;
    if c.opened == 0 {
        let causes: Vec<String> = c.failures.iter().map(|(k, v)| format!("{v} {k}")).collect();
        eprintln!("loadtest: error: no connection could be opened ({})", causes.join(", "));
        return ExitCode::FAILURE;
    }
    if report.socketio.as_ref().is_some_and(|s| s.ready_at_measure == 0) {
        eprintln!(
            "loadtest: error: no socket finished the Socket.IO connect{} before measuring began (is this a Socket.IO \
             server speaking Engine.IO v4 on /socket.io/?)",
            if report.socketio.as_ref().is_some_and(|s| s.room.is_some()) { " and room join" } else { "" }
        );
        return ExitCode::FAILURE;
    }
    if let Some(e) = report.echo.as_ref().filter(|e| e.no_echo) {
        eprintln!("loadtest: error: {} ({} other messages arrived instead)", warnings::NO_ECHO, e.other);
        return ExitCode::FAILURE;
    }
    let (failed, ended) = (partial_failed(c), c.ended_early.values().sum::<u64>());
    if failed > 0 || ended > 0 {
        eprintln!("loadtest: error: {failed} connections failed to open and {ended} ended early (see above)");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
