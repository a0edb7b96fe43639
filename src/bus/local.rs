//! What a worker thread keeps for itself: the commands its own hooks sent
//! to it, and per destination the commands another worker's full inbox
//! could not take yet.
//!
//! Kept thread-local so that a hook, which only has a `ServerHandle`, can
//! queue work without a channel or a lock when the target is its own
//! worker. Every entry is tagged with the bus it belongs to: a hook of one
//! server calling another server's handle is a stranger to that bus and
//! goes through its inboxes like any other thread.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::Bytes;

use super::Command;
use crate::conn_id::ConnId;

/// The per-thread state of a worker thread.
pub(super) struct WorkerLocal {
    /// The bus this thread is a worker of.
    pub(super) bus: u64,
    /// This worker's index on that bus.
    pub(super) worker: usize,
    /// Commands this worker sent to itself, oldest first.
    pub(super) local: VecDeque<Command>,
    /// The cost of the data commands in `local`.
    pub(super) local_bytes: usize,
    /// Per destination worker: commands its full inbox has not taken yet.
    pub(super) overflow: Vec<VecDeque<Command>>,
    /// The cost of every command in `overflow`.
    pub(super) overflow_bytes: usize,
}

thread_local! {
    static WORKER: RefCell<Option<WorkerLocal>> = const { RefCell::new(None) };
}

/// Marks the current thread as worker `worker` of `workers` on bus `bus`.
pub(super) fn enter(bus: u64, worker: usize, workers: usize) {
    WORKER.with(|cell| {
        *cell.borrow_mut() = Some(WorkerLocal {
            bus,
            worker,
            local: VecDeque::new(),
            local_bytes: 0,
            overflow: (0..workers).map(|_| VecDeque::new()).collect(),
            overflow_bytes: 0,
        });
    });
}

/// Runs `f` on this thread's worker state if the thread is a worker of
/// `bus`; `None` for any other thread.
pub(super) fn with<R>(bus: u64, f: impl FnOnce(&mut WorkerLocal) -> R) -> Option<R> {
    WORKER.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(local) if local.bus == bus => Some(f(local)),
            _ => None,
        }
    })
}

impl WorkerLocal {
    /// Queues a command for this worker itself.
    pub(super) fn push_local(&mut self, command: Command) {
        self.local_bytes += command.cost();
        self.local.push_back(command);
    }

    /// Takes out, in order, the pushes to `conn` sent to itself; the other
    /// commands keep their places.
    pub(super) fn take_pushes_to(&mut self, conn: ConnId) -> Vec<Bytes> {
        let mut frames = Vec::new();
        let mut kept = VecDeque::with_capacity(self.local.len());
        for command in self.local.drain(..) {
            match command {
                Command::Push { conn: to, frame } if to == conn => {
                    self.local_bytes -= frame.len() + super::COMMAND_OVERHEAD;
                    frames.push(frame);
                }
                other => kept.push_back(other),
            }
        }
        self.local = kept;
        frames
    }

    /// Takes the oldest command sent to itself, with its cost.
    pub(super) fn pop_local(&mut self) -> Option<(Command, usize)> {
        let command = self.local.pop_front()?;
        let cost = command.cost();
        self.local_bytes -= cost;
        Some((command, cost))
    }
}
