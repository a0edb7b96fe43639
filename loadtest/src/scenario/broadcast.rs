//! `broadcast`: connections `0..P` publish on a fixed schedule; every connection receives. With
//! `--publish-url` the publishers connect there and only send: deliveries are counted at the
//! other connections alone (what reaches a publisher is counted apart), each of which is owed
//! every measured message.
//!
//! Each message carries its *intended* send time, and the schedule never waits for the server:
//! if a publisher falls behind (server not reading, client busy) it sends the backlog with the
//! original timestamps, so a stall shows up as latency instead of silently lowering the rate
//! (coordinated omission corrected). Receivers check every publisher's sequence numbers.

use std::sync::Arc;

use crate::client::{Cause, Conn, Handler, Sender, State};
use crate::header::{self, Header};
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::scenario::Driver;
use crate::seq::{SeqCounts, SeqTracker};
use crate::stats::Partial;

/// Messages one publisher sends per loop turn at most before others get a go.
const BURST: usize = 256;
/// Queued bytes above which a publisher waits for the socket to drain.
const MAX_QUEUED: usize = 4 << 20;
/// Retry delay while a publisher's queue is full.
const BACKOFF_NS: u64 = 200_000;

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

/// Broadcast scenario state for one thread.
pub struct Broadcast {
    plan: Arc<Plan>,
    thread: usize,
    publishers: u64,
    size: usize,
    expect_echo: bool,
    /// `--publish-url`: publishers are not receivers.
    separate_publishers: bool,
    /// When each slot's handshake completed (`u64::MAX`: not yet). A receiver counts when it
    /// opened before the measure start; this is decided per message from the timestamp, so it
    /// does not matter whether this thread has noticed yet that measuring began.
    opened_at: Vec<u64>,
    trackers: Vec<Vec<SeqTracker>>,
    pubs: Vec<Publisher>,
    buf: Vec<u8>,
    interval: Hist,
    seen: u64,
    seq: SeqCounts,
    st: Partial,
}

impl Broadcast {
    /// Creates the driver for `thread`, with the publishers whose connections it owns.
    pub fn new(plan: Arc<Plan>, thread: usize) -> Broadcast {
        let Kind::Broadcast { publishers, size, payload, expect_echo, separate_publishers, .. } = plan.kind else {
            unreachable!("broadcast driver for another scenario")
        };
        let n = plan.thread_connections(thread) as usize;
        let pubs = (0..n)
            .map(|slot| (slot, plan.global_index(thread, slot)))
            .take_while(|&(_, id)| id < publishers)
            .map(|(slot, id)| Publisher {
                slot,
                id,
                next_k: 0,
                first_k: plan.first_at_or_after(id, plan.measure_start),
                end_k: plan.first_at_or_after(id, plan.measure_end),
                counted: false,
                sent: 0,
            })
            .collect::<Vec<_>>();
        // The body is laid down once; each message only rewrites the header.
        let buf = if pubs.is_empty() { Vec::new() } else { header::body(size, payload) };
        Broadcast {
            plan,
            thread,
            publishers,
            size,
            expect_echo,
            separate_publishers,
            opened_at: vec![u64::MAX; n],
            trackers: vec![Vec::new(); n],
            pubs,
            buf,
            interval: Hist::new(),
            seen: 0,
            seq: SeqCounts::default(),
            st: Partial::default(),
        }
    }
}

impl Handler for Broadcast {
    fn on_open(&mut self, slot: usize, _tx: &mut Sender, now: u64) {
        if let Some(at) = self.opened_at.get_mut(slot) {
            *at = now;
        }
    }

    fn on_message(&mut self, slot: usize, _op: u8, payload: &[u8], _tx: &mut Sender, now: u64) {
        self.seen += 1;
        let Some(h) = Header::read(payload) else {
            self.st.other += 1;
            return;
        };
        if h.sent_ns < self.plan.measure_start {
            self.st.warmup_received += 1;
            return;
        }
        let me = self.plan.global_index(self.thread, slot);
        if self.separate_publishers && me < self.publishers {
            self.st.publisher_received += 1;
            return; // a publisher: what reaches it is not a delivery
        }
        if self.opened_at[slot] >= self.plan.measure_start {
            return; // opened too late to be one of the measured receivers
        }
        let publisher = u64::from(h.publisher);
        if publisher >= self.publishers {
            self.st.other += 1;
            return;
        }
        if publisher == me && !self.expect_echo {
            self.st.self_received += 1;
            return;
        }
        self.st.received += 1;
        let latency = now.saturating_sub(h.sent_ns);
        self.st.latency.record(latency);
        self.interval.record(latency);
        let trackers = &mut self.trackers[slot];
        if trackers.is_empty() {
            trackers.resize(self.publishers as usize, SeqTracker::default());
        }
        self.seq.add(trackers[publisher as usize].observe(h.seq));
    }
}

impl Driver for Broadcast {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        let plan = &self.plan;
        if now < plan.traffic_start {
            return plan.traffic_start;
        }
        let mut next = u64::MAX;
        for p in &mut self.pubs {
            // A thread still behind on its ramp-up may not have created the slot yet.
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
                    header::build(&mut self.buf, self.size, Header { publisher: p.id as u32, seq, sent_ns: t });
                    conn.sender().send_binary(&self.buf);
                    sent += 1;
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
        // The worker calls this before the first tick at or after the measure start, so no
        // measured message is sent before a publisher knows whether it counts.
        for p in &mut self.pubs {
            p.counted = conns.get(p.slot).is_some_and(|c| c.open_at(self.plan.measure_start));
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
        std::mem::take(&mut self.st)
    }
}
