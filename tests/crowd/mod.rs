//! Many raw, non-blocking clients driven from the test's own thread through
//! one mio `Poll`: pre-built request bytes, no thread per client, so fault
//! tests can field thousands of peers cheaply (even in debug builds).
//! A test crate using it declares `mod util;` too.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// A frame as the server sent it (never masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame (1005 when it carries none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        self.payload.get(..2).map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]))
    }
}

/// One client: its socket, the bytes it received and not yet taken, and
/// whether (and when) the server ended the connection.
pub struct Peer {
    pub stream: TcpStream,
    received: Vec<u8>,
    taken: usize,
    /// Bytes received in all.
    pub total: usize,
    /// When EOF or a reset was seen.
    pub ended: Option<Instant>,
    /// True when the end was a reset rather than EOF.
    pub reset: bool,
}

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        Peer { stream, received: Vec::new(), taken: 0, total: 0, ended: None, reset: false }
    }

    /// Reads until the socket would block; records EOF or a reset. True
    /// when bytes arrived or the connection ended just now.
    fn read_available(&mut self, scratch: &mut [u8]) -> bool {
        let was_open = self.ended.is_none();
        let mut got = false;
        while self.ended.is_none() {
            match self.stream.read(scratch) {
                Ok(0) => self.ended = Some(Instant::now()),
                Ok(n) => {
                    self.received.extend_from_slice(&scratch[..n]);
                    self.total += n;
                    got = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.ended = Some(Instant::now());
                    self.reset = true;
                }
            }
        }
        got || (was_open && self.ended.is_some())
    }

    /// Bytes received and not taken yet.
    pub fn pending(&self) -> &[u8] {
        &self.received[self.taken..]
    }

    fn advance(&mut self, n: usize) {
        self.taken += n;
        if self.taken == self.received.len() {
            self.received.clear();
            self.taken = 0;
        } else if self.taken > 64 * 1024 && self.taken > self.received.len() / 2 {
            self.received.drain(..self.taken);
            self.taken = 0;
        }
    }

    /// Takes a complete HTTP response head (through its empty line).
    pub fn take_head(&mut self) -> Option<String> {
        let end = self.pending().windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.pending()[..end]).into_owned();
        self.advance(end);
        Some(head)
    }

    /// Takes one complete server frame; panics on a masked or RSV-flagged one.
    pub fn take_frame(&mut self) -> Option<Frame> {
        let (frame, used) = parse_frame(self.pending())?;
        self.advance(used);
        Some(frame)
    }

    /// Writes all of `bytes`, waiting out a full send buffer.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends FIN (the descriptor stays open until the crowd is dropped).
    pub fn hang_up(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Parses one server frame at the start of `bytes`: the frame and the bytes
/// it took, or `None` when it is not complete yet.
pub fn parse_frame(bytes: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
    assert_eq!(b0 & 0x70, 0, "RSV bits set in a server frame");
    assert_eq!(b1 & 0x80, 0, "a server frame is masked");
    let (len, header) = match b1 & 0x7F {
        126 => (u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let end = header + usize::try_from(len).expect("frame length fits memory");
    let payload = bytes.get(header..end)?.to_vec();
    Some((Frame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, payload }, end))
}

/// Opens a blocking TCP connection to `addr`. With `rcvbuf` the client
/// gets that small a receive buffer and an Ethernet-sized MSS (1460 bytes)
/// so that a client that never reads stalls soon: at loopback's 64 KiB MSS
/// the server's kernel alone would take about 1 MiB for it (the send
/// buffer autotunes to twice ten segments).
pub fn tcp_connect(addr: SocketAddr, rcvbuf: Option<usize>) -> std::net::TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        socket.set_tcp_mss(1460).expect("TCP_MAXSEG");
    }
    socket.set_tcp_nodelay(true).expect("nodelay");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

/// Many clients on one poll.
pub struct Crowd {
    poll: Poll,
    events: Events,
    scratch: Box<[u8]>,
    pub peers: Vec<Peer>,
}

impl Crowd {
    /// Connects `n` clients to `addr` (see [`tcp_connect`] for `rcvbuf`).
    pub fn connect(addr: SocketAddr, n: usize, rcvbuf: Option<usize>) -> Crowd {
        let mut crowd = Crowd {
            poll: Poll::new().expect("poll"),
            events: Events::with_capacity(1024),
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
            peers: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let stream = tcp_connect(addr, rcvbuf);
            stream.set_nonblocking(true).expect("nonblocking");
            let mut stream = TcpStream::from_std(stream);
            let token = Token(crowd.peers.len());
            crowd.poll.registry().register(&mut stream, token, Interest::READABLE).expect("register");
            crowd.peers.push(Peer::new(stream));
        }
        crowd
    }

    /// Sets every client's receive buffer (to read faster after stalling;
    /// the window stays under 64 KiB when the buffer was small at connect).
    pub fn set_recv_buffers(&self, size: usize) {
        for peer in &self.peers {
            SockRef::from(&peer.stream).set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Sends the same bytes from every client.
    pub fn send_all(&mut self, bytes: &[u8]) {
        for (i, peer) in self.peers.iter_mut().enumerate() {
            peer.send(bytes).unwrap_or_else(|e| panic!("client {i} could not send: {e}"));
        }
    }

    /// Reads what arrives until `done` returns true, calling it with the
    /// clients that received bytes or ended since its last call (every
    /// client on the first call); false when `limit` passed first. Starts
    /// with a read of every client, so bytes that arrived while nobody
    /// pumped are not missed.
    pub fn pump_until(&mut self, limit: Duration, mut done: impl FnMut(&mut [Peer], &[usize]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        for peer in self.peers.iter_mut() {
            peer.read_available(&mut self.scratch);
        }
        let mut ready: Vec<usize> = (0..self.peers.len()).collect();
        loop {
            if done(&mut self.peers, &ready) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            ready.clear();
            let wait = (deadline - now).min(Duration::from_millis(50));
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("poll failed: {e}"),
            }
            for event in self.events.iter() {
                let i = event.token().0;
                if self.peers[i].read_available(&mut self.scratch) {
                    ready.push(i);
                }
            }
        }
    }

    /// Sends an upgrade request for `path` from every client and waits for
    /// every 101; panics on anything else.
    pub fn upgrade_all(&mut self, path: &str) {
        self.send_all(crate::util::upgrade_request(path).as_bytes());
        let mut waiting = self.len();
        let mut upgraded = vec![false; self.len()];
        let all = self.pump_until(Duration::from_secs(20), |peers, ready| {
            for &i in ready {
                if upgraded[i] {
                    continue;
                }
                if let Some(head) = peers[i].take_head() {
                    assert!(head.starts_with("HTTP/1.1 101 "), "client {i}: expected 101, got {head:?}");
                    upgraded[i] = true;
                    waiting -= 1;
                } else {
                    assert!(peers[i].ended.is_none(), "client {i} was closed during its upgrade");
                }
            }
            waiting == 0
        });
        assert!(all, "{waiting} of {} upgrades did not complete", self.len());
    }

    /// Takes the next frame of every client, waiting for it; for the chat's
    /// welcome.
    pub fn take_one_frame_each(&mut self) -> Vec<Frame> {
        let mut frames: Vec<Option<Frame>> = vec![None; self.len()];
        let mut waiting = self.len();
        let all = self.pump_until(Duration::from_secs(20), |peers, ready| {
            for &i in ready {
                if frames[i].is_none() {
                    if let Some(frame) = peers[i].take_frame() {
                        frames[i] = Some(frame);
                        waiting -= 1;
                    }
                }
            }
            waiting == 0
        });
        assert!(all, "{waiting} clients got no frame");
        frames.into_iter().map(Option::unwrap).collect()
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Waits until `condition` holds, polling every 5 ms; false after `limit`.
pub fn within(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
