//! Starting, running and stopping the server: the listener, the acceptor
//! thread and one worker thread per reactor.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Waker};
use parking_lot::Mutex;

use crate::acceptor::{Acceptor, AcceptorStop};
use crate::bus::{Bus, InboxBounds, InboxReceiver};
use crate::channels::ChannelDirectory;
use crate::config::{Config, INBOX_COMMANDS};
use crate::error::ServerError;
use crate::guard;
use crate::handle::{ServerHandle, Shared};
use crate::handler::Handler;
use crate::per_ip::PerIpLimits;
use crate::registry::Registry;
use crate::shard::transport::Transport;
use crate::shard::{Worker, WAKER_TOKEN};
use crate::stats::WorkerCounters;
use crate::sys;
use crate::tls::stream::TlsStream;
use crate::tls::TlsContext;

/// A bound server that has not started its threads yet.
pub struct Server<H: Handler> {
    handler: Arc<H>,
    handle: ServerHandle,
    listener: std::net::TcpListener,
    polls: Vec<Poll>,
    receivers: Vec<InboxReceiver>,
    acceptor_stop: Arc<Mutex<Option<AcceptorStop>>>,
}

/// How a worker thread ended.
type WorkerResult = Result<(), ServerError>;

/// A server whose threads are running.
pub struct RunningServer {
    handle: ServerHandle,
    workers: Vec<JoinHandle<WorkerResult>>,
    acceptor: Option<JoinHandle<std::io::Result<()>>>,
}

impl<H: Handler> Server<H> {
    /// Validates `config` and binds the listening socket; nothing runs
    /// until [`Server::start`].
    pub fn bind(config: Config, handler: H) -> Result<Self, ServerError> {
        config.validate()?;
        // Certificates first: a bad file is reported before the port is taken.
        let tls = config.tls.as_ref().map(TlsContext::load).transpose()?;
        let cluster = config.cluster.as_ref().map(crate::cluster::Cluster::new).transpose()?;
        let listener = sys::bind_listener(config.bind, config.backlog)
            .map_err(|source| ServerError::Bind { addr: config.bind, source })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: config.bind, source })?;
        let start = |what| move |source| ServerError::Start { what, source };
        let mut polls = Vec::with_capacity(config.workers);
        let mut wakers = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            let poll = Poll::new().map_err(start("a worker's poller"))?;
            wakers.push(Waker::new(poll.registry(), WAKER_TOKEN).map_err(start("a worker's waker"))?);
            polls.push(poll);
        }
        let bounds = InboxBounds { commands: INBOX_COMMANDS, bytes: config.inbox_bytes };
        let (bus, receivers) = Bus::new(wakers, bounds);
        let acceptor_stop: Arc<Mutex<Option<AcceptorStop>>> = Arc::new(Mutex::new(None));
        let stop_on_shutdown = acceptor_stop.clone();
        let shared = Shared {
            bus,
            registry: Registry::new(config.workers, config.max_connections),
            channels: ChannelDirectory::new(config.workers),
            counters: (0..config.workers).map(|_| WorkerCounters::default()).collect(),
            refused_descriptors: AtomicU64::new(0),
            local_addr,
            shutting_down: AtomicBool::new(false),
            on_shutdown: Box::new(move || {
                if let Some(stop) = stop_on_shutdown.lock().as_ref() {
                    stop.stop();
                }
            }),
            per_ip: PerIpLimits::new(config.max_connections_per_ip, config.max_handshakes_per_ip),
            tls,
            cluster,
            config,
            deferrals: Default::default(),
        };
        let handle = ServerHandle { shared: Arc::new(shared) };
        Ok(Server { handler: Arc::new(handler), handle, listener, polls, receivers, acceptor_stop })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A handle that works before and after start.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Starts the worker threads and the acceptor. If any of them cannot
    /// start, the ones already started are stopped before the error is
    /// returned.
    pub fn start(self) -> Result<RunningServer, ServerError> {
        guard::install_panic_hook();
        let config = self.handle.config().clone();
        let mut running = RunningServer { handle: self.handle.clone(), workers: Vec::new(), acceptor: None };
        let tls = self.handle.shared.tls.is_some();
        if let Some(cluster) = &self.handle.shared.cluster {
            cluster.start(&self.handle).map_err(|source| ServerError::Start { what: "the Redis bridge", source })?;
        }
        if let Err(panic) = guard::call(|| self.handler.on_start(&self.handle)) {
            log::error!("the application's on_start panicked: {panic}; the server goes on");
        }
        for (index, (poll, inbox)) in self.polls.into_iter().zip(self.receivers).enumerate() {
            let (handler, handle) = (self.handler.clone(), self.handle.clone());
            let pin = config.pin_cores;
            let spawned = std::thread::Builder::new().name(format!("fanout-worker-{index}"));
            let spawned = if tls {
                let worker = Worker::<H, TlsStream>::new(index, poll, inbox, handler, handle.clone());
                spawned.spawn(move || run_worker(index, worker, pin, &handle))
            } else {
                let worker = Worker::<H, mio::net::TcpStream>::new(index, poll, inbox, handler, handle.clone());
                spawned.spawn(move || run_worker(index, worker, pin, &handle))
            };
            let thread = spawned.map_err(|source| ServerError::Start { what: "a worker thread", source })?;
            running.workers.push(thread);
        }
        let (acceptor, stop) =
            Acceptor::new(self.listener).map_err(|source| ServerError::Start { what: "the acceptor", source })?;
        *self.acceptor_stop.lock() = Some(stop);
        let handle = self.handle.clone();
        let acceptor = std::thread::Builder::new()
            .name("fanout-acceptor".into())
            .spawn(move || acceptor.run(&handle.shared))
            .map_err(|source| ServerError::Start { what: "the acceptor thread", source })?;
        running.acceptor = Some(acceptor);
        if self.handle.is_shutting_down() {
            // A shutdown requested before start must still stop the acceptor.
            if let Some(stop) = self.acceptor_stop.lock().as_ref() {
                stop.stop();
            }
        }
        Ok(running)
    }
}

/// A worker thread's life: run the loop; whatever ends it, mark the worker
/// gone (no socket or push is handed to it any more), and if it ended by
/// panic or error, stop the whole server.
fn run_worker<H: Handler, T: Transport>(
    index: usize,
    worker: Worker<H, T>,
    pin: bool,
    handle: &ServerHandle,
) -> WorkerResult {
    if pin && !sys::pin_current_thread(index) {
        log::warn!("worker {index}: could not pin to a core");
    }
    let outcome = match panic::catch_unwind(AssertUnwindSafe(|| worker.run())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(ServerError::WorkerFailed { index, source }),
        Err(panic) => Err(ServerError::WorkerPanicked { index, message: guard::payload_text(panic.as_ref()) }),
    };
    handle.shared.bus.mark_gone(index);
    if outcome.is_err() {
        // Its sockets died with it; a clean exit has closed them already.
        handle.shared.registry.forget_worker(index);
        // Nobody will see those members leave: the channels they alone
        // held are vacated now (no hook runs: the worker's thread is gone).
        for channel in handle.shared.channels.forget_worker(index) {
            log::debug!("channel {channel} vacated with worker {index}");
            if let Some(cluster) = &handle.shared.cluster {
                cluster.membership_changed(&channel);
            }
        }
    }
    if let Err(e) = &outcome {
        log::error!("{e}; stopping the server");
        handle.shutdown();
    }
    outcome
}

impl RunningServer {
    /// A handle to the running server.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Installs the SIGINT/SIGTERM handling the `fanout` binary has: the
    /// first signal starts a graceful shutdown (close 1001 to every client,
    /// then [`RunningServer::wait`] returns), a second one exits the process
    /// at once with status 1. Call it at most once per process.
    pub fn shutdown_on_signals(&self) -> Result<(), ServerError> {
        crate::signals::install(self.handle.clone()).map_err(ServerError::Signals)
    }

    /// Shuts down gracefully and waits: stop accepting, close every client
    /// with 1001 after what was queued for it, and stop within
    /// `shutdown_timeout`.
    pub fn shutdown(self) -> Result<(), ServerError> {
        self.handle.shutdown();
        self.wait()
    }

    /// Waits until the server has stopped (after someone called
    /// [`ServerHandle::shutdown`], a signal arrived, or a worker failed,
    /// which is returned as the error).
    pub fn wait(mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for (index, worker) in self.workers.drain(..).enumerate() {
            let outcome = match worker.join() {
                Ok(outcome) => outcome,
                Err(panic) => Err(ServerError::WorkerPanicked { index, message: guard::payload_text(panic.as_ref()) }),
            };
            if result.is_ok() {
                result = outcome;
            }
        }
        // Workers exit only after shutdown, which stops the acceptor too.
        self.handle.shutdown();
        if let Some(acceptor) = self.acceptor.take() {
            match acceptor.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("acceptor stopped with an error: {e}"),
                Err(panic) => log::error!("acceptor panicked: {}", guard::payload_text(panic.as_ref())),
            }
        }
        result
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !self.workers.is_empty() || self.acceptor.is_some() {
            self.handle.shutdown();
            for worker in self.workers.drain(..) {
                let _ = worker.join();
            }
            if let Some(acceptor) = self.acceptor.take() {
                let _ = acceptor.join();
            }
        }
    }
}
