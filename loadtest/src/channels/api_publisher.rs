//! The HTTP API publisher: one thread with its own mio loop and `--publishers` keep-alive
//! HTTP/1.1 connections to the server's API, each with up to `--pipeline` signed requests in
//! flight. Channel `c` always goes through connection `c % P`, and a connection's answers come
//! back in request order, so the server sees each channel's events in sequence: any reordering
//! a subscriber observes is the server's. Events are sent on schedule, round-robin over the
//! channels, stamped with their intended send time; a connection that is full or down makes
//! its channels' events late (their latency shows it), not fewer.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::channels::board::ChannelsBoard;
use crate::channels::cursor::{Cursor, Next};
use crate::channels::http::{self, Answer};
use crate::channels::plan::ChannelsPlan;
use crate::channels::stats::ChannelsPartial;
use crate::plan::{Kind, Plan};
use crate::pusher::{messages, stamp::Stamp};
use crate::stats::Partial;
use crate::sys::{self, Timer};

const TIMER: Token = Token(usize::MAX - 1);
/// Pause before reconnecting a connection that failed.
const RECONNECT_NS: u64 = 100_000_000;

/// A request waiting for its answer.
struct Pending {
    /// The step it counts for, when measured.
    step: Option<usize>,
    channel: u64,
    sent_at: u64,
}

/// One keep-alive connection and the channels it publishes.
struct Link {
    stream: Option<TcpStream>,
    connected: bool,
    out: Vec<u8>,
    off: usize,
    input: Vec<u8>,
    in_flight: VecDeque<Pending>,
    cursors: Vec<Cursor>,
    turn: usize,
    retry_at: u64,
}

/// The publisher thread's state.
struct ApiPublisher<'a> {
    plan: &'a Plan,
    cp: &'a ChannelsPlan,
    board: &'a ChannelsBoard,
    poll: Poll,
    links: Vec<Link>,
    st: ChannelsPartial,
    out: Partial,
    host: String,
    data: Vec<u8>,
    body: Vec<u8>,
    scratch: Vec<u8>,
}

/// Publishes `plan`'s schedule through the HTTP API until the drain ends; returns what it
/// counted (sends, answers by status, accepted events per step and channel).
pub fn run(plan: Arc<Plan>, board: Arc<ChannelsBoard>) -> io::Result<Partial> {
    let Kind::Channels(cp) = &plan.kind else { return Ok(Partial::default()) };
    sys::tighten_timer_slack();
    let poll = Poll::new()?;
    let mut timer = Timer::new()?;
    poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
    let k = cp.publishers.min(cp.channels);
    let links = (0..k)
        .map(|j| Link {
            stream: None,
            connected: false,
            out: Vec::new(),
            off: 0,
            input: Vec::new(),
            in_flight: VecDeque::new(),
            cursors: (j..cp.channels).step_by(k as usize).map(Cursor::new).collect(),
            turn: 0,
            retry_at: 0,
        })
        .collect();
    let mut p = ApiPublisher {
        plan: &plan,
        cp,
        board: &board,
        poll,
        links,
        st: ChannelsPartial::new(cp.steps.len()),
        out: Partial::default(),
        host: plan.url.host_header(),
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
        if self.links[i].stream.is_none() {
            if now < self.links[i].retry_at {
                return self.links[i].retry_at;
            }
            self.connect(i, now);
            return u64::MAX;
        }
        if !self.links[i].connected {
            return u64::MAX;
        }
        let next = self.fill(i, now);
        self.flush(i);
        next
    }

    fn connect(&mut self, i: usize, now: u64) {
        match sys::start_connect(self.plan.url.addr, None) {
            Ok(mut s) => match self.poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            {
                Ok(()) => self.links[i].stream = Some(s),
                Err(_) => self.links[i].retry_at = now + RECONNECT_NS,
            },
            Err(_) => self.links[i].retry_at = now + RECONNECT_NS,
        }
    }

    fn finish_connect(&mut self, i: usize) {
        let Some(s) = self.links[i].stream.as_ref() else { return };
        match (s.take_error(), s.peer_addr()) {
            (Ok(None), Ok(_)) => self.links[i].connected = true,
            (_, Err(e)) if e.kind() == io::ErrorKind::NotConnected => {}
            _ => self.fail(i),
        }
    }

    /// Queues the requests due on link `i` while its pipeline has room; returns the next due
    /// instant (`u64::MAX` when full: an answer will wake it).
    fn fill(&mut self, i: usize, now: u64) -> u64 {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let app = (self.cp.app_id.as_str(), self.cp.app_key.as_str(), self.cp.app_secret.as_str());
        let link = &mut self.links[i];
        let m = link.cursors.len();
        let mut done = 0;
        while link.in_flight.len() < self.cp.pipeline && done < m {
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
            let channel = cursor.stream;
            cursor.advance();
            link.turn = (link.turn + 1) % m;
            Stamp { stream: channel as u32, seq, sent_ns: t }.write(&mut self.data, self.cp.size);
            messages::api_event(&mut self.body, "bench", &self.cp.channel_name(channel), &self.data);
            http::publish_request(&mut link.out, app, &self.host, &self.body, unix);
            let measured = (t >= self.cp.steps[step].measure_start).then_some(step);
            if let Some(s) = measured {
                self.st.steps[s].sent += 1;
                self.out.send_lag.record(now - t);
            }
            self.out.sent_total += 1;
            link.in_flight.push_back(Pending { step: measured, channel, sent_at: now });
        }
        u64::MAX
    }

    fn flush(&mut self, i: usize) {
        let link = &mut self.links[i];
        let Some(stream) = link.stream.as_mut() else { return };
        while link.off < link.out.len() {
            match stream.write(&link.out[link.off..]) {
                Ok(0) => return self.fail(i),
                Ok(n) => link.off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i),
            }
        }
        link.out.clear();
        link.off = 0;
    }

    /// Reads answers on link `i` until the socket would block.
    fn read(&mut self, i: usize) {
        loop {
            let Some(stream) = self.links[i].stream.as_mut() else { return };
            match stream.read(&mut self.scratch) {
                Ok(0) => return self.fail(i),
                Ok(n) => self.links[i].input.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i),
            }
        }
        let now = sys::now_ns();
        let mut used = 0;
        let mut close = false;
        while !close {
            match http::parse_answer(&self.links[i].input[used..]) {
                Ok(Some(a)) => {
                    used += a.len;
                    close = a.close;
                    self.answered(i, a, now);
                }
                Ok(None) => break,
                Err(_) => {
                    close = true;
                }
            }
        }
        self.links[i].input.drain(..used);
        if close {
            self.fail(i);
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
            self.st.steps[step].accept(p.channel);
            self.board.add_accepted(step, p.channel);
        } else {
            self.st.steps[step].errors += 1;
            self.board.add_error(step);
        }
    }

    /// Drops link `i`'s connection; its unanswered requests count as errors. It reconnects
    /// after a pause.
    fn fail(&mut self, i: usize) {
        let link = &mut self.links[i];
        if let Some(mut s) = link.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        for p in link.in_flight.drain(..) {
            self.st.unanswered += 1;
            if let Some(step) = p.step {
                self.st.steps[step].errors += 1;
                self.board.add_error(step);
            }
        }
        link.connected = false;
        link.out.clear();
        link.off = 0;
        link.input.clear();
        link.retry_at = sys::now_ns() + RECONNECT_NS;
        self.st.reconnects += 1;
    }

    /// The totals, with what each step scheduled and the requests still unanswered.
    fn finish(mut self, start: Option<(u64, u64)>, end: Option<(u64, u64)>) -> Partial {
        for link in &self.links {
            self.st.unanswered += link.in_flight.len() as u64;
            for c in &link.cursors {
                for (step, st) in self.st.steps.iter_mut().enumerate() {
                    st.scheduled += self.cp.scheduled(step, self.board.rate(step).unwrap_or(0.0), c.stream);
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
