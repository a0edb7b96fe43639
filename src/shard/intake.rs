//! Taking work in: control commands at once, then broadcasts and pushes up
//! to the turn's byte budget, the worker's own (from its hooks) first.

use super::connection::Flag;
use super::lifecycle::Ending;
use super::transport::Transport;
use super::Worker;
use crate::bus::Command;
use crate::channels::SINK_BASE;
use crate::handler::Handler;

/// Control commands applied per turn, so a storm of new sockets cannot
/// starve the connections already open.
const CONTROL_BUDGET: usize = 1024;

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Applies control commands: adoptions, disconnects, shutdown.
    pub(super) fn apply_control(&mut self) {
        let shared = self.handle.shared.clone();
        for _ in 0..CONTROL_BUDGET {
            match shared.bus.take_control(&self.inbox) {
                Some(command) => self.apply(command),
                None => break,
            }
        }
    }

    /// Takes broadcasts and pushes in for this turn's flush, up to the
    /// intake budget (overshooting by at most one command, so that any
    /// frame gets through); nothing while output is under pressure. The
    /// worker's own commands and its inbox take turns, so neither starves
    /// the other.
    pub(super) fn intake(&mut self) {
        if self.pressure.is_paused() {
            return;
        }
        let shared = self.handle.shared.clone();
        let mut budget = self.intake_budget;
        let (mut local_done, mut inbox_done) = (false, false);
        while budget > 0 && !(local_done && inbox_done) {
            if !local_done {
                match shared.bus.pop_local() {
                    Some((command, cost)) => {
                        budget = budget.saturating_sub(cost);
                        self.apply(command);
                    }
                    None => local_done = true,
                }
            }
            if !inbox_done && budget > 0 {
                match shared.bus.take_data(self.index, &self.inbox) {
                    Some((command, cost)) => {
                        budget = budget.saturating_sub(cost);
                        self.apply(command);
                    }
                    None => inbox_done = true,
                }
            }
        }
    }

    /// Applies every command the worker's hooks sent to itself, budget or
    /// not: used before a close frame, which must follow them.
    pub(super) fn apply_all_local(&mut self) {
        let shared = self.handle.shared.clone();
        while let Some((command, _)) = shared.bus.pop_local() {
            self.apply(command);
        }
    }

    pub(super) fn apply(&mut self, command: Command) {
        match command {
            Command::Broadcast(broadcast) => {
                self.deliver_publishes();
                if self.draining_until.is_none() {
                    self.batch.push(broadcast);
                }
            }
            Command::Push { conn, frame } => {
                self.deliver_publishes();
                if let Some(&key) = self.ids.get(&conn) {
                    match key >= SINK_BASE {
                        true => self.push_to_sink(key, &frame),
                        false => self.push_frame(key, frame),
                    }
                }
            }
            Command::Publish(publish) => self.queue_publish(publish),
            Command::Respond { id, response } => self.respond_deferred(id, &response),
            Command::Subscribe { conn, channel, dialect } => self.apply_subscribe(conn, &channel, dialect),
            Command::Unsubscribe { conn, channel } => self.apply_unsubscribe(conn, &channel),
            Command::Disconnect { conn, code, reason } => {
                self.deliver_publishes();
                match self.ids.get(&conn) {
                    // A sink has no socket to close: it is detached, and its
                    // owner ends the session (a token expired, say).
                    Some(&key) if key >= SINK_BASE => self.sink_dropped(conn),
                    Some(&key) => self.begin_close(key, Ending::server(code, &reason)),
                    None => {}
                }
            }
            Command::Attach { conn, sink } => self.attach_sink(conn, sink),
            Command::Detach { conn } => self.detach_sink(conn),
            Command::Adopt(socket) => self.adopt(socket),
            Command::Shutdown => self.start_draining(),
        }
    }

    /// True for an open connection that has sent a data message: those are
    /// the ones not read while the worker is under pressure.
    pub(super) fn is_publisher(&self, key: usize) -> bool {
        self.conns.get(key).is_some_and(|c| c.flags.is(Flag::Publisher) && c.is_open())
    }

    /// Remembers to read `key` once the pressure is off.
    pub(super) fn pause_read(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.flags.is(Flag::ReadPaused) {
                conn.flags.set(Flag::ReadPaused, true);
                self.paused_reads.push(key);
            }
        }
    }

    /// Reads the publishers paused earlier: they go to the read-again list.
    pub(super) fn resume_reads(&mut self) {
        for key in std::mem::take(&mut self.paused_reads) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.flags.set(Flag::ReadPaused, false);
                self.defer_read(key);
            }
        }
    }
}
