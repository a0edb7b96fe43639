//! SIGINT/SIGTERM and SIGHUP handling for a running server, installed only
//! on request ([`crate::RunningServer::shutdown_on_signals`]).

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::handle::ServerHandle;

/// Starts a thread that turns the first SIGINT or SIGTERM into a graceful
/// shutdown of `handle`'s server and a second one into an immediate exit
/// with status 1, and each SIGHUP into a reload of the TLS certificate and
/// key (a reload that fails is logged and the old pair keeps serving). The
/// handlers are in place when this returns.
pub(crate) fn install(handle: ServerHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new().name("fanout-signals".into()).spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            if signal == SIGHUP {
                match handle.reload_tls() {
                    Ok(true) => log::info!("SIGHUP: TLS certificate and key reloaded for new connections"),
                    Ok(false) => log::info!("SIGHUP: no TLS to reload"),
                    Err(e) => log::error!("SIGHUP: {e}; the certificate in use stays"),
                }
            } else if !stopping {
                stopping = true;
                log::info!("signal {signal}: shutting down (close 1001 to every client)");
                handle.shutdown();
            } else {
                log::warn!("second signal: exiting without waiting");
                std::process::exit(1);
            }
        }
    })?;
    Ok(())
}
