//! The `fanout` binary: flags -> config -> server, until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use fanout::cli::{Cli, Mode};
use fanout::{sys, ChatHandler, Config, EchoHandler, Handler, Server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let config = cli.config();
    let result = match cli.mode {
        Mode::Chat => serve(config, ChatHandler { echo_to_sender: cli.echo_to_sender }, "chat on /chat"),
        Mode::Echo => serve(config, EchoHandler, "echo on every path"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("fanout: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: Option<&str>) {
    let env = env_logger::Env::default().default_filter_or(level.unwrap_or("info"));
    let mut builder = env_logger::Builder::from_env(env);
    if let Some(level) = level {
        builder.parse_filters(level);
    }
    builder.format_timestamp_millis().init();
}

fn serve<H: Handler>(config: Config, handler: H, app: &str) -> Result<(), String> {
    check_open_file_limit(&config);
    // Before the start-up line: a signal sent as soon as it appears must
    // already mean a graceful stop, not the default death by signal.
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server = Server::bind(config.clone(), handler).map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    let running = server.start().map_err(|e| format!("cannot start: {e}"))?;
    log::info!(
        "fanout {} listening on {addr} ({app}): {} workers{}, max {} connections, max message {} B, \
         max backpressure {} B ({:?} slow consumers)",
        env!("CARGO_PKG_VERSION"),
        config.workers,
        if config.pin_cores { " pinned" } else { "" },
        config.max_connections,
        config.max_message_size,
        config.max_backpressure,
        config.slow_consumer,
    );
    let handle = running.handle();
    std::thread::Builder::new()
        .name("fanout-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: shutting down (close 1001 to every client)");
                handle.shutdown();
            }
            // A second signal means: stop now.
            if signals.forever().next().is_some() {
                log::warn!("second signal: exiting without waiting");
                std::process::exit(1);
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    running.wait().map_err(|e| e.to_string())?;
    log::info!("stopped");
    Ok(())
}

/// Raises the open-file limit to what `max_connections` needs, or says
/// plainly at start-up how many connections the current limit allows.
fn check_open_file_limit(config: &Config) {
    let wanted = config.needed_open_files();
    match sys::raise_open_file_limit(wanted) {
        Ok(limit) if limit.soft >= wanted => {}
        Ok(limit) => log::warn!(
            "open-file limit is {} (hard {}), below the {wanted} that --max-connections {} needs: \
             about {} connections fit; beyond that new clients get HTTP 503",
            limit.soft,
            limit.hard,
            config.max_connections,
            limit.soft.saturating_sub(64 + 4 * config.workers as u64),
        ),
        Err(e) => log::warn!("cannot read or raise the open-file limit: {e}"),
    }
}
