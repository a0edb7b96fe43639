//! History shared by a cluster (`--redis`): the channel's stream lives in
//! Redis (see `cluster::streams`), and this node only keeps, per channel
//! with members here, where its members stand (the stream's epoch and the
//! last offset delivered) and who they are.
//!
//! A publish goes to Redis, which appends and publishes it in one script;
//! every node, this one included, delivers it when it arrives, framed at
//! its offset, once: an offset at or below the last delivered is an echo
//! or was read already, and one past the next means events were lost on
//! the way (Redis restarted, the subscription was dropped): the members are
//! told with a `recovered: false` marker before the event, so that a client
//! that cares rejoins with `since` and recovers from the stream.
//!
//! A join holds the channel's Redis subscription, waits for Redis to
//! confirm it, then reads the stream, so that whatever is published after
//! the read arrives here; under the order lock it is greeted with what the
//! read found up to the last offset its fellow members got, and what
//! arrives after that reaches it live. Events that arrive before the first
//! member's read are kept (a few) and given after its greeting.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{audience, newest_wanted, Busy, Found, Greeting, Joined, Sequencer, StoredEvent};
use crate::channels::Publication;
use crate::cluster::{Cluster, Keep, ReadError, ReadSpec, Stored, StreamEntry, StreamRead};
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::history::store::wall_ms;
use crate::history::{Entry, Position};
use crate::message::Message;
use crate::pusher::protocol::{Since, StreamPosition};

/// Events kept for a channel whose first member is still reading its
/// history; more than that and the rest are lost (and told as a gap).
const EARLY_MOST: usize = 1024;

/// Reads a join makes at most when its read and its fellow members' place
/// disagree (an event arrived between the read and the lock).
const READS_MOST: u32 = 3;

/// Channels with members here, by core key.
#[derive(Default)]
pub(crate) struct Mirrors {
    channels: HashMap<Arc<str>, Mirror>,
}

/// Where this node's members of one channel stand.
#[derive(Default)]
struct Mirror {
    /// The stream's epoch (empty: no stream yet) and the last offset the
    /// members were given; `None` until the first join's read is in.
    at: Option<(String, u64)>,
    /// Members joined.
    joined: HashSet<ConnId>,
    /// Connections whose join waits for its read.
    pending: HashSet<ConnId>,
    /// Events that arrived while `at` was unknown.
    early: Vec<Stored>,
}

/// What follows a join once it is done (on the reader's thread, or the
/// caller's): its outcome.
pub(crate) type JoinThen = Box<dyn FnOnce(Result<Joined, Busy>) + Send>;

/// A join in flight.
struct Pending {
    key: Arc<str>,
    conn: ConnId,
    greeting: Greeting,
    since: Option<Since>,
    spec: ReadSpec,
    reads: u32,
    then: JoinThen,
}

impl Sequencer {
    /// Keeps how long the streams keep their events.
    fn keep(&self) -> Keep {
        let config = self.history.config();
        Keep { size: config.size, ttl: config.ttl }
    }

    /// A publish in a cluster: to Redis, which places it and sends it to
    /// every node, this one included. With Redis away (or its queue full)
    /// this node's members still get it, without a place in the stream.
    pub(super) fn publish_shared(
        &self,
        server: &ServerHandle,
        cluster: &Cluster,
        key: &str,
        event: &StoredEvent,
        except: Option<ConnId>,
    ) -> Result<(), Busy> {
        if cluster.publish_stored(key, except.map(ConnId::as_u64), event.as_bytes(), self.keep()) {
            return Ok(());
        }
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let publication = audience::event(channel, event.event(), &event.data(), event.user_id());
        let sent = server.try_publish(key, &publication, except, None).is_ok();
        self.refuse_if(!sent)
    }

    /// Delivers a stored event that arrived from Redis to this node's
    /// members of channel `key`. False when no member here joined through
    /// this sequencer (the channel is another's, or has no member here).
    pub(crate) fn deliver_stored(&self, server: &ServerHandle, key: &str, stored: &Stored) -> bool {
        let mut mirrors = self.order.lock();
        let Some(mirror) = mirrors.channels.get_mut(key) else { return false };
        if mirror.at.is_none() {
            if mirror.early.len() < EARLY_MOST {
                mirror.early.push(stored.clone());
            }
            return true;
        }
        self.deliver_at(server, key, mirror, stored);
        true
    }

    /// Gives `stored` to the members of `key` unless they had it, telling
    /// them first when events are missing before it. Under the order lock.
    fn deliver_at(&self, server: &ServerHandle, key: &str, mirror: &mut Mirror, stored: &Stored) {
        let Some((epoch, delivered)) = mirror.at.as_mut() else { return };
        if *epoch != stored.epoch {
            // A new stream: offsets of the old one mean nothing now.
            if !epoch.is_empty() || stored.offset != 1 {
                self.tell_gap(server, key, &stored.epoch, stored.offset - 1);
            }
            epoch.clone_from(&stored.epoch);
            *delivered = stored.offset - 1;
        } else if stored.offset <= *delivered {
            return;
        } else if stored.offset > *delivered + 1 {
            self.tell_gap(server, key, epoch, stored.offset - 1);
        }
        let Some(event) = StoredEvent::from_bytes(stored.event.to_vec()) else {
            log::warn!("channel {key}: a stored event from Redis is not one fanout wrote; skipped");
            *delivered = stored.offset;
            return;
        };
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let publication = event.publication(channel, StreamPosition { epoch, offset: stored.offset });
        let except = stored.except.map(ConnId::from_u64);
        if server.publish_in_order_here(key, &publication, except).is_err() {
            // Not advanced: the next event shows the members their gap.
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        *delivered = stored.offset;
        if stored.offset == 1 {
            self.announce_stream(server, key, epoch);
        }
    }

    /// Tells the members of `key` that events before `offset + 1` of
    /// stream `epoch` never reached them.
    fn tell_gap(&self, server: &ServerHandle, key: &str, epoch: &str, offset: u64) {
        self.gaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let top = Position { offset, epoch: Arc::from(epoch) };
        let text = |dialect| super::recovery_marker(dialect, channel, false, Some(&top));
        let publication = Publication::new()
            .with(audience::RAW, &Prepared::new(&Message::text(text(audience::RAW))))
            .with(audience::PUSHER, &Prepared::new(&Message::text(text(audience::PUSHER))));
        if server.publish_in_order_here(key, &publication, None).is_err() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Joins `conn` to channel `key` in a cluster: once this node hears the
    /// channel from Redis, reads its stream and greets it under the order
    /// lock. `then` follows, on whichever thread finished it.
    pub(super) fn join_shared(
        self: &Arc<Self>,
        server: &ServerHandle,
        conn: ConnId,
        key: &str,
        greeting: Greeting,
        since: Option<Since>,
        then: JoinThen,
    ) {
        let Some(cluster) = server.shared.cluster.as_ref() else { return then(Err(Busy)) };
        let key: Arc<str> = Arc::from(key);
        {
            let mut mirrors = self.order.lock();
            let mirror = mirrors.channels.entry(key.clone()).or_insert_with(|| {
                cluster.hold(&key);
                Mirror::default()
            });
            mirror.pending.insert(conn);
        }
        let spec = ReadSpec {
            from: since.as_ref().map(|s| s.offset.saturating_add(1)),
            newest: newest_wanted(&greeting, since.as_ref()),
            before: None,
        };
        let pending = Pending { key: key.clone(), conn, greeting, since, spec, reads: 0, then };
        let (sequencer, server) = (self.clone(), server.clone());
        cluster.when_subscribed(&key, Box::new(move || sequencer.read_for(server, pending)));
    }

    fn read_for(self: Arc<Self>, server: ServerHandle, mut pending: Pending) {
        let Some(cluster) = server.shared.cluster.as_ref() else { return };
        pending.reads += 1;
        let (key, spec) = (pending.key.clone(), pending.spec);
        let then = {
            let server = server.clone();
            Box::new(move |read| self.complete_join(&server, pending, read))
        };
        cluster.read_stream(&key, spec, then);
    }

    /// Greets a join with what its read found, under the order lock.
    fn complete_join(self: Arc<Self>, server: &ServerHandle, pending: Pending, read: Result<StreamRead, ReadError>) {
        let mut mirrors = self.order.lock();
        let Some(mirror) = mirrors.channels.get_mut(&pending.key) else { return };
        if !mirror.pending.contains(&pending.conn) {
            return; // It left, or closed, while reading.
        }
        let read = read.map_err(|e| log::warn!("channel {}: history cannot be read ({e})", pending.key)).ok();
        let first = mirror.at.is_none();
        if first {
            mirror.at = Some(read.as_ref().and_then(|r| r.top.clone()).unwrap_or_default());
        }
        let at = mirror.at.clone().unwrap_or_default();
        let agrees = read.as_ref().is_none_or(|r| match &r.top {
            Some((epoch, top)) => *epoch == at.0 && *top >= at.1,
            None => at.0.is_empty(),
        });
        // A client ahead of this node's members: what it saw is on its way here.
        let ahead = pending.since.as_ref().is_some_and(|s| s.epoch == at.0 && s.offset > at.1);
        if (!agrees || ahead) && pending.reads < READS_MOST {
            drop(mirrors);
            return self.read_for(server.clone(), pending);
        }
        let found = found(pending.since.as_ref(), read.filter(|_| agrees), &at, self.history.config().ttl);
        let outcome = self.join_found(server, pending.conn, &pending.key, &pending.greeting, found);
        mirror.pending.remove(&pending.conn);
        if outcome.is_ok() {
            mirror.joined.insert(pending.conn);
        }
        if first {
            for stored in std::mem::take(&mut mirror.early) {
                self.deliver_at(server, &pending.key, mirror, &stored);
            }
        }
        if mirror.joined.is_empty() && mirror.pending.is_empty() {
            mirrors.channels.remove(&pending.key);
            if let Some(cluster) = server.shared.cluster.as_ref() {
                cluster.release(&pending.key);
            }
        }
        drop(mirrors);
        (pending.then)(outcome);
    }

    /// Forgets `conn` as a member of `key` (it left or closed); the last
    /// one gone ends this node's hold on the channel's Redis subscription.
    pub(super) fn forget_member(&self, cluster: &Cluster, mirrors: &mut Mirrors, conn: ConnId, key: &str) {
        let Some(mirror) = mirrors.channels.get_mut(key) else { return };
        mirror.joined.remove(&conn);
        mirror.pending.remove(&conn);
        if mirror.joined.is_empty() && mirror.pending.is_empty() {
            if let Some((key, _)) = mirrors.channels.remove_entry(key) {
                cluster.release(&key);
            }
        }
    }

    /// Says a connection that was a member of `key` is closed.
    pub(crate) fn closed(&self, server: &ServerHandle, conn: ConnId, key: &str) {
        if let Some(cluster) = server.shared.cluster.as_ref() {
            let mut mirrors = self.order.lock();
            self.forget_member(cluster, &mut mirrors, conn, key);
        }
    }

    /// The history of channel `key` for the API, read from Redis: `then`
    /// gets the stream's position and its newest `limit` events older
    /// than `before`, oldest first (`Err`: Redis could not be read).
    pub(crate) fn read_shared(
        &self,
        cluster: &Cluster,
        key: &str,
        limit: usize,
        before: Option<u64>,
        then: impl FnOnce(Result<(Option<Position>, Vec<Entry<StoredEvent>>), ReadError>) + Send + 'static,
    ) {
        let ttl = self.history.config().ttl;
        let spec = ReadSpec { from: None, newest: limit, before };
        cluster.read_stream(
            key,
            spec,
            Box::new(move |read| {
                then(read.map(|read| {
                    let top =
                        read.top.as_ref().map(|(epoch, top)| Position { offset: *top, epoch: Arc::from(&**epoch) });
                    (top, events(read.newest, u64::MAX, ttl))
                }))
            }),
        );
    }
}

/// What a join (from `since`, if given) found in `read` (`None`: not
/// read, or read at another place than its fellow members are), given to
/// it up to `at`, where its fellow members are.
fn found(
    since: Option<&Since>,
    read: Option<StreamRead>,
    at: &(String, u64),
    ttl: Option<std::time::Duration>,
) -> Found {
    let (epoch, top) = at;
    let position = (!epoch.is_empty()).then(|| Position { offset: *top, epoch: Arc::from(&**epoch) });
    let read = read.unwrap_or_default();
    let Some(since) = since else {
        return Found { top: position, latest: events(read.newest, *top, ttl), recovery: None };
    };
    let missed = events(read.from, *top, ttl);
    let contiguous = missed.iter().zip(since.offset + 1..).all(|(entry, want)| entry.offset == want);
    let complete = since.offset + missed.len() as u64 == *top;
    let recovered = !epoch.is_empty() && since.epoch == *epoch && since.offset <= *top && contiguous && complete;
    Found { top: position, latest: Vec::new(), recovery: Some(recovered.then_some(missed)) }
}

/// Stream entries as history entries: those up to offset `top` and
/// younger than `ttl`, whose bytes are events fanout wrote.
fn events(entries: Vec<StreamEntry>, top: u64, ttl: Option<std::time::Duration>) -> Vec<Entry<StoredEvent>> {
    let oldest = ttl.map_or(0, |ttl| wall_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)));
    entries
        .into_iter()
        .filter(|entry| entry.offset <= top && entry.wall_ms >= oldest)
        .filter_map(|entry| {
            let payload = StoredEvent::from_bytes(entry.event)?;
            Some(Entry { offset: entry.offset, at_ms: entry.wall_ms, size: payload.size(), payload })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pusher::EventData;

    fn entry(offset: u64, wall_ms: u64) -> StreamEntry {
        let event = StoredEvent::new("news", &EventData::Str(&format!("item {offset}")), None);
        StreamEntry { offset, wall_ms, event: event.as_bytes().to_vec() }
    }

    fn read(top: u64, from: &[u64], newest: &[u64]) -> StreamRead {
        let now = wall_ms();
        StreamRead {
            top: Some(("e1".into(), top)),
            from: from.iter().map(|&o| entry(o, now)).collect(),
            newest: newest.iter().map(|&o| entry(o, now)).collect(),
        }
    }

    fn since(epoch: &str, offset: u64) -> Since {
        Since { epoch: epoch.into(), offset }
    }

    fn offsets(entries: &[Entry<StoredEvent>]) -> Vec<u64> {
        entries.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn a_join_recovers_only_a_whole_gap_of_the_same_stream_up_to_its_fellow_members() {
        let at = ("e1".to_owned(), 5);
        let got = found(Some(&since("e1", 2)), Some(read(5, &[3, 4, 5], &[])), &at, None);
        assert_eq!(got.top.as_ref().map(|t| t.offset), Some(5));
        assert_eq!(got.recovery.as_ref().and_then(|r| r.as_deref()).map(offsets), Some(vec![3, 4, 5]));
        // Redis is ahead of this node's members: the rest comes live.
        let ahead = found(Some(&since("e1", 2)), Some(read(7, &[3, 4, 5, 6, 7], &[])), &at, None);
        assert_eq!(ahead.recovery.and_then(|r| r).map(|r| offsets(&r)), Some(vec![3, 4, 5]));
        for (why, client, stream) in [
            ("trimmed", since("e1", 1), read(5, &[3, 4, 5], &[])),
            ("a hole", since("e1", 2), read(5, &[3, 5], &[])),
            ("another epoch", since("e0", 2), read(5, &[3, 4, 5], &[])),
            ("ahead of the stream", since("e1", 9), read(5, &[], &[])),
        ] {
            let got = found(Some(&client), Some(stream), &at, None);
            assert!(matches!(got.recovery, Some(None)), "{why}: nothing partial");
            assert_eq!(got.top.map(|t| t.offset), Some(5), "{why}");
        }
        // Up to date: recovered with nothing, even unread.
        assert!(matches!(found(Some(&since("e1", 5)), None, &at, None).recovery, Some(Some(ref m)) if m.is_empty()));
    }

    #[test]
    fn a_join_without_since_gets_the_newest_up_to_its_fellow_members_and_no_position_without_a_stream() {
        let at = ("e1".to_owned(), 4);
        let got = found(None, Some(read(6, &[], &[3, 4, 5, 6])), &at, None);
        assert_eq!(offsets(&got.latest), [3, 4]);
        assert!(got.recovery.is_none());
        let none = found(None, Some(StreamRead::default()), &(String::new(), 0), None);
        assert!(none.top.is_none() && none.latest.is_empty());
    }

    #[test]
    fn events_older_than_the_ttl_or_not_fanout_s_are_left_out() {
        let now = wall_ms();
        let entries =
            vec![entry(1, now - 10_000), entry(2, now), StreamEntry { offset: 3, wall_ms: now, event: vec![9, 9] }];
        assert_eq!(offsets(&events(entries, 10, Some(std::time::Duration::from_secs(5)))), [2]);
    }
}
