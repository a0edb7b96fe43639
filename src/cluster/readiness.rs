//! Which channels' Redis subscriptions are confirmed, and the greetings
//! that wait for one (so that a client told it is subscribed gets what any
//! node publishes from then on).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which channels' Redis subscriptions are confirmed, and what waits for
/// a confirmation (a subscriber's greeting): run when it comes, when the
/// connection fails, or after [`READY_PATIENCE`] at the latest.
#[derive(Default)]
pub(crate) struct Readiness {
    pub(crate) confirmed: HashSet<Arc<str>>,
    pub(crate) waiting: Vec<(Arc<str>, Instant, Waiter)>,
}

/// What waits for a channel's Redis subscription.
pub(crate) type Waiter = Box<dyn FnOnce() + Send>;

/// The longest a greeting waits for its channel's Redis subscription.
pub(crate) const READY_PATIENCE: Duration = Duration::from_secs(2);

impl Readiness {
    /// Marks `channel` confirmed and hands back what waited for it.
    pub(crate) fn confirm(&mut self, channel: &str) -> Vec<Waiter> {
        self.confirmed.insert(Arc::from(channel));
        self.take(|name, _| &**name == channel)
    }

    /// Forgets every confirmation (the connection is gone) and hands back
    /// everything that waited.
    pub(crate) fn reset(&mut self) -> Vec<Waiter> {
        self.confirmed.clear();
        self.take(|_, _| true)
    }

    /// Hands back what waited longer than its patience.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<Waiter> {
        self.take(|_, since| now.saturating_duration_since(since) >= READY_PATIENCE)
    }

    fn take(&mut self, due: impl Fn(&Arc<str>, Instant) -> bool) -> Vec<Waiter> {
        let (ready, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|(name, since, _)| due(name, *since));
        self.waiting = waiting;
        ready.into_iter().map(|(_, _, then)| then).collect()
    }
}
