//! Channel history for the service: what a stored event keeps, and the
//! sequencer, one thread that orders all traffic of the channels that keep
//! history.
//!
//! Why one thread: offsets only mean something if every subscriber sees a
//! channel's events in offset order, and a resubscribing client must get
//! what it missed and then the live events with nothing twice and nothing
//! lost at the seam. Workers publish through per-thread queues that keep
//! each sender's order, not a channel's. The sequencer appends each event
//! to history and hands it to the workers itself, and subscribes (and
//! unsubscribes) connections to those channels itself, through
//! [`ServerHandle::publish_in_order`]: each worker then sees one channel's
//! publishes, joins and replays in the order they were made, so a joining
//! connection gets exactly the events after the history it was given.
//! Channels without history never pass through here.
//!
//! The thread never runs hooks and never touches a socket; it waits only
//! for room in a worker's inbox, and its own queue is bounded: a full queue
//! turns an API publish into 503, a subscription into an error, a chat
//! message into a counted drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::audience::{self, PUSHER, RAW};
use crate::channels::Publication;
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::history::{EpochSource, History, HistoryConfig, Position, Recovery};
use crate::message::Message;
use crate::metrics::MetricsOut;
use crate::pusher::protocol::{self, Since, StreamPosition};
use crate::pusher::{EventData, PresenceSnapshot};

/// Jobs waiting for the sequencer at most.
const QUEUE: usize = 65_536;

/// An event as history keeps it: enough to frame it again, with its offset,
/// in every wire form.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    event: Box<str>,
    /// The data as sent: a string's text, or JSON (`raw`).
    data: Box<str>,
    raw: bool,
    user_id: Option<Box<str>>,
}

impl StoredEvent {
    /// An event named `event` with `data`, from `user_id` if any.
    pub(crate) fn new(event: &str, data: &EventData<'_>, user_id: Option<&str>) -> Self {
        let (data, raw) = match *data {
            EventData::Str(text) => (text, false),
            EventData::Raw(json) => (json, true),
        };
        StoredEvent { event: event.into(), data: data.into(), raw, user_id: user_id.map(Into::into) }
    }

    /// The event as the history API lists it, at `offset`.
    pub(crate) fn to_json(&self, offset: u64) -> serde_json::Value {
        let data = if self.raw {
            serde_json::from_str::<serde_json::Value>(&self.data)
                .unwrap_or_else(|_| serde_json::Value::String(self.data.to_string()))
        } else {
            serde_json::Value::String(self.data.to_string())
        };
        let mut message = serde_json::json!({ "offset": offset, "event": &*self.event, "data": data });
        if let (Some(user_id), Some(fields)) = (&self.user_id, message.as_object_mut()) {
            fields.insert("user_id".into(), user_id.as_ref().into());
        }
        message
    }

    /// Bytes it holds.
    fn size(&self) -> usize {
        self.event.len() + self.data.len() + self.user_id.as_ref().map_or(0, |u| u.len())
    }

    fn data(&self) -> EventData<'_> {
        if self.raw {
            EventData::Raw(&self.data)
        } else {
            EventData::Str(&self.data)
        }
    }

    /// The Pusher frame of this event on `channel` at `at`.
    fn pusher_frame(&self, channel: &str, at: StreamPosition<'_>) -> String {
        protocol::channel_event_at(&self.event, channel, &self.data(), self.user_id.as_deref(), at)
    }

    /// Both wire forms at `at`: the Pusher envelope with its offset, and
    /// the data as text for raw room members.
    fn publication(&self, channel: &str, at: StreamPosition<'_>) -> Publication {
        Publication::new()
            .with(RAW, &Prepared::new(&Message::text(audience::raw_text(&self.data()))))
            .with(PUSHER, &Prepared::new(&Message::text(self.pusher_frame(channel, at))))
    }
}

/// How a connection joining a channel with history is greeted before what
/// it missed.
#[derive(Debug)]
pub(crate) enum Greeting {
    /// A Pusher client: `subscription_succeeded` with the stream's position
    /// (and the member list on a presence channel); after a recovery, the
    /// `fanout:recovery` marker.
    Pusher { presence: Option<PresenceSnapshot> },
    /// A raw room client: its welcome (a JSON object) with the room's
    /// `epoch` and `offset` added; after a recovery the object
    /// `{"type":"recovery","recovered":..,"epoch":..,"offset":..}`.
    Raw { welcome: String },
}

/// One request to the sequencer, queued in the order of the offsets it
/// concerns.
#[derive(Debug)]
enum Job {
    /// Deliver an event already in history at `at`.
    Publish {
        key: String,
        event: StoredEvent,
        at: Position,
        except: Option<ConnId>,
    },
    /// Subscribe a connection; the stream stood at `top` when queued, so
    /// every event up to it is history for this connection and every later
    /// one comes live.
    Join {
        conn: ConnId,
        key: String,
        greeting: Greeting,
        since: Option<Since>,
        top: Option<Position>,
    },
    Leave {
        conn: ConnId,
        key: String,
    },
}

/// Why the sequencer did not take a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// History and its sequencer thread (started with the first job, when the
/// server's handle is known).
pub(crate) struct Sequencer {
    history: Arc<History<StoredEvent>>,
    /// Held from reading or appending history to queueing the job, so the
    /// queue is in offset order and a full queue is seen before appending.
    order: parking_lot::Mutex<()>,
    jobs: Sender<Job>,
    receiver: parking_lot::Mutex<Option<Receiver<Job>>>,
    started: Instant,
    /// Jobs refused because the queue was full.
    pub(crate) refused: AtomicU64,
}

impl Sequencer {
    /// A sequencer keeping history as `config` says.
    pub(crate) fn new(config: HistoryConfig) -> Self {
        let (jobs, receiver) = crossbeam_channel::bounded(QUEUE);
        Sequencer {
            history: Arc::new(History::new(config, EpochSource::from_clock())),
            order: parking_lot::Mutex::new(()),
            jobs,
            receiver: parking_lot::Mutex::new(Some(receiver)),
            started: Instant::now(),
            refused: AtomicU64::new(0),
        }
    }

    /// The store, for the API and `/metrics`.
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
        out.gauge(
            "fanout_history_bytes",
            "Bytes of history, counted against --history-max-bytes",
            &[],
            stats.bytes as u64,
        );
        out.counter("fanout_history_evicted", "Messages evicted for --history-max-bytes", &[], stats.evicted);
        out.counter(
            "fanout_history_trimmed",
            "Messages dropped for --history-size or --history-ttl",
            &[],
            stats.trimmed,
        );
        let refused = self.refused.load(Ordering::Relaxed);
        out.counter("fanout_history_refused", "Publishes and joins refused: the history queue was full", &[], refused);
    }

    /// Appends `event` to channel `key`'s history and queues its delivery
    /// to all members but `except`. Once this returns, history has it.
    pub(crate) fn publish(
        &self,
        server: &ServerHandle,
        key: &str,
        event: StoredEvent,
        except: Option<ConnId>,
    ) -> Result<(), Busy> {
        self.submit(server, |sequencer| {
            let size = event.size();
            let at = sequencer.history.append(key, event.clone(), size, sequencer.now_ms());
            Job::Publish { key: key.to_owned(), event, at, except }
        })
    }

    /// Queues `conn`'s joining of channel `key`, recovering from `since`.
    pub(crate) fn join(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        key: &str,
        greeting: Greeting,
        since: Option<Since>,
    ) -> Result<(), Busy> {
        self.submit(server, |sequencer| {
            let top = sequencer.history.latest(key, 0, None, sequencer.now_ms()).0;
            Job::Join { conn, key: key.to_owned(), greeting, since, top }
        })
    }

    /// Queues `conn`'s leaving of channel `key` (in order with its join).
    pub(crate) fn leave(&self, server: &ServerHandle, conn: ConnId, key: &str) -> Result<(), Busy> {
        self.submit(server, |_| Job::Leave { conn, key: key.to_owned() })
    }

    /// Makes and queues a job under the order lock, if the queue has room
    /// (only the sequencer takes from it, so room seen here stays).
    fn submit(&self, server: &ServerHandle, make: impl FnOnce(&Self) -> Job) -> Result<(), Busy> {
        self.start(server);
        let _order = self.order.lock();
        if self.jobs.is_full() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Busy);
        }
        self.jobs.try_send(make(self)).map_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Busy
        })
    }

    fn start(&self, server: &ServerHandle) {
        let Some(receiver) = self.receiver.lock().take() else { return };
        let run = Run { server: server.clone(), history: Arc::clone(&self.history), started: self.started };
        let spawned = std::thread::Builder::new().name("fanout-history".into()).spawn(move || run.serve(receiver));
        if let Err(e) = spawned {
            // Jobs then wait in the queue until it is full and are refused.
            log::error!("cannot start the history thread: {e}; channels with history will refuse traffic");
        }
    }
}

/// The sequencer thread's state.
struct Run {
    server: ServerHandle,
    history: Arc<History<StoredEvent>>,
    started: Instant,
}

impl Run {
    fn serve(self, jobs: Receiver<Job>) {
        for job in jobs {
            let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let open = match job {
                Job::Publish { key, event, at, except } => self.publish(&key, &event, &at, except),
                Job::Join { conn, key, greeting, since, top } => self.join(conn, &key, greeting, since, top, now_ms),
                Job::Leave { conn, key } => {
                    self.server.unsubscribe(conn, &key);
                    true
                }
            };
            if !open {
                return; // the server stopped
            }
        }
    }

    fn publish(&self, key: &str, event: &StoredEvent, at: &Position, except: Option<ConnId>) -> bool {
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let publication = event.publication(channel, position(at));
        self.server.publish_in_order(key, &publication, except).is_ok()
    }

    fn join(
        &self,
        conn: ConnId,
        key: &str,
        greeting: Greeting,
        since: Option<Since>,
        top: Option<Position>,
        now_ms: u64,
    ) -> bool {
        let channel = audience::split(key).map_or(key, |(_, channel)| channel);
        let dialect = match greeting {
            Greeting::Pusher { .. } => PUSHER,
            Greeting::Raw { .. } => RAW,
        };
        // What the client missed up to `top`; later events come live.
        let recovery = since.map(|since| {
            let since = Position { offset: since.offset, epoch: Arc::from(since.epoch) };
            match (&top, self.history.recover(key, &since, now_ms)) {
                (Some(top), Recovery::Recovered { mut missed, top: now })
                    if now.epoch == top.epoch && since.offset <= top.offset =>
                {
                    missed.retain(|entry| entry.offset <= top.offset);
                    Recovery::Recovered { missed, top: top.clone() }
                }
                (top, _) => Recovery::Lost { top: top.clone() },
            }
        });
        if !self.server.subscribe_as(conn, key, dialect) {
            return true; // closed meanwhile
        }
        let greeting_text = match &greeting {
            Greeting::Pusher { presence } => {
                protocol::subscription_succeeded_at(channel, presence.as_ref(), top.as_ref().map(position))
            }
            Greeting::Raw { welcome } => with_position(welcome, top.as_ref()),
        };
        self.server.push(conn, &Message::text(greeting_text));
        let Some(recovery) = recovery else { return true };
        let recovered = match recovery {
            Recovery::Recovered { missed, top } => {
                for entry in missed {
                    let at = StreamPosition { epoch: &top.epoch, offset: entry.offset };
                    let text = match dialect {
                        PUSHER => entry.payload.pusher_frame(channel, at),
                        _ => audience::raw_text(&entry.payload.data()),
                    };
                    self.server.push(conn, &Message::text(text));
                }
                true
            }
            Recovery::Lost { .. } => false,
        };
        let marker = match greeting {
            Greeting::Pusher { .. } => protocol::recovery(channel, recovered, top.as_ref().map(position)),
            Greeting::Raw { .. } => with_position(
                &serde_json::json!({"type": "recovery", "recovered": recovered}).to_string(),
                top.as_ref(),
            ),
        };
        self.server.push(conn, &Message::text(marker));
        true
    }
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
