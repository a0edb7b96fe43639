//! `echo`: every connection keeps `--in-flight` messages outstanding and sends the next one as
//! soon as one comes back. This is a closed loop: a slow server lowers the offered rate, so the
//! round-trip times describe the server at the rate it sustained, not at a fixed offered rate.

use std::sync::Arc;

use crate::client::{Conn, Handler, Sender, State};
use crate::header::{self, Header};
use crate::hist::Hist;
use crate::plan::{Kind, Plan};
use crate::scenario::Driver;
use crate::stats::Partial;

/// Echo scenario state for one thread.
pub struct Echo {
    plan: Arc<Plan>,
    thread: usize,
    size: usize,
    in_flight: u32,
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
        let Kind::Echo { size, in_flight } = plan.kind else { unreachable!("echo driver for another scenario") };
        let n = plan.thread_connections(thread) as usize;
        Echo {
            plan,
            thread,
            size,
            in_flight,
            seq: vec![0; n],
            started: false,
            buf: Vec::new(),
            interval: Hist::new(),
            received: 0,
            st: Partial::default(),
        }
    }

    fn send(&mut self, slot: usize, tx: &mut Sender, now: u64) {
        let publisher = self.plan.global_index(self.thread, slot) as u32;
        let seq = self.seq[slot];
        self.seq[slot] += 1;
        header::build(&mut self.buf, self.size, Header { publisher, seq, sent_ns: now });
        tx.send_binary(&self.buf);
        if now >= self.plan.measure_start {
            self.st.sent += 1;
        }
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
        if h.sent_ns >= self.plan.measure_start && h.sent_ns < self.plan.measure_end {
            let rtt = now.saturating_sub(h.sent_ns);
            self.st.latency.record(rtt);
            self.interval.record(rtt);
            self.st.round_trips += 1;
        } else if h.sent_ns < self.plan.measure_start {
            self.st.warmup_received += 1;
        }
        if now < self.plan.measure_end {
            self.send(slot, tx, now);
        }
    }
}

impl Driver for Echo {
    fn tick(&mut self, now: u64, conns: &mut [Conn], dirty: &mut Vec<usize>) -> u64 {
        if self.started {
            return u64::MAX;
        }
        if now < self.plan.traffic_start {
            return self.plan.traffic_start;
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

    fn on_end(&mut self, _slot: usize) {}

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
