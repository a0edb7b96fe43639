//! `OverloadPartial`: what the `overload` scenario measured on one thread (or process), per step
//! and for the capacity probe, in a form that adds up exactly across threads and processes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hist::Hist;

/// One step as one thread saw it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepPartial {
    /// Messages of this step sent.
    pub sent: u64,
    /// Messages of this step the counted publishers were scheduled to send.
    pub scheduled: u64,
    /// Deliveries (of any step's messages) received while this step ran: the server's delivery
    /// rate during the step, whatever it was delivering.
    pub delivered_in_window: u64,
    /// Delivery latency of this step's messages, from their scheduled send time.
    pub latency: Hist,
    /// Unique deliveries of this step's messages to counted receivers.
    pub received: u64,
    /// Extra copies of this step's messages.
    pub duplicates: u64,
    /// This step's messages that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// Counted connections the server closed (or lost) during this step, by close code or cause.
    pub closes: BTreeMap<String, u64>,
    /// Counted connections still open when the step began.
    pub receivers_at_start: u64,
    /// Messages of this step sent, by publisher id.
    pub sent_by: Vec<u64>,
    /// Unique deliveries of this step's messages to receivers that stayed open to the end, by
    /// publisher id: the only deliveries loss is judged on.
    pub survivors_received_from: Vec<u64>,
}

/// The capacity probe as one thread saw it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProbePartial {
    /// Deliveries received in the probe's measuring half.
    pub deliveries: u64,
    /// Connections open when the measuring half began.
    pub receivers: u64,
    /// Probe messages sent.
    pub sent: u64,
    /// Delivery latency of probe messages sent in the measuring half.
    pub latency: Hist,
    /// Messages each publisher kept in flight at most.
    pub in_flight_limit: u64,
}

/// Everything an overload run measured, summed over whatever produced it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OverloadPartial {
    /// Per step, in order.
    pub steps: Vec<StepPartial>,
    /// Connections open when the first step began: the receivers (and publishers) that count.
    pub counted: u64,
    /// Counted connections still open when the client began closing.
    pub survivors: u64,
    /// By publisher id: true when that publisher's connection was closed before the end.
    pub publisher_closed: Vec<bool>,
    /// Connections closed during the probe, by close code or cause.
    pub closed_before_steps: BTreeMap<String, u64>,
    /// The capacity probe (empty when --capacity was given).
    pub probe: ProbePartial,
}

impl OverloadPartial {
    /// Empty totals for `steps` steps and `publishers` publishers.
    pub fn new(steps: usize, publishers: usize) -> OverloadPartial {
        let step = StepPartial {
            sent_by: vec![0; publishers],
            survivors_received_from: vec![0; publishers],
            ..StepPartial::default()
        };
        OverloadPartial { steps: vec![step; steps], publisher_closed: vec![false; publishers], ..Default::default() }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &OverloadPartial) {
        if self.steps.len() < other.steps.len() {
            self.steps.resize(other.steps.len(), StepPartial::default());
        }
        for (a, b) in self.steps.iter_mut().zip(&other.steps) {
            a.sent += b.sent;
            a.scheduled += b.scheduled;
            a.delivered_in_window += b.delivered_in_window;
            a.latency.merge(&b.latency);
            a.received += b.received;
            a.duplicates += b.duplicates;
            a.reordered += b.reordered;
            add_map(&mut a.closes, &b.closes);
            a.receivers_at_start += b.receivers_at_start;
            add_vec(&mut a.sent_by, &b.sent_by);
            add_vec(&mut a.survivors_received_from, &b.survivors_received_from);
        }
        self.counted += other.counted;
        self.survivors += other.survivors;
        if self.publisher_closed.len() < other.publisher_closed.len() {
            self.publisher_closed.resize(other.publisher_closed.len(), false);
        }
        for (a, b) in self.publisher_closed.iter_mut().zip(&other.publisher_closed) {
            *a |= *b;
        }
        add_map(&mut self.closed_before_steps, &other.closed_before_steps);
        let (p, q) = (&mut self.probe, &other.probe);
        p.deliveries += q.deliveries;
        p.receivers += q.receivers;
        p.sent += q.sent;
        p.latency.merge(&q.latency);
        p.in_flight_limit = p.in_flight_limit.max(q.in_flight_limit);
    }
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn add_vec(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_steps_publishers_and_closes() {
        let mut a = OverloadPartial::new(2, 3);
        a.steps[0].sent_by[1] = 5;
        a.steps[1].closes.insert("1008".into(), 2);
        a.steps[1].latency.record(1_000);
        a.counted = 10;
        a.publisher_closed[2] = true;
        let mut b = OverloadPartial::new(2, 3);
        b.steps[0].sent_by[1] = 7;
        b.steps[1].closes.insert("1008".into(), 1);
        b.steps[1].closes.insert("reset".into(), 1);
        b.counted = 11;
        b.probe.in_flight_limit = 9;
        a.merge(&b);
        assert_eq!(a.steps[0].sent_by, [0, 12, 0]);
        assert_eq!(a.steps[1].closes["1008"], 3);
        assert_eq!(a.steps[1].closes["reset"], 1);
        assert_eq!(a.steps[1].latency.count(), 1);
        assert_eq!((a.counted, a.probe.in_flight_limit), (21, 9));
        assert_eq!(a.publisher_closed, [false, false, true]);
        let back: OverloadPartial = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.steps[0].sent_by, a.steps[0].sent_by);
        let mut empty = OverloadPartial::default();
        empty.merge(&a);
        assert_eq!(empty.steps.len(), 2, "merging into an empty total takes the other's shape");
    }
}
