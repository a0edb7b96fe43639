//! SIGINT/SIGTERM handling for a running server, installed only on request
//! ([`crate::RunningServer::shutdown_on_signals`]).

use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::handle::ServerHandle;

/// Starts a thread that turns the first SIGINT or SIGTERM into a graceful
/// shutdown of `handle`'s server and a second one into an immediate exit
/// with status 1. The handlers are in place when this returns.
pub(crate) fn install(handle: ServerHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("fanout-signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            log::info!("signal {signal}: shutting down (close 1001 to every client)");
            handle.shutdown();
        }
        if signals.forever().next().is_some() {
            log::warn!("second signal: exiting without waiting");
            std::process::exit(1);
        }
    })?;
    Ok(())
}
