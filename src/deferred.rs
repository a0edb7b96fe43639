//! Deferred HTTP responses: [`Handler::on_http`](crate::Handler::on_http)
//! answers a request later, from any thread, without holding its worker.
//! What needs it: an answer that waits for something slow (a disk write
//! with group commit, another service), which a worker must never wait for.
//!
//! The hook returns the placeholder of [`ServerHandle::defer_response`] and
//! hands its [`Responder`] to whoever will answer. The connection reads no
//! further request until then (HTTP/1.1 answers in order); its other
//! connections and the worker go on. A responder dropped unsent answers
//! 500; a response not given within the handshake timeout answers 504 and
//! closes the connection.
//!
//! Either side may come first: the responder may answer before the worker
//! has even seen the placeholder. One slot per deferred response records
//! which side is waiting for the other, and is gone once both are done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::bus::{Command, Wait};
use crate::handle::{ServerHandle, Shared};
use crate::http::Response;

/// Where one deferred response stands.
#[derive(Debug)]
enum Slot {
    /// Neither side is done yet.
    Pending,
    /// The worker holds the connection and waits for the response.
    Waiting { worker: usize },
    /// The response came before the worker saw the placeholder.
    Early(Response),
    /// The connection ended while waiting: the response has nowhere to go.
    Gone,
}

/// Every deferred response in flight, shared by the workers and responders.
#[derive(Debug, Default)]
pub(crate) struct Deferrals {
    next: AtomicU64,
    slots: Mutex<HashMap<u64, Slot>>,
}

impl Deferrals {
    fn open(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.slots.lock().insert(id, Slot::Pending);
        id
    }

    /// The worker met the placeholder `id`: the response if it came already
    /// (answer it now), else `None` (the worker waits for `Command::Respond`).
    pub(crate) fn register(&self, id: u64, worker: usize) -> Option<Response> {
        let mut slots = self.slots.lock();
        match slots.remove(&id) {
            Some(Slot::Early(response)) => Some(response),
            Some(Slot::Pending) => {
                slots.insert(id, Slot::Waiting { worker });
                None
            }
            // Not opened by this server, or registered twice: answer at once.
            other => {
                if let Some(other) = other {
                    slots.insert(id, other);
                }
                Some(Response::text(500, "this response was deferred twice\n"))
            }
        }
    }

    /// The response for `id`: the worker to send it to, or `None` when it
    /// was kept for a worker still to come (or has nowhere to go).
    fn complete(&self, id: u64, response: Response) -> Option<(usize, Response)> {
        let mut slots = self.slots.lock();
        match slots.remove(&id) {
            Some(Slot::Pending) => {
                slots.insert(id, Slot::Early(response));
                None
            }
            Some(Slot::Waiting { worker }) => Some((worker, response)),
            Some(Slot::Gone | Slot::Early(_)) | None => None,
        }
    }

    /// The connection waiting for `id` ended.
    pub(crate) fn forget(&self, id: u64) {
        let mut slots = self.slots.lock();
        if let Some(Slot::Waiting { .. }) = slots.get(&id) {
            slots.insert(id, Slot::Gone);
        }
    }

    /// Deferred responses not finished on both sides.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.lock().len()
    }
}

/// Answers one deferred request, once, from any thread. Dropping it unsent
/// answers 500.
#[must_use = "a dropped responder answers 500"]
pub struct Responder {
    shared: Arc<Shared>,
    id: u64,
    sent: bool,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").field("id", &self.id).field("sent", &self.sent).finish()
    }
}

impl Responder {
    /// Answers the request with `response` (waiting for room in the
    /// worker's inbox if called from outside the workers).
    pub fn send(mut self, response: Response) {
        self.sent = true;
        deliver(&self.shared, self.id, response);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.sent {
            deliver(&self.shared, self.id, Response::text(500, "the application dropped its response\n"));
        }
    }
}

fn deliver(shared: &Shared, id: u64, response: Response) {
    if let Some((worker, response)) = shared.deferrals.complete(id, response) {
        // Closed: the server stopped, and the connection with it.
        let _ = shared.bus.send(worker, Command::Respond { id, response }, Wait::Forever);
    }
}

impl ServerHandle {
    /// A response to give later: return the placeholder from
    /// [`Handler::on_http`](crate::Handler::on_http) (only from there, once)
    /// and answer with the [`Responder`], from any thread. Until then the
    /// connection reads no further request; a response not given within the
    /// handshake timeout is answered 504.
    pub fn defer_response(&self) -> (Response, Responder) {
        let id = self.shared.deferrals.open();
        (Response::deferred(id), Responder { shared: Arc::clone(&self.shared), id, sent: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_side_may_come_first_and_the_slot_goes_when_both_are_done() {
        let deferrals = Deferrals::default();
        let early = deferrals.open();
        assert!(deferrals.complete(early, Response::new(204)).is_none(), "kept for the worker");
        assert_eq!(deferrals.register(early, 3).map(|r| r.status()), Some(204));
        let late = deferrals.open();
        assert!(deferrals.register(late, 1).is_none(), "the worker waits");
        assert_eq!(deferrals.complete(late, Response::new(200)).map(|(w, r)| (w, r.status())), Some((1, 200)));
        assert_eq!(deferrals.in_flight(), 0);
    }

    #[test]
    fn a_response_for_a_connection_that_ended_is_dropped_without_a_trace() {
        let deferrals = Deferrals::default();
        let id = deferrals.open();
        assert!(deferrals.register(id, 0).is_none());
        deferrals.forget(id);
        assert!(deferrals.complete(id, Response::new(200)).is_none());
        assert_eq!(deferrals.in_flight(), 0);
        assert_eq!(deferrals.register(99, 0).map(|r| r.status()), Some(500), "an id never opened");
    }
}
