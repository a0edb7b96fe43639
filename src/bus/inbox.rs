//! One worker's inbox: a data channel bounded in commands and bytes, an
//! unbounded control channel, a waker, and the bookkeeping that lets a full
//! inbox wake whoever waits for it once it drains.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use parking_lot::{Condvar, Mutex};

use super::Command;

/// The bounds of one inbox's data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InboxBounds {
    /// Most data commands waiting at once.
    pub(crate) commands: usize,
    /// Most bytes (frames plus a per-command overhead) waiting at once; an
    /// empty inbox still takes one command of any size.
    pub(crate) bytes: usize,
}

/// The sending half of one worker's inbox, shared by every sender.
#[repr(align(128))]
pub(crate) struct Inbox {
    data: Sender<Command>,
    control: Sender<Command>,
    pub(super) waker: Waker,
    /// Set by the worker just before it blocks in `poll`; a sender that
    /// clears it owes the worker a wake-up. Saves a syscall per command
    /// while the worker is busy.
    pub(super) parked: AtomicBool,
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    bounds: InboxBounds,
    /// The worker's thread has ended: nothing sent here will be applied.
    gone: AtomicBool,
    /// Workers whose overflow waits for room here, woken when it drains.
    waiting_workers: Mutex<Vec<usize>>,
    has_waiting_workers: AtomicBool,
    /// Threads outside the workers waiting for room here.
    room: Condvar,
    room_lock: Mutex<()>,
    waiting_threads: AtomicUsize,
}

/// The receiving half, owned by the worker.
pub(crate) struct InboxReceiver {
    pub(super) data: Receiver<Command>,
    pub(super) control: Receiver<Command>,
}

impl Inbox {
    /// A new inbox woken through `waker`, and its receiving half.
    pub(crate) fn new(waker: Waker, bounds: InboxBounds) -> (Inbox, InboxReceiver) {
        let (data_tx, data_rx) = crossbeam_channel::unbounded();
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let inbox = Inbox {
            data: data_tx,
            control: control_tx,
            waker,
            parked: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            bounds,
            gone: AtomicBool::new(false),
            waiting_workers: Mutex::new(Vec::new()),
            has_waiting_workers: AtomicBool::new(false),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            waiting_threads: AtomicUsize::new(0),
        };
        (inbox, InboxReceiver { data: data_rx, control: control_rx })
    }

    /// Takes room for one data command costing `cost` bytes; false (and
    /// nothing taken) when that would pass a bound.
    pub(super) fn reserve(&self, cost: usize) -> bool {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.bounds.commands {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let before = self.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        if before != 0 && before.saturating_add(cost) > self.bounds.bytes {
            self.unreserve(cost);
            return false;
        }
        true
    }

    /// Gives back room taken by [`Inbox::reserve`] for a command that was
    /// not sent after all.
    pub(super) fn unreserve(&self, cost: usize) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
    }

    /// Sends a data command whose room was reserved; false when the worker
    /// is gone (the room is given back).
    pub(super) fn send_reserved(&self, command: Command, cost: usize) -> bool {
        if self.gone.load(Ordering::Acquire) || self.data.send(command).is_err() {
            self.unreserve(cost);
            return false;
        }
        true
    }

    /// Sends a control command; those are never bounded, so they never
    /// wait behind data. False when the worker is gone.
    pub(super) fn send_control(&self, command: Command) -> bool {
        !self.gone.load(Ordering::Acquire) && self.control.send(command).is_ok()
    }

    /// Accounts for a data command the worker took out, and wakes whoever
    /// waits for room once the inbox is down to half its bounds.
    pub(super) fn released(&self, cost: usize, wake_worker: impl Fn(usize)) {
        let queued = self.queued.fetch_sub(1, Ordering::AcqRel) - 1;
        let bytes = self.queued_bytes.fetch_sub(cost, Ordering::AcqRel) - cost;
        if queued > self.bounds.commands / 2 || bytes > self.bounds.bytes / 2 {
            return;
        }
        if self.has_waiting_workers.swap(false, Ordering::AcqRel) {
            for worker in std::mem::take(&mut *self.waiting_workers.lock()) {
                wake_worker(worker);
            }
        }
        if self.waiting_threads.load(Ordering::Acquire) > 0 {
            let _guard = self.room_lock.lock();
            self.room.notify_all();
        }
    }

    /// Asks to be woken (through worker `worker`'s waker) when this inbox
    /// drains to half its bounds.
    pub(super) fn wake_when_drained(&self, worker: usize) {
        let mut waiting = self.waiting_workers.lock();
        if !waiting.contains(&worker) {
            waiting.push(worker);
        }
        self.has_waiting_workers.store(true, Ordering::Release);
    }

    /// Blocks the calling thread until `ready` holds or `deadline` passes;
    /// `ready` is checked under the lock the draining worker notifies
    /// under, so no wake-up is lost. Returns the last value of `ready`.
    pub(super) fn wait_for_room(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        let mut guard = self.room_lock.lock();
        self.waiting_threads.fetch_add(1, Ordering::AcqRel);
        let result = loop {
            if ready() {
                break true;
            }
            if self.is_gone() {
                break false;
            }
            match deadline {
                Some(deadline) => {
                    if self.room.wait_until(&mut guard, deadline).timed_out() {
                        break ready();
                    }
                }
                None => self.room.wait(&mut guard),
            }
        };
        self.waiting_threads.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// Data commands waiting now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Bytes of data commands waiting now.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Records that the worker's thread ended, and wakes every waiter so
    /// none waits for room that will never come.
    pub(crate) fn mark_gone(&self) {
        self.gone.store(true, Ordering::Release);
        let _guard = self.room_lock.lock();
        self.room.notify_all();
    }

    /// True once the worker's thread has ended.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};

    fn inbox(commands: usize, bytes: usize) -> (Inbox, InboxReceiver, Poll) {
        let poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), Token(0)).expect("waker");
        let (inbox, rx) = Inbox::new(waker, InboxBounds { commands, bytes });
        (inbox, rx, poll)
    }

    #[test]
    fn reservations_stop_at_the_byte_bound_but_an_empty_inbox_takes_anything() {
        let (inbox, _rx, _poll) = inbox(100, 1000);
        assert!(inbox.reserve(5000), "an empty inbox takes one command of any size");
        assert!(!inbox.reserve(1));
        inbox.unreserve(5000);
        assert!(inbox.reserve(600));
        assert!(inbox.reserve(400));
        assert!(!inbox.reserve(1));
        assert_eq!(inbox.queued_bytes(), 1000);
    }

    #[test]
    fn reservations_stop_at_the_command_bound() {
        let (inbox, _rx, _poll) = inbox(3, 1 << 20);
        assert!((0..3).all(|_| inbox.reserve(1)));
        assert!(!inbox.reserve(1));
        assert_eq!(inbox.queued(), 3);
    }

    #[test]
    fn releasing_to_half_wakes_waiting_workers_once() {
        let (inbox, _rx, _poll) = inbox(4, 1 << 20);
        assert!((0..4).all(|_| inbox.reserve(1)));
        inbox.wake_when_drained(7);
        inbox.wake_when_drained(7);
        let woken = std::cell::RefCell::new(Vec::new());
        inbox.released(1, |w| woken.borrow_mut().push(w));
        assert!(woken.borrow().is_empty(), "3 of 4 queued is above half");
        inbox.released(1, |w| woken.borrow_mut().push(w));
        inbox.released(1, |w| woken.borrow_mut().push(w));
        assert_eq!(*woken.borrow(), vec![7]);
    }

    #[test]
    fn a_thread_waiting_for_room_wakes_when_the_worker_drains() {
        let (inbox, _rx, _poll) = inbox(2, 1 << 20);
        let inbox = std::sync::Arc::new(inbox);
        assert!(inbox.reserve(1) && inbox.reserve(1));
        let waiter = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.wait_for_room(None, || inbox.reserve(1)))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        inbox.released(1, |_| {});
        inbox.released(1, |_| {});
        assert!(waiter.join().expect("waiter"));
    }

    #[test]
    fn waiting_for_room_gives_up_at_the_deadline_and_when_the_worker_is_gone() {
        let (inbox, _rx, _poll) = inbox(1, 1 << 20);
        assert!(inbox.reserve(1));
        let deadline = Instant::now() + std::time::Duration::from_millis(10);
        assert!(!inbox.wait_for_room(Some(deadline), || inbox.reserve(1)));
        inbox.mark_gone();
        assert!(!inbox.wait_for_room(None, || inbox.reserve(1)));
    }
}
