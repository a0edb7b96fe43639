//! Verifies Engine.IO v4 long-polling on `/socket.io/` through real sockets,
//! with raw HTTP requests: the open packet offering the upgrade, polls
//! answered with what is queued (packets joined by `\x1e`) or held until
//! something comes, posts, the upgrade to a WebSocket (`2probe`, `3probe`,
//! the noop that ends the poll, `5`), and the bad cases: an unknown sid, a
//! second concurrent poll, an oversized or malformed post, a session that
//! stops polling, a full queue, the table's bound, and a session's id
//! disconnected through the server handle; a poll with nothing to answer
//! ends with a noop before the HTTP layer's timeout.

mod http_client;
mod pusher_client;
mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fanout::pusher::App;
use fanout::{Config, RunningServer};
use serde_json::Value;
use tungstenite::Message as WsMessage;

use http_client::{request, request_with_body, Answer, Conn};
use pusher_client::{KEY, SECRET};

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";
const UNKNOWN: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

fn start(change: impl FnOnce(&mut Config)) -> RunningServer {
    let service = pusher_client::service(App::new("42", KEY, SECRET), None);
    util::start(util::with_config(util::config(2), change), service)
}

/// Opens a polling session; returns its sid and open packet.
fn open(addr: SocketAddr) -> (String, Value) {
    let answer = Conn::open(addr).exchange(request("GET", &format!("{POLLING}&t=1"), "").as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let open: Value = serde_json::from_str(answer.text().strip_prefix('0').expect("an open packet")).expect("JSON");
    (open["sid"].as_str().expect("a sid").to_owned(), open)
}

fn poll(conn: &mut Conn, sid: &str) -> Answer {
    conn.exchange(request("GET", &format!("{POLLING}&sid={sid}"), "").as_bytes())
}

fn post(addr: SocketAddr, sid: &str, body: &str) -> Answer {
    Conn::open(addr).exchange(&request_with_body("POST", &format!("{POLLING}&sid={sid}"), body.as_bytes()))
}

/// A session connected to the main namespace.
fn connected(addr: SocketAddr) -> String {
    let (sid, _) = open(addr);
    assert_eq!(post(addr, &sid, "40").text(), "ok");
    let answer = poll(&mut Conn::open(addr), &sid);
    assert!(answer.text().starts_with("40{\"sid\":"), "{}", answer.text());
    sid
}

/// Polls until `want` packets (pings left out) came; returns them.
fn packets(conn: &mut Conn, sid: &str, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + util::PATIENCE;
    while got.len() < want && Instant::now() < deadline {
        let answer = poll(conn, sid);
        assert_eq!(answer.status, 200, "{}", answer.text());
        got.extend(answer.text().split('\x1e').filter(|p| !matches!(*p, "2" | "6")).map(str::to_owned));
    }
    got
}

#[test]
fn a_polling_session_opens_offering_the_websocket_upgrade() {
    let server = start(|c| c.ping_interval = Some(Duration::from_secs(5)));
    let (sid, open) = open(server.local_addr());
    assert_eq!(sid.len(), 20);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]), "{open}");
    assert_eq!(open["pingInterval"], 5000, "{open}");
}

#[test]
fn an_unknown_sid_is_refused_with_session_id_unknown() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let answer = poll(&mut Conn::open(addr), "AAAAAAAAAAAAAAAAAAAA");
    assert_eq!((answer.status, answer.text()), (400, UNKNOWN));
    let answer = post(addr, "AAAAAAAAAAAAAAAAAAAA", "40");
    assert_eq!((answer.status, answer.text()), (400, UNKNOWN));
}

#[test]
fn a_held_poll_is_answered_when_events_come_and_queued_ones_are_joined() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let sid = connected(addr);
    let mut sender = util::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    let _open = util::next_message(&mut sender);
    sender.send(WsMessage::text("40")).expect("send");
    let _connected = util::next_message(&mut sender);
    // A poll held open first: the event ends it.
    let waiting = std::thread::spawn(move || packets(&mut Conn::open(addr), &sid, 1));
    std::thread::sleep(Duration::from_millis(200));
    sender.send(WsMessage::text(r#"42["message","one"]"#)).expect("send");
    let got = waiting.join().expect("the poll");
    assert_eq!(got, [r#"42["message","one"]"#]);
    // Several queued while no poll is held come in one body.
    let sid = connected(addr);
    for n in ["a", "b", "c"] {
        sender.send(WsMessage::text(format!(r#"42["message","{n}"]"#))).expect("send");
    }
    std::thread::sleep(Duration::from_millis(300));
    let answer = poll(&mut Conn::open(addr), &sid);
    assert_eq!(answer.text(), "42[\"message\",\"a\"]\x1e42[\"message\",\"b\"]\x1e42[\"message\",\"c\"]");
}

#[test]
fn a_polling_client_s_events_reach_websocket_clients_and_its_acks_come_back() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let mut listener = util::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    let _open = util::next_message(&mut listener);
    listener.send(WsMessage::text("40")).expect("send");
    let _connected = util::next_message(&mut listener);
    let sid = connected(addr);
    assert_eq!(post(addr, &sid, "421[\"message\",\"hi\"]\x1e42[\"message\",\"again\"]").text(), "ok");
    let mut conn = Conn::open(addr);
    assert_eq!(packets(&mut conn, &sid, 1), ["431[]"]);
    for want in [r#"42["message","hi"]"#, r#"42["message","again"]"#] {
        assert_eq!(util::next_message(&mut listener), WsMessage::text(want));
    }
}

#[test]
fn a_second_concurrent_poll_closes_the_session_with_400() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let (sid, _) = open(addr);
    let held_sid = sid.clone();
    let held = std::thread::spawn(move || poll(&mut Conn::open(addr), &held_sid));
    std::thread::sleep(Duration::from_millis(300));
    let second = poll(&mut Conn::open(addr), &sid);
    assert_eq!(second.status, 400);
    assert_eq!(held.join().expect("the held poll").text(), "1", "the held poll gets the close packet");
    assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN);
}

#[test]
fn an_oversized_post_is_refused_with_413_and_ends_the_session() {
    let server = start(|c| c.max_message_size = 1000);
    let addr = server.local_addr();
    let (sid, open) = open(addr);
    assert_eq!(open["maxPayload"], 1000);
    let big = format!("42[\"message\",\"{}\"]", "x".repeat(2000));
    assert_eq!(post(addr, &sid, &big).status, 413);
    assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN);
}

#[test]
fn malformed_payloads_get_400_and_end_the_session() {
    let server = start(|_| {});
    let addr = server.local_addr();
    for body in ["x", "4", "40\x1e", "42[\"message\""] {
        let sid = connected(addr);
        let answer = post(addr, &sid, body);
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.text());
        assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN, "{body:?}");
    }
}

#[test]
fn a_held_poll_gets_the_server_s_ping_and_the_pong_keeps_the_session() {
    let server = start(|c| {
        c.ping_interval = Some(Duration::from_millis(300));
        c.idle_timeout = Some(Duration::from_millis(900));
    });
    let addr = server.local_addr();
    let (sid, _) = open(addr);
    let mut conn = Conn::open(addr);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let answer = poll(&mut conn, &sid);
        assert_eq!(answer.status, 200, "{}", answer.text());
        if answer.text().split('\x1e').any(|p| p == "2") {
            assert_eq!(post(addr, &sid, "3").text(), "ok");
        }
    }
    assert_eq!(post(addr, &sid, "40").text(), "ok", "still open after several silences' worth");
}

#[test]
fn a_session_that_stops_polling_expires() {
    let server = start(|c| {
        c.ping_interval = Some(Duration::from_millis(200));
        c.idle_timeout = Some(Duration::from_millis(500));
    });
    let addr = server.local_addr();
    let (sid, _) = open(addr);
    assert_eq!(post(addr, &sid, "40").text(), "ok");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN);
    assert_eq!(server.handle().connection_count(), 0, "its slot of the connection budget is back");
}

#[test]
fn the_session_table_is_bounded_by_the_connection_limit() {
    let server = start(|c| c.max_connections = 2);
    let addr = server.local_addr();
    let (first, _) = open(addr);
    let _second = open(addr);
    let refused = Conn::open(addr).exchange(request("GET", POLLING, "").as_bytes());
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(post(addr, &first, "1").text(), "ok", "the client's close packet");
    let (again, _) = open(addr);
    assert_eq!(again.len(), 20);
}

#[test]
fn the_upgrade_moves_the_session_to_a_websocket_without_losing_events() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let mut sender = util::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    let _open = util::next_message(&mut sender);
    sender.send(WsMessage::text("40")).expect("send");
    let _connected = util::next_message(&mut sender);
    let sid = connected(addr);
    let held_sid = sid.clone();
    let held = std::thread::spawn(move || poll(&mut Conn::open(addr), &held_sid));
    std::thread::sleep(Duration::from_millis(200));
    let mut socket = util::connect(addr, &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"));
    socket.send(WsMessage::text("2probe")).expect("send");
    assert_eq!(util::next_message(&mut socket), WsMessage::text("3probe"));
    assert_eq!(held.join().expect("the held poll").text(), "6", "the poll ends with a noop");
    // Sent between the probe and the upgrade: queued, then moved.
    sender.send(WsMessage::text(r#"42["message","between"]"#)).expect("send");
    std::thread::sleep(Duration::from_millis(200));
    socket.send(WsMessage::text("5")).expect("send");
    sender.send(WsMessage::text(r#"42["message","after"]"#)).expect("send");
    assert_eq!(util::next_message(&mut socket), WsMessage::text(r#"42["message","between"]"#));
    assert_eq!(util::next_message(&mut socket), WsMessage::text(r#"42["message","after"]"#));
    // The session's packets now come over the socket.
    socket.send(WsMessage::text(r#"427["message","up"]"#)).expect("send");
    assert_eq!(util::next_message(&mut socket), WsMessage::text("437[]"));
    assert_eq!(util::next_message(&mut sender), WsMessage::text(r#"42["message","up"]"#));
    assert_eq!(poll(&mut Conn::open(addr), &sid).status, 400, "no polling after the upgrade");
}

#[test]
fn a_session_whose_queue_fills_is_closed_rather_than_grown() {
    let server = start(|c| c.max_backpressure = 4096);
    let addr = server.local_addr();
    let mut sender = util::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    let _open = util::next_message(&mut sender);
    sender.send(WsMessage::text("40")).expect("send");
    let _connected = util::next_message(&mut sender);
    let sid = connected(addr);
    let big = format!(r#"42["message","{}"]"#, "x".repeat(500));
    for _ in 0..20 {
        sender.send(WsMessage::text(big.clone())).expect("send");
    }
    let deadline = Instant::now() + util::PATIENCE;
    while poll_status(addr, &sid) == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN, "the session is gone");
}

/// Whether a session still answers (200), without consuming a poll: a post
/// of nothing but a pong.
fn poll_status(addr: SocketAddr, sid: &str) -> u16 {
    post(addr, sid, "3").status
}

#[test]
fn disconnecting_a_polling_session_s_id_ends_the_session() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let sid = connected(addr);
    let handle = server.handle();
    let ids = handle.connections();
    assert_eq!(ids.len(), 1, "the session counts as one connection");
    assert!(handle.disconnect(ids[0], 1000, "bye"));
    util::wait_until("the session to end", || post(addr, &sid, "3").status == 400);
    assert_eq!(poll(&mut Conn::open(addr), &sid).text(), UNKNOWN);
    util::wait_until("its slot to be given back", || handle.connection_count() == 0);
}

#[test]
fn a_poll_with_nothing_to_answer_ends_with_a_noop_before_the_http_timeout() {
    let server = start(|c| c.handshake_timeout = Duration::from_millis(400));
    let addr = server.local_addr();
    let (sid, _) = open(addr);
    let mut conn = Conn::open(addr);
    for _ in 0..3 {
        let started = Instant::now();
        let answer = poll(&mut conn, &sid);
        assert_eq!((answer.status, answer.text()), (200, "6"), "a noop, not a 504");
        assert!(started.elapsed() >= Duration::from_millis(250), "held first: {:?}", started.elapsed());
    }
    let metrics = Conn::open(addr).exchange(request("GET", "/metrics", "").as_bytes());
    assert!(metrics.text().contains("fanout_socketio_polling_sessions{} 1"), "{}", metrics.text());
}
