//! Deadlines: handshake and keep-alive timeouts, idle timeout, pings,
//! lingering closes.
//!
//! One sweep over the worker's connections every `tick` (a quarter of the
//! shortest timeout, between 10 ms and 1 s) is cheaper than a timer per
//! connection: 19,000 connections take well under a millisecond.

use bytes::Bytes;

use super::connection::{Flag, Phase};
use super::lifecycle::Ending;
use super::transport::Transport;
use super::{millis, Worker};
use crate::bus::Broadcast;
use crate::handler::Handler;
use crate::stats::{Refusal, WorkerCounters};
use crate::ws::close::codes;

/// Why a sweep ends a connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expiry {
    /// A request (the upgrade or the first plain one) did not arrive in time.
    Handshake,
    /// A kept-alive HTTP connection sent no next request in time.
    KeepAlive,
    /// A deferred response did not come in time.
    LateResponse,
    Idle,
    Linger,
}

/// An empty server ping, shared by every connection.
static PING: &[u8] = &[0x89, 0x00];

impl<H: Handler, T: Transport> Worker<H, T> {
    fn tick(&self) -> u64 {
        let config = self.handle.config();
        let mut shortest = millis(config.handshake_timeout).min(millis(config.close_timeout));
        if let Some(idle) = config.idle_timeout {
            shortest = shortest.min(millis(idle));
        }
        if let Some(ping) = config.ping_interval {
            shortest = shortest.min(millis(ping));
        }
        (shortest / 4).clamp(10, 1000)
    }

    /// Runs the sweep when it is due.
    pub(super) fn run_timers(&mut self) {
        let now = self.now();
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + self.tick();
        let config = self.handle.config();
        if let Some(interval) = config.ping_interval {
            if now >= self.next_ping {
                self.next_ping = now + millis(interval);
                if self.draining_until.is_none() {
                    self.batch.push(Broadcast {
                        frame: Bytes::from_static(PING),
                        except: None,
                        sent_at: None,
                        deflated: Default::default(),
                    });
                }
            }
        }
        let handshake = millis(config.handshake_timeout);
        let linger = millis(config.close_timeout);
        let idle = config.idle_timeout.map(millis);
        let mut expired = std::mem::take(&mut self.expired);
        for (key, conn) in self.conns.iter() {
            let expiry = match conn.phase {
                Phase::Http { ref reader } if now.saturating_sub(conn.phase_since) >= handshake => {
                    if conn.flags.is(Flag::HttpAwaiting) {
                        Expiry::LateResponse
                    } else if conn.flags.is(Flag::ServedHttp) && reader.is_idle() {
                        Expiry::KeepAlive
                    } else {
                        Expiry::Handshake
                    }
                }
                // A publisher the worker stopped reading is not idle: it is waited for.
                Phase::Open { .. }
                    if !conn.flags.is(Flag::ReadPaused)
                        && idle.is_some_and(|idle| now.saturating_sub(conn.last_seen) >= idle) =>
                {
                    Expiry::Idle
                }
                Phase::Closing { .. } if now.saturating_sub(conn.phase_since) >= linger => Expiry::Linger,
                _ => continue,
            };
            expired.push((key, expiry));
        }
        for (key, expiry) in expired.drain(..) {
            match expiry {
                Expiry::Handshake => {
                    self.counters().refuse(Refusal::Timeout);
                    self.drop_connection(key, "handshake timeout");
                }
                Expiry::KeepAlive => self.drop_connection(key, "keep-alive timeout"),
                Expiry::LateResponse => self.forget_deferred(key, true),
                Expiry::Idle => {
                    WorkerCounters::bump(&self.counters().idle_timeouts);
                    let (code, reason) = match self.states.get(key).and_then(Option::as_ref) {
                        Some(state) => self.handler.idle_close(state),
                        None => (codes::GOING_AWAY, "idle timeout"),
                    };
                    self.begin_close(key, Ending::server(code, reason));
                }
                Expiry::Linger => self.drop_connection(key, "close handshake timed out"),
            }
        }
        self.expired = expired;
    }
}
