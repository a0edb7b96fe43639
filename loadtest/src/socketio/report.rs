//! The `socketio` section of the report: how the sessions got ready, heartbeats, refusals; and
//! what a reader should know about them. Deliveries are in the report's `broadcast` section,
//! counted as `loadtest broadcast` counts them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::report::Percentiles;
use crate::socketio::plan::SocketIoPlan;
use crate::socketio::stats::SocketIoPartial;

/// Socket.IO session counts.
#[derive(Debug, Clone, Serialize)]
pub struct SocketIoReport {
    /// The namespace connected to.
    pub namespace: String,
    /// `--room`, when given.
    pub room: Option<String>,
    /// Engine.IO sessions opened (open packets received).
    pub sessions: u64,
    /// Namespace connects answered.
    pub connected: u64,
    /// `--room`: joins acknowledged.
    pub joined: u64,
    /// Ready (connected, and joined) before measuring began: the receivers that count.
    pub ready_at_measure: u64,
    /// From the WebSocket's 101 to ready.
    pub ready_ms: Percentiles,
    /// Server pings answered.
    pub pings_answered: u64,
    /// DISCONNECT packets the server sent.
    pub disconnects: u64,
    /// What the server refused, by reason.
    pub refusals: BTreeMap<String, u64>,
}

impl SocketIoReport {
    /// The section for a run of `sp` that counted `p`.
    pub fn new(sp: &SocketIoPlan, p: &SocketIoPartial) -> SocketIoReport {
        SocketIoReport {
            namespace: sp.namespace.clone(),
            room: sp.room.clone(),
            sessions: p.sessions,
            connected: p.connected,
            joined: p.joined,
            ready_at_measure: p.ready_at_measure,
            ready_ms: Percentiles::of(&p.ready),
            pings_answered: p.pings,
            disconnects: p.disconnects,
            refusals: p.refusals.clone(),
        }
    }

    /// The table's lines.
    pub fn lines(&self, s: &mut String) {
        let target = match &self.room {
            Some(room) => format!("namespace {} room {room}", self.namespace),
            None => format!("namespace {}", self.namespace),
        };
        let joined = if self.room.is_some() { format!("  joined {}", self.joined) } else { String::new() };
        let _ = writeln!(
            s,
            "socket.io     {target}: sessions {}  connected {}{joined}  ready at measure {}  pings answered {}",
            self.sessions, self.connected, self.ready_at_measure, self.pings_answered
        );
        if self.ready_ms.count > 0 {
            let _ = writeln!(
                s,
                "  ready after the 101 (ms): p50 {:.3}  p99 {:.3}  max {:.3}",
                self.ready_ms.p50, self.ready_ms.p99, self.ready_ms.max
            );
        }
        for (why, n) in &self.refusals {
            let _ = writeln!(s, "  refused     {n:>8}  {why}");
        }
    }

    /// Warnings about the sessions, given the connections open when measuring began.
    pub fn warnings(&self, open_at_measure: u64, w: &mut Vec<String>) {
        if self.ready_at_measure < open_at_measure {
            let what = if self.room.is_some() { "connected to the namespace and joined the room" } else { "connected" };
            w.push(format!(
                "{} of the {open_at_measure} connections open when measuring began had not {what} by then and \
                 were left out (raise --settle or lower the connect rate)",
                open_at_measure - self.ready_at_measure
            ));
        }
        let refused: u64 = self.refusals.values().sum();
        if refused > 0 {
            w.push(format!("the server refused {refused} Socket.IO requests (see the reasons)"));
        }
        if self.disconnects > 0 {
            w.push(format!("the server disconnected {} sockets from the namespace", self.disconnects));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_names_its_room_and_warns_about_sockets_not_ready() {
        let sp = SocketIoPlan { publishers: 1, size: 64, rate: 10.0, namespace: "/".into(), room: Some("r".into()) };
        let mut p =
            SocketIoPartial { sessions: 10, connected: 10, joined: 8, ready_at_measure: 8, ..Default::default() };
        p.ready.record(2_000_000);
        p.refuse("join refused: too many rooms".into());
        let r = SocketIoReport::new(&sp, &p);
        let mut s = String::new();
        r.lines(&mut s);
        assert!(s.contains("namespace / room r: sessions 10  connected 10  joined 8  ready at measure 8"), "{s}");
        assert!(s.contains("refused            1  join refused: too many rooms"), "{s}");
        let mut w = Vec::new();
        r.warnings(10, &mut w);
        assert!(w[0].starts_with("2 of the 10 connections") && w[0].contains("joined the room"), "{w:?}");
        assert!(w[1].contains("refused 1"), "{w:?}");
    }
}
