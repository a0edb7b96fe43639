//! Verifies that a connection's state is built from its upgrade request, seen and changed by `on_message`, and handed back by value to `on_close`, and that `on_upgrade` sees the peer's address and, only behind a trusted proxy, the forwarded client address.

mod util;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use fanout::{
    Accept, CloseInfo, CloseInitiator, ConnId, Handler, Message, Rejection, Request, RunningServer, ServerHandle,
};
use tungstenite::Message as WsMessage;

/// What a connection keeps: who it is and how many messages it sent.
struct Session {
    user: String,
    messages: u32,
}

/// What `on_upgrade` saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    user: String,
    peer: Option<SocketAddr>,
    client_ip: Option<IpAddr>,
}

/// What `on_close` got back: the final state and the close.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Closed {
    user: String,
    messages: u32,
    code: u16,
    initiator: CloseInitiator,
}

/// Counts each user's messages in its state and answers "user:count".
#[derive(Default)]
struct Counter {
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
}

impl Handler for Counter {
    type State = Session;

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<Session>, Rejection> {
        let user = request.query_param("user").ok_or_else(|| Rejection::new(400).body("who are you?\n"))?.into_owned();
        let seen = Seen { user: user.clone(), peer: request.peer_addr(), client_ip: request.client_ip() };
        self.seen.lock().unwrap().push(seen);
        Ok(Accept::new(Session { user, messages: 0 }))
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, state: &mut Session, _message: Message) {
        state.messages += 1;
        server.push(conn, &Message::text(format!("{}:{}", state.user, state.messages)));
    }

    fn on_close(&self, _server: &ServerHandle, _conn: ConnId, state: Session, close: &CloseInfo) {
        let closed =
            Closed { user: state.user, messages: state.messages, code: close.code, initiator: close.initiator };
        self.closed.lock().unwrap().push(closed);
    }
}

/// A server counting messages, and its records of upgrades and closes.
struct Scene {
    server: RunningServer,
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
}

fn scene(trust_proxy: bool) -> Scene {
    let handler = Counter::default();
    let (seen, closed) = (handler.seen.clone(), handler.closed.clone());
    let config = util::with_config(util::config(2), |c| {
        c.trust_proxy = trust_proxy;
    });
    Scene { server: util::start(config, handler), seen, closed }
}

impl Scene {
    /// What `on_upgrade` saw for `user`.
    fn seen(&self, user: &str) -> Seen {
        let seen = self.seen.lock().unwrap();
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.user == user).collect();
        assert_eq!(mine.len(), 1, "{seen:?}");
        mine[0].clone()
    }

    /// Waits for `user`'s `on_close` and returns what it got.
    fn closed(&self, user: &str) -> Closed {
        let mine = || self.closed.lock().unwrap().iter().filter(|c| c.user == user).cloned().collect::<Vec<_>>();
        util::wait_until("on_close", || !mine().is_empty());
        let mine = mine();
        assert_eq!(mine.len(), 1, "on_close ran once: {mine:?}");
        mine[0].clone()
    }
}

/// Sends `n` messages and checks each answer names `user` and the count so far.
fn chat(client: &mut util::Client, user: &str, from: u32, n: u32) {
    for count in from..from + n {
        client.send(WsMessage::text("hi")).expect("send");
        assert_eq!(util::next_message(client), WsMessage::text(format!("{user}:{count}")));
    }
}

/// Upgrades a raw connection with `headers` added; returns it and its local address.
fn raw_upgrade_with(addr: SocketAddr, path: &str, headers: &str) -> (TcpStream, SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    let request = util::upgrade_request(path).replacen("\r\n\r\n", &format!("\r\n{headers}\r\n"), 1);
    stream.write_all(request.as_bytes()).expect("write request");
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let local = stream.local_addr().expect("local address");
    (stream, local)
}

#[test]
fn state_built_in_on_upgrade_is_changed_by_on_message_and_returned_to_on_close() {
    let scene = scene(false);
    let addr = scene.server.local_addr();
    let mut alice = util::connect(addr, "/?user=alice");
    let mut bob = util::connect(addr, "/?user=bob");
    chat(&mut alice, "alice", 1, 2);
    chat(&mut bob, "bob", 1, 1);
    chat(&mut alice, "alice", 3, 1);
    chat(&mut bob, "bob", 2, 1);

    alice.close(None).expect("close");
    while alice.read().is_ok() {}
    let expected = Closed { user: "alice".into(), messages: 3, code: 1005, initiator: CloseInitiator::Client };
    assert_eq!(scene.closed("alice"), expected);
    drop(bob);
    let expected = Closed { user: "bob".into(), messages: 2, code: 1006, initiator: CloseInitiator::Transport };
    assert_eq!(scene.closed("bob"), expected);
}

#[test]
fn an_upgrade_without_the_state_it_needs_is_refused_and_never_closed() {
    let scene = scene(false);
    let answer = util::raw_exchange(scene.server.local_addr(), util::upgrade_request("/").as_bytes());
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{:?}", String::from_utf8_lossy(&answer));
    assert!(answer.ends_with(b"who are you?\n"), "{:?}", String::from_utf8_lossy(&answer));
    assert!(scene.seen.lock().unwrap().is_empty());
    assert!(scene.closed.lock().unwrap().is_empty());
}

#[test]
fn on_upgrade_sees_the_address_of_the_clients_socket() {
    let scene = scene(false);
    let (_stream, local) = raw_upgrade_with(scene.server.local_addr(), "/?user=carol", "");
    let seen = scene.seen("carol");
    assert_eq!(seen.peer, Some(local));
    assert_eq!(seen.client_ip, Some(local.ip()));
}

#[test]
fn behind_a_trusted_proxy_the_client_ip_is_the_first_forwarded_hop() {
    let scene = scene(true);
    let addr = scene.server.local_addr();
    let (_a, local) = raw_upgrade_with(addr, "/?user=dave", "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n");
    let seen = scene.seen("dave");
    assert_eq!(seen.peer, Some(local), "the peer is still the proxy's socket");
    assert_eq!(seen.client_ip, Some("203.0.113.7".parse().unwrap()));
    let (_b, _) = raw_upgrade_with(addr, "/?user=erin", "X-Forwarded-For: [2001:db8::1]:4711\r\n");
    assert_eq!(scene.seen("erin").client_ip, Some("2001:db8::1".parse().unwrap()));
    let (_c, local) = raw_upgrade_with(addr, "/?user=frank", "");
    assert_eq!(scene.seen("frank").client_ip, Some(local.ip()), "no header: the peer's address");
}

#[test]
fn without_trust_proxy_the_client_ip_is_the_peers_even_with_a_forwarded_header() {
    let scene = scene(false);
    let (_stream, local) =
        raw_upgrade_with(scene.server.local_addr(), "/?user=grace", "X-Forwarded-For: 203.0.113.7\r\n");
    let seen = scene.seen("grace");
    assert_eq!(seen.peer, Some(local));
    assert_eq!(seen.client_ip, Some(local.ip()), "the header is not believed");
}
