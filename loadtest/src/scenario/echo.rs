//! `echo`: every connection sends messages that the server should send back to it alone.
//!
//! Closed loop (no `--rate`): each connection keeps `--in-flight` messages outstanding and sends
//! the next one as soon as one comes back, so a slow server lowers the offered rate and the
//! round-trip times describe the server at the rate it sustained.
//!
//! Open loop (`--rate R`, R messages per second over all connections): message `k` of global
//! connection `g` is due at `traffic_start + (g + k × connections) / R`, whatever came back,
//! and carries that scheduled time; the round trip is measured from it. A server that stalls
//! therefore shows the stall as latency instead of lowering the rate (coordinated omission
//! corrected, like wrk2 `-R`).

use std::sync::Arc;

use crate::client::{Cause, Conn, Handler, Sender, State};
use crate::header::{self, Header};
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::scenario::Driver;
use crate::stats::Partial;

/// Scheduled sends per tick at most, so reads are not starved while catching up.
const BURST: usize = 1024;
/// Queued bytes above which a connection's scheduled message is counted unsent: its server is
/// not reading, and the other connections' schedule must not wait for it.
const MAX_QUEUED: usize = 4 << 20;
const NS: f64 = 1e9;

/// Echo scenario state for one thread.
pub struct Echo {
    plan: Arc<Plan>,
    thread: usize,
    size: usize,
    in_flight: u32,
    /// Open loop: messages per second over all connections.
    rate: Option<f64>,
    /// Open loop: the next scheduled message is round `k` of local slot `slot`.
    cursor: (u64, usize),
    /// Next sequence number per slot.
    seq: Vec<u64>,
    started: bool,
    buf: Vec<u8>,
    interval: Hist,
    received: u64,
    st: Partial,
}

impl Echo {
    /// Creates the driver for `thread`.
    pub fn new(plan: Arc<Plan>, thread: usize) -> Echo {
        let Kind::Echo { size, in_flight, rate } = plan.kind else { unreachable!("echo driver for another scenario") };
        let n = plan.thread_connections(thread) as usize;
        Echo {
            plan,
            thread,
            size,
            in_flight,
            rate,
            cursor: (0, 0),
            seq: vec![0; n],
            started: false,
            buf: Vec::new(),
            interval: Hist::new(),
            received: 0,
            st: Partial::default(),
        }
    }

    /// Queues one message on `slot` stamped `sent_ns` (the send time, or the scheduled time in
    /// the open loop).
    fn send(&mut self, slot: usize, tx: &mut Sender, sent_ns: u64) {
        let publisher = self.plan.global_index(self.thread, slot) as u32;
        let seq = self.seq[slot];
        self.seq[slot] += 1;
        header::build(&mut self.buf, self.size, Header { publisher, seq, sent_ns });
        tx.send_binary(&self.buf);
        self.st.sent_total += 1;
        if self.measured(sent_ns) {
            self.st.sent += 1;
        }
    }

    fn measured(&self, sent_ns: u64) -> bool {
        sent_ns >= self.plan.measure_start && sent_ns < self.plan.measure_end
    }

    /// Open loop: when message `k` of local `slot` is due.
    fn due(&self, rate: f64, (k, slot): (u64, usize)) -> u64 {
        let g = self.plan.global_index(self.thread, slot);
        self.plan.traffic_start + ((g + k * self.plan.connections) as f64 * NS / rate) as u64
    }

    /// Open loop: sends everything scheduled up to `now`; returns when the next one is due.
    fn tick_open(&mut self, rate: f64, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        let slots = self.seq.len();
        for _ in 0..BURST {
            let t = self.due(rate, self.cursor);
            if t >= self.plan.measure_end {
                return u64::MAX;
            }
            if t > now {
                return t;
            }
            let slot = self.cursor.1;
            // A thread still behind on its ramp-up may not have created the slot yet: such a
            // connection was not open when measuring began, so its sends do not count.
            match conns.get_mut(slot) {
                Some(conn) if conn.state == State::Open && conn.queued() <= MAX_QUEUED => {
                    if conn.queued() == 0 {
                        dirty.push(slot);
                    }
                    self.send(slot, conn.sender(), t);
                    if self.measured(t) {
                        self.st.send_lag.record(now - t);
                    }
                }
                Some(conn) if self.measured(t) && conn.open_at(self.plan.measure_start) => self.st.unsent += 1,
                _ => {}
            }
            self.cursor = if slot + 1 == slots { (self.cursor.0 + 1, 0) } else { (self.cursor.0, slot + 1) };
        }
        now
    }
}

impl Handler for Echo {
    fn on_open(&mut self, _slot: usize, _tx: &mut Sender, _now: u64) {}

    fn on_message(&mut self, slot: usize, _op: u8, payload: &[u8], tx: &mut Sender, now: u64) {
        let own = self.plan.global_index(self.thread, slot) as u32;
        let Some(h) = Header::read(payload).filter(|h| h.publisher == own) else {
            self.st.other += 1;
            return;
        };
        self.received += 1;
        if self.measured(h.sent_ns) {
            let rtt = now.saturating_sub(h.sent_ns);
            self.st.latency.record(rtt);
            self.interval.record(rtt);
            self.st.round_trips += 1;
        } else if h.sent_ns < self.plan.measure_start {
            self.st.warmup_received += 1;
        }
        if self.rate.is_none() && now < self.plan.measure_end {
            self.send(slot, tx, now);
        }
    }
}

impl Driver for Echo {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        if now < self.plan.traffic_start {
            return self.plan.traffic_start;
        }
        if let Some(rate) = self.rate {
            return self.tick_open(rate, now, conns, dirty);
        }
        if self.started {
            return u64::MAX;
        }
        self.started = true;
        for (slot, conn) in conns.iter_mut().enumerate() {
            if conn.state == State::Open {
                for _ in 0..self.in_flight {
                    self.send(slot, conn.sender(), now);
                }
                dirty.push(slot);
            }
        }
        u64::MAX
    }

    fn on_measure_start(&mut self, _conns: &[Conn]) {}

    fn on_end(&mut self, _slot: usize, _cause: &Cause, _now: u64) {}

    fn take_interval(&mut self, into: &mut Hist) {
        into.merge(&self.interval);
        self.interval.reset();
    }

    fn deliveries(&self) -> u64 {
        self.received
    }

    fn finish(&mut self, _now: u64) -> Partial {
        self.st.received = self.st.round_trips;
        std::mem::take(&mut self.st)
    }
}
