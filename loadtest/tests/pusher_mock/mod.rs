//! A minimal Pusher Channels server for the `channels` tests: WebSocket connections on
//! `/app/{key}` (connection_established, subscribe with private-channel auth checked, pong,
//! client events relayed to the other members) and the signed HTTP API (`POST
//! /apps/{id}/events`, signature and body_md5 checked) on the same port. One blocking thread
//! per connection: small, slow, and exact, which is what a counting test needs. Several of them
//! can share their channels (`start_cluster`), as fanout nodes do through Redis, for the tests
//! that publish on one node and subscribe on others.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use tungstenite::Message;

/// App credentials the mock accepts.
pub const APP: (&str, &str, &str) = ("7", "mock-key", "mock-secret");

/// What the mock saw, for assertions.
#[derive(Default)]
pub struct Seen {
    /// API events accepted.
    pub api_events: AtomicU64,
    /// API requests refused for a bad signature or body_md5.
    pub bad_signatures: AtomicU64,
    /// Private subscriptions refused for a bad auth token.
    pub bad_auth: AtomicU64,
    /// Client events relayed.
    pub client_events: AtomicU64,
}

/// What one node of a cluster saw.
#[derive(Default)]
pub struct NodeSeen {
    /// WebSocket connections accepted.
    pub websockets: AtomicU64,
    /// HTTP API requests read (whatever their answer).
    pub api_requests: AtomicU64,
}

/// One node of a [`MockCluster`].
pub struct MockNode {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its own counters.
    pub seen: Arc<NodeSeen>,
}

/// Mock nodes sharing their channels: an event published on any node, through the API or as a
/// client event, reaches the members of its channel on every node.
pub struct MockCluster {
    /// The nodes, in the order started.
    pub nodes: Vec<MockNode>,
    /// The counters of all of them together.
    pub seen: Arc<Seen>,
}

type Members = Mutex<HashMap<String, Vec<(u64, Sender<String>)>>>;

/// What the nodes of one mock (a single one, or a cluster) share: counters, channel members,
/// and the next connection id (unique over the nodes, so that one's members are never taken
/// for another's).
#[derive(Default)]
struct Shared {
    seen: Arc<Seen>,
    members: Members,
    next_id: AtomicU64,
}

/// A running mock; it lives until the test process ends.
pub struct MockPusher {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub seen: Arc<Seen>,
}

/// Starts the mock on a free loopback port.
pub fn start() -> MockPusher {
    start_with(false)
}

/// Starts the mock; with `close_api`, it answers every API request with `Connection: close` and
/// closes the connection, reading nothing after the request it answered (as sockudo does).
pub fn start_with(close_api: bool) -> MockPusher {
    let shared = Arc::new(Shared::default());
    let node = serve(&shared, close_api);
    MockPusher { addr: node.addr, seen: Arc::clone(&shared.seen) }
}

/// Starts `nodes` mocks on free loopback ports, sharing their channels.
pub fn start_cluster(nodes: usize) -> MockCluster {
    let shared = Arc::new(Shared::default());
    MockCluster { nodes: (0..nodes).map(|_| serve(&shared, false)).collect(), seen: Arc::clone(&shared.seen) }
}

/// Starts one node on a free loopback port.
fn serve(shared: &Arc<Shared>, close_api: bool) -> MockNode {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let node = Arc::new(NodeSeen::default());
    let (shared, counts) = (Arc::clone(shared), Arc::clone(&node));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (shared, counts) = (Arc::clone(&shared), Arc::clone(&counts));
            std::thread::spawn(move || {
                let mut head = [0u8; 4];
                if stream.peek(&mut head).is_ok() && &head == b"GET " {
                    let id = shared.next_id.fetch_add(1, Relaxed);
                    websocket(stream, id, &shared.seen, &shared.members, &counts);
                } else {
                    api(stream, &shared.seen, &shared.members, close_api, &counts);
                }
            });
        }
    });
    MockNode { addr, seen: node }
}

fn hmac_hex(message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP.2.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn publish(members: &Members, channel: &str, except: Option<u64>, message: &str) {
    let members = members.lock().expect("members");
    for (id, tx) in members.get(channel).into_iter().flatten() {
        if Some(*id) != except {
            let _ = tx.send(message.to_string());
        }
    }
}

fn websocket(stream: TcpStream, id: u64, seen: &Seen, members: &Members, node: &NodeSeen) {
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    node.websockets.fetch_add(1, Relaxed);
    let _ = ws.get_ref().set_read_timeout(Some(Duration::from_millis(2)));
    let socket_id = format!("{id}.{}", id * 7 + 1);
    let (tx, rx) = mpsc::channel::<String>();
    let data = json!({"socket_id": socket_id, "activity_timeout": 120}).to_string();
    let _ = ws.send(Message::text(json!({"event": "pusher:connection_established", "data": data}).to_string()));
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { break };
                let event = v["event"].as_str().unwrap_or_default();
                if event == "pusher:subscribe" {
                    let channel = v["data"]["channel"].as_str().unwrap_or_default().to_string();
                    let expected = format!("{}:{}", APP.1, hmac_hex(&format!("{socket_id}:{channel}")));
                    if channel.starts_with("private-") && v["data"]["auth"].as_str() != Some(expected.as_str()) {
                        seen.bad_auth.fetch_add(1, Relaxed);
                        let error = json!({"event": "pusher:error", "data": {"code": 4009, "message": "bad auth"}});
                        let _ = tx.send(error.to_string());
                        continue;
                    }
                    members.lock().expect("members").entry(channel.clone()).or_default().push((id, tx.clone()));
                    let ok =
                        json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"});
                    let _ = tx.send(ok.to_string());
                } else if event.starts_with("client-") {
                    seen.client_events.fetch_add(1, Relaxed);
                    let channel = v["channel"].as_str().unwrap_or_default();
                    let out = json!({"event": event, "channel": channel, "data": v["data"]}).to_string();
                    publish(members, channel, Some(id), &out);
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        while let Ok(m) = rx.try_recv() {
            if ws.write(Message::text(m)).is_err() {
                break;
            }
        }
        if ws.flush().is_err() {
            break;
        }
    }
    for list in members.lock().expect("members").values_mut() {
        list.retain(|(member, _)| *member != id);
    }
}

fn api(stream: TcpStream, seen: &Seen, members: &Members, close: bool, node: &NodeSeen) {
    let mut out = stream.try_clone().expect("clone");
    let mut input = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if input.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if input.read_exact(&mut body).is_err() {
            return;
        }
        node.api_requests.fetch_add(1, Relaxed);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (signed, signature) = query.rsplit_once("&auth_signature=").unwrap_or((query, ""));
        let md5_ok = signed.contains(&format!("body_md5={}", hex::encode(Md5::digest(&body))));
        let answer = if path != format!("/apps/{}/events", APP.0)
            || !md5_ok
            || signature != hmac_hex(&format!("POST\n{path}\n{signed}"))
        {
            seen.bad_signatures.fetch_add(1, Relaxed);
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        } else {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let channel = v["channel"].as_str().unwrap_or_default();
            let message = json!({"event": v["name"], "channel": channel, "data": v["data"]}).to_string();
            publish(members, channel, None, &message);
            seen.api_events.fetch_add(1, Relaxed);
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        };
        let answer = if close { answer.replacen("\r\n", "\r\nConnection: close\r\n", 1) } else { answer.to_string() };
        if out.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}
