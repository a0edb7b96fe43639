//! `socketio`: Socket.IO clients over the WebSocket transport. Each connection opens its
//! Engine.IO session, connects to the namespace and, with `--room`, joins the room; connections
//! `0..P` then publish stamped `message` events on the broadcast schedule (intended send times,
//! coordinated omission corrected) and every ready connection receives. The protocol's text is in
//! `crate::socketio`; this is the event-loop side.

use std::sync::Arc;

use crate::client::frame::OP_TEXT;
use crate::client::{Cause, Conn, Handler, Sender, State};
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::pusher::stamp::Stamp;
use crate::scenario::Driver;
use crate::seq::{SeqCounts, SeqTracker};
use crate::socketio::event_frames::EventFrames;
use crate::socketio::packet::{self, Engine, Kind as SioKind};
use crate::socketio::plan::SocketIoPlan;
use crate::socketio::stats::SocketIoPartial;
use crate::stats::Partial;

/// Events one publisher sends per loop turn at most before others get a go.
const BURST: usize = 256;
/// Queued bytes above which a publisher waits for the socket to drain.
const MAX_QUEUED: usize = 4 << 20;
/// Retry delay while a publisher's queue is full.
const BACKOFF_NS: u64 = 200_000;
/// The ack id of the room join, the only event a connection sends with one.
const JOIN_ID: u64 = 1;

/// One connection's Socket.IO state.
struct Member {
    /// When the WebSocket opened (`u64::MAX`: not yet).
    opened_at: u64,
    /// When it became ready: connected, and joined with `--room` (`u64::MAX`: not yet).
    ready_at: u64,
    /// One per publisher, allocated at the first delivery.
    trackers: Vec<SeqTracker>,
}

/// One publisher living on this thread.
struct Publisher {
    slot: usize,
    id: u64,
    next_k: u64,
    first_k: u64,
    end_k: u64,
    counted: bool,
    sent: u64,
}

/// Socket.IO scenario state for one thread.
pub struct SocketIo {
    plan: Arc<Plan>,
    thread: usize,
    sp: SocketIoPlan,
    frames: EventFrames,
    /// The CONNECT packet, sent on the open packet.
    connect: Vec<u8>,
    /// `--room`: the acknowledged join, sent on the CONNECT answer.
    join: Option<Vec<u8>>,
    members: Vec<Member>,
    pubs: Vec<Publisher>,
    /// A stamp and its padding, then the event around it; both reused.
    data: Vec<u8>,
    frame: Vec<u8>,
    interval: Hist,
    seen: u64,
    seq: SeqCounts,
    st: Partial,
    sio: SocketIoPartial,
}

impl SocketIo {
    /// Creates the driver for `thread`, with the publishers whose connections it owns.
    pub fn new(plan: Arc<Plan>, thread: usize) -> SocketIo {
        let Kind::SocketIo(sp) = &plan.kind else { unreachable!("socketio driver for another scenario") };
        let sp = sp.clone();
        let n = plan.thread_connections(thread) as usize;
        let pubs = (0..n)
            .map(|slot| (slot, plan.global_index(thread, slot)))
            .take_while(|&(_, id)| id < sp.publishers)
            .map(|(slot, id)| Publisher {
                slot,
                id,
                next_k: 0,
                first_k: plan.first_at_or_after(id, plan.measure_start),
                end_k: plan.first_at_or_after(id, plan.measure_end),
                counted: false,
                sent: 0,
            })
            .collect();
        let join = sp.room.as_deref().map(|room| {
            packet::event_with_ack(&sp.namespace, JOIN_ID, "join", &packet::json_string(room)).into_bytes()
        });
        SocketIo {
            frames: EventFrames::new(&sp.namespace, sp.room.as_deref()),
            connect: packet::connect(&sp.namespace).into_bytes(),
            join,
            members: (0..n).map(|_| Member { opened_at: u64::MAX, ready_at: u64::MAX, trackers: Vec::new() }).collect(),
            pubs,
            data: Vec::new(),
            frame: Vec::new(),
            interval: Hist::new(),
            seen: 0,
            seq: SeqCounts::default(),
            st: Partial::default(),
            sio: SocketIoPartial::default(),
            plan,
            thread,
            sp,
        }
    }

    /// Connection `slot` is ready at `now`.
    fn ready(&mut self, slot: usize, now: u64) {
        let m = &mut self.members[slot];
        if m.ready_at == u64::MAX {
            m.ready_at = now;
            self.sio.ready.record(now.saturating_sub(m.opened_at));
        }
    }

    /// A `message` event reached connection `slot` at `now`, with `stamp` if it had one.
    fn delivery(&mut self, slot: usize, stamp: Option<Stamp>, now: u64) {
        let Some(h) = stamp else {
            self.st.other += 1;
            return;
        };
        if h.sent_ns < self.plan.measure_start {
            self.st.warmup_received += 1;
            return;
        }
        if self.members[slot].ready_at >= self.plan.measure_start {
            return; // ready too late to be one of the counted receivers
        }
        let publisher = u64::from(h.stream);
        if publisher >= self.sp.publishers {
            self.st.other += 1;
            return;
        }
        if publisher == self.plan.global_index(self.thread, slot) {
            self.st.self_received += 1;
            return;
        }
        self.st.received += 1;
        let latency = now.saturating_sub(h.sent_ns);
        self.st.latency.record(latency);
        self.interval.record(latency);
        let trackers = &mut self.members[slot].trackers;
        if trackers.is_empty() {
            trackers.resize(self.sp.publishers as usize, SeqTracker::default());
        }
        self.seq.add(trackers[publisher as usize].observe(h.seq));
    }

    /// A Socket.IO packet of our namespace other than a delivery.
    fn control(&mut self, slot: usize, p: &packet::Packet<'_>, tx: &mut Sender, now: u64) {
        match p.kind {
            SioKind::Connect => {
                self.sio.connected += 1;
                match &self.join {
                    Some(join) => tx.send(OP_TEXT, join),
                    None => self.ready(slot, now),
                }
            }
            SioKind::Ack if p.id == Some(JOIN_ID) => match packet::ack_refusal(p.data) {
                None => {
                    self.sio.joined += 1;
                    self.ready(slot, now);
                }
                Some(why) => self.sio.refuse(format!("join refused: {why}")),
            },
            SioKind::ConnectError => {
                self.sio.refuse(format!("connect_error: {}", packet::connect_error_message(p.data)));
            }
            SioKind::Disconnect => self.sio.disconnects += 1,
            SioKind::Event if p.data.starts_with(br#"["error""#) => {
                // fanout's refusal of a command sent without an ack id.
                self.sio.refuse(format!("error event: {}", String::from_utf8_lossy(p.data)));
            }
            _ => self.st.other += 1,
        }
    }
}

impl Handler for SocketIo {
    fn on_open(&mut self, slot: usize, _tx: &mut Sender, now: u64) {
        if let Some(m) = self.members.get_mut(slot) {
            m.opened_at = now;
        }
    }

    fn on_message(&mut self, slot: usize, _op: u8, payload: &[u8], tx: &mut Sender, now: u64) {
        self.seen += 1;
        if let Some(stamp) = self.frames.stamp_of(payload) {
            self.delivery(slot, stamp, now);
            return;
        }
        match packet::parse(payload) {
            Some(Engine::Ping) => {
                tx.send(OP_TEXT, b"3");
                self.sio.pings += 1;
            }
            Some(Engine::Open(_)) => {
                self.sio.sessions += 1;
                tx.send(OP_TEXT, &self.connect);
            }
            Some(Engine::Message(p)) if p.namespace == self.frames.namespace() => self.control(slot, &p, tx, now),
            _ => self.st.other += 1,
        }
    }
}

impl Driver for SocketIo {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        let plan = &self.plan;
        if now < plan.traffic_start {
            return plan.traffic_start;
        }
        let mut next = u64::MAX;
        for p in &mut self.pubs {
            if self.members[p.slot].ready_at == u64::MAX {
                continue; // an event before the CONNECT (or the join) would be refused
            }
            let Some(conn) = conns.get_mut(p.slot).filter(|c| c.state == State::Open) else { continue };
            let mut sent = 0;
            loop {
                let t = plan.intended(p.id, p.next_k);
                if t >= plan.measure_end {
                    break;
                }
                if t > now {
                    next = next.min(t);
                    break;
                }
                if sent >= BURST {
                    next = now;
                    break;
                }
                if conn.sender().queued() > MAX_QUEUED {
                    next = next.min(now + BACKOFF_NS);
                    break;
                }
                let measured = t >= plan.measure_start;
                if !measured || p.counted {
                    let seq = if measured { p.next_k - p.first_k } else { p.next_k };
                    Stamp { step: 0, stream: p.id as u32, seq, sent_ns: t }.write(&mut self.data, self.sp.size);
                    self.frames.publish(&mut self.frame, &self.data);
                    conn.sender().send(OP_TEXT, &self.frame);
                    sent += 1;
                    self.st.sent_total += 1;
                    if measured {
                        p.sent += 1;
                        self.st.sent += 1;
                        self.st.send_lag.record(now - t);
                    }
                }
                p.next_k += 1;
            }
            if sent > 0 {
                dirty.push(p.slot);
            }
        }
        next
    }

    fn on_measure_start(&mut self, conns: &[Conn]) {
        // Ready before the measure start by its own timestamp, and still open then: every
        // thread counts the same connections however late it looks (see `Conn::open_at`).
        let start = self.plan.measure_start;
        let counts = |slot: usize, m: &Member| m.ready_at < start && conns.get(slot).is_some_and(|c| c.open_at(start));
        self.sio.ready_at_measure = self.members.iter().enumerate().filter(|(slot, m)| counts(*slot, m)).count() as u64;
        for p in &mut self.pubs {
            p.counted = counts(p.slot, &self.members[p.slot]);
            self.st.publishers_at_measure += u64::from(p.counted);
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
        for p in self.pubs.iter().filter(|p| p.counted) {
            self.st.unsent += (p.end_k - p.first_k).saturating_sub(p.sent);
        }
        self.st.add_seq(self.seq);
        self.st.socketio = Some(std::mem::take(&mut self.sio));
        std::mem::take(&mut self.st)
    }
}
