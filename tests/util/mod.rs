//! Shared helpers for socket-level tests: start a server on port 0, connect
//! real tungstenite clients, read with deadlines.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fanout::{Config, Handler, RunningServer, Server};
use tungstenite::protocol::WebSocket;
use tungstenite::Message as WsMessage;

/// A blocking tungstenite client over a plain TCP stream.
pub type Client = WebSocket<TcpStream>;

/// The longest any single expected event may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A config bound to 127.0.0.1:0 with `workers` workers and short timeouts
/// that do not interfere unless a test sets them.
pub fn config(workers: usize) -> Config {
    let mut config = Config::default();
    config.bind = "127.0.0.1:0".parse().expect("literal address");
    config.workers = workers;
    config.ping_interval = None;
    config.idle_timeout = None;
    config.close_timeout = Duration::from_millis(500);
    config.shutdown_timeout = Duration::from_secs(2);
    config
}

/// `config` with `change` applied (`Config` is `#[non_exhaustive]`, so
/// tests change fields rather than build it literally).
pub fn with_config(mut config: Config, change: impl FnOnce(&mut Config)) -> Config {
    change(&mut config);
    config
}

/// Binds and starts a server.
pub fn start<H: Handler>(config: Config, handler: H) -> RunningServer {
    Server::bind(config, handler).expect("bind").start().expect("start")
}

/// Connects a client to `path` and completes the upgrade.
pub fn connect(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let url = format!("ws://{addr}{path}");
    let (client, response) = tungstenite::client(url, stream).expect("websocket upgrade");
    assert_eq!(response.status(), 101);
    client
}

/// Connects to the chat and consumes its welcome message.
pub fn connect_chat(addr: SocketAddr) -> Client {
    let mut client = connect(addr, "/chat");
    let welcome = next_message(&mut client);
    assert!(welcome.to_text().expect("welcome is text").contains("welcome"), "got {welcome:?}");
    client
}

/// The next data message (pings/pongs are skipped); panics on close or timeout.
pub fn next_message(client: &mut Client) -> WsMessage {
    loop {
        match client.read().expect("read a message") {
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Reads until the server's close frame arrives; returns its code.
pub fn expect_close(client: &mut Client) -> u16 {
    loop {
        match client.read() {
            Ok(WsMessage::Close(Some(frame))) => return u16::from(frame.code),
            Ok(WsMessage::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got error {e}"),
        }
    }
}

/// Sends raw bytes on a fresh TCP connection and returns everything the
/// server answers until it closes (or `PATIENCE` passes).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(request).expect("write request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Waits until `condition` holds, polling; panics after `PATIENCE`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A masked client frame (what a browser sends), for raw-socket tests.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads an HTTP response head through its empty line, one byte at a time,
/// so nothing after it (the first frames) is consumed.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("response head cut short ({other:?}): {:?}", String::from_utf8_lossy(&head)),
        }
    }
    String::from_utf8(head).expect("response head is ASCII")
}

/// Opens a raw TCP connection upgraded to `path`, positioned at the first
/// server frame (for tests that send malformed frames).
pub fn raw_upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(upgrade_request(path).as_bytes()).expect("write request");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101 "), "expected 101, got {head:?}");
    stream
}

/// A frame as the server sent it (server frames are never masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode (0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong).
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The status code of a close frame (1005 when it carries none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        match self.payload.get(..2) {
            Some(code) => u16::from_be_bytes([code[0], code[1]]),
            None => 1005,
        }
    }

    /// The reason text of a close frame.
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// Reads the next server frame from a raw stream; `None` at a clean EOF.
/// Panics on a read error or timeout, and on a masked or RSV-flagged frame.
pub fn read_frame(stream: &mut TcpStream) -> Option<ServerFrame> {
    let mut head = [0u8; 2];
    match stream.read(&mut head[..1]) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => panic!("reading a server frame: {e}"),
    }
    stream.read_exact(&mut head[1..]).expect("frame header");
    assert_eq!(head[0] & 0x70, 0, "RSV bits set in a server frame");
    assert_eq!(head[1] & 0x80, 0, "server frames must not be masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).expect("16-bit length");
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).expect("64-bit length");
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("frame length fits memory")];
    stream.read_exact(&mut payload).expect("frame payload");
    Some(ServerFrame { fin: head[0] & 0x80 != 0, opcode: head[0] & 0x0F, payload })
}

/// Reads server frames until the server closes the TCP connection; panics if
/// it does not close within `PATIENCE`.
pub fn read_frames_to_eof(stream: &mut TcpStream) -> Vec<ServerFrame> {
    std::iter::from_fn(|| read_frame(stream)).collect()
}

/// Asserts that nothing more arrives on `client` for 300 ms.
pub fn nothing_more(client: &mut Client) {
    client.get_mut().set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    match client.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("expected nothing more, got {other:?}"),
    }
    client.get_mut().set_read_timeout(Some(PATIENCE)).expect("timeout");
}

/// Waits until the server at `addr` says in `/readyz` that it is connected
/// to its cluster's Redis.
pub fn wait_bridged(addr: SocketAddr) {
    wait_until("the node to be connected to Redis", || {
        let Ok(mut stream) = TcpStream::connect(addr) else { return false };
        let request = "GET /readyz HTTP/1.1\r\nHost: fanout\r\nConnection: close\r\n\r\n";
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.contains("redis: connected")
    });
}
