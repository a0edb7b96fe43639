//! The cross-worker fan-out bus: one bounded inbox plus a `mio::Waker` per
//! worker.
//!
//! A broadcast crosses to each worker once, as a shared, already encoded
//! frame (`Bytes` clones share one allocation), and each worker fans it out
//! to its own sockets. Commands a worker sends to itself (a hook pushing to
//! a connection of the same worker) skip the channel and the wake-up and go
//! to a thread-local queue the worker drains right after the hook returns.
//!
//! Backpressure: inboxes are bounded. A thread outside the workers blocks
//! when an inbox is full; a worker never blocks (two workers waiting on each
//! other would deadlock), it parks the command in a per-destination
//! overflow queue, stops reading from its clients until the overflow is
//! delivered, and so passes the pressure back to the TCP senders.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::Waker;

use crate::conn_id::ConnId;

/// Commands in a worker's inbox.
pub(crate) enum Command {
    /// Send `frame` to every open connection of the worker but `except`.
    Broadcast { frame: Bytes, except: Option<ConnId> },
    /// Send `frame` to one connection.
    Push { conn: ConnId, frame: Bytes },
    /// Close one connection with a close frame.
    Disconnect { conn: ConnId, code: u16, reason: String },
    /// Take ownership of a freshly accepted socket.
    Adopt(mio::net::TcpStream),
    /// Close every connection with 1001 and stop.
    Shutdown,
}

/// The sending half of one worker's inbox.
#[repr(align(128))]
struct Inbox {
    tx: Sender<Command>,
    waker: Waker,
    /// Set by the worker just before it blocks in `poll`; a sender that
    /// clears it owes the worker a wake-up. Saves one syscall per command
    /// while the worker is busy.
    parked: AtomicBool,
}

/// Senders to every worker's inbox; shared by all handles.
pub(crate) struct Bus {
    inboxes: Box<[Inbox]>,
}

/// Per-thread state of a worker thread.
struct WorkerLocal {
    worker: usize,
    local: Vec<Command>,
    overflow: Vec<VecDeque<Command>>,
}

thread_local! {
    static WORKER: RefCell<Option<WorkerLocal>> = const { RefCell::new(None) };
}

/// Commands in each inbox before senders feel backpressure.
pub(crate) const INBOX_CAPACITY: usize = 16 * 1024;

impl Bus {
    /// Builds the bus from each worker's waker; returns the receivers in
    /// worker order.
    pub(crate) fn new(wakers: Vec<Waker>) -> (Bus, Vec<Receiver<Command>>) {
        let mut receivers = Vec::with_capacity(wakers.len());
        let inboxes = wakers
            .into_iter()
            .map(|waker| {
                let (tx, rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
                receivers.push(rx);
                Inbox { tx, waker, parked: AtomicBool::new(false) }
            })
            .collect();
        (Bus { inboxes }, receivers)
    }

    /// Number of workers.
    pub(crate) fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Delivers `command` to worker `dest`; false when the worker is gone.
    pub(crate) fn send(&self, dest: usize, command: Command) -> bool {
        let Some(inbox) = self.inboxes.get(dest) else { return false };
        let leftover = WORKER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let Some(local) = slot.as_mut() else { return Some(command) };
            if local.worker == dest {
                local.local.push(command);
                return None;
            }
            let queue = &mut local.overflow[dest];
            if !queue.is_empty() {
                queue.push_back(command);
                return None;
            }
            match inbox.tx.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(command)) => queue.push_back(command),
                // The worker has exited; the command is moot.
                Err(TrySendError::Disconnected(_)) => {}
            }
            None
        });
        if let Some(command) = leftover {
            if inbox.tx.send(command).is_err() {
                return false;
            }
        }
        self.wake_if_parked(inbox);
        true
    }

    fn wake_if_parked(&self, inbox: &Inbox) {
        if inbox.parked.swap(false, Ordering::SeqCst) {
            if let Err(e) = inbox.waker.wake() {
                log::error!("cannot wake a worker: {e}");
            }
        }
    }

    /// Wakes worker `dest` unconditionally (used for shutdown).
    pub(crate) fn wake(&self, dest: usize) -> io::Result<()> {
        match self.inboxes.get(dest) {
            Some(inbox) => inbox.waker.wake(),
            None => Ok(()),
        }
    }

    /// Marks the calling worker as about to block; returns false (and stays
    /// unparked) when its inbox already holds work.
    pub(crate) fn park(&self, worker: usize, rx: &Receiver<Command>) -> bool {
        let inbox = &self.inboxes[worker];
        inbox.parked.store(true, Ordering::SeqCst);
        if rx.is_empty() {
            return true;
        }
        inbox.parked.store(false, Ordering::SeqCst);
        false
    }

    /// Marks the calling worker as running again.
    pub(crate) fn unpark(&self, worker: usize) {
        self.inboxes[worker].parked.store(false, Ordering::SeqCst);
    }

    /// Retries the calling worker's overflowed commands in order; true when
    /// none remain.
    pub(crate) fn flush_overflow(&self) -> bool {
        WORKER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let Some(local) = slot.as_mut() else { return true };
            let mut all_sent = true;
            for (dest, queue) in local.overflow.iter_mut().enumerate() {
                let inbox = &self.inboxes[dest];
                let mut sent_any = false;
                while let Some(command) = queue.pop_front() {
                    match inbox.tx.try_send(command) {
                        Ok(()) => sent_any = true,
                        Err(TrySendError::Full(command)) => {
                            queue.push_front(command);
                            all_sent = false;
                            break;
                        }
                        Err(TrySendError::Disconnected(_)) => queue.clear(),
                    }
                }
                if sent_any {
                    self.wake_if_parked(inbox);
                }
            }
            all_sent
        })
    }
}

/// Marks the current thread as worker `worker` of `workers`.
pub(crate) fn enter_worker(worker: usize, workers: usize) {
    WORKER.with(|cell| {
        *cell.borrow_mut() =
            Some(WorkerLocal { worker, local: Vec::new(), overflow: (0..workers).map(|_| VecDeque::new()).collect() });
    });
}

/// Takes the commands the current worker sent to itself, oldest first.
pub(crate) fn take_local(into: &mut Vec<Command>) {
    WORKER.with(|cell| {
        if let Some(local) = cell.borrow_mut().as_mut() {
            std::mem::swap(into, &mut local.local);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};

    fn bus(workers: usize) -> (Bus, Vec<Receiver<Command>>, Vec<Poll>) {
        let polls: Vec<Poll> = (0..workers).map(|_| Poll::new().unwrap()).collect();
        let wakers = polls.iter().map(|p| Waker::new(p.registry(), Token(0)).unwrap()).collect();
        let (bus, rx) = Bus::new(wakers);
        (bus, rx, polls)
    }

    #[test]
    fn a_broadcast_reaches_each_worker_sharing_one_allocation() {
        let (bus, rx, _polls) = bus(3);
        let frame = Bytes::from_static(b"\x81\x02hi");
        for dest in 0..3 {
            assert!(bus.send(dest, Command::Broadcast { frame: frame.clone(), except: None }));
        }
        for r in &rx {
            match r.try_recv() {
                Ok(Command::Broadcast { frame: got, .. }) => assert_eq!(got.as_ptr(), frame.as_ptr()),
                _ => panic!("expected a broadcast"),
            }
        }
    }

    #[test]
    fn a_worker_sending_to_itself_skips_the_channel() {
        let (bus, rx, _polls) = bus(2);
        let handle = std::thread::spawn(move || {
            enter_worker(1, 2);
            assert!(bus.send(1, Command::Shutdown));
            let mut local = Vec::new();
            take_local(&mut local);
            local.len()
        });
        assert_eq!(handle.join().unwrap(), 1);
        assert!(rx[1].is_empty());
    }

    #[test]
    fn a_full_inbox_overflows_locally_for_a_worker_and_drains_in_order() {
        let (bus, rx, _polls) = bus(2);
        let rx0 = rx[0].clone();
        let handle = std::thread::spawn(move || {
            enter_worker(1, 2);
            for i in 0..INBOX_CAPACITY + 10 {
                let conn = ConnId::new(0, i as u64);
                assert!(bus.send(0, Command::Push { conn, frame: Bytes::new() }));
            }
            assert!(!bus.flush_overflow());
            let mut seen = 0u64;
            while seen < (INBOX_CAPACITY + 10) as u64 {
                while let Ok(Command::Push { conn, .. }) = rx0.try_recv() {
                    assert_eq!(conn, ConnId::new(0, seen));
                    seen += 1;
                }
                bus.flush_overflow();
            }
            bus.flush_overflow()
        });
        assert!(handle.join().unwrap());
    }

    #[test]
    fn park_refuses_when_work_is_waiting() {
        let (bus, rx, _polls) = bus(1);
        assert!(bus.park(0, &rx[0]));
        bus.unpark(0);
        bus.send(0, Command::Shutdown);
        assert!(!bus.park(0, &rx[0]));
    }
}
