//! The HTTP API publisher: one thread with its own mio loop and `--publishers` keep-alive
//! HTTP/1.1 connections to the server's API (`--api-url`, by default the `--url`'s host and
//! port), each with up to `--pipeline` signed requests in flight (one, once the server is seen
//! closing connections after an answer, as sockudo does: then every request costs a new
//! connection). Stream `s` (see `ChannelsPlan::streams`) always goes through connection `s % P`,
//! and a connection's answers come back in request order, so the server sees each stream's
//! events in sequence: any reordering a subscriber observes is the server's. Events are sent on
//! schedule, round-robin over the streams, stamped with their intended send time; a connection
//! that is full or down makes its streams' events late (their latency shows it), not fewer.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::channels::api_link::{Link, Pending};
use crate::channels::board::ChannelsBoard;
use crate::channels::cursor::{Cursor, Next};
use crate::channels::http::{self, Answer};
use crate::channels::plan::ChannelsPlan;
use crate::channels::stats::ChannelsPartial;
use crate::plan::{Kind, Plan, Target};
use crate::pusher::{messages, stamp::Stamp};
use crate::stats::Partial;
use crate::sys::{self, Timer};

const TIMER: Token = Token(usize::MAX - 1);
/// A TCP connect not done by then is abandoned and tried again at once, from another port: on
/// loopback a new connection may land on a 4-tuple the server still holds in TIME_WAIT, and its
/// SYN then waits for retransmission (1 s, 3 s, 7 s ...), which would read as server latency.
const CONNECT_TIMEOUT_NS: u64 = 200_000_000;

/// The publisher thread's state.
struct ApiPublisher<'a> {
    cp: &'a ChannelsPlan,
    board: &'a ChannelsBoard,
    poll: Poll,
    links: Vec<Link>,
    /// Requests in flight per connection: `--pipeline`, or 1 once the server is seen closing
    /// the connection after an answer (it reads no request after that one).
    depth: usize,
    st: ChannelsPartial,
    out: Partial,
    /// Where the requests go (`--api-url`, or the `--url`'s host and port).
    api: &'a Target,
    data: Vec<u8>,
    body: Vec<u8>,
    scratch: Vec<u8>,
}

/// Publishes `plan`'s schedule through the HTTP API until the drain ends; returns what it
/// counted (sends, answers by status, accepted events per step and channel).
pub fn run(plan: Arc<Plan>, board: Arc<ChannelsBoard>) -> io::Result<Partial> {
    let (Kind::Channels(cp), Some(api)) = (&plan.kind, &plan.api) else { return Ok(Partial::default()) };
    sys::tighten_timer_slack();
    let poll = Poll::new()?;
    let mut timer = Timer::new()?;
    poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
    let k = cp.api_connections();
    let links = (0..k).map(|j| Link::new((j..cp.streams()).step_by(k as usize).map(Cursor::new).collect())).collect();
    let mut p = ApiPublisher {
        cp,
        board: &board,
        poll,
        links,
        depth: cp.pipeline,
        st: ChannelsPartial::new(cp.steps.len()),
        out: Partial::default(),
        api,
        data: Vec::new(),
        body: Vec::new(),
        scratch: vec![0; 64 * 1024],
    };
    let mut events = Events::with_capacity(256);
    let (mut window_start, mut window_end) = (None, None);
    loop {
        let now = sys::now_ns();
        if window_start.is_none() && now >= plan.measure_start {
            window_start = Some((sys::cpu_time_ns(true), now));
        }
        if window_end.is_none() && now >= plan.measure_end {
            window_end = Some((sys::cpu_time_ns(true), now));
        }
        if now >= plan.drain_end {
            break;
        }
        let mut due = plan.drain_end;
        for i in 0..p.links.len() {
            due = due.min(p.service(i, now));
        }
        timer.arm(due);
        if let Err(e) = p.poll.poll(&mut events, Some(Duration::from_millis(100))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for ev in events.iter() {
            if ev.token() == TIMER {
                timer.clear();
                continue;
            }
            let i = ev.token().0;
            if ev.is_writable() && !p.links[i].connected {
                p.finish_connect(i);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                p.read(i);
            }
        }
    }
    Ok(p.finish(window_start, window_end))
}

impl ApiPublisher<'_> {
    /// Connects, sends what is due and writes; returns when this link next needs a look.
    fn service(&mut self, i: usize, now: u64) -> u64 {
        let link = &mut self.links[i];
        if !link.has_socket() {
            if now < link.retry_at {
                return link.retry_at;
            }
            link.connect(self.poll.registry(), self.api.url.addr, self.api.tls.as_ref(), Token(i), now);
            return u64::MAX;
        }
        if !link.connected {
            let deadline = link.connect_started + CONNECT_TIMEOUT_NS;
            if now < deadline {
                return deadline;
            }
            self.st.connect_timeouts += 1;
            self.drop_link(i, true);
            return now;
        }
        let next = self.fill(i, now);
        self.flush(i);
        next
    }

    fn finish_connect(&mut self, i: usize) {
        match self.links[i].finish_connect() {
            Some(true) => self.st.api_connect.record(sys::now_ns().saturating_sub(self.links[i].connect_started)),
            Some(false) => self.drop_link(i, false),
            None => {}
        }
    }

    /// Queues the requests due on link `i` while its pipeline has room, those to send again
    /// first; returns the next due instant (`u64::MAX` when full: an answer will wake it).
    fn fill(&mut self, i: usize, now: u64) -> u64 {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let app = (self.cp.app_id.as_str(), self.cp.app_key.as_str(), self.cp.app_secret.as_str());
        let link = &mut self.links[i];
        let m = link.cursors.len();
        let mut done = 0;
        while link.in_flight.len() < self.depth {
            let p = if let Some(p) = link.resend.pop_front() {
                p
            } else {
                if done == m {
                    break;
                }
                let cursor = &mut link.cursors[link.turn];
                let (t, step, seq) = match cursor.peek(self.cp, self.board, now) {
                    Next::Due { t, step, seq } => (t, step, seq),
                    // Streams take turns in time order, so the next in turn is the earliest.
                    Next::At(t) => return t,
                    Next::Done => {
                        (link.turn, done) = ((link.turn + 1) % m, done + 1);
                        continue;
                    }
                };
                let stream = cursor.stream;
                cursor.advance();
                link.turn = (link.turn + 1) % m;
                let measured = (t >= self.cp.steps[step].measure_start).then_some(step);
                if let Some(s) = measured {
                    self.st.steps[s].sent += 1;
                    self.out.send_lag.record(now - t);
                }
                self.out.sent_total += 1;
                Pending { schedule: step, step: measured, stream, seq, t, sent_at: now }
            };
            Stamp { step: p.schedule as u8, stream: p.stream as u32, seq: p.seq, sent_ns: p.t }
                .write(&mut self.data, self.cp.size);
            let channel = self.cp.channel_name(self.cp.channel_of_stream(p.stream));
            messages::api_event(&mut self.body, "bench", &channel, &self.data);
            http::publish_request(&mut link.out, app, &self.api.host, &self.body, unix);
            link.in_flight.push_back(Pending { sent_at: now, ..p });
        }
        u64::MAX
    }

    fn flush(&mut self, i: usize) {
        if !self.links[i].write() {
            self.drop_link(i, false);
        }
    }

    /// Reads answers on link `i` until the socket would block or closes, then handles every
    /// complete answer received, even when the server closed right after sending them.
    fn read(&mut self, i: usize) {
        if !self.links[i].has_socket() {
            return;
        }
        let ended = self.links[i].read(&mut self.scratch);
        let now = sys::now_ns();
        let (mut used, mut closed, mut broken) = (0, false, false);
        while !closed && !broken {
            match http::parse_answer(&self.links[i].input[used..]) {
                Ok(Some(a)) => {
                    used += a.len;
                    closed = a.close;
                    self.answered(i, a, now);
                }
                Ok(None) => break,
                Err(_) => broken = true,
            }
        }
        self.links[i].input.drain(..used);
        if closed {
            // The server reads no request after one it answered with `Connection: close`:
            // send the rest again on a new connection, one at a time from now on.
            self.st.closed_by_server += 1;
            self.depth = 1;
            self.drop_link(i, true);
        } else if broken || ended {
            self.drop_link(i, false);
        } else {
            // Room in the pipeline: send what is due without waiting for the next turn.
            self.fill(i, now);
            self.flush(i);
        }
    }

    fn answered(&mut self, i: usize, a: Answer, now: u64) {
        let Some(p) = self.links[i].in_flight.pop_front() else { return };
        *self.st.answers.entry(a.key()).or_default() += 1;
        self.st.api_latency.record(now.saturating_sub(p.sent_at));
        let Some(step) = p.step else { return };
        if (200..300).contains(&a.status) {
            let channel = self.cp.channel_of_stream(p.stream);
            self.st.steps[step].accept(channel);
            self.board.add_accepted(step, channel);
        } else {
            self.st.steps[step].errors += 1;
            self.board.add_error(step);
        }
    }

    /// Drops link `i`'s connection and opens another: at once when the server closed it after
    /// an answer (`resend`: its unread requests go again), after a pause when it failed (its
    /// unanswered requests count as errors: the server may or may not have taken them).
    fn drop_link(&mut self, i: usize, resend: bool) {
        for p in self.links[i].reset(self.poll.registry(), resend) {
            self.st.unanswered += 1;
            if let Some(step) = p.step {
                self.st.steps[step].errors += 1;
                self.board.add_error(step);
            }
        }
        self.st.reconnects += 1;
    }

    /// The totals, with what each step scheduled and the requests still unanswered.
    fn finish(mut self, start: Option<(u64, u64)>, end: Option<(u64, u64)>) -> Partial {
        for link in &self.links {
            for p in link.in_flight.iter().chain(&link.resend) {
                self.st.unanswered += 1;
                if let Some(step) = p.step {
                    self.st.steps[step].errors += 1;
                }
            }
            for c in &link.cursors {
                for (step, st) in self.st.steps.iter_mut().enumerate() {
                    if let Some(pace) = self.board.pace(step) {
                        st.scheduled += self.cp.scheduled(step, pace, c.stream);
                    }
                }
            }
        }
        if let (Some((c0, w0)), Some((c1, w1))) = (start, end) {
            self.out.thread_cpu_ns.push(c1.saturating_sub(c0));
            self.out.thread_wall_ns.push(w1.saturating_sub(w0));
        }
        self.out.channels = Some(std::mem::take(&mut self.st));
        self.out
    }
}
