//! Verifies Socket.IO's wire protocol on `/socket.io/` through real sockets,
//! with tungstenite speaking raw Engine.IO packets: the open packet and its
//! timings, heartbeats (answered, and a client that stops answering is
//! closed), Engine.IO's 400s for what is not served, bad input closing only
//! the session that sent it, rooms shared with raw room clients and the
//! HTTP API, byte for byte, and login tokens.

mod http_client;
mod pusher_client;
mod util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fanout::pusher::{App, Apps};
use fanout::service::{Service, ServiceConfig};
use fanout::token::{now_secs, TokenVerifier};
use fanout::{Config, RunningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tungstenite::Message as WsMessage;

use pusher_client::{KEY, SECRET};

const ENDPOINT: &str = "/socket.io/?EIO=4&transport=websocket";

/// A server whose first app (`42`) holds the rooms.
fn start(change: impl FnOnce(&mut Config)) -> RunningServer {
    let service = pusher_client::service(App::new("42", KEY, SECRET), None);
    util::start(util::with_config(util::config(2), change), service)
}

/// The next text message; panics on anything else.
fn text(client: &mut util::Client) -> String {
    match util::next_message(client) {
        WsMessage::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn send(client: &mut util::Client, text: &str) {
    client.send(WsMessage::text(text)).expect("send");
}

/// A session: its socket and its open packet's JSON.
fn open(addr: SocketAddr) -> (util::Client, Value) {
    let mut client = util::connect(addr, ENDPOINT);
    let open = text(&mut client);
    let json = open.strip_prefix('0').unwrap_or_else(|| panic!("not an open packet: {open}"));
    (client, serde_json::from_str(json).expect("the open packet is JSON"))
}

/// A session connected to the main namespace; returns it and its socket id.
fn connected(addr: SocketAddr) -> (util::Client, String) {
    let (mut client, _) = open(addr);
    send(&mut client, "40");
    let answer = text(&mut client);
    let json: Value = serde_json::from_str(answer.strip_prefix("40").expect("a CONNECT answer")).expect("JSON");
    (client, json["sid"].as_str().expect("a sid").to_owned())
}

#[test]
fn the_open_packet_gives_the_session_its_id_and_timings() {
    let server = start(|c| {
        c.ping_interval = Some(Duration::from_millis(5_000));
        c.idle_timeout = Some(Duration::from_millis(12_000));
        c.max_message_size = 64 * 1024;
    });
    let (_client, open) = open(server.local_addr());
    assert_eq!(open["sid"].as_str().map(str::len), Some(20), "{open}");
    assert_eq!(
        (&open["upgrades"], &open["pingInterval"], &open["pingTimeout"], &open["maxPayload"]),
        (&json!([]), &json!(5_000), &json!(7_000), &json!(65_536))
    );
}

#[test]
fn pings_come_every_interval_and_a_session_that_answers_them_stays_open() {
    let server = start(|c| {
        c.ping_interval = Some(Duration::from_millis(200));
        c.idle_timeout = Some(Duration::from_millis(2_000));
    });
    let (mut client, _) = open(server.local_addr());
    // Fifteen pings take three seconds: longer than the idle timeout.
    for _ in 0..15 {
        assert_eq!(text(&mut client), "2");
        send(&mut client, "3");
    }
    send(&mut client, "40");
    let answer = loop {
        match text(&mut client) {
            ping if ping == "2" => send(&mut client, "3"),
            answer => break answer,
        }
    };
    assert!(answer.starts_with("40{\"sid\":"), "{answer}");
}

#[test]
fn a_session_that_stops_answering_pings_is_closed_with_ping_timeout() {
    let server = start(|c| {
        c.ping_interval = Some(Duration::from_millis(100));
        c.idle_timeout = Some(Duration::from_millis(1_000));
    });
    let (mut client, _) = open(server.local_addr());
    send(&mut client, "40");
    let mut pings = 0;
    let close = loop {
        match client.read().expect("read until the close") {
            WsMessage::Text(ping) if ping.as_str() == "2" => pings += 1,
            WsMessage::Close(frame) => break frame.expect("a close code"),
            _ => {}
        }
    };
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1001, "ping timeout"));
    assert!(pings >= 1, "the server pinged before giving up");
    util::wait_until("the session is gone", || server.handle().connection_count() == 0);
}

#[test]
fn what_is_not_served_gets_engine_io_s_400_with_its_json_error() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let refused = [
        ("/socket.io/?EIO=3&transport=websocket", 5),
        ("/socket.io/?transport=websocket", 5),
        ("/socket.io/?EIO=4&transport=polling", 0),
        ("/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", 1),
    ];
    for (path, code) in refused {
        let answer = http_client::Conn::open(addr).exchange(util::upgrade_request(path).as_bytes());
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.header("Content-Type"), Some("application/json"), "{path}");
        let body: Value = serde_json::from_str(answer.text()).expect("a JSON body");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    // A transport Engine.IO does not know, over plain HTTP.
    let poll = b"GET /socket.io/?EIO=4&transport=flash&t=abc HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = http_client::Conn::open(addr).exchange(poll);
    assert_eq!((answer.status, answer.text()), (400, r#"{"code":0,"message":"Transport unknown"}"#));
}

#[test]
fn bad_input_closes_only_the_session_that_sent_it() {
    let server = start(|c| c.max_message_size = 4096);
    let addr = server.local_addr();
    let (mut a, _) = connected(addr);
    let (mut b, _) = connected(addr);
    let cases: [(WsMessage, u16); 10] = [
        (WsMessage::text(""), 1007),
        (WsMessage::text("x"), 1007),
        (WsMessage::text("49"), 1007),
        (WsMessage::text("42[\"message\""), 1007),
        (WsMessage::text("42/admin,[\"message\",\"before CONNECT\"]"), 1008),
        (WsMessage::text("44{\"message\":\"only servers send this\"}"), 1008),
        (WsMessage::text("0{}"), 1008),
        (WsMessage::text("451-[\"file\",{\"_placeholder\":true,\"num\":0}]"), 1003),
        (WsMessage::binary(vec![1, 2, 3]), 1003),
        (WsMessage::text(format!("42[\"message\",\"{}\"]", "x".repeat(5000))), 1009),
    ];
    for (input, code) in cases {
        let what = format!("{input:?}").chars().take(60).collect::<String>();
        let (mut bad, _) = connected(addr);
        bad.send(input).expect("send the bad input");
        assert_eq!(util::expect_close(&mut bad), code, "{what}");
    }
    send(&mut a, r#"42["message","still here"]"#);
    assert_eq!(text(&mut b), r#"42["message","still here"]"#);
    util::wait_until("only the two good sessions are left", || server.handle().connection_count() == 2);
}

#[test]
fn the_client_s_close_packet_ends_the_session_normally() {
    let server = start(|_| {});
    let (mut client, _) = connected(server.local_addr());
    send(&mut client, "1");
    assert_eq!(util::expect_close(&mut client), 1000);
}

#[test]
fn a_room_is_shared_with_raw_room_clients_and_the_http_api_byte_for_byte() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let (mut sio, sid) = connected(addr);
    send(&mut sio, r#"421["join","lobby"]"#);
    assert_eq!(text(&mut sio), "431[]", "the join is acknowledged");
    let mut raw = util::connect(addr, "/chat/lobby");
    assert!(text(&mut raw).contains("welcome"));

    raw.send(WsMessage::text("hello from raw")).expect("send");
    assert_eq!(text(&mut sio), r#"42["message","hello from raw"]"#);

    send(&mut sio, r#"422["to","lobby","hello from socket.io"]"#);
    assert_eq!(text(&mut sio), "432[]");
    assert_eq!(text(&mut raw), "hello from socket.io");

    let (status, _) = pusher_client::trigger(addr, json!({"name": "news", "channel": "lobby", "data": "{\"n\":1}"}));
    assert_eq!(status, 200);
    assert_eq!(text(&mut sio), r#"42["news",{"n":1}]"#);
    assert_eq!(text(&mut raw), r#"{"n":1}"#);

    // The socket's own room is the channel of its id.
    let (status, _) = pusher_client::trigger(addr, json!({"name": "direct", "channel": sid, "data": "hi"}));
    assert_eq!(status, 200);
    assert_eq!(text(&mut sio), r#"42["direct","hi"]"#);
}

#[test]
fn metrics_count_open_sessions() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let _sessions = [open(addr), open(addr)];
    util::wait_until("two sessions counted", || {
        let answer = util::raw_exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        String::from_utf8_lossy(&answer)
            .lines()
            .any(|line| line.starts_with("fanout_socketio_sessions") && line.ends_with(" 2"))
    });
}

#[test]
fn with_login_tokens_a_session_needs_one_for_every_room_and_hears_its_user_s_channel() {
    const SECRET_BYTES: &[u8] = b"the chat's token secret, 32+ bytes long";
    let config = ServiceConfig {
        apps: Apps::single(App::new("42", KEY, SECRET)),
        tokens: Some(Arc::new(TokenVerifier::hs256(SECRET_BYTES).expect("a verifier"))),
        ..ServiceConfig::default()
    };
    let server = util::start(util::config(2), Service::new(config).expect("a service"));
    let addr = server.local_addr();
    let token = |claims: Value| {
        let key = EncodingKey::from_secret(SECRET_BYTES).expect("a key");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("a token")
    };
    let exp = now_secs() + 600;
    let status = |path: &str| {
        let answer = http_client::Conn::open(addr).exchange(util::upgrade_request(path).as_bytes());
        answer.status
    };
    assert_eq!(status(ENDPOINT), 401, "no token");
    let lobby_only = token(json!({"sub": "ada", "exp": exp, "rooms": ["lobby"]}));
    assert_eq!(status(&format!("{ENDPOINT}&token={lobby_only}")), 403, "a token for some rooms only");

    let every_room = token(json!({"sub": "ada", "exp": exp}));
    let mut client = util::connect(addr, &format!("{ENDPOINT}&token={every_room}"));
    assert!(text(&mut client).starts_with("0{"), "the open packet");
    send(&mut client, "40");
    assert!(text(&mut client).starts_with("40{"));
    let (status, _) =
        pusher_client::trigger(addr, json!({"name": "note", "channel": "#server-to-user-ada", "data": "for ada"}));
    assert_eq!(status, 200);
    assert_eq!(text(&mut client), r#"42["note","for ada"]"#);
}
