//! Webhooks: what clients did, posted to each app's backend in Pusher's
//! format, never from a worker.
//!
//! Workers hand events to a scheduler thread through a bounded queue (a
//! full queue drops the event and counts it). The scheduler holds
//! `channel_vacated` and `member_removed` for [`DELAY`]: an
//! `channel_occupied` (or `member_added` of the same user) within it
//! cancels both, so a page reload does not tell the backend vacate then
//! occupy. Everything else is batched per app for up to [`BATCH_WINDOW`].
//! Posting (with retries) is `webhook_post`'s job, on threads of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::webhook_post::{self, Post};
use crate::metrics::MetricsOut;
use crate::pusher::webhook::{webhook_body, webhook_signature, WebhookEvent};
use crate::pusher::{App, Apps, WebhookTarget};

/// How long `channel_vacated` and `member_removed` wait to be cancelled.
pub(crate) const DELAY: Duration = Duration::from_secs(3);

/// How long an event waits for others to share its post.
pub(crate) const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Most events in one post.
const MAX_BATCH: usize = 100;

/// Events waiting for the scheduler.
const QUEUE: usize = 65_536;

/// Webhook figures for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct WebhookStats {
    pub(crate) events: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) posts_sent: AtomicU64,
    pub(crate) posts_failed: AtomicU64,
    pub(crate) retries: AtomicU64,
}

impl WebhookStats {
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The workers' side: queues events, never blocks.
#[derive(Clone)]
pub(crate) struct Webhooks {
    events: Option<Sender<(String, WebhookEvent)>>,
    stats: Arc<WebhookStats>,
}

/// One app's webhook settings, as the scheduler keeps them.
struct AppHooks {
    key: String,
    secret: String,
    targets: Vec<WebhookTarget>,
}

impl Webhooks {
    /// Starts the scheduler and posting threads when some app has
    /// webhooks; otherwise every `emit` is a no-op.
    pub(crate) fn start(apps: &Apps) -> Webhooks {
        let stats = Arc::new(WebhookStats::default());
        let hooks: HashMap<String, AppHooks> = apps
            .iter()
            .filter(|app| !app.webhooks.is_empty())
            .map(|app| {
                let hooks =
                    AppHooks { key: app.key.clone(), secret: app.secret.clone(), targets: app.webhooks.clone() };
                (app.id.clone(), hooks)
            })
            .collect();
        if hooks.is_empty() {
            return Webhooks { events: None, stats };
        }
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let posts = webhook_post::start(stats.clone());
        let scheduler = Scheduler { hooks, held: Vec::new(), batches: HashMap::new(), posts, stats: stats.clone() };
        let spawned = std::thread::Builder::new().name("fanout-webhooks".into()).spawn(move || scheduler.run(&rx));
        match spawned {
            Ok(_) => Webhooks { events: Some(tx), stats },
            Err(e) => {
                log::error!("cannot start the webhook thread ({e}): webhooks are off");
                Webhooks { events: None, stats }
            }
        }
    }

    /// Queues `event` of `app` if one of its targets wants it.
    pub(crate) fn emit(&self, app: &App, event: WebhookEvent) {
        let Some(events) = &self.events else { return };
        if !app.webhooks.iter().any(|t| t.wants(event.kind())) {
            return;
        }
        WebhookStats::bump(&self.stats.events, 1);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = events.try_send((app.id.clone(), event)) {
            WebhookStats::bump(&self.stats.dropped, 1);
        }
    }

    /// Writes the webhook figures.
    pub(crate) fn report(&self, out: &mut MetricsOut) {
        let stats = &self.stats;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        out.counter("fanout_webhook_events", "Webhook events queued", &[], load(&stats.events));
        out.counter(
            "fanout_webhook_events_dropped",
            "Webhook events dropped for a full queue",
            &[],
            load(&stats.dropped),
        );
        out.counter(
            "fanout_webhook_events_cancelled",
            "Vacate/remove events cancelled by a rejoin within the delay",
            &[],
            load(&stats.cancelled),
        );
        out.counter("fanout_webhook_posts", "Webhook posts answered 2xx", &[], load(&stats.posts_sent));
        out.counter(
            "fanout_webhook_posts_failed",
            "Webhook posts given up after retries",
            &[],
            load(&stats.posts_failed),
        );
        out.counter("fanout_webhook_retries", "Webhook posts retried", &[], load(&stats.retries));
    }
}

struct Scheduler {
    hooks: HashMap<String, AppHooks>,
    /// Vacate and remove events waiting out the delay.
    held: Vec<(Instant, String, WebhookEvent)>,
    /// Per app: when its first waiting event arrived, and the events.
    batches: HashMap<String, (Instant, Vec<WebhookEvent>)>,
    posts: Sender<Post>,
    stats: Arc<WebhookStats>,
}

impl Scheduler {
    fn run(mut self, events: &Receiver<(String, WebhookEvent)>) {
        loop {
            let now = Instant::now();
            let next = self.held.iter().map(|h| h.0).chain(self.batches.values().map(|b| b.0 + BATCH_WINDOW)).min();
            let wait = next.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(now));
            match events.recv_timeout(wait) {
                Ok((app, event)) => self.take(app, event, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    for (_, app, event) in std::mem::take(&mut self.held) {
                        self.batch(app, event, Instant::now());
                    }
                    let apps: Vec<String> = self.batches.keys().cloned().collect();
                    apps.into_iter().for_each(|app| self.flush(&app));
                    return;
                }
            }
            self.release(Instant::now());
        }
    }

    fn take(&mut self, app: String, event: WebhookEvent, now: Instant) {
        let cancels = |held: &WebhookEvent| match (&event, held) {
            (WebhookEvent::ChannelOccupied { channel }, WebhookEvent::ChannelVacated { channel: c }) => channel == c,
            (
                WebhookEvent::MemberAdded { channel, user_id },
                WebhookEvent::MemberRemoved { channel: c, user_id: u },
            ) => channel == c && user_id == u,
            _ => false,
        };
        if let Some(at) = self.held.iter().position(|(_, a, held)| *a == app && cancels(held)) {
            self.held.remove(at);
            WebhookStats::bump(&self.stats.cancelled, 2);
            return;
        }
        match event {
            WebhookEvent::ChannelVacated { .. } | WebhookEvent::MemberRemoved { .. } => {
                self.held.push((now + DELAY, app, event));
            }
            event => self.batch(app, event, now),
        }
    }

    fn batch(&mut self, app: String, event: WebhookEvent, now: Instant) {
        let full = {
            let batch = self.batches.entry(app.clone()).or_insert_with(|| (now, Vec::new()));
            batch.1.push(event);
            batch.1.len() >= MAX_BATCH
        };
        if full {
            self.flush(&app);
        }
    }

    /// Moves held events past their delay into batches, and posts batches
    /// past their window.
    fn release(&mut self, now: Instant) {
        let (due, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held).into_iter().partition(|h| h.0 <= now);
        self.held = held;
        for (_, app, event) in due {
            self.batch(app, event, now);
        }
        let ready: Vec<String> =
            self.batches.iter().filter(|(_, b)| b.0 + BATCH_WINDOW <= now).map(|(app, _)| app.clone()).collect();
        for app in ready {
            self.flush(&app);
        }
    }

    fn flush(&mut self, app: &str) {
        let Some((_, events)) = self.batches.remove(app) else { return };
        let Some(hooks) = self.hooks.get(app) else { return };
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        for target in &hooks.targets {
            let wanted: Vec<WebhookEvent> = events.iter().filter(|e| target.wants(e.kind())).cloned().collect();
            if wanted.is_empty() {
                continue;
            }
            let body = webhook_body(time_ms, &wanted);
            let signature = webhook_signature(&hooks.secret, &body);
            let post = Post { url: target.url.clone(), key: hooks.key.clone(), signature, body, events: wanted.len() };
            if self.posts.try_send(post).is_err() {
                WebhookStats::bump(&self.stats.dropped, wanted.len() as u64);
            }
        }
    }
}
