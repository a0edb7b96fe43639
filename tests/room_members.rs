//! Named room members and recent history on raw rooms, through real
//! sockets against the service the `fanout` binary runs: `?name=` lists and
//! announces members once per name (not per tab) and only to named
//! members, plain clients receive nothing new, `?history=N` replays the
//! room's last messages with no gap or duplicate at the seam, a named
//! member learns the epoch of a stream that begins after its welcome and
//! recovers with it, tokens name their members, bad queries get 400, the
//! roster channel stays out of the app's channels, and `GET /` is the page.

mod pusher_client;
mod util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use fanout::history::HistoryConfig;
use fanout::pusher::{App, Apps};
use fanout::service::{Service, ServiceConfig};
use fanout::token::TokenVerifier;
use fanout::RunningServer;
use pusher_client::{api, KEY, SECRET};
use serde_json::{json, Value};
use tungstenite::Message as WsMessage;

fn start(history: Option<usize>) -> RunningServer {
    let history = history.map(|size| HistoryConfig { size: Some(size), ttl: None, max_bytes: 16 << 20 });
    util::start(util::config(2), pusher_client::service(App::new("42", KEY, SECRET), history))
}

/// The next text message, parsed as JSON (`Null` when it is not JSON).
fn json(client: &mut util::Client) -> Value {
    serde_json::from_str(util::next_message(client).to_text().expect("text")).unwrap_or(Value::Null)
}

/// Joins `path` and returns the client with its welcome.
fn join(addr: SocketAddr, path: &str) -> (util::Client, Value) {
    let mut client = util::connect(addr, path);
    let welcome = json(&mut client);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (client, welcome)
}

fn say(client: &mut util::Client, text: &str) {
    client.send(WsMessage::text(text)).expect("send");
}

fn text(client: &mut util::Client) -> String {
    util::next_message(client).into_text().expect("text").to_string()
}

/// Waits until `channel` has `n` members: without history a room client
/// may get its welcome a moment before its membership is in place.
fn wait_for_members(server: &RunningServer, channel: &str, n: usize) {
    util::wait_until(&format!("{n} members in {channel}"), || server.handle().subscription_count(channel) == n);
}

/// The upgrade's status line for `path`.
fn upgrade_status(addr: SocketAddr, path: &str) -> String {
    let answer = util::raw_exchange(addr, util::upgrade_request(path).as_bytes());
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn named_members_are_listed_and_announced_once_per_name() {
    let server = start(Some(100));
    let addr = server.local_addr();
    let (mut ada, welcome) = join(addr, "/chat/lobby?name=Ada");
    assert_eq!((welcome["name"].clone(), welcome["members"].clone()), (json!("Ada"), json!(["Ada"])));
    let (mut bob, welcome) = join(addr, "/chat/lobby?name=Bob%20B.");
    assert_eq!(welcome["members"], json!(["Ada", "Bob B."]));
    assert_eq!(json(&mut ada), json!({"type": "presence", "joined": "Bob B."}));

    // Bob's second tab is listed once and announced to no one.
    let (mut bob_tab, welcome) = join(addr, "/chat/lobby?name=Bob%20B.");
    assert_eq!(welcome["members"], json!(["Ada", "Bob B."]));
    // Named members get their own lines back; the next thing Ada gets is
    // this line, so nothing was announced before it.
    say(&mut bob_tab, "from the second tab");
    assert_eq!(text(&mut bob_tab), "from the second tab");
    assert_eq!(text(&mut ada), "from the second tab");
    assert_eq!(text(&mut bob), "from the second tab");
    // The room's first message began its stream: named members hear its epoch.
    for client in [&mut ada, &mut bob_tab] {
        assert_eq!(json(client)["type"], "stream");
    }

    // One tab leaving says nothing; the last one does.
    bob.close(None).expect("close");
    say(&mut ada, "still here");
    assert_eq!(text(&mut ada), "still here");
    assert_eq!(text(&mut bob_tab), "still here");
    drop(bob_tab);
    assert_eq!(json(&mut ada), json!({"type": "presence", "left": "Bob B."}));

    // Another room is another list.
    let (_cleo, welcome) = join(addr, "/chat/elsewhere?name=Cleo");
    assert_eq!(welcome["members"], json!(["Cleo"]));
    server.shutdown().unwrap();
}

#[test]
fn a_member_s_list_always_agrees_with_the_room_while_others_come_and_go() {
    let server = start(None);
    let addr = server.local_addr();
    let (mut watcher, welcome) = join(addr, "/chat/lobby?name=watcher");
    let mut seen: std::collections::BTreeSet<String> =
        welcome["members"].as_array().expect("members").iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    // Four threads on both workers open and drop tabs of six shared names;
    // some stay open.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..30 {
                    let (client, _) = join(addr, &format!("/chat/lobby?name=n{}", (t + i) % 6));
                    if i % 4 == 0 {
                        kept.push(client);
                    }
                }
                kept
            })
        })
        .collect();
    let kept: Vec<_> = threads.into_iter().flat_map(|t| t.join().expect("a thread")).collect();
    // A newcomer's welcome is the room at the moment it joined; the watcher
    // has heard everything before that once it hears of the newcomer.
    let (_late, welcome) = join(addr, "/chat/lobby?name=late");
    loop {
        let event = json(&mut watcher);
        match (event["joined"].as_str(), event["left"].as_str()) {
            (Some("late"), _) => break,
            (Some(name), _) => assert!(seen.insert(name.to_owned()), "{name} announced twice"),
            (_, Some(name)) => assert!(seen.remove(name), "{name} left without having joined"),
            _ => panic!("unexpected {event}"),
        }
    }
    seen.insert("late".to_owned());
    let listed: std::collections::BTreeSet<String> =
        welcome["members"].as_array().expect("members").iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, listed);
    assert!(kept.len() == 32 && listed.len() >= 2);
    server.shutdown().unwrap();
}

#[test]
fn plain_clients_receive_nothing_new() {
    let server = start(None);
    let addr = server.local_addr();
    let (mut plain, welcome) = join(addr, "/chat/lobby");
    assert!(welcome.get("members").is_none() && welcome.get("name").is_none(), "{welcome}");
    let (mut ada, _) = join(addr, "/chat/lobby?name=Ada");
    let (bob, _) = join(addr, "/chat/lobby?name=Bob");
    assert_eq!(json(&mut ada)["joined"], "Bob");
    drop(bob);
    assert_eq!(json(&mut ada)["left"], "Bob");
    wait_for_members(&server, "42:lobby", 2);
    // The first thing the plain client gets is Ada's line: no presence, and
    // its own line does not come back to it.
    say(&mut ada, "hello");
    assert_eq!(text(&mut plain), "hello");
    say(&mut plain, "hi");
    assert_eq!(text(&mut ada), "hello", "Ada's own line first");
    assert_eq!(text(&mut ada), "hi");
    server.handle().publish("42:lobby", &fanout::Message::text("from the server"));
    assert_eq!(text(&mut plain), "from the server", "its own line never came back");
    server.shutdown().unwrap();
}

#[test]
fn recent_history_comes_between_the_welcome_and_live_messages() {
    let server = start(Some(100));
    let addr = server.local_addr();
    let (mut talker, _) = join(addr, "/chat/lobby");
    let (mut witness, _) = join(addr, "/chat/lobby");
    for n in 1..=5 {
        say(&mut talker, &format!("line {n}"));
    }
    // Once the witness has all five, history has them too.
    for n in 1..=5 {
        assert_eq!(text(&mut witness), format!("line {n}"));
    }
    let (mut late, welcome) = join(addr, "/chat/lobby?history=3");
    let epoch = welcome["epoch"].as_str().expect("a stream exists").to_owned();
    assert_eq!(welcome["offset"], 5);
    for n in 3..=5 {
        assert_eq!(text(&mut late), format!("line {n}"));
    }
    assert_eq!(json(&mut late), json!({"type": "history", "count": 3, "epoch": epoch, "offset": 5}));
    say(&mut talker, "line 6");
    assert_eq!(text(&mut late), "line 6");

    // A room without messages: only the marker.
    let (mut quiet, welcome) = join(addr, "/chat/quiet?history=10");
    assert!(welcome.get("epoch").is_none());
    assert_eq!(json(&mut quiet), json!({"type": "history", "count": 0}));
    for bad in ["0", "101", "x"] {
        let status = upgrade_status(addr, &format!("/chat/lobby?history={bad}"));
        assert!(status.contains(" 400 "), "history={bad}: {status}");
    }
    server.shutdown().unwrap();
}

#[test]
fn without_history_on_the_server_a_history_request_gets_its_marker_only() {
    let server = start(None);
    let addr = server.local_addr();
    let (mut talker, _) = join(addr, "/chat/lobby");
    let (mut witness, _) = join(addr, "/chat/lobby");
    wait_for_members(&server, "42:lobby", 2);
    say(&mut talker, "not kept");
    assert_eq!(text(&mut witness), "not kept", "said before the others join");
    let mut clients = Vec::new();
    for path in ["/chat/lobby?history=5", "/chat/lobby?history=5&name=Ada"] {
        let (mut client, welcome) = join(addr, path);
        assert!(welcome.get("epoch").is_none(), "{welcome}");
        assert_eq!(json(&mut client), json!({"type": "history", "count": 0}), "{path}");
        wait_for_members(&server, "42:lobby", 3 + clients.len());
        say(&mut talker, "live");
        assert_eq!(text(&mut client), "live", "{path}");
        clients.push(client);
    }
    server.shutdown().unwrap();
}

#[test]
fn no_message_is_lost_or_doubled_between_history_and_live() {
    const LINES: u64 = 400;
    let server = start(Some(1_000));
    let addr = server.local_addr();
    let (mut talker, _) = join(addr, "/chat/lobby");
    let publisher = thread::spawn(move || {
        for n in 1..=LINES {
            say(&mut talker, &n.to_string());
        }
        talker
    });
    for _ in 0..5 {
        let (mut joiner, welcome) = join(addr, "/chat/lobby?history=100");
        let mut replayed = Vec::new();
        let marker = loop {
            let got = text(&mut joiner);
            match got.parse::<u64>() {
                Ok(n) => replayed.push(n),
                Err(_) => break serde_json::from_str::<Value>(&got).expect("the marker"),
            }
        };
        assert_eq!(marker["count"], replayed.len(), "{marker}");
        assert_eq!(marker["offset"], welcome["offset"]);
        let top = welcome["offset"].as_u64().unwrap_or(0);
        let first = replayed.first().copied().unwrap_or(top + 1);
        assert_eq!(replayed, (first..=top).collect::<Vec<_>>(), "the newest, in order");
        assert!(replayed.len() == 100 || first == 1, "as many as asked or all there were");
        // Live from the next one on, until the last line.
        let mut next = top + 1;
        while next <= LINES {
            assert_eq!(text(&mut joiner), next.to_string(), "after {top} replayed");
            next += 1;
        }
    }
    drop(publisher.join().expect("publisher"));
    server.shutdown().unwrap();
}

#[test]
fn a_named_member_learns_the_epoch_of_a_stream_begun_after_its_welcome() {
    let server = start(Some(100));
    let addr = server.local_addr();
    let (mut plain, _) = join(addr, "/chat/lobby");
    let (mut witness, _) = join(addr, "/chat/lobby");
    let (mut ada, welcome) = join(addr, "/chat/lobby?name=Ada");
    assert!(welcome.get("epoch").is_none(), "no stream yet: {welcome}");
    say(&mut plain, "first");
    assert_eq!(text(&mut ada), "first");
    let notice = json(&mut ada);
    assert_eq!(notice["type"], "stream", "{notice}");
    let epoch = notice["epoch"].as_str().expect("an epoch").to_owned();
    say(&mut plain, "second");
    assert_eq!(text(&mut ada), "second", "one notice per stream");
    say(&mut ada, "from Ada");
    assert_eq!(text(&mut ada), "from Ada");
    assert_eq!(text(&mut plain), "from Ada");
    drop(ada);

    // Ada counted three lines (her own included) and comes back with them.
    say(&mut plain, "while away");
    for line in ["first", "second", "from Ada", "while away"] {
        assert_eq!(text(&mut witness), line, "plain members never see the notice");
    }
    let (mut back, welcome) = join(addr, &format!("/chat/lobby?name=Ada&since=3&epoch={epoch}"));
    assert_eq!((welcome["offset"].as_u64(), welcome["epoch"].as_str()), (Some(4), Some(epoch.as_str())));
    assert_eq!(text(&mut back), "while away");
    assert_eq!(json(&mut back), json!({"type": "recovery", "recovered": true, "epoch": epoch, "offset": 4}));
    server.shutdown().unwrap();
}

#[test]
fn bad_names_are_refused_before_the_upgrade() {
    let server = start(None);
    let addr = server.local_addr();
    let long = "x".repeat(41);
    for bad in ["", long.as_str(), "a%0Ab", "%07"] {
        let status = upgrade_status(addr, &format!("/chat/lobby?name={bad}"));
        assert!(status.contains(" 400 "), "name={bad:?}: {status}");
    }
    let forty = "é".repeat(40);
    let (_client, welcome) = join(addr, &format!("/chat/lobby?name={}", forty.replace('é', "%C3%A9")));
    assert_eq!(welcome["name"], forty.as_str());
    server.shutdown().unwrap();
}

#[test]
fn with_tokens_a_member_is_named_by_its_token() {
    const SECRET_BYTES: &[u8] = b"the chat's token secret, 32+ bytes long";
    let config = ServiceConfig {
        apps: Apps::single(App::new("42", KEY, SECRET)),
        tokens: Some(Arc::new(TokenVerifier::hs256(SECRET_BYTES).unwrap())),
        ..ServiceConfig::default()
    };
    let server = util::start(util::config(2), Service::new(config).unwrap());
    let addr = server.local_addr();
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET_BYTES).unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let token = |sub: &str| jsonwebtoken::encode(&header, &json!({"sub": sub}), &key).unwrap();
    let (_ada, welcome) = join(addr, &format!("/chat/lobby?name=Mallory&token={}", token("ada")));
    assert_eq!((welcome["name"].clone(), welcome["members"].clone()), (json!("ada"), json!(["ada"])));
    let (_plain, welcome) = join(addr, &format!("/chat/lobby?token={}", token("bob")));
    assert!(welcome.get("members").is_none(), "named only when asked: {welcome}");
    let status = upgrade_status(addr, &format!("/chat/lobby?name=x&token={}", token(&"x".repeat(41))));
    assert!(status.contains(" 400 "), "{status}");
    server.shutdown().unwrap();
}

#[test]
fn the_roster_is_not_one_of_the_app_s_channels() {
    let server = start(None);
    let addr = server.local_addr();
    let (_ada, _) = join(addr, "/chat/lobby?name=Ada");
    util::wait_until("the roster joined", || server.handle().subscription_count("42:lobby roster") == 1);
    let (status, body) = api(addr, "GET", "/apps/42/channels", &[], "");
    assert_eq!((status, body), (200, json!({"channels": {"lobby": {}}})));
    server.shutdown().unwrap();
}

#[test]
fn the_root_serves_the_page_and_an_upgrade_there_joins_the_default_room() {
    let server = start(None);
    let addr = server.local_addr();
    let answer = util::raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Content-Type: text/html; charset=utf-8") && answer.contains("<title>fanout chat</title>"));
    let (mut root, _) = join(addr, "/");
    let (mut default, _) = join(addr, "/chat/default?name=Ada");
    wait_for_members(&server, "42:default", 2);
    say(&mut root, "from the root");
    assert_eq!(text(&mut default), "from the root");
    server.shutdown().unwrap();
}
