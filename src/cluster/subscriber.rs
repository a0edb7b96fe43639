//! The thread that holds this node's subscribe connection to one Redis
//! instance and delivers what other nodes publish.
//!
//! It subscribes to its node's own channel, to the broadcast channel (on
//! the first instance), and to the Redis channel of every channel with a
//! member on this node, then reads. Memberships change on the workers,
//! which only mark the channel; the publisher then sends a wake on the
//! node's channel, and this thread, reading, compares each marked channel
//! with the directory and subscribes or unsubscribes in one command each.
//! Heartbeats arrive the same way: a connection silent for three of them
//! is dead (Redis gone, or it dropped us for a full output buffer), and is
//! made again with every channel subscribed afresh.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::envelope::{self, Body};
use super::names::{self, Names};
use super::{backoff, Counters, Shard, StoredSink};
use crate::handle::ServerHandle;

/// Channels named in one SUBSCRIBE or UNSUBSCRIBE at most.
const NAMES_PER_COMMAND: usize = 512;

/// The subscriber of one Redis instance.
pub(super) struct Subscriber {
    pub(super) shard: Arc<Shard>,
    /// Redis instances in the cluster, to tell which channels are this one's.
    pub(super) shards: usize,
    pub(super) counters: Arc<Counters>,
    pub(super) names: Names,
    pub(super) node: u64,
    pub(super) heartbeat: Duration,
    pub(super) server: ServerHandle,
    pub(super) stored_sink: Arc<OnceLock<StoredSink>>,
}

impl Subscriber {
    /// Connects, subscribes and delivers until the server shuts down;
    /// reconnects, with backoff, whenever the connection is lost.
    pub(super) fn run(self) {
        let mut failures = 0u32;
        let mut was_connected = false;
        while !self.server.is_shutting_down() {
            let mut connection = match self.connect() {
                Ok(connection) => connection,
                Err(e) => {
                    if failures == 0 {
                        log::warn!("redis {}: cannot connect to subscribe ({e}); retrying", self.shard.shown);
                    }
                    std::thread::sleep(backoff(failures));
                    failures = failures.saturating_add(1);
                    continue;
                }
            };
            if was_connected {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            was_connected = true;
            failures = 0;
            let outcome = self.serve(&mut connection);
            self.shard.subscribed.store(false, Ordering::Release);
            self.shard.subscriptions.store(0, Ordering::Relaxed);
            // Nothing is confirmed any more: greetings go out at once.
            let waiting = self.shard.ready.lock().reset();
            waiting.into_iter().for_each(|then| then());
            if let Err(e) = outcome {
                log::warn!("redis {}: subscription lost ({e}); reconnecting", self.shard.shown);
                std::thread::sleep(backoff(0));
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self.shard.client.get_connection_with_timeout(Duration::from_secs(2))?;
        connection.set_read_timeout(Some(self.heartbeat * 3))?;
        connection.set_write_timeout(Some(self.heartbeat * 3))?;
        Ok(connection)
    }

    /// Subscribes everything this node needs and delivers what arrives.
    /// Ok once the server shuts down; Err when the connection fails.
    fn serve(&self, connection: &mut redis::Connection) -> redis::RedisResult<()> {
        let control = self.names.control(self.node);
        let broadcast = self.names.broadcast();
        // The full list below covers every change marked before it.
        self.shard.changed.lock().clear();
        let mut held: HashSet<Arc<str>> = self
            .server
            .shared
            .channels
            .channels("")
            .into_iter()
            .map(|(name, _)| Arc::<str>::from(name))
            .filter(|name| names::shard_of(name, self.shards) == self.shard.index)
            .collect();
        held.extend(self.shard.holds.lock().keys().cloned());
        let mut fixed = vec![control.clone()];
        if self.shard.index == 0 {
            fixed.push(broadcast.clone());
        }
        let fixed_count = fixed.len();
        let mut first = fixed;
        first.extend(held.iter().map(|name| self.names.channel(name)));
        send(connection, "SUBSCRIBE", &first)?;
        self.shard.subscriptions.store((fixed_count + held.len()) as u64, Ordering::Relaxed);
        let mut confirmed = false;
        loop {
            let value = connection.recv_response()?;
            if self.server.is_shutting_down() {
                return Ok(());
            }
            if !confirmed {
                // The first reply is the confirmation of the node's own channel.
                confirmed = true;
                self.shard.subscribed.store(true, Ordering::Release);
                log::info!("redis {}: subscribed", self.shard.shown);
            }
            match Reply::of(value) {
                Reply::Subscribed(channel) => {
                    let name = std::str::from_utf8(&channel).ok().and_then(|c| self.names.channel_of(c));
                    if let Some(name) = name {
                        let waiting = self.shard.ready.lock().confirm(name);
                        waiting.into_iter().for_each(|then| then());
                    }
                }
                Reply::Message { channel, .. } if channel == control => {
                    self.sync(connection, &mut held)?;
                    self.shard.subscriptions.store((fixed_count + held.len()) as u64, Ordering::Relaxed);
                }
                Reply::Message { channel, payload } if channel == broadcast => self.deliver(None, payload),
                Reply::Message { channel, payload } => {
                    let name = std::str::from_utf8(&channel).ok().and_then(|c| self.names.channel_of(c));
                    if let Some(name) = name {
                        self.deliver(Some(name), payload);
                    }
                }
                Reply::Other => {}
            }
        }
    }

    /// Subscribes the marked channels that now have members here, and
    /// unsubscribes those that have none.
    fn sync(&self, connection: &mut redis::Connection, held: &mut HashSet<Arc<str>>) -> redis::RedisResult<()> {
        let changed: Vec<Arc<str>> = self.shard.changed.lock().drain().collect();
        let late = self.shard.ready.lock().expired(std::time::Instant::now());
        late.into_iter().for_each(|then| then());
        let (mut join, mut leave) = (Vec::new(), Vec::new());
        for channel in changed {
            let wanted = self.server.shared.channels.subscriptions(&channel) > 0
                || self.shard.holds.lock().contains_key(&channel);
            if wanted && !held.contains(&channel) {
                join.push(self.names.channel(&channel));
                held.insert(channel);
            } else if !wanted && held.remove(&channel) {
                self.shard.ready.lock().confirmed.remove(&channel);
                leave.push(self.names.channel(&channel));
            }
        }
        send(connection, "SUBSCRIBE", &join)?;
        send(connection, "UNSUBSCRIBE", &leave)
    }

    /// Hands an envelope from Redis to the workers (`channel`: a channel's
    /// publication; `None`: a broadcast). This node's own come back too:
    /// its members had them already, but for stored events, which only
    /// Redis can place.
    fn deliver(&self, channel: Option<&str>, payload: Vec<u8>) {
        let Ok(envelope) = envelope::decode(Bytes::from(payload)) else {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let body = match (channel, envelope.body) {
            (Some(channel), Body::Stored(mut stored)) => {
                if envelope.origin != self.node {
                    // Only the origin knows the connection it leaves out.
                    stored.except = None;
                    self.counters.received.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(sink) = self.stored_sink.get() {
                    sink(channel, stored);
                }
                return;
            }
            (_, body) => body,
        };
        if envelope.origin == self.node {
            return;
        }
        let delivered = match (channel, body) {
            (Some(channel), Body::Publication(publication)) => {
                self.server.publish_from_cluster(channel, &publication).is_ok()
            }
            (None, Body::Broadcast(frame)) => self.server.broadcast_from_cluster(frame).is_ok(),
            _ => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let counter = if delivered { &self.counters.received } else { &self.counters.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the subscribe connection read (RESP2 arrays), its bytes owned
/// rather than copied: a message's payload becomes the envelope's buffer.
enum Reply {
    /// `["subscribe", channel, count]`: Redis confirms a subscription.
    Subscribed(Vec<u8>),
    /// `["message", channel, payload]`.
    Message { channel: Vec<u8>, payload: Vec<u8> },
    /// Anything else (`unsubscribe` confirmations).
    Other,
}

impl Reply {
    fn of(value: redis::Value) -> Reply {
        let redis::Value::Array(parts) = value else { return Reply::Other };
        let mut parts = parts.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(redis::Value::BulkString(kind)), Some(redis::Value::BulkString(channel)), Some(third)) => {
                match (kind.as_slice(), third) {
                    (b"subscribe", _) => Reply::Subscribed(channel),
                    (b"message", redis::Value::BulkString(payload)) => Reply::Message { channel, payload },
                    _ => Reply::Other,
                }
            }
            _ => Reply::Other,
        }
    }
}

/// Sends `command` for `channels` without waiting for its replies (they
/// arrive among the messages, and are skipped there).
fn send(connection: &mut redis::Connection, command: &str, channels: &[Vec<u8>]) -> redis::RedisResult<()> {
    for chunk in channels.chunks(NAMES_PER_COMMAND) {
        let mut cmd = redis::cmd(command);
        for channel in chunk {
            cmd.arg(channel.as_slice());
        }
        connection.send_packed_command(&cmd.get_packed_command())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value::{Array, BulkString, Int};

    #[test]
    fn replies_are_told_apart_and_keep_their_bytes() {
        let bulk = |b: &[u8]| BulkString(b.to_vec());
        let message = Reply::of(Array(vec![bulk(b"message"), bulk(b"fanout:ch:1:c"), bulk(b"F\x01")]));
        assert!(
            matches!(message, Reply::Message { channel, payload } if channel == b"fanout:ch:1:c" && payload == b"F\x01")
        );
        let confirmed = Reply::of(Array(vec![bulk(b"subscribe"), bulk(b"fanout:ch:1:c"), Int(3)]));
        assert!(matches!(confirmed, Reply::Subscribed(channel) if channel == b"fanout:ch:1:c"));
        assert!(matches!(Reply::of(Array(vec![bulk(b"unsubscribe"), bulk(b"x"), Int(2)])), Reply::Other));
        assert!(matches!(Reply::of(Int(1)), Reply::Other));
    }
}
