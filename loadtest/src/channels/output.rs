//! Prints a finished `channels` run: the table or JSON, the latency files, and the exit status.

use std::process::ExitCode;

use crate::channels::args::ChannelsArgs;
use crate::channels::report::{ChannelsReport, Rss};
use crate::hgrm;
use crate::plan::Kind;
use crate::plot::{self, Series};
use crate::run::Finished;

/// Prints the report and writes --hgrm / --plot. Fails when nothing subscribed or nothing was
/// delivered; exits with 2 when connections failed or ended early.
pub fn print(args: &ChannelsArgs, finished: &Finished) -> ExitCode {
    let Kind::Channels(cp) = &finished.plan.kind else { return ExitCode::FAILURE };
    let rss = Rss {
        pid: args.common.server_pid,
        before: finished.rss_before,
        samples: &finished.step_rss,
        cpu_ns: finished.server_cpu_ns,
    };
    let mut report = ChannelsReport::new(cp, &finished.partial, &finished.report, &rss);
    let plan = &finished.plan;
    report.api_url = plan.api.as_ref().map(|t| t.url.http_display());
    report.subscriber_urls = plan.subscribe.iter().map(|t| t.url.display()).collect();
    report.split = args.api_url.is_some() || !args.subscriber_urls.is_empty();
    if args.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    let hist = &finished.partial.latency;
    if let Some(path) = &args.output.hgrm {
        if let Err(e) = std::fs::write(path, hgrm::render(hist)) {
            eprintln!("loadtest: error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.output.plot {
        let series = vec![Series { label: "delivery latency".into(), hist }];
        let title = format!("loadtest channels: {} subscribers, {}", cp.subscribers, report.url);
        if let Err(e) = std::fs::write(path, plot::render(&title, &series)) {
            eprintln!("loadtest: error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let c = &report.connections;
    if c.opened == 0 || report.subscriptions.counted == 0 {
        eprintln!("loadtest: error: no subscriber was subscribed when measuring began");
        return ExitCode::FAILURE;
    }
    if report.steps.iter().all(|s| s.received == 0) {
        eprintln!("loadtest: error: no event was delivered to a subscriber (see the warnings)");
        return ExitCode::FAILURE;
    }
    let failed: u64 = c.failures.values().sum::<u64>() + c.ended_early.values().sum::<u64>();
    if failed > 0 {
        eprintln!("loadtest: error: {failed} connections failed to open or ended early (see above)");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
