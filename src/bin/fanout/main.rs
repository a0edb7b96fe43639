//! The `fanout` binary: flags -> config -> server, until SIGINT/SIGTERM.

mod apps;
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Mode};
use fanout::service::{Service, ServiceConfig};
use fanout::{sys, Config, EchoHandler, Handler, Server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config();
    // A bad setting is reported once, before anything else is said.
    if let Err(error) = config.validate() {
        eprintln!("fanout: {}", cli::describe(&error));
        return ExitCode::from(2);
    }
    let apps = match cli.apps.apps() {
        Ok(apps) => apps,
        Err(message) => {
            eprintln!("fanout: {message}");
            return ExitCode::from(2);
        }
    };
    let tokens = match cli.token_verifier() {
        Ok(tokens) => tokens,
        Err(message) => {
            eprintln!("fanout: {message}");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.log_level.as_deref());
    let result = match cli.mode {
        Mode::Chat => {
            let what = match apps.len() {
                0 => "chat on /chat and /chat/ROOM; no Pusher app".to_owned(),
                n => format!("chat on /chat and /chat/ROOM, Pusher on /app/KEY for {n} app(s)"),
            };
            let service = ServiceConfig {
                apps,
                echo_to_sender: cli.echo_to_sender,
                history: cli.history(),
                history_dir: cli.history_dir.clone(),
                tokens,
            };
            let service = match Service::new(service) {
                Ok(service) => service,
                Err(e) => {
                    eprintln!("fanout: {e}");
                    return ExitCode::from(2);
                }
            };
            serve(&cli, config, service, &what)
        }
        Mode::Echo => serve(&cli, config, EchoHandler, "echo on every path"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fanout: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: Option<&str>) {
    let from_env = std::env::var("RUST_LOG").ok().filter(|_| level.is_none());
    let filter = level.map(str::to_owned).or(from_env.clone()).unwrap_or_else(|| "info".into());
    let bad_env = from_env.as_deref().and_then(|env| cli::check_log_filter(env).err());
    let filter = if bad_env.is_some() { "info".to_owned() } else { filter };
    env_logger::Builder::new().parse_filters(&filter).format_timestamp_millis().init();
    if let Some(problem) = bad_env {
        log::warn!("ignoring RUST_LOG: {problem}; logging at info");
    }
}

fn serve<H: Handler>(cli: &Cli, config: Config, handler: H, app: &str) -> Result<(), String> {
    check_open_file_limit(&config);
    let server = Server::bind(config.clone(), handler).map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    let running = server.start().map_err(|e| format!("cannot start: {e}"))?;
    // Before the start-up line: a signal sent as soon as it appears must
    // already mean a graceful stop, not the default death by signal.
    running.shutdown_on_signals().map_err(|e| e.to_string())?;
    let _pid_file = match &cli.pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    log::info!(
        "fanout {} listening on {addr}{} ({app}): {} workers{}, max {} connections, max message {} B, \
         max backpressure {} B ({:?} slow consumers)",
        env!("CARGO_PKG_VERSION"),
        if config.tls.is_some() { " with TLS (wss://, https://)" } else { "" },
        config.workers,
        if config.pin_cores { " pinned" } else { "" },
        config.max_connections,
        config.max_message_size,
        config.max_backpressure,
        config.slow_consumer,
    );
    running.wait().map_err(|e| e.to_string())?;
    log::info!("stopped");
    Ok(())
}

/// The `--pid-file`, removed when the server stops.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile, String> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write the pid file {}: {e}", path.display()))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            log::warn!("cannot remove the pid file {}: {e}", self.0.display());
        }
    }
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
