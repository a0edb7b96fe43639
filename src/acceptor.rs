//! The acceptor thread: accepts connections and hands each to the worker
//! holding the fewest sockets.
//!
//! Why one acceptor rather than an SO_REUSEPORT listener per worker: the
//! kernel spreads reuseport connections by a hash of the 4-tuple, which is
//! even only on average and blind to how many connections each worker
//! still holds, so churn skews it; a worker busy with a large fan-out would
//! also leave its own listener's queue waiting. Accepting is cheap next to
//! the life of a push connection, and one hand-off per connection through
//! the bus costs nothing on the broadcast path.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::bus::Command;
use crate::handle::Shared;
use crate::http::Response;
use crate::sys;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// How long accepting pauses when descriptors run out and even the spare
/// one cannot be used.
const EXHAUSTED_PAUSE: Duration = Duration::from_millis(100);

/// Stops the acceptor from another thread.
pub(crate) struct AcceptorStop {
    stop: Arc<AtomicBool>,
    waker: Waker,
}

impl AcceptorStop {
    /// Asks the acceptor to close its listener and exit.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the acceptor: {e}");
        }
    }
}

/// The accepting loop, run on its own thread.
pub(crate) struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    spare: Option<std::fs::File>,
    next: usize,
}

impl Acceptor {
    /// An acceptor for `listener` and the handle that stops it.
    pub(crate) fn new(listener: std::net::TcpListener) -> io::Result<(Acceptor, AcceptorStop)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = Acceptor { poll, listener, stop: stop.clone(), spare: sys::spare_descriptor(), next: 0 };
        Ok((acceptor, AcceptorStop { stop, waker }))
    }

    /// Accepts until stopped; the listener closes when this returns.
    pub(crate) fn run(mut self, shared: &Shared) -> io::Result<()> {
        let mut events = Events::with_capacity(8);
        let mut timeout = None;
        loop {
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            // After a pause for exhausted descriptors no new edge may come: retry regardless.
            timeout = self.accept_pending(shared);
        }
    }

    /// Accepts every pending connection; returns a poll timeout when it had
    /// to pause for descriptors.
    fn accept_pending(&mut self, shared: &Shared) -> Option<Duration> {
        loop {
            match self.listener.accept() {
                Ok((socket, peer)) => {
                    if let Err(e) = socket.set_nodelay(true) {
                        log::debug!("cannot set TCP_NODELAY for {peer}: {e}");
                    }
                    // A worker that has died is never handed a socket.
                    let Some(worker) = shared.registry.least_loaded(self.next, |w| !shared.bus.is_gone(w)) else {
                        log::error!("no worker is running: dropping the connection from {peer}");
                        continue;
                    };
                    self.next = (worker + 1) % shared.bus.workers();
                    shared.registry.socket_added(worker);
                    if !shared.bus.send_control(worker, Command::Adopt(socket)) {
                        shared.registry.socket_removed(worker);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if sys::is_descriptor_exhaustion(&e) => {
                    if self.refuse_with_spare() {
                        shared.refused_descriptors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        log::warn!("out of file descriptors ({e}); pausing accept for {EXHAUSTED_PAUSE:?}");
                        return Some(EXHAUSTED_PAUSE);
                    }
                }
                // ECONNABORTED and friends concern only that one peer.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
    }

    /// Frees the spare descriptor to accept one waiting connection and
    /// answer it with 503, then takes the spare back. False when that was
    /// not possible.
    fn refuse_with_spare(&mut self) -> bool {
        if self.spare.take().is_none() {
            self.spare = sys::spare_descriptor();
            return false;
        }
        let refused = match self.listener.accept() {
            Ok((mut socket, peer)) => {
                let response = Response::text(503, "server is out of file descriptors\n")
                    .header("Retry-After", "1")
                    .encode(false, false);
                if socket.write_all(&response).is_err() {
                    log::debug!("could not tell {peer} that descriptors ran out");
                }
                let _ = socket.shutdown(std::net::Shutdown::Write);
                log::warn!("at the open-file limit: refused {peer} with 503");
                true
            }
            Err(_) => false,
        };
        self.spare = sys::spare_descriptor();
        refused && self.spare.is_some()
    }
}
