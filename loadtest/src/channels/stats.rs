//! `ChannelsPartial`: what the `channels` scenario measured on one thread (subscribers, the API
//! publisher, the search), in a form that adds up across threads and processes and travels
//! between processes as JSON, like the rest of `Partial`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::channels::search::Decision;
use crate::hist::Hist;

/// One step's counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepPartial {
    /// Events the schedule put in the step's measured part.
    pub scheduled: u64,
    /// Of those, sent.
    pub sent: u64,
    /// Accepted by the server (API: a 2xx answer; client events: sent), by channel.
    pub accepted: Vec<u64>,
    /// API answers other than 2xx and requests left unanswered; `pusher:error`s on publishers.
    pub errors: u64,
    /// Distinct deliveries to counted subscribers.
    pub unique: u64,
    /// Extra copies.
    pub duplicates: u64,
    /// Deliveries that arrived after a later event of the same stream.
    pub reordered: u64,
    /// Sequence numbers skipped when a later one arrived (some may have come late).
    pub gaps: u64,
    /// Deliveries received while the step ran.
    pub in_window: u64,
    /// Delivery latency from the intended send time.
    pub latency: Hist,
}

impl StepPartial {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &StepPartial) {
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        add_vec(&mut self.accepted, &other.accepted);
        self.errors += other.errors;
        self.unique += other.unique;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.gaps += other.gaps;
        self.in_window += other.in_window;
        self.latency.merge(&other.latency);
    }

    /// Counts one accepted event on `channel`.
    pub fn accept(&mut self, channel: u64) {
        let c = channel as usize;
        if self.accepted.len() <= c {
            self.accepted.resize(c + 1, 0);
        }
        self.accepted[c] += 1;
    }

    /// Deliveries owed for the accepted events, given the counted subscribers per channel.
    pub fn expected(&self, subscribers: &[u64]) -> u64 {
        self.accepted.iter().zip(subscribers).map(|(a, s)| a * s).sum()
    }
}

/// Everything the `channels` scenario adds to `Partial`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChannelsPartial {
    /// Per step.
    pub steps: Vec<StepPartial>,
    /// Subscribers counted per channel: subscribed before measuring began.
    pub subscribers: Vec<u64>,
    /// Subscriptions that succeeded, whenever.
    pub subscribed: u64,
    /// Publishing connections (client events) subscribed before measuring began.
    pub publishers_subscribed: u64,
    /// From the WebSocket opening to `pusher_internal:subscription_succeeded`.
    pub subscribe: Hist,
    /// `pusher:error`s by code.
    pub pusher_errors: BTreeMap<String, u64>,
    /// API answers by status over the whole run ("200", "503 (Retry-After)", ...).
    pub answers: BTreeMap<String, u64>,
    /// API requests never answered (their connection failed, or the run ended first).
    pub unanswered: u64,
    /// API connections opened again after one failed or was closed.
    pub reconnects: u64,
    /// API answers after which the server closed the connection (`Connection: close`).
    pub closed_by_server: u64,
    /// From an API request's send to its answer.
    pub api_latency: Hist,
    /// TCP connect time of API connections (with https, the TLS handshake is not in it: it
    /// delays the connection's first answers instead).
    pub api_connect: Hist,
    /// API connects abandoned for taking too long (and tried again).
    pub connect_timeouts: u64,
    /// `pusher:ping`s answered.
    pub pings: u64,
    /// Events that reached a subscriber of another channel.
    pub misrouted: u64,
    /// Events delivered to publishing connections (client events go to every other member).
    pub to_publishers: u64,
    /// The saturation search's decisions.
    pub decisions: Vec<Decision>,
}

impl ChannelsPartial {
    /// Counters for `steps` steps.
    pub fn new(steps: usize) -> ChannelsPartial {
        ChannelsPartial { steps: vec![StepPartial::default(); steps], ..ChannelsPartial::default() }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ChannelsPartial) {
        if self.steps.len() < other.steps.len() {
            self.steps.resize(other.steps.len(), StepPartial::default());
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.merge(theirs);
        }
        add_vec(&mut self.subscribers, &other.subscribers);
        self.subscribed += other.subscribed;
        self.publishers_subscribed += other.publishers_subscribed;
        self.subscribe.merge(&other.subscribe);
        add_map(&mut self.pusher_errors, &other.pusher_errors);
        add_map(&mut self.answers, &other.answers);
        self.unanswered += other.unanswered;
        self.reconnects += other.reconnects;
        self.closed_by_server += other.closed_by_server;
        self.api_latency.merge(&other.api_latency);
        self.api_connect.merge(&other.api_connect);
        self.connect_timeouts += other.connect_timeouts;
        self.pings += other.pings;
        self.misrouted += other.misrouted;
        self.to_publishers += other.to_publishers;
        self.decisions.extend_from_slice(&other.decisions);
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

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_add_up_and_survive_json() {
        let mut a = ChannelsPartial::new(2);
        a.steps[0].accept(1);
        a.subscribers = vec![3, 4];
        a.answers.insert("200".into(), 5);
        let mut b = ChannelsPartial::new(2);
        b.steps[0].accept(0);
        b.steps[0].accept(1);
        b.steps[1].unique = 7;
        b.subscribers = vec![1, 0, 2];
        b.answers.insert("200".into(), 1);
        a.merge(&b);
        assert_eq!(a.subscribers, [4, 4, 2]);
        assert_eq!(a.steps[0].accepted, [1, 2]);
        assert_eq!(a.steps[0].expected(&a.subscribers), 4 + 8);
        assert_eq!((a.steps[1].unique, a.answers["200"]), (7, 6));
        let back: ChannelsPartial = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.steps[0].accepted, a.steps[0].accepted);
    }
}
