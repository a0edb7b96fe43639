//! Posting webhooks: a few threads with a blocking HTTP client, each post
//! retried with backoff, bounded queue in front (a full one drops, counted).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::webhooks::WebhookStats;
use crate::pusher::webhook::{KEY_HEADER, SIGNATURE_HEADER};

/// Threads posting at once (a slow backend holds one each).
const POSTERS: usize = 2;

/// Posts waiting for a thread.
const QUEUE: usize = 1024;

/// Waits before each retry; a post is given up after the last.
const BACKOFF: [Duration; 3] = [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)];

/// The longest one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One signed body for one target.
pub(crate) struct Post {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) signature: String,
    pub(crate) body: String,
    /// Events in the body.
    pub(crate) events: usize,
}

/// Starts the posting threads; they end when the returned sender is dropped.
pub(crate) fn start(stats: Arc<WebhookStats>) -> Sender<Post> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let config = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build();
    let agent = ureq::Agent::new_with_config(config);
    for n in 0..POSTERS {
        let (rx, agent, stats): (Receiver<Post>, _, _) = (rx.clone(), agent.clone(), stats.clone());
        let spawned = std::thread::Builder::new().name(format!("fanout-webhook-{n}")).spawn(move || {
            for post in rx {
                deliver(&agent, &post, &stats);
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start a webhook posting thread: {e}");
        }
    }
    tx
}

fn deliver(agent: &ureq::Agent, post: &Post, stats: &WebhookStats) {
    let mut last_error = String::new();
    for attempt in 0..=BACKOFF.len() {
        if attempt > 0 {
            WebhookStats::bump(&stats.retries, 1);
            std::thread::sleep(BACKOFF[attempt - 1]);
        }
        let sent = agent
            .post(&post.url)
            .header("Content-Type", "application/json")
            .header(KEY_HEADER, &post.key)
            .header(SIGNATURE_HEADER, &post.signature)
            .send(post.body.as_str());
        match sent {
            Ok(response) if response.status().is_success() => {
                WebhookStats::bump(&stats.posts_sent, 1);
                return;
            }
            // A 4xx other than 429 will not get better by asking again.
            Ok(response) if response.status().is_client_error() && response.status().as_u16() != 429 => {
                last_error = format!("answered {}", response.status());
                break;
            }
            Ok(response) => last_error = format!("answered {}", response.status()),
            Err(e) => last_error = e.to_string(),
        }
    }
    WebhookStats::bump(&stats.posts_failed, 1);
    log::warn!("webhook to {} with {} event(s) failed: {last_error}", post.url, post.events);
}
