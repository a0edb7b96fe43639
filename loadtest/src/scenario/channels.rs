//! `channels`: Pusher-protocol subscribers, and with `--via client-events` the publishing
//! connections too, on one event-loop thread.
//!
//! Every connection waits for `pusher:connection_established`, subscribes to its channel (signing
//! the subscription of a private channel with the app secret) and answers `pusher:ping`. A
//! subscriber checks each event's stamp: which stream, which sequence number, when it was meant
//! to be sent; one tracker per stream finds duplicates and reordering. Only subscribers whose
//! subscription succeeded before measuring began count, on both sides of the loss check.
//! Publishing connections send `client-bench` events on the schedule of their stream.

use std::sync::Arc;

use crate::channels::board::ChannelsBoard;
use crate::channels::cursor::{Cursor, Next};
use crate::channels::plan::{ChannelsPlan, Via};
use crate::channels::stats::ChannelsPartial;
use crate::client::frame::OP_TEXT;
use crate::client::{Cause, Conn, Handler, Sender, State};
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::pusher::envelope::Envelope;
use crate::pusher::shape::EventShape;
use crate::pusher::{messages, sign, stamp::Stamp};
use crate::scenario::Driver;
use crate::seq::{Seen, SeqTracker};
use crate::stats::Partial;

/// Events one publisher sends per loop turn at most before others get a go.
const BURST: usize = 256;
/// Queued bytes above which a publisher waits for its socket to drain.
const MAX_QUEUED: usize = 4 << 20;
/// Retry delay while a publisher's queue is full.
const BACKOFF_NS: u64 = 200_000;
/// How often delivery counts go to the board during a saturation search.
const FLUSH_NS: u64 = 20_000_000;
/// Distinct unexpected event names remembered.
const MAX_UNEXPECTED: usize = 16;

/// One connection's Pusher state.
struct Member {
    channel: u64,
    publisher: bool,
    opened_at: u64,
    subscribed_at: u64,
    /// One per stream of the channel, allocated at the first event.
    trackers: Vec<SeqTracker>,
}

/// A client-event publisher on this thread.
struct WsPublisher {
    slot: usize,
    cursor: Cursor,
    channel: String,
}

/// Channels scenario state for one thread.
pub struct Channels {
    plan: Arc<Plan>,
    cp: ChannelsPlan,
    board: Arc<ChannelsBoard>,
    members: Vec<Member>,
    pubs: Vec<WsPublisher>,
    data: Vec<u8>,
    frame: Vec<u8>,
    /// Per channel: how the server wraps its events, once one was parsed.
    shapes: Vec<Option<EventShape>>,
    interval: Hist,
    seen: u64,
    st: ChannelsPartial,
    out: Partial,
    /// Per step: (unique, in window) already added to the board.
    flushed: Vec<(u64, u64)>,
    /// Per step: when its measured part ends (0: not known yet).
    ends: Vec<u64>,
    next_flush: u64,
}

impl Channels {
    /// Creates the driver for `thread`, sharing `board` with the process's other threads.
    pub fn new(plan: Arc<Plan>, thread: usize, board: Arc<ChannelsBoard>) -> Channels {
        let Kind::Channels(cp) = &plan.kind else { unreachable!("channels driver for another scenario") };
        let cp = cp.clone();
        let n = plan.thread_connections(thread) as usize;
        let members: Vec<Member> = (0..n)
            .map(|slot| {
                let index = plan.global_index(thread, slot);
                Member {
                    channel: cp.channel_of_connection(index),
                    publisher: cp.is_publisher(index),
                    opened_at: u64::MAX,
                    subscribed_at: u64::MAX,
                    trackers: Vec::new(),
                }
            })
            .collect();
        let pubs = (0..n)
            .map(|slot| (slot, plan.global_index(thread, slot)))
            .filter(|&(_, index)| cp.is_publisher(index))
            .map(|(slot, index)| WsPublisher {
                slot,
                cursor: Cursor::new(index),
                channel: cp.channel_name(index % cp.channels),
            })
            .collect();
        let steps = cp.steps.len();
        Channels {
            st: ChannelsPartial { subscribers: vec![0; cp.channels as usize], ..ChannelsPartial::new(steps) },
            flushed: vec![(0, 0); steps],
            shapes: vec![None; cp.channels as usize],
            ends: vec![0; steps],
            plan,
            cp,
            board,
            members,
            pubs,
            data: Vec::new(),
            frame: Vec::new(),
            interval: Hist::new(),
            seen: 0,
            out: Partial::default(),
            next_flush: 0,
        }
    }

    /// An event from a publisher, carrying `stamp` if it had one, reached connection `slot` at
    /// `now`.
    fn delivery(&mut self, slot: usize, stamp: Option<Stamp>, now: u64) {
        let Some(stamp) = stamp else {
            self.out.other += 1;
            return;
        };
        let (cp, m) = (&self.cp, &mut self.members[slot]);
        let s = u64::from(stamp.stream);
        if m.publisher {
            self.st.to_publishers += 1;
            return;
        }
        if s >= cp.streams() {
            self.out.other += 1;
            return;
        }
        if cp.channel_of_stream(s) != m.channel {
            self.st.misrouted += 1;
            return;
        }
        if m.subscribed_at >= self.plan.measure_start {
            return; // subscribed too late to be one of the counted subscribers
        }
        let rank = cp.rank_in_channel(s);
        if m.trackers.len() <= rank {
            m.trackers.resize(rank + 1, SeqTracker::default());
        }
        let seen = m.trackers[rank].observe(stamp.seq);
        let step = usize::from(stamp.step);
        if step >= cp.steps.len() || stamp.sent_ns < cp.steps[step].measure_start {
            self.out.warmup_received += 1;
            return;
        }
        if self.ends[step] == 0 {
            self.ends[step] = self.board.pace(step).map_or(0, |pace| cp.window(step, pace).1);
        }
        let st = &mut self.st.steps[step];
        match seen {
            Seen::Duplicate => {
                st.duplicates += 1;
                return;
            }
            Seen::Late => st.reordered += 1,
            Seen::Gap(n) => st.gaps += n,
            Seen::InOrder => {}
        }
        st.unique += 1;
        st.in_window += u64::from(now < self.ends[step]);
        let latency = now.saturating_sub(stamp.sent_ns);
        st.latency.record(latency);
        self.interval.record(latency);
    }

    /// A Pusher protocol event on connection `slot`.
    fn control(&mut self, slot: usize, env: &Envelope<'_>, tx: &mut Sender, now: u64) {
        let m = &mut self.members[slot];
        if env.event.is("pusher:connection_established") {
            let id = env.data_str().and_then(|d| d.decode()).and_then(|d| messages::socket_id(&d));
            let Some(id) = id else {
                self.out.other += 1;
                return;
            };
            let channel = self.cp.channel_name(m.channel);
            let auth = (self.cp.via == Via::ClientEvents)
                .then(|| sign::channel_auth(&self.cp.app_key, &self.cp.app_secret, &id, &channel));
            tx.send(OP_TEXT, messages::subscribe(&channel, auth.as_deref()).as_bytes());
        } else if env.event.is("pusher_internal:subscription_succeeded") {
            if m.subscribed_at == u64::MAX {
                m.subscribed_at = now;
                self.st.subscribed += 1;
                self.st.subscribe.record(now.saturating_sub(m.opened_at));
            }
        } else if env.event.is("pusher:ping") {
            tx.send(OP_TEXT, messages::PONG.as_bytes());
            self.st.pings += 1;
        } else if env.event.is("pusher:error") {
            *self.st.pusher_errors.entry(messages::error_key(env.data)).or_default() += 1;
            if let Some(step) = self.board.step_at(now).filter(|_| m.publisher) {
                self.st.steps[step].errors += 1;
                self.board.add_error(step);
            }
        } else if !env.event.is("pusher:pong") {
            self.out.other += 1;
            let name = format!("unexpected event {}", env.event.decode().unwrap_or_default());
            if self.st.pusher_errors.len() < MAX_UNEXPECTED || self.st.pusher_errors.contains_key(&name) {
                *self.st.pusher_errors.entry(name).or_default() += 1;
            }
        }
    }

    /// Adds this thread's new delivery counts to the board.
    fn flush_board(&mut self) {
        for (i, st) in self.st.steps.iter().enumerate() {
            let (u, w) = self.flushed[i];
            if (st.unique, st.in_window) != (u, w) {
                self.board.add_received(i, st.unique - u, st.in_window - w);
                self.flushed[i] = (st.unique, st.in_window);
            }
        }
    }
}

impl Handler for Channels {
    fn on_open(&mut self, slot: usize, _tx: &mut Sender, now: u64) {
        if let Some(m) = self.members.get_mut(slot) {
            m.opened_at = now;
        }
    }

    fn on_message(&mut self, slot: usize, _op: u8, payload: &[u8], tx: &mut Sender, now: u64) {
        self.seen += 1;
        let channel = self.members.get(slot).map_or(usize::MAX, |m| m.channel as usize);
        let shape = self.shapes.get(channel).and_then(Option::as_ref);
        if let Some(data) = shape.and_then(|shape| shape.data_of(payload)) {
            self.delivery(slot, Stamp::read(data), now);
            return;
        }
        let Some(env) = Envelope::parse(payload) else {
            self.out.other += 1;
            return;
        };
        if env.event.is(self.cp.event_name()) {
            let stamp = env.data_str().and_then(|d| match d.plain() {
                Some(data) => {
                    // Learned again whenever the fast path missed: the first event of a stream
                    // may differ from the rest (fanout adds its epoch to it).
                    if let Some(shape) = self.shapes.get_mut(channel) {
                        *shape = EventShape::learn(payload, data);
                    }
                    Stamp::read(data)
                }
                None => d.decode().and_then(|d| Stamp::read(d.as_bytes())),
            });
            self.delivery(slot, stamp, now);
        } else {
            self.control(slot, &env, tx, now);
        }
    }
}

impl Driver for Channels {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        let mut next = u64::MAX;
        if self.cp.saturation() {
            if now >= self.next_flush {
                self.flush_board();
                self.next_flush = now + FLUSH_NS;
            }
            next = self.next_flush;
        }
        let (cp, board) = (&self.cp, &self.board);
        for p in &mut self.pubs {
            if self.members[p.slot].subscribed_at == u64::MAX {
                continue; // a client event needs the subscription first
            }
            let Some(conn) = conns.get_mut(p.slot).filter(|c| c.state == State::Open) else { continue };
            let mut sent = 0;
            loop {
                let (t, step, seq) = match p.cursor.peek(cp, board, now) {
                    Next::Due { t, step, seq } => (t, step, seq),
                    Next::At(t) => {
                        next = next.min(t);
                        break;
                    }
                    Next::Done => break,
                };
                if sent >= BURST {
                    next = now;
                    break;
                }
                if conn.sender().queued() > MAX_QUEUED {
                    next = next.min(now + BACKOFF_NS);
                    break;
                }
                Stamp { step: step as u8, stream: p.cursor.stream as u32, seq, sent_ns: t }
                    .write(&mut self.data, cp.size);
                messages::client_event(&mut self.frame, "client-bench", &p.channel, &self.data);
                conn.sender().send(OP_TEXT, &self.frame);
                p.cursor.advance();
                sent += 1;
                self.out.sent_total += 1;
                if t >= cp.steps[step].measure_start {
                    let channel = cp.channel_of_stream(p.cursor.stream);
                    self.st.steps[step].sent += 1;
                    self.st.steps[step].accept(channel);
                    board.add_accepted(step, channel);
                    self.out.send_lag.record(now - t);
                }
            }
            if sent > 0 {
                dirty.push(p.slot);
            }
        }
        next
    }

    fn on_measure_start(&mut self, conns: &[Conn]) {
        let start = self.plan.measure_start;
        for (slot, m) in self.members.iter().enumerate() {
            if m.subscribed_at >= start || !conns.get(slot).is_some_and(|c| c.open_at(start)) {
                continue;
            }
            if m.publisher {
                self.st.publishers_subscribed += 1;
            } else {
                self.st.subscribers[m.channel as usize] += 1;
                self.board.add_subscribers(m.channel, 1);
            }
        }
    }

    fn on_end(&mut self, _slot: usize, _cause: &Cause, _now: u64) {}

    fn take_interval(&mut self, into: &mut Hist) {
        into.merge(&self.interval);
        self.interval.reset();
    }

    fn deliveries(&self) -> u64 {
        self.seen
    }

    fn finish(&mut self, _now: u64) -> Partial {
        for p in &self.pubs {
            for (step, st) in self.st.steps.iter_mut().enumerate() {
                if let Some(pace) = self.board.pace(step) {
                    st.scheduled += self.cp.scheduled(step, pace, p.cursor.stream);
                }
            }
        }
        // The run's latency is the reference step's (the fixed step, or the search's half load).
        if let Some(reference) = self.st.steps.get(self.cp.reference_step()) {
            self.out.latency.merge(&reference.latency);
        }
        self.out.channels = Some(std::mem::take(&mut self.st));
        std::mem::take(&mut self.out)
    }
}
