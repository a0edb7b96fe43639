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
use std::sync::atomic::{AtomicBool, AtomicUsize};
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

/// The slot ranges a connection serves on a Redis Cluster; `None`: every
/// channel of its shard.
type Slots = Option<Vec<(u16, u16)>>;

/// What one subscribe connection covers.
struct Part<'a> {
    /// On a Redis Cluster: the slots of the master it is connected to.
    slots: Slots,
    /// It also subscribes to the node-wide broadcast channel.
    broadcast: bool,
    /// Parts subscribed so far, of `parts`: once all are, the shard is.
    up: &'a AtomicUsize,
    parts: usize,
    /// Set when a part ends, so that the others end too and all begin
    /// again (on a Redis Cluster, with the slot map as it is then).
    stop: &'a AtomicBool,
}

impl Part<'_> {
    /// Whether channel `redis_channel` is this part's.
    fn owns(&self, redis_channel: &[u8]) -> bool {
        let slot = key_slot(redis_channel);
        self.slots.as_ref().is_none_or(|ranges| ranges.iter().any(|&(from, to)| (from..=to).contains(&slot)))
    }
}

impl Subscriber {
    /// Connects, subscribes and delivers until the server shuts down;
    /// reconnects, with backoff, whenever a connection is lost (on a Redis
    /// Cluster: all of them, after reading the slot map again).
    pub(super) fn run(self) {
        let mut failures = 0u32;
        let mut was_connected = false;
        while !self.server.is_shutting_down() {
            let connections = match self.connect_all() {
                Ok(connections) => connections,
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
            let outcome = self.serve_all(connections);
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

    /// A connection to the instance; on a Redis Cluster, one to each
    /// master, with the slots it serves.
    fn connect_all(&self) -> redis::RedisResult<Vec<(redis::Connection, Slots)>> {
        if !self.shard.sharded {
            return Ok(vec![(self.connect(&self.shard.client)?, None)]);
        }
        let mut link = self.shard.target.connect(Duration::from_secs(2))?;
        let slots: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query(link.as_dyn())?;
        let masters = masters(slots)
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Parse, "CLUSTER SLOTS gave no masters")))?;
        let seed = self.shard.client.get_connection_info();
        masters
            .into_iter()
            .map(|((host, port), ranges)| {
                let addr = match seed.addr() {
                    redis::ConnectionAddr::TcpTls { insecure, tls_params, .. } => redis::ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => redis::ConnectionAddr::Tcp(host, port),
                };
                let client = redis::Client::open(seed.clone().set_addr(addr))?;
                Ok((self.connect(&client)?, Some(ranges)))
            })
            .collect()
    }

    fn connect(&self, client: &redis::Client) -> redis::RedisResult<redis::Connection> {
        let connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        connection.set_read_timeout(Some(self.heartbeat * 3))?;
        connection.set_write_timeout(Some(self.heartbeat * 3))?;
        Ok(connection)
    }

    /// Serves every connection, each on a thread of its own (one on the
    /// caller's), until one ends; then all end.
    fn serve_all(&self, connections: Vec<(redis::Connection, Slots)>) -> redis::RedisResult<()> {
        let (up, stop, parts) = (AtomicUsize::new(0), AtomicBool::new(false), connections.len());
        let broadcast = self.names.broadcast();
        let part = |slots| {
            let mut part = Part { slots, broadcast: false, up: &up, parts, stop: &stop };
            // One Redis instance carries the broadcasts: the first; on a
            // Redis Cluster, the master of their shard channel's slot.
            part.broadcast = match self.shard.sharded {
                true => part.owns(&broadcast),
                false => self.shard.index == 0,
            };
            part
        };
        std::thread::scope(|scope| {
            let mut connections = connections.into_iter();
            let Some((mut first, slots)) = connections.next() else { return Ok(()) };
            let others: Vec<_> = connections
                .map(|(mut connection, slots)| {
                    let part = part(slots);
                    scope.spawn(move || {
                        let outcome = self.serve(&mut connection, &part);
                        part.stop.store(true, Ordering::Release);
                        outcome
                    })
                })
                .collect();
            let first_part = part(slots);
            let mut outcome = self.serve(&mut first, &first_part);
            stop.store(true, Ordering::Release);
            for other in others {
                let ended =
                    other.join().unwrap_or_else(|_| Err((redis::ErrorKind::Io, "a subscriber panicked").into()));
                outcome = outcome.and(ended);
            }
            outcome
        })
    }

    /// Subscribes everything this node needs of `part` and delivers what
    /// arrives. Ok once the server shuts down (or another part ended); Err
    /// when the connection fails, or a slot moved away from its master.
    fn serve(&self, connection: &mut redis::Connection, part: &Part<'_>) -> redis::RedisResult<()> {
        let control = self.names.control(self.node);
        let broadcast = self.names.broadcast();
        let mine =
            |name: &str| names::shard_of(name, self.shards) == self.shard.index && part.owns(&self.names.channel(name));
        // The full list below covers every change marked before it.
        self.shard.changed.lock().retain(|name| !mine(name));
        let mut held: HashSet<Arc<str>> = self
            .server
            .shared
            .channels
            .channels("")
            .into_iter()
            .map(|(name, _)| Arc::<str>::from(name))
            .filter(|name| mine(name))
            .collect();
        held.extend(self.shard.holds.lock().keys().filter(|name| mine(name)).cloned());
        // The node's own channel is plain pub/sub on every connection, so
        // each hears the heartbeats that prove it alive; the broadcasts are
        // a shard channel on a Redis Cluster.
        let mut fixed = vec![control.clone()];
        if part.broadcast && !self.shard.sharded {
            fixed.push(broadcast.clone());
        }
        send(connection, "SUBSCRIBE", &fixed)?;
        if part.broadcast && self.shard.sharded {
            send(connection, "SSUBSCRIBE", std::slice::from_ref(&broadcast))?;
            fixed.push(broadcast.clone());
        }
        let fixed_count = fixed.len() as u64;
        let first: Vec<Vec<u8>> = held.iter().map(|name| self.names.channel(name)).collect();
        self.subscribe(connection, &first)?;
        let mut counted = fixed_count + held.len() as u64;
        self.shard.subscriptions.fetch_add(counted, Ordering::Relaxed);
        let mut confirmed = false;
        let outcome = loop {
            let value = match connection.recv_response() {
                Ok(value) => value,
                Err(e) => break Err(e),
            };
            if self.server.is_shutting_down() || part.stop.load(Ordering::Acquire) {
                break Ok(());
            }
            if !confirmed {
                // The first reply is the confirmation of the node's own channel.
                confirmed = true;
                if part.up.fetch_add(1, Ordering::AcqRel) + 1 == part.parts {
                    self.shard.subscribed.store(true, Ordering::Release);
                    log::info!("redis {}: subscribed", self.shard.shown);
                }
            }
            match Reply::of(value) {
                Reply::Subscribed(channel) => {
                    let name = std::str::from_utf8(&channel).ok().and_then(|c| self.names.channel_of(c));
                    if let Some(name) = name {
                        let waiting = self.shard.ready.lock().confirm(name);
                        waiting.into_iter().for_each(|then| then());
                    }
                }
                Reply::Unsubscribed(channel) => {
                    let name = std::str::from_utf8(&channel).ok().and_then(|c| self.names.channel_of(c));
                    if name.is_some_and(|name| held.contains(name)) {
                        // Redis dropped it: its slot moved to another master.
                        break Err((redis::ErrorKind::Io, "a channel's slot moved").into());
                    }
                }
                Reply::Message { channel, .. } if channel == control => {
                    if let Err(e) = self.sync(connection, &mut held, &mine) {
                        break Err(e);
                    }
                    let now = fixed_count + held.len() as u64;
                    self.shard.subscriptions.fetch_add(now, Ordering::Relaxed);
                    self.shard.subscriptions.fetch_sub(counted, Ordering::Relaxed);
                    counted = now;
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
        };
        self.shard.subscriptions.fetch_sub(counted, Ordering::Relaxed);
        outcome
    }

    /// Subscribes the marked channels (of this part) that now have members
    /// here, and unsubscribes those that have none.
    fn sync(
        &self,
        connection: &mut redis::Connection,
        held: &mut HashSet<Arc<str>>,
        mine: &dyn Fn(&str) -> bool,
    ) -> redis::RedisResult<()> {
        let changed: Vec<Arc<str>> = {
            let mut marked = self.shard.changed.lock();
            let changed: Vec<Arc<str>> = marked.iter().filter(|name| mine(name)).cloned().collect();
            changed.iter().for_each(|name| {
                marked.remove(name);
            });
            changed
        };
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
        self.subscribe(connection, &join)?;
        match self.shard.sharded {
            true => {
                leave.iter().try_for_each(|channel| send(connection, "SUNSUBSCRIBE", std::slice::from_ref(channel)))
            }
            false => send(connection, "UNSUBSCRIBE", &leave),
        }
    }

    /// Subscribes `channels`: in batches, or on a Redis Cluster one
    /// `SSUBSCRIBE` each (a command's shard channels must share a slot).
    fn subscribe(&self, connection: &mut redis::Connection, channels: &[Vec<u8>]) -> redis::RedisResult<()> {
        match self.shard.sharded {
            true => {
                channels.iter().try_for_each(|channel| send(connection, "SSUBSCRIBE", std::slice::from_ref(channel)))
            }
            false => send(connection, "SUBSCRIBE", channels),
        }
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
    /// `["subscribe", channel, count]` (or `ssubscribe`): Redis confirms a
    /// subscription.
    Subscribed(Vec<u8>),
    /// `["sunsubscribe", channel, count]`: a shard channel ended, asked for
    /// or not (Redis ends those whose slot moves).
    Unsubscribed(Vec<u8>),
    /// `["message", channel, payload]` (or `smessage`).
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
                    (b"subscribe" | b"ssubscribe", _) => Reply::Subscribed(channel),
                    (b"sunsubscribe", _) => Reply::Unsubscribed(channel),
                    (b"message" | b"smessage", redis::Value::BulkString(payload)) => {
                        Reply::Message { channel, payload }
                    }
                    _ => Reply::Other,
                }
            }
            _ => Reply::Other,
        }
    }
}

/// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the
/// first non-empty `{...}`) or of all of it, modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let close = key[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &key[open + 1..open + 1 + close])
    });
    let crc = tagged.unwrap_or(key).iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| match crc & 0x8000 {
            0 => crc << 1,
            _ => (crc << 1) ^ 0x1021,
        })
    });
    crc % 16384
}

/// A Redis Cluster master: its host and port, and the slot ranges it serves.
type Master = ((String, u16), Vec<(u16, u16)>);

/// The masters of a `CLUSTER SLOTS` answer, with the slot ranges of each;
/// `None` when it names none.
fn masters(value: redis::Value) -> Option<Vec<Master>> {
    let redis::Value::Array(ranges) = value else { return None };
    let mut masters: Vec<Master> = Vec::new();
    for range in ranges {
        let redis::Value::Array(parts) = range else { return None };
        let mut parts = parts.into_iter();
        let (Some(redis::Value::Int(from)), Some(redis::Value::Int(to)), Some(redis::Value::Array(master))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let mut master = master.into_iter();
        let host = match master.next()? {
            redis::Value::BulkString(host) => String::from_utf8(host).ok()?,
            redis::Value::SimpleString(host) => host,
            _ => return None,
        };
        let redis::Value::Int(port) = master.next()? else { return None };
        let at = (host, u16::try_from(port).ok()?);
        let range = (u16::try_from(from).ok()?, u16::try_from(to).ok()?);
        match masters.iter_mut().find(|(known, _)| *known == at) {
            Some((_, ranges)) => ranges.push(range),
            None => masters.push((at, vec![range])),
        }
    }
    (!masters.is_empty()).then_some(masters)
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
        let sharded = Reply::of(Array(vec![bulk(b"smessage"), bulk(b"f:ch:{c}"), bulk(b"F")]));
        assert!(matches!(sharded, Reply::Message { channel, .. } if channel == b"f:ch:{c}"));
        assert!(matches!(Reply::of(Array(vec![bulk(b"ssubscribe"), bulk(b"x"), Int(1)])), Reply::Subscribed(_)));
        assert!(matches!(Reply::of(Array(vec![bulk(b"sunsubscribe"), bulk(b"x"), Int(0)])), Reply::Unsubscribed(_)));
    }

    #[test]
    fn slots_are_redis_cluster_s() {
        // CLUSTER KEYSLOT answers, from Redis's documentation.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"), "an empty tag hashes all of it");
        assert_eq!(key_slot(b"fanout:ch:{1:room}"), key_slot(b"fanout:hx:{1:room}"));
    }

    #[test]
    fn masters_are_read_off_cluster_slots_with_their_ranges() {
        let bulk = |b: &[u8]| BulkString(b.to_vec());
        let node = |port: i64| Array(vec![bulk(b"127.0.0.1"), Int(port), bulk(b"id")]);
        let answer = Array(vec![
            Array(vec![Int(0), Int(5460), node(7000), node(7003)]),
            Array(vec![Int(5461), Int(10922), node(7001)]),
            Array(vec![Int(10923), Int(16383), node(7000)]),
        ]);
        let found = masters(answer).expect("masters");
        assert_eq!(found[0], (("127.0.0.1".to_owned(), 7000), vec![(0, 5460), (10923, 16383)]));
        assert_eq!(found[1], (("127.0.0.1".to_owned(), 7001), vec![(5461, 10922)]));
        assert!(masters(Array(vec![])).is_none() && masters(Int(1)).is_none());
    }
}
