//! Channel history for the service: what a stored event keeps, and the
//! sequencer, the lock that orders all traffic of the channels that keep
//! history.
//!
//! Why: offsets only mean something if every subscriber sees a channel's
//! events in offset order, and a resubscribing client must get what it
//! missed and then the live events, nothing twice and nothing lost at the
//! seam. Workers normally publish through per-thread queues that keep each
//! sender's order, not a channel's. Under the sequencer's lock a publish
//! takes its offset and goes straight into every worker's inbox, and a join
//! reads history and puts the subscription and the replay into its
//! worker's inbox (likewise a leave): each worker applies them in lock
//! order, so a joining connection gets exactly the events after the history
//! it was given. No thread of its own: a publish is delivered in the turn
//! that made it, as any other. Channels without history never take the lock.
//!
//! Inboxes are bounded and nothing here waits: a full one turns an API
//! publish into 503, a subscription into an error, a chat message into a
//! counted drop, and leaves history untouched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::audience::{self, PUSHER, RAW};
use super::durable::{Ack, Durable};
use crate::channels::Dialect;
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::history::store::{wall_ms, DurableStore, Record, Retention, StoreError};
use crate::history::{Entry, EpochSource, History, HistoryConfig, Position, Recovery};
use crate::message::Message;
use crate::metrics::MetricsOut;
use crate::pusher::protocol::{self, Since, StreamPosition};
use crate::pusher::PresenceSnapshot;

pub(crate) use super::stored_event::StoredEvent;
pub(crate) use shared::JoinThen;

mod shared;

/// How a connection joining a channel with history is greeted before what
/// it missed.
#[derive(Debug)]
pub(crate) enum Greeting {
    /// A Pusher client: `subscription_succeeded` with the stream's position
    /// (and the member list on a presence channel); after a recovery, the
    /// `fanout:recovery` marker. On a cache channel (`cache`) joined without
    /// `since`: its last event, or `pusher:cache_miss`.
    Pusher { presence: Option<PresenceSnapshot>, cache: bool },
    /// A raw room client: its welcome (a JSON object) with the room's
    /// `epoch` and `offset` added; after a recovery the object
    /// `{"type":"recovery","recovered":..,"epoch":..,"offset":..}`.
    /// Joined without `since` and with `recent` above 0: the room's last
    /// `recent` messages, then `{"type":"history","count":..,"epoch":..,"offset":..}`.
    /// With `roster` (a named member): that roster channel is joined in the
    /// same order as the room, so the member hears of every stream that
    /// begins after its welcome (see [`Sequencer::with_room_app`]).
    Raw { welcome: String, recent: usize, roster: Option<String> },
    /// No greeting and no replay: a member of `dialect` that only takes
    /// the channel's live events (a Socket.IO socket in a room), joined in
    /// order with them.
    Quiet { dialect: Dialect },
}

/// What a join found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Joined {
    /// A cache channel had no event to replay (`pusher:cache_miss` sent).
    pub(crate) cache_miss: bool,
}

/// Why a publish, join or leave was not taken: a worker's inbox lacked room
/// (or the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// Channel history and the lock that orders every publish, join and leave
/// of the channels that keep it.
pub(crate) struct Sequencer {
    history: History<StoredEvent>,
    /// The disk behind history, with `--history-dir`.
    durable: Option<Durable>,
    /// Held from reading or appending history to handing the commands to
    /// the workers' inboxes: each worker then applies them in this order.
    /// In a cluster it guards where this node's members of each channel
    /// stand in the channel's stream in Redis.
    order: parking_lot::Mutex<shared::Mirrors>,
    started: Instant,
    /// Publishes and joins refused because an inbox was full.
    refused: AtomicU64,
    /// In a cluster: gaps in a channel's stream told to its members here.
    gaps: AtomicU64,
    /// The app whose channels are raw rooms too: a stream that begins in
    /// one of them is announced on the room's roster channel.
    room_app: Option<String>,
}

impl Sequencer {
    /// A sequencer keeping history as `config` says.
    pub(crate) fn new(config: HistoryConfig) -> Self {
        Sequencer {
            history: History::new(config, EpochSource::from_clock()),
            durable: None,
            order: parking_lot::Mutex::default(),
            started: Instant::now(),
            refused: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            room_app: None,
        }
    }

    /// This sequencer, announcing each stream that begins in a channel of
    /// `app` (the raw rooms' app) to the room's named members:
    /// `{"type":"stream","epoch":..}` on its roster channel, right after the
    /// stream's first message. Why: a named member that joined before the
    /// stream existed had no epoch in its welcome, and raw messages carry
    /// none, so without this it could never recover what it misses.
    pub(crate) fn with_room_app(mut self, app: &str) -> Self {
        self.room_app = Some(app.to_owned());
        self
    }

    /// A sequencer whose history is kept in `store` too: what the store
    /// holds (within `config`'s size and age) is history again, epochs and
    /// offsets included, and what is published from now on is written there.
    pub(crate) fn with_store(config: HistoryConfig, store: DurableStore) -> Result<Self, StoreError> {
        let mut sequencer = Sequencer::new(config);
        let streams = store.load(config.size, config.ttl)?;
        let (now_ms, now_wall) = (sequencer.now_ms(), wall_ms());
        for stream in streams {
            let messages = stream
                .messages
                .into_iter()
                .filter_map(|(offset, wall, bytes)| {
                    let event = StoredEvent::from_bytes(bytes)?;
                    let size = event.size();
                    Some((offset, now_ms.saturating_sub(now_wall.saturating_sub(wall)), event, size))
                })
                .collect();
            sequencer.history.restore(&stream.channel, &stream.epoch, stream.top, messages, now_ms);
        }
        let path = store.path().to_owned();
        let durable = Durable::start(store, Retention { size: config.size, ttl: config.ttl })
            .map_err(|e| StoreError::Open { path, reason: format!("cannot start its writer thread: {e}") })?;
        sequencer.durable = Some(durable);
        Ok(sequencer)
    }

    /// True while the disk is so far behind that publishes must be refused.
    pub(crate) fn congested(&self) -> bool {
        self.durable.as_ref().is_some_and(Durable::congested)
    }

    /// Drops, in memory, the streams a failed disk write lost. Called under
    /// the order lock, before anything reads or extends a stream.
    fn apply_losses(&self) {
        if let Some(durable) = &self.durable {
            for (channel, epoch) in durable.take_lost() {
                self.history.lose(&channel, &epoch);
            }
        }
    }

    /// The store, for the API.
    pub(crate) fn history(&self) -> &History<StoredEvent> {
        &self.history
    }

    /// Milliseconds on history's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes history's figures.
    pub(crate) fn report(&self, out: &mut MetricsOut) {
        let stats = self.history.stats();
        out.gauge("fanout_history_channels", "Channels holding history", &[], stats.channels as u64);
        out.gauge("fanout_history_messages", "Messages held in history", &[], stats.messages as u64);
        let bytes = stats.bytes as u64;
        out.gauge("fanout_history_bytes", "Bytes of history, counted against --history-max-bytes", &[], bytes);
        out.counter("fanout_history_evicted", "Messages evicted for --history-max-bytes", &[], stats.evicted);
        out.counter(
            "fanout_history_trimmed",
            "Messages dropped for --history-size or --history-ttl",
            &[],
            stats.trimmed,
        );
        let refused = self.refused.load(Ordering::Relaxed);
        out.counter("fanout_history_refused", "Publishes and joins refused: a worker's inbox was full", &[], refused);
        let gaps = self.gaps.load(Ordering::Relaxed);
        out.counter(
            "fanout_history_gaps",
            "Events of a stream in Redis that never reached this node, told to its members as recovered: false",
            &[],
            gaps,
        );
        if let Some(durable) = &self.durable {
            durable.report(out);
        }
    }

    /// Appends `event` to channel `key`'s history and hands it to every
    /// worker for all members but `except`. When this returns Ok, history
    /// has it, and with a store its write is queued (`ack`, if given, is
    /// answered once it is on disk); on `Busy` neither history nor any
    /// member does.
    pub(crate) fn publish(
        &self,
        server: &ServerHandle,
        key: &str,
        event: StoredEvent,
        except: Option<ConnId>,
        ack: Option<&Arc<Ack>>,
    ) -> Result<(), Busy> {
        if let Some(cluster) = server.shared.cluster.as_ref() {
            return self.publish_shared(server, cluster, key, &event, except);
        }
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let _order = self.order.lock();
        self.apply_losses();
        // Framed at the offset the event will have, then appended only once
        // every inbox took it: a refused publish leaves no trace.
        let now_ms = self.now_ms();
        let at = self.history.next_position(key, now_ms);
        let publication = event.publication(channel, position(&at));
        self.refuse_if(server.publish_in_order(key, &publication, except).is_err())?;
        if let Some(durable) = &self.durable {
            let record = Record {
                channel: key.to_owned(),
                epoch: at.epoch.to_string(),
                offset: at.offset,
                wall_ms: wall_ms(),
                payload: event.as_bytes().to_vec(),
            };
            durable.write(record, ack);
        }
        let size = event.size();
        let appended = self.history.append(key, event, size, now_ms);
        debug_assert_eq!(appended, at, "appends are serialized by the order lock");
        if at.offset == 1 {
            self.announce_stream(server, key, &at.epoch);
        }
        Ok(())
    }

    /// Tells the named members of a raw room (`key` in the rooms' app) that
    /// its stream `epoch` began: `{"type":"stream","epoch":..}` on its
    /// roster channel, right after the stream's first message, under the
    /// order lock: whoever received the message live joined the roster
    /// before it, so gets this too. Best effort: a full inbox costs those
    /// members their recovery, not a message.
    fn announce_stream(&self, server: &ServerHandle, key: &str, epoch: &str) {
        let in_rooms = audience::split(key).map(|(app, _)| app);
        if self.room_app.is_none() || in_rooms != self.room_app.as_deref() {
            return;
        }
        let notice = serde_json::json!({"type": "stream", "epoch": epoch});
        let _ = server.publish_in_order_here(&audience::roster(key), &audience::roster_frame(&notice), None);
    }

    /// Joins as [`Sequencer::join`] does, then runs `then` with the
    /// outcome; in a cluster, once the channel's stream in Redis is read
    /// (on another thread).
    pub(crate) fn join_then(
        self: &Arc<Self>,
        server: &ServerHandle,
        conn: ConnId,
        key: &str,
        greeting: Greeting,
        since: Option<Since>,
        then: JoinThen,
    ) {
        match server.shared.cluster {
            Some(_) => self.join_shared(server, conn, key, greeting, since, then),
            None => then(self.join(server, conn, key, greeting, since)),
        }
    }

    /// Subscribes `conn` to channel `key` and greets it; with `since`,
    /// sends what it missed since then (or says it cannot) before any live
    /// event. Tells whether a cache channel had no event to replay.
    pub(crate) fn join(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        key: &str,
        greeting: Greeting,
        since: Option<Since>,
    ) -> Result<Joined, Busy> {
        let newest = newest_wanted(&greeting, since.as_ref());
        let _order = self.order.lock();
        self.apply_losses();
        let now_ms = self.now_ms();
        let found = match since {
            None => {
                let (top, latest) = self.history.latest(key, newest, None, now_ms);
                Found { top, latest, recovery: None }
            }
            Some(since) => {
                let since = Position { offset: since.offset, epoch: Arc::from(since.epoch) };
                match self.history.recover(key, &since, now_ms) {
                    Recovery::Recovered { missed, top } => {
                        Found { top: Some(top), latest: Vec::new(), recovery: Some(Some(missed)) }
                    }
                    Recovery::Lost { top } => Found { top, latest: Vec::new(), recovery: Some(None) },
                }
            }
        };
        self.join_found(server, conn, key, &greeting, found)
    }

    /// Subscribes `conn` and sends it `greeting` with what `found` holds;
    /// under the order lock.
    fn join_found(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        key: &str,
        greeting: &Greeting,
        found: Found,
    ) -> Result<Joined, Busy> {
        let (dialect, pushes, joined) = greet(key, greeting, found);
        self.refuse_if(server.join_in_order(conn, key, dialect, &pushes).is_err())?;
        if let Greeting::Raw { roster: Some(roster), .. } = greeting {
            self.refuse_if(server.join_in_order(conn, roster, RAW, &[]).is_err())?;
        }
        Ok(joined)
    }

    /// Unsubscribes `conn` from channel `key`, in order with its join.
    pub(crate) fn leave(&self, server: &ServerHandle, conn: ConnId, key: &str) -> Result<(), Busy> {
        let mut order = self.order.lock();
        if let Some(cluster) = server.shared.cluster.as_ref() {
            self.forget_member(cluster, &mut order, conn, key);
        }
        self.refuse_if(server.leave_in_order(conn, key).is_err())
    }

    fn refuse_if(&self, refused: bool) -> Result<(), Busy> {
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Busy);
        }
        Ok(())
    }
}

/// What a join found in a channel's history, wherever it keeps it.
pub(crate) struct Found {
    /// Where the stream stands, if it exists.
    pub(crate) top: Option<Position>,
    /// Its newest events (as many as [`newest_wanted`] says), oldest first.
    pub(crate) latest: Vec<Entry<StoredEvent>>,
    /// With `since`: what was missed (`None`: it cannot all be given).
    pub(crate) recovery: Option<Option<Vec<Entry<StoredEvent>>>>,
}

/// How many of a channel's newest events a join without `since` shows: a
/// raw client's `recent`, a cache channel's last one.
pub(crate) fn newest_wanted(greeting: &Greeting, since: Option<&Since>) -> usize {
    match greeting {
        _ if since.is_some() => 0,
        Greeting::Raw { recent, .. } => *recent,
        Greeting::Pusher { cache, .. } => usize::from(*cache),
        Greeting::Quiet { .. } => 0,
    }
}

/// The frames that greet a connection joining channel `key` with what was
/// `found`, in its dialect, and whether a cache channel had nothing.
fn greet(key: &str, greeting: &Greeting, found: Found) -> (Dialect, Vec<Prepared>, Joined) {
    let channel = audience::split(key).map_or(key, |(_, channel)| channel);
    let Found { top, latest, recovery } = found;
    let dialect = match greeting {
        Greeting::Pusher { .. } => PUSHER,
        Greeting::Raw { .. } => RAW,
        Greeting::Quiet { dialect } => *dialect,
    };
    let greeting_text = match greeting {
        Greeting::Pusher { presence, .. } => {
            Some(protocol::subscription_succeeded_at(channel, presence.as_ref(), top.as_ref().map(position)))
        }
        Greeting::Raw { welcome, .. } => Some(with_position(welcome, top.as_ref())),
        Greeting::Quiet { .. } => None,
    };
    let mut pushes: Vec<Prepared> = greeting_text.iter().map(|text| Prepared::new(&Message::text(text))).collect();
    let mut cache_miss = false;
    if let (Greeting::Pusher { cache: true, .. }, None) = (greeting, &recovery) {
        match latest.last().zip(top.as_ref()) {
            Some((last, top)) => {
                let at = StreamPosition { epoch: &top.epoch, offset: last.offset };
                pushes.push(Prepared::new(&Message::text(last.payload.pusher_frame(channel, at))));
            }
            None => {
                cache_miss = true;
                pushes.push(Prepared::new(&Message::text(protocol::cache_miss(channel))));
            }
        }
    }
    if let (Greeting::Raw { recent, .. }, None) = (greeting, &recovery) {
        if *recent > 0 {
            for entry in &latest {
                pushes.push(Prepared::new(&Message::text(audience::raw_text(&entry.payload.data()))));
            }
            pushes.push(Prepared::new(&Message::text(history_marker(latest.len(), top.as_ref()))));
        }
    }
    if let Some(missed) = recovery {
        let recovered = missed.is_some();
        for entry in missed.into_iter().flatten() {
            let epoch = top.as_ref().map_or("", |t| &t.epoch);
            let at = StreamPosition { epoch, offset: entry.offset };
            let text = match dialect {
                PUSHER => entry.payload.pusher_frame(channel, at),
                _ => audience::raw_text(&entry.payload.data()),
            };
            pushes.push(Prepared::new(&Message::text(text)));
        }
        pushes.push(Prepared::new(&Message::text(recovery_marker(dialect, channel, recovered, top.as_ref()))));
    }
    (dialect, pushes, Joined { cache_miss })
}

/// What tells a client whether it got all it missed, in its dialect.
fn recovery_marker(dialect: Dialect, channel: &str, recovered: bool, top: Option<&Position>) -> String {
    match dialect {
        PUSHER => protocol::recovery(channel, recovered, top.map(position)),
        // Raw clients; a quiet member never recovers, and were it asked
        // to, it would get this form.
        _ => {
            let marker = serde_json::json!({"type": "recovery", "recovered": recovered}).to_string();
            with_position(&marker, top)
        }
    }
}

/// The marker that ends a raw client's recent history (`?history=N`):
/// `{"type":"history","count":..}` with the stream's position when it has one.
pub(crate) fn history_marker(count: usize, top: Option<&Position>) -> String {
    with_position(&serde_json::json!({"type": "history", "count": count}).to_string(), top)
}

/// `object` (JSON object text) with `"epoch"` and `"offset"` added when the
/// stream exists.
fn with_position(object: &str, top: Option<&Position>) -> String {
    let Some(top) = top else { return object.to_owned() };
    match serde_json::from_str::<serde_json::Value>(object) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("epoch".into(), top.epoch.as_ref().into());
            fields.insert("offset".into(), top.offset.into());
            serde_json::Value::Object(fields).to_string()
        }
        _ => object.to_owned(),
    }
}

fn position(at: &Position) -> StreamPosition<'_> {
    StreamPosition { epoch: &at.epoch, offset: at.offset }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_marker_says_how_many_and_where_the_stream_stands() {
        assert_eq!(history_marker(0, None), r#"{"count":0,"type":"history"}"#);
        let top = Position { offset: 7, epoch: Arc::from("3a8eb0a8df78") };
        let marker: serde_json::Value = serde_json::from_str(&history_marker(3, Some(&top))).expect("json");
        assert_eq!(marker, serde_json::json!({"type": "history", "count": 3, "epoch": "3a8eb0a8df78", "offset": 7}));
    }
}
