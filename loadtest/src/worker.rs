//! One event-loop thread: opens its share of the connections on schedule, drives them through
//! the handshake, lets the scenario's `Driver` send and receive, and closes them at the end.
//! Threads share nothing but the `Live` counters.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::client::{Cause, Conn, Inflater, Outcome, State};
use crate::hist::Hist;
use crate::live::Live;
use crate::plan::{Kind, Plan};
use crate::scenario::Driver;
use crate::stats::Partial;
use crate::stream::Stream;
use crate::sys::{self, Timer};

const TIMER: Token = Token(usize::MAX - 1);
/// Connects started per loop turn at most, so a late thread catches up without stalling reads.
const CONNECTS_PER_TURN: usize = 64;
const HOUSEKEEPING_NS: u64 = 100_000_000;
const PROGRESS_NS: u64 = 1_000_000_000;
const SCRATCH: usize = 64 * 1024;
/// Readiness events handled between two checks of the send schedule.
const EVENTS_BETWEEN_TICKS: usize = 128;

/// State of one loop besides the driver, split out so borrows of the two stay disjoint.
struct Loop<'a> {
    plan: &'a Plan,
    poll: Poll,
    conns: Vec<Conn>,
    st: Partial,
    scratch: Vec<u8>,
    /// Inflates the compressed messages of every connection of this thread (`--deflate`).
    inflater: Inflater,
    again: Vec<usize>,
    dirty: Vec<usize>,
    open: i64,
    pending: usize,
    measuring: bool,
    closing: bool,
    turn_start: u64,
    /// This thread's (CPU, wall) clocks when measuring started and when it ended: the client's
    /// own load is judged over that window, not diluted by ramp-up, drain and close.
    window_start: Option<(u64, u64)>,
    window_end: Option<(u64, u64)>,
}

/// Runs thread `thread`'s share of `plan` to the end and returns what it measured.
pub fn run<D: Driver>(plan: &Plan, thread: usize, mut driver: D, live: &Live) -> io::Result<Partial> {
    sys::tighten_timer_slack();
    let wall0 = sys::now_ns();
    let cpu0 = sys::cpu_time_ns(true);
    let poll = Poll::new()?;
    let mut timer = Timer::new()?;
    poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
    let total = plan.thread_connections(thread) as usize;
    let mut lp = Loop {
        plan,
        poll,
        conns: Vec::with_capacity(total),
        st: Partial::default(),
        scratch: vec![0; SCRATCH],
        inflater: Inflater::default(),
        again: Vec::new(),
        dirty: Vec::new(),
        open: 0,
        pending: 0,
        measuring: false,
        closing: false,
        turn_start: wall0,
        window_start: None,
        window_end: None,
    };
    let mut events = Events::with_capacity(1024);
    let (mut next_house, mut next_progress) = (wall0, wall0 + PROGRESS_NS);
    let (mut shown_open, mut shown_deliveries, mut shown_failed) = (0i64, 0u64, 0u64);
    let mut interval = Hist::new();
    loop {
        let now = sys::now_ns();
        let mut started = 0;
        while lp.conns.len() < total && started < CONNECTS_PER_TURN && !lp.closing {
            let index = plan.global_index(thread, lp.conns.len());
            if plan.connect_at(index) > now {
                break;
            }
            lp.open_one(index, now);
            started += 1;
        }
        lp.start_measuring_if_due(now, &mut driver);
        if lp.measuring && lp.window_end.is_none() && now >= plan.measure_end {
            lp.window_end = Some((sys::cpu_time_ns(true), now));
        }
        if !lp.closing && now >= plan.drain_end {
            lp.begin_close(&mut driver);
        }
        if lp.closing && (now >= plan.close_end || lp.open + lp.pending as i64 == 0) {
            lp.abort_all(&mut driver);
            break;
        }
        let mut due = if lp.closing { u64::MAX } else { driver.tick(now, &mut lp.conns, &mut lp.dirty) };
        if now >= next_house {
            next_house = now + HOUSEKEEPING_NS;
            lp.expire_handshakes(now, &mut driver);
            live.open.fetch_add(lp.open - shown_open, Ordering::Relaxed);
            shown_open = lp.open;
            let d = driver.deliveries();
            live.deliveries.fetch_add(d - shown_deliveries, Ordering::Relaxed);
            shown_deliveries = d;
            let f = lp.st.failed();
            live.failed.fetch_add(f - shown_failed, Ordering::Relaxed);
            shown_failed = f;
        }
        if now >= next_progress {
            next_progress += PROGRESS_NS;
            driver.take_interval(&mut interval);
            live.add_interval(&interval);
            interval.reset();
        }
        lp.flush_dirty(&mut driver);
        let mut deadline = due.min(next_house).min(next_progress);
        if lp.conns.len() < total && !lp.closing {
            deadline = deadline.min(plan.connect_at(plan.global_index(thread, lp.conns.len())));
        }
        for phase in [plan.measure_start, plan.measure_end, plan.drain_end, plan.close_end] {
            if phase > now {
                deadline = deadline.min(phase);
            }
        }
        let timeout = if !lp.again.is_empty() || deadline <= now {
            Some(Duration::ZERO)
        } else {
            timer.arm(deadline);
            None
        };
        if let Err(e) = lp.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        lp.turn_start = sys::now_ns();
        for (n, ev) in events.iter().enumerate() {
            if ev.token() == TIMER {
                timer.clear();
                continue;
            }
            if n % EVENTS_BETWEEN_TICKS == EVENTS_BETWEEN_TICKS - 1 && !lp.closing {
                // A long batch of reads must not hold back scheduled sends.
                let now = sys::now_ns();
                if now >= due {
                    // Measuring may start between two turns: the driver must know which
                    // publishers count before it sends the first message of the window.
                    lp.start_measuring_if_due(now, &mut driver);
                    due = driver.tick(now, &mut lp.conns, &mut lp.dirty);
                    lp.flush_dirty(&mut driver);
                }
            }
            let slot = ev.token().0;
            lp.on_event(slot, ev.is_readable() || ev.is_read_closed() || ev.is_error(), ev.is_writable(), &mut driver);
        }
        for slot in std::mem::take(&mut lp.again) {
            lp.on_event(slot, true, false, &mut driver);
        }
    }
    live.open.fetch_add(lp.open - shown_open, Ordering::Relaxed);
    live.deliveries.fetch_add(driver.deliveries() - shown_deliveries, Ordering::Relaxed);
    let mut result = driver.finish(sys::now_ns());
    lp.st.compressed_messages = lp.inflater.messages;
    lp.st.compressed_bytes = lp.inflater.compressed_bytes;
    lp.st.inflated_bytes = lp.inflater.inflated_bytes;
    result.merge(&lp.st);
    // Connect's work is the ramp-up itself; the other scenarios are judged while measuring.
    let (cpu, wall) = match (lp.window_start, lp.window_end) {
        // Saturating: a thread that first looks after the window ended takes both stamps in one
        // turn, the start's after the end's.
        (Some((c0, w0)), Some((c1, w1))) if plan.kind != Kind::Connect => {
            (c1.saturating_sub(c0), w1.saturating_sub(w0))
        }
        _ => (sys::cpu_time_ns(true) - cpu0, sys::now_ns() - wall0),
    };
    result.thread_cpu_ns.push(cpu);
    result.thread_wall_ns.push(wall);
    Ok(result)
}

impl Loop<'_> {
    /// Starts measuring once `now` reaches the plan's measure start. The connections that count
    /// are those open *at* the measure start by their own timestamps (`Conn::open_at`), not those
    /// open when this thread got round to looking: a busy thread may look a few milliseconds
    /// late, after publishers on other threads already sent measured messages.
    fn start_measuring_if_due<D: Driver>(&mut self, now: u64, d: &mut D) {
        if self.measuring || now < self.plan.measure_start {
            return;
        }
        self.measuring = true;
        self.window_start = Some((sys::cpu_time_ns(true), sys::now_ns()));
        let start = self.plan.measure_start;
        self.st.open_at_measure = self.conns.iter().filter(|c| c.open_at(start)).count() as u64;
        d.on_measure_start(&self.conns);
    }

    /// Starts connecting global connection `index` in the next slot.
    fn open_one(&mut self, index: u64, now: u64) {
        let slot = self.conns.len();
        self.st.attempted += 1;
        let source = self.plan.source_ips.for_connection(index);
        let target = self.plan.target(index);
        let started = sys::start_connect(target.url.addr, source)
            .and_then(|tcp| Stream::new(tcp, target.tls.as_ref()))
            .and_then(|mut s| {
                s.register(self.poll.registry(), Token(slot), Interest::READABLE | Interest::WRITABLE)?;
                Ok(s)
            });
        match started {
            Ok(stream) => {
                self.conns.push(Conn::new(stream, index, now));
                self.pending += 1;
            }
            Err(e) => {
                let cause = Cause::from_io(&e);
                self.note_client_limit(&cause);
                self.st.fail(cause.key());
                self.conns.push(Conn::failed(index, now));
            }
        }
    }

    fn note_client_limit(&mut self, cause: &Cause) {
        if *cause == Cause::ClientNoPorts && self.st.time_wait_seen == 0 {
            self.st.time_wait_seen = sys::count_time_wait().max(1) as u64;
        }
    }

    /// Handles readiness of one connection.
    fn on_event<D: Driver>(&mut self, slot: usize, readable: bool, writable: bool, d: &mut D) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let was = conn.state;
        if was == State::Closed {
            return;
        }
        let mut outcome = Outcome::Idle;
        if was == State::Connecting || writable {
            let target = self.plan.target(conn.index);
            outcome = conn.on_writable(&target.host, &target.url.path, self.plan.deflate);
        }
        if readable && outcome == Outcome::Idle && conn.state != State::Connecting {
            if self.measuring {
                self.st.read_delay.record(sys::now_ns().saturating_sub(self.turn_start));
            }
            outcome = conn.on_readable(slot, &mut self.scratch, &mut self.inflater, d);
        }
        if was == State::Handshake && matches!(conn.state, State::Open | State::Closing) {
            self.pending -= 1;
            self.open += 1;
            self.st.opened += 1;
            self.st.deflate_agreed += u64::from(conn.deflate());
            // From the connect call to the 101: TCP connect, then for wss:// the TLS handshake,
            // then the upgrade.
            self.st.handshake.record(sys::now_ns().saturating_sub(conn.started_ns));
        }
        if outcome == Outcome::Idle && conn.sender().queued() > 0 {
            outcome = conn.flush();
        }
        match outcome {
            Outcome::Idle => {}
            Outcome::Again => self.again.push(slot),
            Outcome::Ended(cause) => self.end(slot, cause, d),
        }
    }

    /// Books the end of a connection and releases its socket.
    fn end<D: Driver>(&mut self, slot: usize, cause: Cause, d: &mut D) {
        let conn = &mut self.conns[slot];
        match conn.state {
            State::Connecting | State::Handshake => {
                self.pending -= 1;
                self.note_client_limit(&cause);
                self.st.fail(cause.key());
            }
            State::Open | State::Closing => {
                self.open -= 1;
                if !self.closing {
                    self.st.end_early(cause.key());
                    d.on_end(slot, &cause, sys::now_ns());
                }
            }
            State::Closed => return,
        }
        let abort = !matches!(cause, Cause::Eof | Cause::ServerClose(_) | Cause::Refused);
        self.conns[slot].shut(self.poll.registry(), abort);
    }

    /// Gives up on connections stuck in connect or handshake past the timeout.
    fn expire_handshakes<D: Driver>(&mut self, now: u64, d: &mut D) {
        if self.pending == 0 {
            return;
        }
        let limit = self.plan.connect_timeout_ns;
        for slot in 0..self.conns.len() {
            let c = &self.conns[slot];
            if matches!(c.state, State::Connecting | State::Handshake) && now - c.started_ns > limit {
                self.end(slot, Cause::Timeout, d);
            }
        }
    }

    /// Writes every connection the driver queued frames on this turn.
    fn flush_dirty<D: Driver>(&mut self, d: &mut D) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            if let Outcome::Ended(cause) = self.conns[slot].flush() {
                self.end(slot, cause, d);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Sends a close frame on every open connection; the server should then close TCP first.
    fn begin_close<D: Driver>(&mut self, d: &mut D) {
        self.closing = true;
        self.st.open_at_end = self.open as u64;
        for slot in 0..self.conns.len() {
            if let Outcome::Ended(cause) = self.conns[slot].begin_close() {
                self.end(slot, cause, d);
            }
        }
    }

    /// Drops whatever is left: still-connecting ones count as timed out.
    fn abort_all<D: Driver>(&mut self, d: &mut D) {
        for slot in 0..self.conns.len() {
            if self.conns[slot].state != State::Closed {
                self.end(slot, Cause::Timeout, d);
            }
        }
    }
}
