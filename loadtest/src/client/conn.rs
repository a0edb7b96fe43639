//! One client connection: TCP connect, upgrade handshake (after the TLS handshake, for
//! `wss://`), then frames in and out. The socket work is here; the bytes-level protocol is in
//! `frame`, `handshake` and `reader`, and TLS is inside `Stream`.

use std::io::{self, Read, Write};

use super::cause::Cause;
use super::frame::{self, OP_BINARY, OP_CLOSE, OP_PONG};
use super::handshake;
use super::inflate::Inflater;
use super::reader::{Event, FrameReader};
use crate::stream::Stream;

/// Reads per readiness event before the socket is put back in line, so one busy connection
/// cannot starve the others (the loop revisits it next turn).
const READS_PER_TURN: usize = 16;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// TCP connect in progress.
    Connecting,
    /// Request sent (with TLS: handed to the session, which sends it once its own handshake is
    /// done), waiting for the 101 response.
    Handshake,
    /// WebSocket open.
    Open,
    /// We sent a close frame and wait for the server to close TCP first (so the server, not
    /// the client, keeps the TIME_WAIT socket).
    Closing,
    /// Finished; the socket is gone.
    Closed,
}

/// Queued outgoing bytes plus the masking-key generator. Handlers send through this.
#[derive(Debug)]
pub struct Sender {
    buf: Vec<u8>,
    off: usize,
    rng: u32,
}

impl Sender {
    fn new(seed: u64) -> Sender {
        Sender { buf: Vec::new(), off: 0, rng: (seed as u32 ^ 0x9E37_79B9) | 1 }
    }

    /// Queues one masked frame. Masks come from a xorshift: the mask exists to stop cache
    /// poisoning by browsers' scripts, which a load generator does not need to resist.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        frame::encode_masked(&mut self.buf, opcode, payload, self.rng.to_ne_bytes());
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, payload: &[u8]) {
        self.send(OP_BINARY, payload);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.buf.len() - self.off
    }
}

/// What a connection reports to the scenario driving it.
pub trait Handler {
    /// The handshake completed for connection `slot`.
    fn on_open(&mut self, slot: usize, tx: &mut Sender, now: u64);
    /// A text or binary message arrived on `slot`, read at `now`.
    fn on_message(&mut self, slot: usize, opcode: u8, payload: &[u8], tx: &mut Sender, now: u64);
}

/// Result of handling readiness.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do until the next readiness event.
    Idle,
    /// Data may remain: call `on_readable` again next turn.
    Again,
    /// The connection ended.
    Ended(Cause),
}

/// A client connection and its buffers.
#[derive(Debug)]
pub struct Conn {
    stream: Option<Stream>,
    /// Current state.
    pub state: State,
    /// Global connection index (across threads and processes).
    pub index: u64,
    /// When `connect` was called.
    pub started_ns: u64,
    /// When the handshake completed (`u64::MAX` until it does).
    pub opened_ns: u64,
    /// When the connection ended (`u64::MAX` while it has not).
    pub ended_ns: u64,
    reader: FrameReader,
    tx: Sender,
    /// While the handshake runs: the accept value expected, the response read so far, and
    /// whether permessage-deflate was offered.
    handshake: Option<Box<(String, Vec<u8>, bool)>>,
}

impl Conn {
    /// Wraps a socket on which `connect` was started at `now`.
    pub fn new(stream: Stream, index: u64, now: u64) -> Conn {
        Conn {
            stream: Some(stream),
            state: State::Connecting,
            index,
            started_ns: now,
            opened_ns: u64::MAX,
            ended_ns: u64::MAX,
            reader: FrameReader::default(),
            tx: Sender::new(index),
            handshake: None,
        }
    }

    /// A connection whose socket could not even be created; it only holds its slot.
    pub fn failed(index: u64, now: u64) -> Conn {
        Conn {
            stream: None,
            state: State::Closed,
            index,
            started_ns: now,
            opened_ns: u64::MAX,
            ended_ns: now,
            reader: FrameReader::default(),
            tx: Sender::new(index),
            handshake: None,
        }
    }

    /// True when the handshake had completed before `t` and the connection had not ended by
    /// then. Every thread judges "open at the start of measuring" by these timestamps, never by
    /// when it happened to look, so a thread that checks late counts the same connections.
    pub fn open_at(&self, t: u64) -> bool {
        self.opened_ns < t && self.ended_ns >= t
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.tx.queued()
    }

    /// The handshake agreed to permessage-deflate: the server may compress what it sends.
    pub fn deflate(&self) -> bool {
        self.reader.deflate()
    }

    /// Outgoing queue, for scenario timers that send outside a read.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
    }

    /// Handles writability: finishes the TCP connect (sending the upgrade request, which offers
    /// permessage-deflate if `deflate`) or writes queued frames.
    pub fn on_writable(&mut self, host: &str, path: &str, deflate: bool) -> Outcome {
        if self.state == State::Connecting {
            let Some(stream) = self.stream.as_ref().map(Stream::tcp) else { return Outcome::Idle };
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return Outcome::Ended(Cause::from_io(&e)),
            }
            if let Err(e) = stream.peer_addr() {
                if e.kind() == io::ErrorKind::NotConnected {
                    return Outcome::Idle; // spurious wake-up: still connecting
                }
                return Outcome::Ended(Cause::from_io(&e));
            }
            let (key, accept) = handshake::new_key();
            self.tx.buf.extend_from_slice(&handshake::request(host, path, &key, deflate));
            self.handshake = Some(Box::new((accept, Vec::new(), deflate)));
            self.state = State::Handshake;
        }
        self.flush()
    }

    /// Writes queued bytes until done or the socket would block.
    pub fn flush(&mut self) -> Outcome {
        let Some(stream) = self.stream.as_mut() else { return Outcome::Idle };
        while self.tx.off < self.tx.buf.len() {
            match stream.write(&self.tx.buf[self.tx.off..]) {
                Ok(0) => return Outcome::Ended(Cause::Reset),
                Ok(n) => self.tx.off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Idle,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Ended(Cause::from_io(&e)),
            }
        }
        self.tx.buf.clear();
        self.tx.off = 0;
        if self.tx.buf.capacity() > 64 * 1024 {
            self.tx.buf = Vec::new();
        }
        // TLS records the socket did not take yet (a writable edge brings us here with nothing
        // queued); a plain socket has none.
        match stream.flush() {
            Ok(()) => Outcome::Idle,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Outcome::Idle,
            Err(e) => Outcome::Ended(Cause::from_io(&e)),
        }
    }

    /// Reads what the server sent into `scratch` and dispatches it, inflating compressed messages
    /// with the thread's `inflater`. Returns `Again` when the per-turn read budget ran out before
    /// the socket would block.
    pub fn on_readable(
        &mut self,
        slot: usize,
        scratch: &mut [u8],
        inflater: &mut Inflater,
        h: &mut impl Handler,
    ) -> Outcome {
        for _ in 0..READS_PER_TURN {
            let Some(stream) = self.stream.as_mut() else { return Outcome::Idle };
            let n = match stream.read(scratch) {
                Ok(0) if self.state == State::Closing => return Outcome::Ended(Cause::ServerClose(None)),
                Ok(0) => return Outcome::Ended(Cause::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Idle,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Outcome::Ended(Cause::from_io(&e)),
            };
            let now = crate::sys::now_ns();
            if let Some(end) = self.bytes_in(slot, &scratch[..n], inflater, h, now) {
                return Outcome::Ended(end);
            }
            if n < scratch.len() && self.state != State::Closing {
                // A short read emptied the socket's queue (a TLS stream reads records until it
                // does, to keep this true). Linux raises a new edge for any byte arriving after
                // it, so the extra read that would only return EAGAIN is skipped: it would be a
                // second syscall for every delivery. Not while closing: the server's FIN usually
                // arrives with its close frame, raises no edge of its own, and only a further
                // read sees it.
                return Outcome::Idle;
            }
        }
        Outcome::Again
    }

    /// Feeds received bytes through the handshake check or the frame reader.
    fn bytes_in(
        &mut self,
        slot: usize,
        data: &[u8],
        inflater: &mut Inflater,
        h: &mut impl Handler,
        now: u64,
    ) -> Option<Cause> {
        let mut data = data;
        let head_buf;
        if self.state == State::Handshake {
            let hs = self.handshake.as_mut()?;
            hs.1.extend_from_slice(data);
            match handshake::parse_response(&hs.1, &hs.0, hs.2) {
                Ok(None) => return None,
                Err(handshake::HandshakeError::Status(code)) => return Some(Cause::Http(code)),
                Err(e) => return Some(Cause::Handshake(e.to_string())),
                Ok(Some(accepted)) => {
                    let mut rest = std::mem::take(&mut hs.1);
                    rest.drain(..accepted.head_len);
                    if accepted.deflate {
                        self.reader.set_deflate();
                    }
                    head_buf = rest;
                    self.handshake = None;
                    self.state = State::Open;
                    self.opened_ns = now;
                    h.on_open(slot, &mut self.tx, now);
                    data = &head_buf;
                }
            }
        }
        let (tx, state) = (&mut self.tx, &mut self.state);
        let mut close = None;
        let fed = self.reader.feed(data, inflater, |ev| match ev {
            Event::Message { opcode, payload } => h.on_message(slot, opcode, payload, tx, now),
            Event::Ping(p) => tx.send(OP_PONG, p),
            Event::Close(code) => {
                if *state == State::Open {
                    tx.send(OP_CLOSE, &code.unwrap_or(1000).to_be_bytes());
                    *state = State::Closing;
                    close = Some(Cause::ServerClose(code));
                }
            }
        });
        if let Err(e) = fed {
            return Some(Cause::Protocol(e.to_string()));
        }
        if let Some(cause) = close {
            let _ = self.flush();
            return Some(cause);
        }
        None
    }

    /// Starts our side of the closing handshake: a close frame, then wait for the server's FIN.
    pub fn begin_close(&mut self) -> Outcome {
        if self.state != State::Open {
            return Outcome::Idle;
        }
        self.tx.send(OP_CLOSE, &1000u16.to_be_bytes());
        self.state = State::Closing;
        self.flush()
    }

    /// Drops the socket. `abort` sends an RST so no TIME_WAIT is left on the client side.
    pub fn shut(&mut self, registry: &mio::Registry, abort: bool) {
        if let Some(mut s) = self.stream.take() {
            let _ = s.deregister(registry);
            if abort {
                crate::sys::abort(s.into_tcp());
            }
        }
        self.state = State::Closed;
        self.ended_ns = self.ended_ns.min(crate::sys::now_ns());
        self.reader = FrameReader::default();
        self.tx = Sender::new(self.index);
        self.handshake = None;
    }
}
