//! Scale-out: several fanout nodes share their channels and broadcasts
//! through Redis pub/sub, never a protocol of their own.
//!
//! Every publish to a channel and every broadcast is delivered to this
//! node's own members directly (no round trip, and it keeps working while
//! Redis is away), and also handed, as one [`envelope`], to a bridge thread
//! that publishes it to Redis. Another bridge thread holds the subscribe
//! connection: a node is subscribed to a channel's Redis channel only while
//! it has members of it (the channel directory says so; workers only mark
//! the channel as changed), plus its node-wide broadcast channel. What
//! arrives goes to the workers with members, as any publish; a node's own
//! envelopes coming back are dropped, so each client gets each message once.
//!
//! - `envelope`: the bytes that cross.
//! - `names`: the Redis channels, under a prefix, and which Redis instance
//!   each channel lives on (by hash of its name, with `--redis` repeated).
//! - `publisher`: the thread that drains a bounded queue into pipelined
//!   `PUBLISH`es (a full queue, or Redis away, counts the message as lost:
//!   at most once, never a wait).
//! - `subscriber`: the thread that subscribes, delivers, and resubscribes
//!   everything after reconnecting.
//! - `readiness`: which channels' Redis subscriptions are confirmed, and
//!   the greetings waiting for one.
//! - `streams`: channel history in Redis (a stream per channel, appended
//!   and published by one script), and the thread that reads it.
//!
//! Nothing here runs on a worker but a few atomic reads, the envelope's
//! encoding and a `try_send`.

mod envelope;
mod link;
mod names;
mod publisher;
mod readiness;
mod streams;
mod subscriber;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::channels::Publication;
use crate::handle::ServerHandle;
use crate::metrics::MetricsOut;
pub(crate) use envelope::Stored;
pub(crate) use link::{Link, Target};
use names::Names;
use readiness::Readiness;
pub(crate) use readiness::Waiter;
pub(crate) use streams::{Keep, ReadError, ReadSpec, ReadThen, StreamEntry, StreamRead};

/// What receives the stored events that arrive on a channel (see
/// [`Cluster::set_stored_sink`]).
pub(crate) type StoredSink = Box<dyn Fn(&str, Stored) + Send + Sync>;

/// History reads that may wait for the reader thread; past it a read fails
/// at once as busy.
const READ_QUEUE: usize = 16 * 1024;

/// How fanout reaches the Redis it shares channels through.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// One `redis://` or `rediss://` URL per Redis instance; channels are
    /// spread over them by hash of their name. Every node must list the
    /// same instances in the same order.
    pub redis: Vec<String>,
    /// What every Redis channel name of this cluster starts with, so
    /// several clusters can share one Redis.
    pub prefix: String,
    /// How often the bridge proves its connections alive; one silent for
    /// three times this is dropped and made again.
    pub heartbeat: Duration,
    /// Publishes that may wait for the bridge per Redis instance; past it
    /// they are counted as lost rather than held.
    pub queue: usize,
    /// The CA certificate (PEM) that `rediss://` servers' certificates
    /// must chain to. `None`: the system's trusted roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The `redis` URLs are nodes of one Redis Cluster (7.0 or later):
    /// channels spread over its masters by hash slot, with sharded pub/sub
    /// (`SPUBLISH`, `SSUBSCRIBE`), and the cluster's slot map is followed
    /// as it changes.
    pub redis_cluster: bool,
}

impl ClusterConfig {
    /// A cluster over the Redis instances at `redis`, with the default
    /// prefix (`fanout`), a 1 s heartbeat and a queue of 65,536 publishes.
    pub fn new(redis: Vec<String>) -> Self {
        ClusterConfig {
            redis,
            prefix: "fanout".into(),
            heartbeat: Duration::from_secs(1),
            queue: 1 << 16,
            ca_file: None,
            redis_cluster: false,
        }
    }
}

/// Why the cluster settings cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No Redis URL was given.
    #[error("a cluster needs at least one Redis URL")]
    NoRedis,
    /// A URL is not a Redis URL.
    #[error("{url} is not a Redis URL (redis://host:port[/db] or rediss://...): {reason}")]
    BadUrl {
        /// The URL as given, password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The prefix is empty or holds a character that would blur names.
    #[error("the Redis prefix must be 1-64 characters of letters, digits, '-', '_', '.' or ':'")]
    BadPrefix,
    /// The CA file of `rediss://` cannot be read.
    #[error("cannot read the Redis CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The heartbeat or queue is zero.
    #[error("the cluster's heartbeat and queue must be above zero")]
    Zero,
}

/// The figures of the bridge, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    /// Envelopes Redis took.
    published: AtomicU64,
    /// Envelopes that never reached Redis: queue full, Redis away, or a
    /// pipeline that failed (not knowing which of it got through, all of
    /// it is counted).
    lost: AtomicU64,
    /// Envelopes from other nodes handed to this node's workers.
    received: AtomicU64,
    /// Envelopes from other nodes dropped: a worker's inbox was full.
    dropped: AtomicU64,
    /// Messages on fanout's Redis channels that were not envelopes.
    malformed: AtomicU64,
    /// Connections to Redis made again after one was lost.
    reconnects: AtomicU64,
}

/// What the publisher thread sends.
enum Outgoing {
    /// An envelope for a Redis channel.
    Publish { channel: Vec<u8>, envelope: Vec<u8> },
    /// A stored event: the publishing script's keys and arguments.
    Stored { keys: [Vec<u8>; 3], args: Vec<Vec<u8>> },
    /// Tell this node's subscriber to look at the channels that changed.
    Wake,
}

/// One Redis instance (or a whole Redis Cluster): its connections' threads
/// share this.
struct Shard {
    index: usize,
    /// The instance (on a Redis Cluster: the first node given, where the
    /// subscriber learns the slot map).
    client: redis::Client,
    /// Where commands go: the instance, or the Redis Cluster.
    target: Target,
    /// A Redis Cluster: sharded pub/sub.
    sharded: bool,
    /// The URL with any password hidden, for logs.
    shown: String,
    outbox: Sender<Outgoing>,
    inbox: Receiver<Outgoing>,
    /// The publisher's connection is up.
    publishing: AtomicBool,
    /// The subscriber's connection is up and subscribed.
    subscribed: AtomicBool,
    /// Redis channels the subscriber holds now.
    subscriptions: AtomicU64,
    /// Channels whose membership on this node began or ended since the
    /// subscriber last looked.
    changed: Mutex<HashSet<Arc<str>>>,
    /// A wake is on its way (or due) to the subscriber.
    wake_pending: AtomicBool,
    /// Channels Redis confirmed subscribed, and what waits for others.
    ready: Mutex<Readiness>,
    /// Channels kept subscribed without a member here (a join reading
    /// history must hear what is published from before its read), and by
    /// how many holders.
    holds: Mutex<HashMap<Arc<str>, usize>>,
}

impl Shard {
    /// Both connections are up: this node publishes to and hears from it.
    fn up(&self) -> bool {
        self.publishing.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }
}

/// This node's bridge to Redis.
pub(crate) struct Cluster {
    node: u64,
    names: Names,
    heartbeat: Duration,
    shards: Box<[Arc<Shard>]>,
    counters: Arc<Counters>,
    stored_sink: Arc<OnceLock<StoredSink>>,
    reads: Sender<streams::ReadJob>,
    read_jobs: Receiver<streams::ReadJob>,
}

impl Cluster {
    /// Checks `config` and prepares the bridge; no connection is made until
    /// [`Cluster::start`].
    pub(crate) fn new(config: &ClusterConfig) -> Result<Self, ClusterError> {
        if config.redis.is_empty() {
            return Err(ClusterError::NoRedis);
        }
        if config.heartbeat.is_zero() || config.queue == 0 {
            return Err(ClusterError::Zero);
        }
        let names = Names::new(&config.prefix).ok_or(ClusterError::BadPrefix)?;
        let root_cert = match &config.ca_file {
            Some(path) => {
                Some(std::fs::read(path).map_err(|source| ClusterError::CaFile { path: path.clone(), source })?)
            }
            None => None,
        };
        let open = |url: &str| {
            let shown = names::hide_password(url);
            let opened = match &root_cert {
                Some(pem) if url.starts_with("rediss://") => {
                    let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
                    redis::Client::build_with_tls(url, certificates)
                }
                _ => redis::Client::open(url),
            };
            opened.map_err(|e| ClusterError::BadUrl { url: shown, reason: e.to_string() })
        };
        // A Redis Cluster is one shard for fanout: the crate's cluster
        // client routes each command, and the subscriber follows the masters.
        let urls: Vec<&String> = match config.redis_cluster {
            true => config.redis.iter().take(1).collect(),
            false => config.redis.iter().collect(),
        };
        let mut shards = Vec::with_capacity(urls.len());
        for (index, url) in urls.into_iter().enumerate() {
            let client = open(url)?;
            let target = match config.redis_cluster {
                false => Target::One(client.clone()),
                true => {
                    let mut builder = redis::cluster::ClusterClient::builder(config.redis.iter().map(String::as_str))
                        .connection_timeout(Duration::from_secs(2))
                        .response_timeout(config.heartbeat * 3);
                    if let Some(pem) = &root_cert {
                        builder =
                            builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) });
                    }
                    let shown = config.redis.iter().map(|u| names::hide_password(u)).collect::<Vec<_>>().join(", ");
                    Target::Cluster(
                        builder.build().map_err(|e| ClusterError::BadUrl { url: shown, reason: e.to_string() })?,
                    )
                }
            };
            let (outbox, inbox) = crossbeam_channel::bounded(config.queue);
            shards.push(Arc::new(Shard {
                index,
                client,
                target,
                sharded: config.redis_cluster,
                shown: match config.redis_cluster {
                    true => format!("cluster {}", names::hide_password(url)),
                    false => names::hide_password(url),
                },
                outbox,
                inbox,
                publishing: AtomicBool::new(false),
                subscribed: AtomicBool::new(false),
                subscriptions: AtomicU64::new(0),
                changed: Mutex::new(HashSet::new()),
                wake_pending: AtomicBool::new(false),
                ready: Mutex::new(Readiness::default()),
                holds: Mutex::new(HashMap::new()),
            }));
        }
        let names = if config.redis_cluster { names.tagged() } else { names };
        let (reads, read_jobs) = crossbeam_channel::bounded(READ_QUEUE);
        Ok(Cluster {
            node: names::new_node_id(),
            names,
            heartbeat: config.heartbeat,
            shards: shards.into_boxed_slice(),
            counters: Arc::default(),
            stored_sink: Arc::default(),
            reads,
            read_jobs,
        })
    }

    /// Starts a publisher and a subscriber thread per Redis instance; they
    /// connect (and keep reconnecting) on their own and end after the
    /// server shuts down.
    pub(crate) fn start(&self, server: &ServerHandle) -> std::io::Result<()> {
        for shard in self.shards.iter() {
            let publisher = publisher::Publisher {
                shard: shard.clone(),
                counters: self.counters.clone(),
                control: self.names.control(self.node),
                alive: (shard.index == 0).then(|| self.names.alive(self.node)),
                heartbeat: self.heartbeat,
                server: server.clone(),
            };
            std::thread::Builder::new()
                .name(format!("fanout-redis-pub-{}", shard.index))
                .spawn(move || publisher.run())?;
            let subscriber = subscriber::Subscriber {
                shard: shard.clone(),
                shards: self.shards.len(),
                counters: self.counters.clone(),
                names: self.names.clone(),
                node: self.node,
                heartbeat: self.heartbeat,
                server: server.clone(),
                stored_sink: self.stored_sink.clone(),
            };
            std::thread::Builder::new()
                .name(format!("fanout-redis-sub-{}", shard.index))
                .spawn(move || subscriber.run())?;
        }
        let reader = streams::StreamReader {
            shards: self.shards.clone(),
            names: self.names.clone(),
            jobs: self.read_jobs.clone(),
            server: server.clone(),
        };
        std::thread::Builder::new().name("fanout-redis-read".into()).spawn(move || reader.run())?;
        Ok(())
    }

    /// Hands every stored event that arrives (this node's own included:
    /// only Redis knows its offset) to `sink`, with the channel's name and,
    /// for this node's own, the connection it leaves out. Set once, before
    /// anything is published; later calls are ignored.
    pub(crate) fn set_stored_sink(&self, sink: StoredSink) {
        let _ = self.stored_sink.set(sink);
    }

    /// Appends `event` to channel `channel`'s stream in Redis and publishes
    /// it to every node (this one included), leaving out connection
    /// `except` (`ConnId` bits). False when it cannot be queued (Redis
    /// away, or the queue full): nothing was appended, and nothing will be.
    pub(crate) fn publish_stored(&self, channel: &str, except: Option<u64>, event: &[u8], keep: Keep) -> bool {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        if self.lost_if_down(shard) {
            return false;
        }
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let args = vec![
            envelope::stored_head(self.node, except),
            event.to_vec(),
            keep.size.unwrap_or(0).to_string().into_bytes(),
            keep.ttl.map_or(0, millis).to_string().into_bytes(),
            streams::new_epoch().into_bytes(),
            wall.to_string().into_bytes(),
        ];
        let keys = [self.names.stream_top(channel), self.names.stream(channel), self.names.channel(channel)];
        match shard.outbox.try_send(Outgoing::Stored { keys, args }) {
            Ok(()) => true,
            Err(_) => {
                self.counters.lost.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Reads channel `channel`'s stream as `spec` says, on the reader
    /// thread, and hands the answer to `then` there (at once, with
    /// `ReadError::Busy`, when too many reads wait).
    pub(crate) fn read_stream(&self, channel: &str, spec: ReadSpec, then: ReadThen) {
        let job = streams::ReadJob { channel: channel.to_owned(), spec, then };
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = self.reads.try_send(job) {
            (job.then)(Err(ReadError::Busy));
        }
    }

    /// Keeps this node subscribed to `channel`'s Redis channel, members or
    /// not, until as many [`Cluster::release`]s.
    pub(crate) fn hold(&self, channel: &Arc<str>) {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        *shard.holds.lock().entry(channel.clone()).or_default() += 1;
        self.membership_changed(channel);
    }

    /// Ends one [`Cluster::hold`] of `channel`.
    pub(crate) fn release(&self, channel: &Arc<str>) {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        let mut holds = shard.holds.lock();
        if let Some(count) = holds.get_mut(channel) {
            *count -= 1;
            if *count == 0 {
                holds.remove(channel);
            }
        }
        drop(holds);
        self.membership_changed(channel);
    }

    /// Where and how the application keeps shared state.
    pub(crate) fn state_link(&self) -> StateLink {
        StateLink {
            target: self.shards[0].target.clone(),
            shown: self.shards[0].shown.clone(),
            prefix: self.names.prefix(),
            node: self.node,
            heartbeat: self.heartbeat,
        }
    }

    /// Hands a publication this node delivered to its own members to the
    /// other nodes (never waits: counted as lost if it cannot be queued).
    pub(crate) fn forward_publication(&self, channel: &str, publication: &Publication) {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        if self.lost_if_down(shard) {
            return;
        }
        let outgoing = Outgoing::Publish {
            channel: self.names.channel(channel),
            envelope: envelope::publication(self.node, publication),
        };
        self.queue(shard, outgoing);
    }

    /// Hands a broadcast this node delivered to its own connections to the
    /// other nodes.
    pub(crate) fn forward_broadcast(&self, frame: &[u8]) {
        let shard = &self.shards[0];
        if self.lost_if_down(shard) {
            return;
        }
        let outgoing =
            Outgoing::Publish { channel: self.names.broadcast(), envelope: envelope::broadcast(self.node, frame) };
        self.queue(shard, outgoing);
    }

    fn lost_if_down(&self, shard: &Shard) -> bool {
        let down = !shard.publishing.load(Ordering::Relaxed);
        if down {
            self.counters.lost.fetch_add(1, Ordering::Relaxed);
        }
        down
    }

    fn queue(&self, shard: &Shard, outgoing: Outgoing) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = shard.outbox.try_send(outgoing) {
            self.counters.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes that `channel` gained its first or lost its last member on
    /// this node: the subscriber subscribes or unsubscribes it soon after.
    pub(crate) fn membership_changed(&self, channel: &Arc<str>) {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        shard.changed.lock().insert(channel.clone());
        if !shard.wake_pending.swap(true, Ordering::AcqRel) {
            // A full queue: the publisher sees `wake_pending` after its batch.
            let _ = shard.outbox.try_send(Outgoing::Wake);
        }
    }

    /// Runs `then` once this node's Redis subscription of `channel` is
    /// confirmed (at once if it is, or while Redis is away; after
    /// [`readiness::READY_PATIENCE`] at the latest), so that a client told it is
    /// subscribed gets whatever any node publishes from then on.
    pub(crate) fn when_subscribed(&self, channel: &str, then: Waiter) {
        let shard = &self.shards[names::shard_of(channel, self.shards.len())];
        let mut ready = shard.ready.lock();
        if !shard.subscribed.load(Ordering::Acquire) || ready.confirmed.contains(channel) {
            drop(ready);
            return then();
        }
        ready.waiting.push((Arc::from(channel), Instant::now(), then));
    }

    /// True while every Redis instance has both connections up.
    pub(crate) fn is_up(&self) -> bool {
        self.shards.iter().all(|s| s.up())
    }

    /// One line for `/readyz`: how the bridge stands.
    pub(crate) fn readiness(&self) -> String {
        let up = self.shards.iter().filter(|s| s.up()).count();
        if self.is_up() {
            format!("redis: connected ({up} of {})\n", self.shards.len())
        } else {
            let down: Vec<&str> = self.shards.iter().filter(|s| !s.up()).map(|s| s.shown.as_str()).collect();
            format!(
                "redis: disconnected from {} ({up} of {} connected): serving this node's clients only\n",
                down.join(", "),
                self.shards.len()
            )
        }
    }

    /// Writes the bridge's figures.
    pub(crate) fn report(&self, out: &mut MetricsOut) {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        out.counter("fanout_cluster_published", "Envelopes published to Redis", &[], count(&c.published));
        out.counter(
            "fanout_cluster_lost",
            "Envelopes not published: Redis away, its queue full, or a failed pipeline",
            &[],
            count(&c.lost),
        );
        out.counter("fanout_cluster_received", "Envelopes from other nodes delivered here", &[], count(&c.received));
        out.counter(
            "fanout_cluster_dropped",
            "Envelopes from other nodes dropped: a worker's inbox was full",
            &[],
            count(&c.dropped),
        );
        out.counter(
            "fanout_cluster_malformed",
            "Messages on fanout's Redis channels that were not envelopes",
            &[],
            count(&c.malformed),
        );
        out.counter(
            "fanout_cluster_reconnects",
            "Connections to Redis made again after a loss",
            &[],
            count(&c.reconnects),
        );
        for shard in self.shards.iter() {
            let index = shard.index.to_string();
            let labels = [("redis", index.as_str())];
            out.gauge(
                "fanout_cluster_redis_up",
                "1 while both connections to this Redis are up",
                &labels,
                u64::from(shard.up()),
            );
            out.gauge(
                "fanout_cluster_redis_channels",
                "Redis channels this node is subscribed to",
                &labels,
                count(&shard.subscriptions),
            );
        }
    }
}

/// What the application needs to keep its own state in the cluster's Redis
/// (presence, occupancy): where it is, under which prefix, and who this
/// node is.
#[derive(Clone)]
pub(crate) struct StateLink {
    /// The first Redis instance (or the Redis Cluster): where shared state
    /// lives (on a Redis Cluster, under one hash tag: see `names`).
    pub(crate) target: Target,
    /// The URL with any password hidden.
    pub(crate) shown: String,
    /// The cluster's prefix (keys are `{prefix}:...`).
    pub(crate) prefix: String,
    /// This node's id.
    pub(crate) node: u64,
    /// How often to prove this node alive; three missed and it is gone.
    pub(crate) heartbeat: Duration,
}

/// How long to wait before connecting again after `failures` failures in a
/// row: 100 ms doubling to 2 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64 << failures.min(5)).min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        assert!(matches!(Cluster::new(&ClusterConfig::new(vec![])), Err(ClusterError::NoRedis)));
        let bad = Cluster::new(&ClusterConfig::new(vec!["http://user:secret@host:80".into()]));
        let Err(ClusterError::BadUrl { url, .. }) = bad else { panic!("a bad URL") };
        assert!(!url.contains("secret"), "{url}");
        let mut config = ClusterConfig::new(vec!["redis://127.0.0.1:1".into()]);
        config.prefix = "has space".into();
        assert!(matches!(Cluster::new(&config), Err(ClusterError::BadPrefix)));
        config.prefix = "ok".into();
        config.queue = 0;
        assert!(matches!(Cluster::new(&config), Err(ClusterError::Zero)));
    }

    #[test]
    fn backoff_grows_to_two_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(40), Duration::from_secs(2));
    }

    #[test]
    fn a_full_queue_counts_the_publish_lost_and_never_waits() {
        let mut config = ClusterConfig::new(vec!["redis://127.0.0.1:1".into()]);
        config.queue = 1;
        let cluster = Cluster::new(&config).expect("a cluster");
        cluster.shards[0].publishing.store(true, Ordering::Relaxed);
        cluster.forward_broadcast(b"\x81\x01a");
        cluster.forward_broadcast(b"\x81\x01b");
        assert_eq!(cluster.shards[0].inbox.len(), 1);
        assert_eq!(cluster.counters.lost.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn while_redis_is_away_a_publish_is_counted_lost_not_queued() {
        let cluster = Cluster::new(&ClusterConfig::new(vec!["redis://127.0.0.1:1".into()])).expect("a cluster");
        cluster.forward_broadcast(b"\x81\x02hi");
        assert_eq!(cluster.counters.lost.load(Ordering::Relaxed), 1);
        assert!(cluster.shards[0].inbox.is_empty());
        assert!(!cluster.shards[0].up());
        assert!(cluster.readiness().contains("disconnected from redis://127.0.0.1:1"), "{}", cluster.readiness());
    }
}

#[cfg(test)]
mod readiness_tests {
    use super::readiness::READY_PATIENCE;
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Waiter) {
        let ran = Arc::new(AtomicUsize::new(0));
        let made = ran.clone();
        (ran, move || {
            let ran = made.clone();
            Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    #[test]
    fn a_greeting_waits_for_its_channel_and_no_longer_than_its_patience() {
        let cluster = Cluster::new(&ClusterConfig::new(vec!["redis://127.0.0.1:1".into()])).expect("a cluster");
        let shard = &cluster.shards[0];
        let (ran, waiter) = counter();
        // Redis away: at once.
        cluster.when_subscribed("a", waiter());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        shard.subscribed.store(true, Ordering::SeqCst);
        cluster.when_subscribed("a", waiter());
        cluster.when_subscribed("b", waiter());
        assert_eq!(ran.load(Ordering::SeqCst), 1, "both wait");
        shard.ready.lock().confirm("a").into_iter().for_each(|then| then());
        assert_eq!(ran.load(Ordering::SeqCst), 2, "a's ran, b's waits");
        cluster.when_subscribed("a", waiter());
        assert_eq!(ran.load(Ordering::SeqCst), 3, "a is confirmed: at once");
        let late = shard.ready.lock().expired(Instant::now() + READY_PATIENCE);
        assert_eq!(late.len(), 1);
        late.into_iter().for_each(|then| then());
        cluster.when_subscribed("c", waiter());
        shard.ready.lock().reset().into_iter().for_each(|then| then());
        assert_eq!(ran.load(Ordering::SeqCst), 5, "a lost connection lets everything through");
        assert!(shard.ready.lock().confirmed.is_empty());
    }
}
