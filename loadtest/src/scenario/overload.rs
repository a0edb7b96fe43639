//! `overload`: one set of connections, a capacity probe (unless `--capacity` is given), then
//! steps of offered load at multiples of that capacity, back to back.
//!
//! Within a step publishers send on a fixed schedule as in `broadcast` (open loop, each message
//! stamped with its scheduled time, so latency is coordinated-omission corrected). Steps are not
//! separated by drains: at 3× capacity the backlog would take longer to drain than the step ran,
//! and the load would no longer be what was offered. Instead every message belongs to the step
//! its scheduled send time falls in, so a message of step 2 that arrives during step 3 is
//! counted (and timed) for step 2, never mistaken for a loss. Sequence numbers run on across
//! steps per publisher, so one tracker per (receiver, publisher) sees duplicates and reordering
//! across step boundaries too. Loss is judged only at the end, after the final drain, and only
//! over connections the server did not close: a closed receiver is reported as closed, not as
//! loss, and is left out of later steps' receiver counts.

use std::sync::Arc;

use crate::client::{Cause, Conn, Handler, Sender, State};
use crate::header::{self, Header};
use crate::hist::Hist;
use crate::overload_plan::OverloadPlan;
use crate::overload_stats::OverloadPartial;
use crate::plan::{Kind, Plan};
use crate::scenario::capacity_board::{self, CapacityBoard};
use crate::scenario::probe::Probe;
use crate::scenario::Driver;
use crate::seq::{Seen, SeqTracker};
use crate::stats::Partial;

/// Messages one publisher sends per loop turn at most before others get a go.
const BURST: usize = 256;
/// Queued bytes above which a publisher waits for its socket to drain (steps) ...
const MAX_QUEUED: usize = 4 << 20;
/// ... and above which the probe waits: the probe must not build a client-side backlog.
const PROBE_MAX_QUEUED: usize = 64 << 10;
/// Retry delay while a publisher waits for its socket or for deliveries.
const BACKOFF_NS: u64 = 200_000;
/// How often a thread looks for the other threads' probe results.
const BOARD_POLL_NS: u64 = 1_000_000;

/// One publisher living on this thread.
struct Publisher {
    slot: usize,
    id: u64,
    step: usize,
    next_k: u64,
    /// Sequence number of the next step message (runs on across steps).
    seq: u64,
    counted: bool,
}

/// Overload scenario state for one thread.
pub struct Overload {
    plan: Arc<Plan>,
    o: OverloadPlan,
    thread: usize,
    board: Arc<CapacityBoard>,
    capacity: Option<f64>,
    pubs: Vec<Publisher>,
    /// Publisher id -> index into `pubs` when that publisher lives on this thread.
    local_pub: Vec<Option<usize>>,
    opened_at: Vec<u64>,
    ended_at: Vec<u64>,
    open: u64,
    trackers: Vec<Vec<SeqTracker>>,
    /// Per slot, per (step, publisher): unique deliveries, allocated at the first one.
    counts: Vec<Vec<u32>>,
    probe: Probe,
    buf: Vec<u8>,
    interval: Hist,
    seen: u64,
    st: Partial,
    ov: OverloadPartial,
}

impl Overload {
    /// Creates the driver for `thread`, pooling its probe counts on `board`.
    pub fn new(plan: Arc<Plan>, thread: usize, board: Arc<CapacityBoard>) -> Overload {
        let Kind::Overload(o) = &plan.kind else { unreachable!("overload driver for another scenario") };
        let o = o.clone();
        let n = plan.thread_connections(thread) as usize;
        let pubs: Vec<Publisher> = (0..n)
            .map(|slot| (slot, plan.global_index(thread, slot)))
            .take_while(|&(_, id)| id < o.publishers)
            .map(|(slot, id)| Publisher { slot, id, step: 0, next_k: 0, seq: 0, counted: false })
            .collect();
        let mut local_pub = vec![None; o.publishers as usize];
        for (i, p) in pubs.iter().enumerate() {
            local_pub[p.id as usize] = Some(i);
        }
        Overload {
            capacity: o.capacity,
            probe: Probe::new(&o, plan.connections, pubs.len()),
            ov: OverloadPartial::new(o.len(), o.publishers as usize),
            thread,
            board,
            pubs,
            local_pub,
            opened_at: vec![u64::MAX; n],
            ended_at: vec![u64::MAX; n],
            open: 0,
            trackers: vec![Vec::new(); n],
            counts: vec![Vec::new(); n],
            buf: Vec::new(),
            interval: Hist::new(),
            seen: 0,
            st: Partial::default(),
            o,
            plan,
        }
    }

    /// True for connections that count: open when the first step began.
    fn counted(&self, slot: usize) -> bool {
        self.opened_at[slot] < self.o.start && self.ended_at[slot] >= self.o.start
    }

    /// Probe phase: every publisher sends while its in-flight allowance and socket permit.
    fn tick_probe(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        self.probe.adapt(now);
        let mut next = self.o.probe_window().1;
        let others = self.open.saturating_sub(u64::from(!self.o.expect_echo));
        for (pi, p) in self.pubs.iter().enumerate() {
            // A thread still behind on its ramp-up may not have created the slot yet.
            let Some(conn) = conns.get_mut(p.slot).filter(|c| c.state == State::Open) else { continue };
            let allowed = self.probe.allowance(pi, others).min(BURST as u64);
            let mut sent = 0;
            while sent < allowed && conn.sender().queued() <= PROBE_MAX_QUEUED {
                let seq = self.probe.st.sent;
                header::build(&mut self.buf, self.o.size, Header { publisher: p.id as u32, seq, sent_ns: now });
                conn.sender().send_binary(&self.buf);
                self.probe.on_sent(pi);
                sent += 1;
            }
            if sent > 0 {
                dirty.push(p.slot);
            }
            next = next.min(now + BACKOFF_NS);
        }
        next
    }

    /// Steps: every counted publisher sends what its schedule says is due by `now`.
    fn tick_steps(&mut self, capacity: f64, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        let o = &self.o;
        let mut next = u64::MAX;
        for p in self.pubs.iter_mut().filter(|p| p.counted) {
            // A thread still behind on its ramp-up may not have created the slot yet.
            let Some(conn) = conns.get_mut(p.slot).filter(|c| c.state == State::Open) else { continue };
            let mut sent = 0;
            while p.step < o.len() {
                let rate = o.rate(p.step, capacity);
                let t = if rate > 0.0 { o.intended(p.step, rate, p.id, p.next_k) } else { u64::MAX };
                if t >= o.bounds(p.step).1 {
                    (p.step, p.next_k) = (p.step + 1, 0);
                    continue;
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
                header::build(&mut self.buf, o.size, Header { publisher: p.id as u32, seq: p.seq, sent_ns: t });
                conn.sender().send_binary(&self.buf);
                let step = &mut self.ov.steps[p.step];
                step.sent += 1;
                step.sent_by[p.id as usize] += 1;
                self.st.send_lag.record(now - t);
                (p.seq, p.next_k, sent) = (p.seq + 1, p.next_k + 1, sent + 1);
            }
            if sent > 0 {
                dirty.push(p.slot);
            }
        }
        next
    }
}

impl Handler for Overload {
    fn on_open(&mut self, slot: usize, _tx: &mut Sender, now: u64) {
        self.opened_at[slot] = now;
        self.open += 1;
    }

    fn on_message(&mut self, slot: usize, _op: u8, payload: &[u8], _tx: &mut Sender, now: u64) {
        self.seen += 1;
        let Some(h) = Header::read(payload).filter(|h| u64::from(h.publisher) < self.o.publishers) else {
            self.st.other += 1;
            return;
        };
        let j = h.publisher as usize;
        if h.publisher as u64 == self.plan.global_index(self.thread, slot) && !self.o.expect_echo {
            self.st.self_received += 1;
            return;
        }
        if h.sent_ns < self.o.start {
            self.probe.on_delivery(self.local_pub[j], h.sent_ns, now);
            return;
        }
        if !self.counted(slot) {
            return;
        }
        let last = self.o.len() - 1;
        let i = self.o.step_at(h.sent_ns).unwrap_or(last);
        let latency = now.saturating_sub(h.sent_ns);
        let step = &mut self.ov.steps[i];
        step.latency.record(latency);
        self.interval.record(latency);
        if let Some(k) = self.o.step_at(now) {
            self.ov.steps[k].delivered_in_window += 1;
        }
        let trackers = &mut self.trackers[slot];
        if trackers.is_empty() {
            trackers.resize(self.o.publishers as usize, SeqTracker::default());
        }
        let step = &mut self.ov.steps[i];
        match trackers[j].observe(h.seq) {
            Seen::Duplicate => step.duplicates += 1,
            seen => {
                step.reordered += u64::from(seen == Seen::Late);
                step.received += 1;
                let counts = &mut self.counts[slot];
                if counts.is_empty() {
                    counts.resize(self.o.len() * self.o.publishers as usize, 0);
                }
                let count = &mut counts[i * self.o.publishers as usize + j];
                *count = count.saturating_add(1);
            }
        }
    }
}

impl Driver for Overload {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        if now < self.o.probe_start {
            return self.o.probe_start;
        }
        if self.probe.running(now) {
            return self.tick_probe(now, conns, dirty);
        }
        self.probe.report_if_due(now, conns, &self.board);
        if now < self.o.start {
            return self.o.start;
        }
        let capacity = match self.capacity {
            Some(c) => c,
            None => match self.board.totals() {
                Some(totals) => {
                    let (w0, w1) = self.o.probe_window();
                    let c = capacity_board::capacity(totals, w1 - w0, self.o.expect_echo);
                    *self.capacity.insert(c)
                }
                None => return now + BOARD_POLL_NS,
            },
        };
        self.tick_steps(capacity, now, conns, dirty)
    }

    fn on_measure_start(&mut self, conns: &[Conn]) {
        // Called before the first tick at or after the first step's start.
        for p in &mut self.pubs {
            p.counted = conns.get(p.slot).is_some_and(|c| c.open_at(self.o.start));
        }
    }

    fn on_end(&mut self, slot: usize, cause: &Cause, now: u64) {
        self.ended_at[slot] = now;
        self.open = self.open.saturating_sub(1);
        if self.opened_at[slot] >= self.o.start {
            return; // never counted
        }
        let key = match cause {
            Cause::ServerClose(Some(code)) => code.to_string(),
            other => other.key(),
        };
        let closes = match self.o.step_at(now) {
            _ if now < self.o.start => &mut self.ov.closed_before_steps,
            Some(i) => &mut self.ov.steps[i].closes,
            None => &mut self.ov.steps[self.o.len() - 1].closes,
        };
        *closes.entry(key).or_default() += 1;
    }

    fn take_interval(&mut self, into: &mut Hist) {
        into.merge(&self.interval);
        self.interval.reset();
    }

    fn deliveries(&self) -> u64 {
        self.seen
    }

    fn finish(&mut self, _now: u64) -> Partial {
        let publishers = self.o.publishers as usize;
        for slot in 0..self.opened_at.len() {
            if !self.counted(slot) {
                continue;
            }
            self.ov.counted += 1;
            for (i, step) in self.ov.steps.iter_mut().enumerate() {
                step.receivers_at_start += u64::from(self.ended_at[slot] >= self.o.bounds(i).0);
            }
            if self.ended_at[slot] != u64::MAX {
                continue; // closed: its deliveries do not enter the loss count
            }
            self.ov.survivors += 1;
            for (n, &count) in self.counts[slot].iter().enumerate() {
                self.ov.steps[n / publishers].survivors_received_from[n % publishers] += u64::from(count);
            }
        }
        for p in self.pubs.iter().filter(|p| p.counted) {
            self.ov.publisher_closed[p.id as usize] = self.ended_at[p.slot] != u64::MAX;
            if let Some(capacity) = self.capacity {
                for (i, step) in self.ov.steps.iter_mut().enumerate() {
                    step.scheduled += self.o.scheduled(i, self.o.rate(i, capacity), p.id);
                }
            }
        }
        self.ov.probe = std::mem::take(&mut self.probe.st);
        self.st.overload = Some(std::mem::take(&mut self.ov));
        std::mem::take(&mut self.st)
    }
}
