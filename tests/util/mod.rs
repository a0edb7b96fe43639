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
    Config {
        bind: "127.0.0.1:0".parse().expect("literal address"),
        workers,
        ping_interval: None,
        idle_timeout: None,
        close_timeout: Duration::from_millis(500),
        shutdown_timeout: Duration::from_secs(2),
        ..Config::default()
    }
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
