//! `Link`: one HTTP/1.1 connection of the API publisher (https:// for an https:// `--api-url`, or
//! by default when the `--url` is wss://),
//! with the requests it has in flight, those to send again, and the channels (cursors) it
//! publishes. Socket work only; what is sent and how answers count is the publisher's business
//! (`api_publisher`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::{Interest, Registry, Token};

use crate::channels::cursor::Cursor;
use crate::stream::Stream;
use crate::sys;
use crate::tls::TlsClient;

/// Pause before reconnecting a connection that failed.
const RECONNECT_NS: u64 = 100_000_000;

/// A request waiting for its answer, with what it takes to send it again.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// The step whose schedule it belongs to.
    pub schedule: usize,
    /// The step it counts for, when measured.
    pub step: Option<usize>,
    /// Its stream (which names its channel).
    pub stream: u64,
    /// Its sequence number.
    pub seq: u64,
    /// Intended send time.
    pub t: u64,
    /// When it was queued on the connection.
    pub sent_at: u64,
}

/// One connection and the channels it publishes.
pub struct Link {
    stream: Option<Stream>,
    /// The TCP connect completed (a TLS handshake may still be under way: requests written
    /// meanwhile wait in the session until it is done).
    pub connected: bool,
    /// Request bytes not written yet.
    pub out: Vec<u8>,
    off: usize,
    /// Answer bytes not parsed yet.
    pub input: Vec<u8>,
    /// Requests sent, oldest first.
    pub in_flight: VecDeque<Pending>,
    /// Requests the server did not read before closing after an answer: sent again first.
    pub resend: VecDeque<Pending>,
    /// The streams (channels) this connection publishes.
    pub cursors: Vec<Cursor>,
    /// The cursor whose turn it is.
    pub turn: usize,
    /// When to connect again.
    pub retry_at: u64,
    /// When the current connect began.
    pub connect_started: u64,
}

impl Link {
    /// A link for `cursors`, not connected yet.
    pub fn new(cursors: Vec<Cursor>) -> Link {
        Link {
            stream: None,
            connected: false,
            out: Vec::new(),
            off: 0,
            input: Vec::new(),
            in_flight: VecDeque::new(),
            resend: VecDeque::new(),
            cursors,
            turn: 0,
            retry_at: 0,
            connect_started: 0,
        }
    }

    /// True while a socket exists (connecting or connected).
    pub fn has_socket(&self) -> bool {
        self.stream.is_some()
    }

    /// Starts connecting to `addr` (over TLS with `tls`), registered as `token`; on failure,
    /// retries after a pause.
    pub fn connect(&mut self, registry: &Registry, addr: SocketAddr, tls: Option<&TlsClient>, token: Token, now: u64) {
        let started = sys::start_connect(addr, None).and_then(|tcp| Stream::new(tcp, tls)).and_then(|mut s| {
            s.register(registry, token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(s)
        });
        match started {
            Ok(s) => (self.stream, self.connect_started) = (Some(s), now),
            Err(_) => self.retry_at = now + RECONNECT_NS,
        }
    }

    /// On writability while connecting: `Some(true)` connected, `Some(false)` failed, `None`
    /// not yet.
    pub fn finish_connect(&mut self) -> Option<bool> {
        let s = self.stream.as_ref()?.tcp();
        match (s.take_error(), s.peer_addr()) {
            (Ok(None), Ok(_)) => {
                self.connected = true;
                Some(true)
            }
            (_, Err(e)) if e.kind() == io::ErrorKind::NotConnected => None,
            _ => Some(false),
        }
    }

    /// Writes queued bytes until done or the socket would block; `false` when the connection
    /// failed.
    pub fn write(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else { return true };
        while self.off < self.out.len() {
            match stream.write(&self.out[self.off..]) {
                Ok(0) => return false,
                Ok(n) => self.off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.off = 0;
        // TLS records the socket did not take yet; the publisher calls this every turn, so a
        // writable edge (which wakes its loop) sends them.
        match stream.flush() {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// Reads into `input` until the socket would block; `true` when the connection ended
    /// (what arrived before still counts).
    pub fn read(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            let Some(stream) = self.stream.as_mut() else { return true };
            match stream.read(scratch) {
                Ok(0) => return true,
                Ok(n) => self.input.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Drops the connection and returns the requests lost with it. With `resend` (the server
    /// closed it after an answer, reading nothing more) they are queued to go again instead and
    /// the link reconnects at once; otherwise after a pause.
    pub fn reset(&mut self, registry: &Registry, resend: bool) -> Vec<Pending> {
        if let Some(mut s) = self.stream.take() {
            let _ = s.deregister(registry);
        }
        if resend {
            while let Some(p) = self.in_flight.pop_back() {
                self.resend.push_front(p);
            }
        }
        self.connected = false;
        self.out.clear();
        self.off = 0;
        self.input.clear();
        self.retry_at = if resend { 0 } else { sys::now_ns() + RECONNECT_NS };
        self.in_flight.drain(..).collect()
    }
}
