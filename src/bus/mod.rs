//! The cross-worker fan-out bus: one inbox plus a `mio::Waker` per worker.
//!
//! A broadcast crosses to each worker once, as a shared, already encoded
//! frame (`Bytes` clones share one allocation), and each worker fans it out
//! to its own sockets. Commands a worker sends to itself (a hook pushing to
//! a connection of the same worker) skip the channel and the wake-up.
//!
//! Backpressure:
//! - Data (broadcasts, pushes) is bounded per inbox in commands and in bytes
//!   (frame plus [`COMMAND_OVERHEAD`]). Control (new sockets, disconnects,
//!   shutdown) has a channel of its own and never waits behind data.
//! - A thread outside the workers chooses: [`Wait::No`] answers
//!   [`SendError::Full`] at once, [`Wait::Until`] waits up to a deadline,
//!   [`Wait::Forever`] waits as long as it takes. A broadcast is all or
//!   nothing: it is sent only once every worker has room for it.
//! - A worker never waits (two workers waiting on each other would
//!   deadlock): what a full inbox refuses goes to a per-destination
//!   overflow queue, the worker stops reading the clients that publish
//!   until it is delivered, and the destination wakes it as soon as it has
//!   drained to half its bounds.

mod command;
mod inbox;
mod local;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use mio::Waker;

pub use command::SendError;
pub(crate) use command::{Broadcast, Command, DeflateCache, Publish, Wait, COMMAND_OVERHEAD};
pub(crate) use inbox::{Inbox, InboxBounds, InboxReceiver};

use crate::conn_id::ConnId;

static NEXT_BUS_ID: AtomicU64 = AtomicU64::new(1);

/// Senders to every worker's inbox; shared by all handles.
pub(crate) struct Bus {
    id: u64,
    inboxes: Box<[Inbox]>,
    /// Every worker's index: a broadcast's destinations.
    everyone: Box<[usize]>,
}

impl Bus {
    /// Builds the bus from each worker's waker; returns the receivers in
    /// worker order.
    pub(crate) fn new(wakers: Vec<Waker>, bounds: InboxBounds) -> (Bus, Vec<InboxReceiver>) {
        let mut receivers = Vec::with_capacity(wakers.len());
        let inboxes = wakers
            .into_iter()
            .map(|waker| {
                let (inbox, rx) = Inbox::new(waker, bounds);
                receivers.push(rx);
                inbox
            })
            .collect();
        let id = NEXT_BUS_ID.fetch_add(1, Ordering::Relaxed);
        let everyone = (0..receivers.len()).collect();
        (Bus { id, inboxes, everyone }, receivers)
    }

    /// Number of workers.
    pub(crate) fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Worker `worker`'s inbox (for its gauges).
    pub(crate) fn inbox(&self, worker: usize) -> Option<&Inbox> {
        self.inboxes.get(worker)
    }

    /// Marks the calling thread as worker `worker` of this bus.
    pub(crate) fn enter_worker(&self, worker: usize) {
        local::enter(self.id, worker, self.workers());
    }

    /// The worker index of the calling thread if it is a worker of this bus.
    #[cfg(test)]
    pub(crate) fn current_worker(&self) -> Option<usize> {
        local::with(self.id, |local| local.worker)
    }

    /// Every worker's index.
    pub(crate) fn every_worker(&self) -> &[usize] {
        &self.everyone
    }

    /// Sends `sends` (worker, command) straight into the workers' inboxes,
    /// all or none, never waiting and never through a worker's own queue or
    /// its overflow, from any thread: `Full` when one inbox lacks room,
    /// `Closed` when a worker is gone. Several threads calling this one
    /// after another (under a lock of theirs) have their commands applied
    /// by each worker in the order of the calls, whichever thread made
    /// them: the order a channel's history needs.
    pub(crate) fn send_through_inboxes(&self, sends: Vec<(usize, Command)>) -> Result<(), SendError> {
        let mut reserved: Vec<(usize, usize)> = Vec::with_capacity(sends.len());
        let mut failure = None;
        for (dest, command) in &sends {
            match self.inboxes.get(*dest) {
                Some(inbox) if !inbox.is_gone() => {
                    let cost = command.cost();
                    if inbox.reserve(cost) {
                        reserved.push((*dest, cost));
                        continue;
                    }
                    failure = Some(SendError::Full);
                }
                _ => failure = Some(SendError::Closed),
            }
            break;
        }
        if let Some(failure) = failure {
            for (dest, cost) in reserved {
                self.inboxes[dest].unreserve(cost);
            }
            return Err(failure);
        }
        let mut woken = Vec::new();
        for ((dest, command), (_, cost)) in sends.into_iter().zip(reserved) {
            let inbox = &self.inboxes[dest];
            if inbox.send_reserved(command, cost) && !woken.contains(&dest) {
                woken.push(dest);
            }
        }
        for dest in woken {
            self.wake_if_parked(&self.inboxes[dest]);
        }
        Ok(())
    }

    /// Sends a control command to worker `dest` from any thread; false
    /// when that worker is gone.
    pub(crate) fn send_control(&self, dest: usize, command: Command) -> bool {
        let Some(inbox) = self.inboxes.get(dest) else { return false };
        let to_self = local::with(self.id, |local| local.worker == dest) == Some(true);
        if to_self && matches!(command, Command::Disconnect { .. }) {
            // A hook's disconnect of its own worker's connection keeps its
            // place behind the pushes that hook made before it.
            return self.push_to_self(command);
        }
        if !inbox.send_control(command) {
            return false;
        }
        self.wake_if_parked(inbox);
        true
    }

    /// Sends a data command to worker `dest`. A worker thread never waits
    /// (see the module doc); another thread waits as `wait` allows.
    pub(crate) fn send(&self, dest: usize, command: Command, wait: Wait) -> Result<(), SendError> {
        let Some(inbox) = self.inboxes.get(dest) else { return Err(SendError::Closed) };
        if inbox.is_gone() {
            return Err(SendError::Closed);
        }
        let mut command = Some(command);
        let from_worker = local::with(self.id, |local| {
            if let Some(command) = command.take() {
                if local.worker == dest {
                    local.push_local(command);
                } else {
                    self.send_or_overflow(local, dest, command);
                }
            }
        });
        let (None, Some(command)) = (from_worker, command) else { return Ok(()) };
        let cost = command.cost();
        if !self.reserve_or_wait(&[dest], cost, wait)? {
            return Err(SendError::Full);
        }
        if !inbox.send_reserved(command, cost) {
            return Err(SendError::Closed);
        }
        self.wake_if_parked(inbox);
        Ok(())
    }

    /// Sends `broadcast` to every worker. From a worker thread this never
    /// waits; from another thread it is all or nothing: sent once every
    /// worker has room, or not at all (`Full`).
    pub(crate) fn broadcast(&self, broadcast: Broadcast, wait: Wait) -> Result<(), SendError> {
        let cost = broadcast.frame.len() + COMMAND_OVERHEAD;
        self.multicast(&self.everyone, cost, || Command::Broadcast(broadcast.clone()), wait)
    }

    /// Sends the command `make` builds to each worker of `dests`, with the
    /// same guarantees as [`Bus::broadcast`]; `Closed` when none of them
    /// is alive.
    pub(crate) fn multicast(
        &self,
        dests: &[usize],
        cost: usize,
        make: impl Fn() -> Command,
        wait: Wait,
    ) -> Result<(), SendError> {
        let sent = local::with(self.id, |local| {
            for &dest in dests {
                if local.worker == dest {
                    local.push_local(make());
                } else if self.inboxes.get(dest).is_some_and(|inbox| !inbox.is_gone()) {
                    self.send_or_overflow(local, dest, make());
                }
            }
        });
        if sent.is_some() {
            return Ok(());
        }
        let live: Vec<usize> =
            dests.iter().copied().filter(|&w| self.inboxes.get(w).is_some_and(|inbox| !inbox.is_gone())).collect();
        if live.is_empty() {
            return Err(SendError::Closed);
        }
        if !self.reserve_or_wait(&live, cost, wait)? {
            return Err(SendError::Full);
        }
        for &dest in &live {
            let inbox = &self.inboxes[dest];
            if inbox.send_reserved(make(), cost) {
                self.wake_if_parked(inbox);
            }
        }
        Ok(())
    }

    /// Reserves room for one command of `cost` in every inbox of `dests`,
    /// all or none, waiting as `wait` allows; Ok(false) when it gave up.
    fn reserve_or_wait(&self, dests: &[usize], cost: usize, wait: Wait) -> Result<bool, SendError> {
        loop {
            let mut blocked = None;
            for (i, &dest) in dests.iter().enumerate() {
                if !self.inboxes[dest].reserve(cost) {
                    for &taken in &dests[..i] {
                        self.inboxes[taken].unreserve(cost);
                    }
                    blocked = Some(dest);
                    break;
                }
            }
            let Some(blocked) = blocked else { return Ok(true) };
            let inbox = &self.inboxes[blocked];
            let deadline = match wait {
                Wait::No => return Ok(false),
                Wait::Until(deadline) if Instant::now() >= deadline => return Ok(false),
                Wait::Until(deadline) => Some(deadline),
                Wait::Forever => None,
            };
            // Waits without holding room elsewhere, so two senders can never
            // hold what the other waits for.
            let room = inbox.wait_for_room(deadline, || {
                let got = inbox.reserve(cost);
                if got {
                    inbox.unreserve(cost);
                }
                got
            });
            if inbox.is_gone() {
                return Err(SendError::Closed);
            }
            if !room && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    fn push_to_self(&self, command: Command) -> bool {
        local::with(self.id, |local| local.push_local(command)).is_some()
    }

    /// From worker `local`: straight into `dest`'s inbox if it has room and
    /// nothing is waiting before it, else into the overflow queue.
    fn send_or_overflow(&self, local: &mut local::WorkerLocal, dest: usize, command: Command) {
        let inbox = &self.inboxes[dest];
        let cost = command.cost();
        if local.overflow[dest].is_empty() && inbox.reserve(cost) {
            if inbox.send_reserved(command, cost) {
                self.wake_if_parked(inbox);
            }
            return;
        }
        local.overflow_bytes += cost;
        local.overflow[dest].push_back(command);
        inbox.wake_when_drained(local.worker);
    }

    /// Retries the calling worker's overflowed commands in order; true when
    /// none remain.
    pub(crate) fn flush_overflow(&self) -> bool {
        local::with(self.id, |local| {
            let mut all_sent = true;
            for dest in 0..local.overflow.len() {
                let inbox = &self.inboxes[dest];
                let mut sent_any = false;
                while let Some(command) = local.overflow[dest].pop_front() {
                    let cost = command.cost();
                    if inbox.is_gone() {
                        local.overflow_bytes -= cost;
                        continue;
                    }
                    if !inbox.reserve(cost) {
                        local.overflow[dest].push_front(command);
                        inbox.wake_when_drained(local.worker);
                        all_sent = false;
                        break;
                    }
                    local.overflow_bytes -= cost;
                    sent_any |= inbox.send_reserved(command, cost);
                }
                if sent_any {
                    self.wake_if_parked(inbox);
                }
            }
            all_sent
        })
        .unwrap_or(true)
    }

    /// The calling worker's pending bytes: sent to itself and not applied
    /// yet, and overflowed towards other workers.
    pub(crate) fn pending_bytes(&self) -> (usize, usize) {
        local::with(self.id, |local| (local.local_bytes, local.overflow_bytes)).unwrap_or((0, 0))
    }

    /// Takes the oldest command the calling worker sent to itself; returns
    /// it with its cost.
    pub(crate) fn pop_local(&self) -> Option<(Command, usize)> {
        local::with(self.id, local::WorkerLocal::pop_local).flatten()
    }

    /// Takes out, in order, the pushes to `conn` the calling worker sent to
    /// itself and has not applied yet; everything else keeps its place.
    pub(crate) fn take_local_pushes_to(&self, conn: ConnId) -> Vec<Bytes> {
        let has_local = local::with(self.id, |local| !local.local.is_empty()).unwrap_or(false);
        if !has_local {
            return Vec::new();
        }
        local::with(self.id, |local| local.take_pushes_to(conn)).unwrap_or_default()
    }

    /// Takes the next control command from a worker's inbox.
    pub(crate) fn take_control(&self, rx: &InboxReceiver) -> Option<Command> {
        rx.control.try_recv().ok()
    }

    /// Takes the next data command from worker `worker`'s inbox; returns it
    /// with its cost, and wakes senders waiting for room.
    pub(crate) fn take_data(&self, worker: usize, rx: &InboxReceiver) -> Option<(Command, usize)> {
        let inbox = self.inboxes.get(worker)?;
        let command = rx.data.try_recv().ok()?;
        let cost = command.cost();
        inbox.released(cost, |waiting| {
            if let Err(e) = self.wake(waiting) {
                log::error!("cannot wake worker {waiting}: {e}");
            }
        });
        Some((command, cost))
    }

    fn wake_if_parked(&self, inbox: &Inbox) {
        if inbox.parked.swap(false, Ordering::SeqCst) {
            if let Err(e) = inbox.waker.wake() {
                log::error!("cannot wake a worker: {e}");
            }
        }
    }

    /// Wakes worker `dest` unconditionally.
    pub(crate) fn wake(&self, dest: usize) -> io::Result<()> {
        match self.inboxes.get(dest) {
            Some(inbox) => inbox.waker.wake(),
            None => Ok(()),
        }
    }

    /// Marks worker `worker` as about to block; returns false (and stays
    /// unparked) when its inbox already holds work.
    pub(crate) fn park(&self, worker: usize, rx: &InboxReceiver) -> bool {
        let inbox = &self.inboxes[worker];
        inbox.parked.store(true, Ordering::SeqCst);
        if rx.data.is_empty() && rx.control.is_empty() {
            return true;
        }
        inbox.parked.store(false, Ordering::SeqCst);
        false
    }

    /// Marks worker `worker` as running again.
    pub(crate) fn unpark(&self, worker: usize) {
        self.inboxes[worker].parked.store(false, Ordering::SeqCst);
    }

    /// Records that worker `worker`'s thread ended: sends to it fail from
    /// now on, and whoever waits for its inbox stops waiting.
    pub(crate) fn mark_gone(&self, worker: usize) {
        if let Some(inbox) = self.inboxes.get(worker) {
            inbox.mark_gone();
        }
    }

    /// True once worker `worker`'s thread has ended.
    pub(crate) fn is_gone(&self, worker: usize) -> bool {
        self.inboxes.get(worker).is_none_or(Inbox::is_gone)
    }
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
