//! `SocketIoPartial`: what the `socketio` scenario counted besides deliveries (sessions,
//! connects, joins, heartbeats, refusals), in a form that adds up across threads and processes
//! and travels between processes as JSON, like the rest of `Partial`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hist::Hist;

/// Distinct refusal texts remembered; past this only known ones are counted.
pub const MAX_REFUSALS: usize = 16;

/// Counts of one thread's Socket.IO sessions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SocketIoPartial {
    /// Engine.IO open packets received (sessions the server opened).
    pub sessions: u64,
    /// Namespace CONNECTs the server answered with a socket id.
    pub connected: u64,
    /// `--room`: joins the server acknowledged without an error.
    pub joined: u64,
    /// Connections ready (connected, and joined with `--room`) before measuring began and still
    /// open then: the receivers that count.
    pub ready_at_measure: u64,
    /// From the WebSocket's 101 to ready.
    pub ready: Hist,
    /// Server pings answered.
    pub pings: u64,
    /// DISCONNECT packets the server sent.
    pub disconnects: u64,
    /// What the server refused, by its reason: `connect_error`s, join acks with an error,
    /// `error` events.
    pub refusals: BTreeMap<String, u64>,
}

impl SocketIoPartial {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &SocketIoPartial) {
        self.sessions += other.sessions;
        self.connected += other.connected;
        self.joined += other.joined;
        self.ready_at_measure += other.ready_at_measure;
        self.ready.merge(&other.ready);
        self.pings += other.pings;
        self.disconnects += other.disconnects;
        for (k, v) in &other.refusals {
            *self.refusals.entry(k.clone()).or_default() += v;
        }
    }

    /// Counts one refusal, keeping at most [`MAX_REFUSALS`] distinct reasons.
    pub fn refuse(&mut self, reason: String) {
        if self.refusals.len() < MAX_REFUSALS || self.refusals.contains_key(&reason) {
            *self.refusals.entry(reason).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything_and_refusals_stay_bounded() {
        let mut a = SocketIoPartial { sessions: 2, connected: 2, ready_at_measure: 1, ..Default::default() };
        a.ready.record(1_000);
        a.refuse("join refused: too many rooms".into());
        let mut b = SocketIoPartial { sessions: 3, joined: 3, pings: 4, ..Default::default() };
        b.refuse("join refused: too many rooms".into());
        a.merge(&b);
        assert_eq!((a.sessions, a.connected, a.joined, a.pings, a.ready.count()), (5, 2, 3, 4, 1));
        assert_eq!(a.refusals["join refused: too many rooms"], 2);
        for n in 0..40 {
            a.refuse(format!("reason {n}"));
        }
        assert_eq!(a.refusals.len(), MAX_REFUSALS);
        let back: SocketIoPartial = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.refusals, a.refusals);
    }
}
