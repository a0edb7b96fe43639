//! The scenarios (`connect`, `broadcast`, `echo`, `overload`, `channels`, `socketio`) and `run_local`, which
//! runs this process's share of one on `plan.threads` event-loop threads (plus, for `channels`,
//! the HTTP API publisher and the saturation search) and sums their results.

pub mod broadcast;
pub mod capacity_board;
pub mod channels;
pub mod connect;
pub mod echo;
pub mod overload;
pub mod probe;
pub mod socketio;

use std::io;
use std::sync::Arc;

use crate::channels::board::ChannelsBoard;
use crate::channels::plan::Via;
use crate::channels::{api_publisher, search};
use crate::client::{Cause, Conn, Handler};
use crate::hist::Hist;
use crate::live::Live;
use crate::plan::{Kind, Plan};
use crate::scenario::capacity_board::CapacityBoard;
use crate::stats::Partial;
use crate::{sys, worker};

/// Runs this process's connections to the end of the plan; returns the merged result. The
/// overload threads pool their probe counts on `board`.
pub fn run_local(plan: Arc<Plan>, live: Arc<Live>, board: Arc<CapacityBoard>) -> io::Result<Partial> {
    let wall0 = sys::now_ns();
    let cpu0 = sys::cpu_time_ns(false);
    let channels = match &plan.kind {
        Kind::Channels(cp) => Some(Arc::new(ChannelsBoard::new(cp))),
        _ => None,
    };
    let mut handles: Vec<_> = (0..plan.threads)
        .map(|thread| {
            let (plan, live, board) = (Arc::clone(&plan), Arc::clone(&live), Arc::clone(&board));
            let channels = channels.clone();
            std::thread::Builder::new().name(format!("loadtest-{thread}")).spawn(move || match plan.kind {
                Kind::Connect => worker::run(&plan, thread, connect::Connect::default(), &live),
                Kind::Broadcast { .. } => {
                    let driver = broadcast::Broadcast::new(Arc::clone(&plan), thread);
                    worker::run(&plan, thread, driver, &live)
                }
                Kind::Echo { .. } => worker::run(&plan, thread, echo::Echo::new(Arc::clone(&plan), thread), &live),
                Kind::Overload(_) => {
                    let driver = overload::Overload::new(Arc::clone(&plan), thread, board);
                    worker::run(&plan, thread, driver, &live)
                }
                Kind::SocketIo(_) => {
                    worker::run(&plan, thread, socketio::SocketIo::new(Arc::clone(&plan), thread), &live)
                }
                Kind::Channels(_) => {
                    let board = channels.expect("a channels run has a board");
                    worker::run(&plan, thread, channels::Channels::new(Arc::clone(&plan), thread, board), &live)
                }
            })
        })
        .collect::<io::Result<_>>()?;
    if let (Kind::Channels(cp), Some(board)) = (&plan.kind, &channels) {
        // The API publisher runs in the first process only; the search needs a single process.
        if cp.via == Via::Api && plan.proc_index == 0 {
            let (plan, board) = (Arc::clone(&plan), Arc::clone(board));
            handles.push(
                std::thread::Builder::new()
                    .name("loadtest-api".into())
                    .spawn(move || api_publisher::run(plan, board))?,
            );
        }
        if cp.saturation() {
            let (plan, board) = (Arc::clone(&plan), Arc::clone(board));
            handles.push(std::thread::Builder::new().name("loadtest-search".into()).spawn(move || {
                let decisions = search::run(plan, board);
                let channels = crate::channels::stats::ChannelsPartial { decisions, ..Default::default() };
                Ok(Partial { channels: Some(channels), ..Partial::default() })
            })?);
        }
    }
    let mut total = Partial::default();
    for h in handles {
        let part = h.join().map_err(|_| io::Error::other("an event-loop thread panicked"))??;
        total.merge(&part);
    }
    total.process_cpu_ns.push(sys::cpu_time_ns(false) - cpu0);
    total.process_wall_ns.push(sys::now_ns() - wall0);
    total.process_threads.push(plan.threads as u64);
    Ok(total)
}

/// What a scenario does with open connections, on top of [`Handler`]'s per-message callbacks.
pub trait Driver: Handler {
    /// Sends whatever is due at `now`, pushing each slot written to onto `dirty`. Returns the
    /// next instant it needs to run (`u64::MAX`: only when something arrives).
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64;
    /// Measuring starts; connections open now are the ones that count.
    fn on_measure_start(&mut self, conns: &[Conn]);
    /// Connection `slot` ended at `now` for `cause`, before the test closed it.
    fn on_end(&mut self, slot: usize, cause: &Cause, now: u64);
    /// Moves the latencies recorded since the last call into `into`.
    fn take_interval(&mut self, into: &mut Hist);
    /// Messages received so far.
    fn deliveries(&self) -> u64;
    /// Final scenario statistics.
    fn finish(&mut self, now: u64) -> Partial;
}
