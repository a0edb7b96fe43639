//! The thread that publishes this node's envelopes to one Redis instance.
//!
//! It drains its queue in batches and sends each batch as one pipeline (one
//! round trip however many envelopes). It never holds anything back: while
//! Redis is away, what is queued is counted as lost and dropped (at most
//! once: a message a node's own clients got is never sent twice), and it
//! keeps trying to connect, with backoff. It also publishes to the node's
//! own Redis channel: a heartbeat every `heartbeat`, and a wake when
//! memberships changed, so the subscriber, blocked reading its connection,
//! looks at them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::{backoff, Counters, Link, Outgoing, Shard};
use crate::handle::ServerHandle;

/// Envelopes sent in one pipeline at most.
const BATCH: usize = 1024;

/// Bytes of envelopes sent in one pipeline at most (past it the batch ends
/// after the envelope that crossed it).
const BATCH_BYTES: usize = 1 << 20;

/// The publisher of one Redis instance.
pub(super) struct Publisher {
    pub(super) shard: Arc<Shard>,
    pub(super) counters: Arc<Counters>,
    /// This node's own Redis channel.
    pub(super) control: Vec<u8>,
    /// On the first Redis instance: the key that says this node is alive,
    /// set with each heartbeat. Set here, where nothing waits on a worker,
    /// so a node too busy to do anything else is not taken for dead.
    pub(super) alive: Option<Vec<u8>>,
    pub(super) heartbeat: Duration,
    pub(super) server: ServerHandle,
}

impl Publisher {
    /// Runs until the server shuts down, then sends what is queued (if it
    /// can) and ends.
    pub(super) fn run(self) {
        // With the SHA1 of the publishing script, loaded on each connection.
        let mut connection: Option<(Link, String)> = None;
        let mut failures = 0u32;
        let mut was_connected = false;
        let mut retry_at = Instant::now();
        let mut beat_at = Instant::now();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let stopping = self.server.is_shutting_down();
            if stopping && self.shard.inbox.is_empty() {
                return;
            }
            match self.shard.inbox.recv_timeout(self.heartbeat.min(Duration::from_millis(250))) {
                Ok(first) => self.fill(first, &mut batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if connection.is_none() && Instant::now() >= retry_at {
                match self.connect() {
                    Ok(made) => {
                        if was_connected {
                            bump(&self.counters.reconnects, 1);
                        }
                        was_connected = true;
                        log::info!("redis {}: publishing", self.shard.shown);
                        connection = Some(made);
                        failures = 0;
                        self.shard.publishing.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if failures == 0 {
                            log::warn!("redis {}: cannot connect to publish ({e}); retrying", self.shard.shown);
                        }
                        retry_at = Instant::now() + backoff(failures);
                        failures = failures.saturating_add(1);
                    }
                }
            }
            let beat = Instant::now() >= beat_at;
            let Some((live, sha)) = connection.as_mut() else {
                self.lose(&mut batch);
                continue;
            };
            let wake = self.shard.wake_pending.swap(false, Ordering::AcqRel);
            if batch.is_empty() && !beat && !wake {
                continue;
            }
            if beat {
                beat_at = Instant::now() + self.heartbeat;
            }
            if let Err(e) = self.send(live, sha, &mut batch, beat || wake) {
                log::warn!("redis {}: publishing failed ({e}); reconnecting", self.shard.shown);
                connection = None;
                self.shard.publishing.store(false, Ordering::Relaxed);
                // The subscriber still needs its wake once we are back.
                if wake {
                    self.shard.wake_pending.store(true, Ordering::Release);
                }
                retry_at = Instant::now() + backoff(0);
                failures = 1;
            }
        }
    }

    /// `first`, and whatever else is queued, up to a batch.
    fn fill(&self, first: Outgoing, batch: &mut Vec<Outgoing>) {
        let mut bytes = outgoing_bytes(&first);
        batch.push(first);
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            let Ok(next) = self.shard.inbox.try_recv() else { break };
            bytes += outgoing_bytes(&next);
            batch.push(next);
        }
    }

    fn connect(&self) -> redis::RedisResult<(Link, String)> {
        let mut link = self.shard.target.connect(self.heartbeat * 3)?;
        let sha = super::streams::load(link.as_dyn(), super::streams::PUBLISH_SCRIPT)?;
        Ok((link, sha))
    }

    /// Publishes `batch` (emptied either way) and, with `beat`, a word on
    /// the node's own channel (a heartbeat, or a wake), in one pipeline.
    /// `Wake` items only woke this thread: the flag they come with is what
    /// asks for the word.
    fn send(&self, link: &mut Link, sha: &str, batch: &mut Vec<Outgoing>, beat: bool) -> redis::RedisResult<()> {
        // Sharded pub/sub on a Redis Cluster: a channel's messages go to
        // the master of its slot only, and reach the nodes subscribed there.
        let publish = if self.shard.sharded { "SPUBLISH" } else { "PUBLISH" };
        let mut commands = Vec::with_capacity(batch.len() + 2);
        let mut envelopes = 0u64;
        for outgoing in batch.iter() {
            match outgoing {
                Outgoing::Publish { channel, envelope } => {
                    let mut command = redis::cmd(publish);
                    command.arg(channel).arg(envelope);
                    commands.push(command);
                    envelopes += 1;
                }
                Outgoing::Stored { keys, args } => {
                    let mut command = redis::cmd("EVALSHA");
                    command.arg(sha).arg(keys.len());
                    for part in keys.iter().chain(args) {
                        command.arg(part.as_slice());
                    }
                    command.arg(publish);
                    commands.push(command);
                    envelopes += 1;
                }
                Outgoing::Wake => {}
            }
        }
        let mut word = None;
        if beat {
            let mut command = redis::cmd("PUBLISH");
            command.arg(&self.control).arg(b"wake");
            word = Some(command);
            if let Some(alive) = &self.alive {
                let ttl = u64::try_from((self.heartbeat * 3).as_millis()).unwrap_or(u64::MAX);
                let mut command = redis::cmd("SET");
                command.arg(alive).arg(1).arg("PX").arg(ttl);
                commands.push(command);
            }
        }
        batch.clear();
        let sent = link.pipeline(commands, true).and_then(|_| match (word, &mut *link) {
            // A Redis Cluster's pipelines take no `PUBLISH`: the word goes alone.
            (Some(word), Link::Cluster(connection)) => word.query::<()>(&mut **connection),
            (Some(word), Link::One(connection)) => word.query::<()>(connection),
            (None, _) => Ok(()),
        });
        match sent {
            Ok(()) => {
                bump(&self.counters.published, envelopes);
                Ok(())
            }
            Err(e) => {
                bump(&self.counters.lost, envelopes);
                Err(e)
            }
        }
    }

    /// Drops `batch`, counting its envelopes as lost (Redis is away).
    fn lose(&self, batch: &mut Vec<Outgoing>) {
        let envelopes = batch.iter().filter(|o| !matches!(o, Outgoing::Wake)).count() as u64;
        bump(&self.counters.lost, envelopes);
        batch.clear();
    }
}

fn outgoing_bytes(outgoing: &Outgoing) -> usize {
    match outgoing {
        Outgoing::Publish { channel, envelope } => channel.len() + envelope.len(),
        Outgoing::Stored { keys, args } => keys.iter().chain(args).map(Vec::len).sum(),
        Outgoing::Wake => 0,
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    if by > 0 {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}
