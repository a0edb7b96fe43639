//! Verifies channel history through real sockets: offsets on live events,
//! recovery after a reconnect (with a gap, with a gap no longer in history,
//! with another epoch), no duplicate and no loss at the seam between the
//! replay and live events while a publisher keeps publishing, the history
//! API, and raw room messages entering the same history.

mod http_client;
mod openmetrics;
mod pusher_client;
mod util;

use std::net::SocketAddr;
use std::thread;

use fanout::history::HistoryConfig;
use fanout::pusher::App;
use fanout::RunningServer;
use pusher_client::{api, connect, data, event, send, subscribe, trigger, KEY, SECRET};
use serde_json::{json, Value};
use tungstenite::Message as WsMessage;

fn start(size: usize) -> RunningServer {
    let history = HistoryConfig { size: Some(size), ttl: None, max_bytes: 16 << 20 };
    let service = pusher_client::service(App::new("42", KEY, SECRET), Some(history));
    util::start(util::config(2), service)
}

fn publish(addr: SocketAddr, channel: &str, n: u64) {
    let (status, body) = trigger(addr, json!({"name": "news", "channel": channel, "data": format!("item {n}")}));
    assert_eq!(status, 200, "{body}");
}

/// Reads the next channel event and returns its data and offset.
fn next_item(client: &mut util::Client) -> (String, u64) {
    let got = event(client);
    assert_eq!(got["event"], "news", "{got}");
    let offset = got["offset"].as_u64().unwrap_or_else(|| panic!("no offset in {got}"));
    (got["data"].as_str().expect("string data").to_owned(), offset)
}

fn resubscribe(client: &mut util::Client, channel: &str, epoch: &str, offset: u64) -> Value {
    send(
        client,
        json!({"event": "pusher:subscribe", "data": {"channel": channel, "since": {"epoch": epoch, "offset": offset}}}),
    );
    event(client)
}

#[test]
fn live_events_carry_offsets_and_a_reconnecting_client_recovers_what_it_missed() {
    let server = start(100);
    let addr = server.local_addr();
    let (mut first, _) = connect(addr);
    let joined = subscribe(&mut first, "room", None, None);
    assert_eq!(joined["event"], "pusher_internal:subscription_succeeded");
    assert!(joined.get("offset").is_none(), "no stream before the first event: {joined}");
    publish(addr, "room", 1);
    let got = event(&mut first);
    assert_eq!((got["offset"].as_u64(), got["data"].as_str()), (Some(1), Some("item 1")));
    let epoch = got["epoch"].as_str().expect("the first event names the epoch").to_owned();
    publish(addr, "room", 2);
    let got = event(&mut first);
    assert_eq!(got["offset"], 2);
    assert!(got.get("epoch").is_none(), "only the first event carries the epoch: {got}");
    drop(first);

    // Three events while away, then back with the last offset seen.
    for n in 3..=5 {
        publish(addr, "room", n);
    }
    let (mut back, _) = connect(addr);
    let joined = resubscribe(&mut back, "room", &epoch, 2);
    assert_eq!(joined["event"], "pusher_internal:subscription_succeeded");
    assert_eq!((joined["epoch"].as_str(), joined["offset"].as_u64()), (Some(epoch.as_str()), Some(5)));
    for n in 3..=5 {
        assert_eq!(next_item(&mut back), (format!("item {n}"), n));
    }
    let marker = event(&mut back);
    assert_eq!((marker["event"].as_str(), marker["channel"].as_str()), (Some("fanout:recovery"), Some("room")));
    assert_eq!(data(&marker), json!({"recovered": true, "epoch": epoch, "offset": 5}));
    publish(addr, "room", 6);
    assert_eq!(next_item(&mut back), ("item 6".to_owned(), 6));
    server.shutdown().unwrap();
}

#[test]
fn a_gap_no_longer_in_history_or_another_epoch_is_not_recovered_and_nothing_partial_is_sent() {
    let server = start(3);
    let addr = server.local_addr();
    let (mut watcher, _) = connect(addr);
    subscribe(&mut watcher, "room", None, None);
    for n in 1..=6 {
        publish(addr, "room", n);
    }
    let epoch = event(&mut watcher)["epoch"].as_str().expect("epoch").to_owned();
    for (round, cause) in ["trimmed", "other epoch", "ahead of the stream"].into_iter().enumerate() {
        let (mut back, _) = connect(addr);
        let (asked_epoch, asked) = match cause {
            "trimmed" => (epoch.as_str(), 1),
            "other epoch" => ("0123456789ab", 5),
            _ => (epoch.as_str(), 99),
        };
        let joined = resubscribe(&mut back, "room", asked_epoch, asked);
        assert_eq!(joined["event"], "pusher_internal:subscription_succeeded", "{cause}");
        let marker = event(&mut back);
        assert_eq!(marker["event"], "fanout:recovery", "{cause}: no event before the marker, got {marker}");
        let top = 6 + round as u64; // each round publishes one more
        assert_eq!(data(&marker), json!({"recovered": false, "epoch": epoch, "offset": top}), "{cause}");
        publish(addr, "room", 7);
        assert_eq!(next_item(&mut back).1, top + 1, "{cause}: live events follow");
    }
    // History keeps 7 to 9 after the three publishes above: since 6 is a full recovery.
    let (mut back, _) = connect(addr);
    resubscribe(&mut back, "room", &epoch, 6);
    assert_eq!((next_item(&mut back).1, next_item(&mut back).1, next_item(&mut back).1), (7, 8, 9));
    assert_eq!(data(&event(&mut back))["recovered"], true);
    server.shutdown().unwrap();
}

#[test]
fn the_seam_between_replay_and_live_events_has_no_duplicate_and_no_gap() {
    const TOTAL: u64 = 1_500;
    let server = start(1_000);
    let addr = server.local_addr();
    let (mut watcher, _) = connect(addr);
    subscribe(&mut watcher, "busy", None, None);
    publish(addr, "busy", 1);
    let epoch = event(&mut watcher)["epoch"].as_str().expect("epoch").to_owned();
    let publisher = thread::spawn(move || {
        for n in 2..=TOTAL {
            publish(addr, "busy", n);
        }
    });
    // Recover from offset 1 while the publisher runs (it has published 20
    // at least): what it has published by then comes as replay, the rest
    // live, each exactly once.
    while event(&mut watcher)["offset"].as_u64() < Some(20) {}
    let (mut back, _) = connect(addr);
    let joined = resubscribe(&mut back, "busy", &epoch, 1);
    let top = joined["offset"].as_u64().expect("the stream's offset");
    let mut expected = 2;
    while expected <= TOTAL {
        let got = event(&mut back);
        if got["event"] == "fanout:recovery" {
            assert_eq!(data(&got)["recovered"], true);
            assert_eq!(expected, top + 1, "the marker comes right after the replay");
            continue;
        }
        assert_eq!(got["offset"].as_u64(), Some(expected), "{got}");
        expected += 1;
    }
    publisher.join().unwrap();
    assert!((20..TOTAL).contains(&top), "the recovery landed mid-stream (top {top}); the test needs it to");
    server.shutdown().unwrap();
}

#[test]
fn the_history_api_lists_the_newest_messages_and_pages_backwards() {
    let server = start(100);
    let addr = server.local_addr();
    for n in 1..=5 {
        publish(addr, "room", n);
    }
    let (status, page) = api(addr, "GET", "/apps/42/channels/room/history", &[("limit", "2")], "");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["offset"], 5);
    let listed: Vec<(u64, String)> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["offset"].as_u64().expect("offset"), m["data"].as_str().expect("data").to_owned()))
        .collect();
    assert_eq!(listed, [(4, "item 4".to_owned()), (5, "item 5".to_owned())]);
    let (_, older) = api(addr, "GET", "/apps/42/channels/room/history", &[("limit", "10"), ("before", "3")], "");
    let offsets: Vec<u64> =
        older["messages"].as_array().expect("messages").iter().filter_map(|m| m["offset"].as_u64()).collect();
    assert_eq!(offsets, [1, 2]);
    let (status, _) = api(addr, "GET", "/apps/42/channels/room/history", &[("limit", "many")], "");
    assert_eq!(status, 400);
    let (status, empty) = api(addr, "GET", "/apps/42/channels/quiet/history", &[], "");
    assert_eq!((status, empty["messages"].as_array().map(Vec::len)), (200, Some(0)));
    server.shutdown().unwrap();
}

#[test]
fn raw_room_messages_enter_the_history_of_the_pusher_channel_of_their_name() {
    let server = start(100);
    let addr = server.local_addr();
    let (mut pusher, _) = connect(addr);
    subscribe(&mut pusher, "lobby", None, None);
    let mut raw = util::connect(addr, "/chat/lobby");
    util::next_message(&mut raw); // the welcome
    let mut other = util::connect(addr, "/chat/lobby");
    util::next_message(&mut other);
    raw.send(WsMessage::text("hello lobby")).unwrap();
    assert_eq!(util::next_message(&mut other), WsMessage::text("hello lobby"));
    let got = event(&mut pusher);
    assert_eq!(
        (got["event"].as_str(), got["data"].as_str(), got["offset"].as_u64()),
        (Some("message"), Some("hello lobby"), Some(1))
    );
    publish(addr, "lobby", 2);
    assert_eq!(util::next_message(&mut raw), WsMessage::text("item 2"));
    let (_, page) = api(addr, "GET", "/apps/42/channels/lobby/history", &[], "");
    assert_eq!(page["messages"][0]["data"], "hello lobby");
    assert_eq!(page["messages"][1]["offset"], 2);
    server.shutdown().unwrap();
}

/// The next text message of a raw client, parsed as JSON.
fn raw_json(client: &mut util::Client) -> Value {
    serde_json::from_str(util::next_message(client).to_text().expect("text")).expect("JSON")
}

#[test]
fn a_raw_room_client_recovers_with_since_and_epoch_in_its_url() {
    let server = start(100);
    let addr = server.local_addr();
    let mut first = util::connect(addr, "/chat/lobby");
    let welcome = raw_json(&mut first);
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome.get("offset").is_none(), "no stream yet: {welcome}");
    for n in 1..=3 {
        publish(addr, "lobby", n);
    }
    for n in 1..=3 {
        assert_eq!(util::next_message(&mut first), WsMessage::text(format!("item {n}")));
    }
    drop(first);
    for n in 4..=5 {
        publish(addr, "lobby", n);
    }
    let (_, page) = api(addr, "GET", "/apps/42/channels/lobby/history", &[("limit", "1")], "");
    let epoch = page["epoch"].as_str().expect("epoch").to_owned();

    let mut back = util::connect(addr, &format!("/chat/lobby?since=3&epoch={epoch}"));
    let welcome = raw_json(&mut back);
    assert_eq!((welcome["type"].as_str(), welcome["offset"].as_u64()), (Some("welcome"), Some(5)));
    assert_eq!(welcome["epoch"], epoch.as_str());
    assert_eq!(util::next_message(&mut back), WsMessage::text("item 4"));
    assert_eq!(util::next_message(&mut back), WsMessage::text("item 5"));
    assert_eq!(raw_json(&mut back), json!({"type": "recovery", "recovered": true, "epoch": epoch, "offset": 5}));
    publish(addr, "lobby", 6);
    assert_eq!(util::next_message(&mut back), WsMessage::text("item 6"));

    let mut lost = util::connect(addr, "/chat/lobby?since=3&epoch=elsewhere");
    raw_json(&mut lost);
    assert_eq!(raw_json(&mut lost)["recovered"], false, "nothing replayed, the marker at once");
    for bad in
        ["/chat/lobby?since=3", "/chat/lobby?epoch=x", "/chat/lobby?since=-1&epoch=x", "/chat/lobby?since=1&epoch="]
    {
        let answer = util::raw_exchange(addr, util::upgrade_request(bad).as_bytes());
        assert!(answer.starts_with(b"HTTP/1.1 400"), "{bad}: {}", String::from_utf8_lossy(&answer));
    }
    server.shutdown().unwrap();
}

#[test]
fn without_history_events_carry_no_offset_and_the_history_api_says_so() {
    let service = pusher_client::service(App::new("42", KEY, SECRET), None);
    let server = util::start(util::config(1), service);
    let addr = server.local_addr();
    let (mut client, _) = connect(addr);
    subscribe(&mut client, "room", None, None);
    publish(addr, "room", 1);
    assert!(event(&mut client).get("offset").is_none());
    let (status, body) = api(addr, "GET", "/apps/42/channels/room/history", &[], "");
    assert_eq!(status, 404, "{body}");
    server.shutdown().unwrap();
}

#[test]
fn metrics_count_what_history_holds_and_dropped() {
    let server = start(3);
    let addr = server.local_addr();
    for n in 1..=5 {
        publish(addr, "room", n);
    }
    publish(addr, "other", 1);
    let request = http_client::request("GET", "/metrics", "Connection: close\r\n");
    let scrape = http_client::exchange_and_close(addr, request.as_bytes());
    let Some(python) = openmetrics::python() else { return };
    let parsed = openmetrics::parse(&python, scrape.text());
    let value = |name: &str| parsed.value(name, "");
    assert_eq!(value("fanout_history_channels"), 2.0);
    assert_eq!(value("fanout_history_messages"), 4.0);
    assert_eq!(value("fanout_history_trimmed_total"), 2.0);
    assert_eq!(value("fanout_history_evicted_total"), 0.0);
    assert_eq!(value("fanout_history_refused_total"), 0.0);
    // Four events of 15 bytes (a 5-byte header, name and data) plus 128
    // each, and two channels ("42:room", "42:other") of 128 plus their names.
    assert_eq!(value("fanout_history_bytes"), (4 * (15 + 128) + (128 + 7) + (128 + 8)) as f64);
    server.shutdown().unwrap();
}

#[test]
fn cache_channels_replay_their_last_event_on_subscribe_or_say_cache_miss_without_history_flags() {
    let service = pusher_client::service(App::new("42", KEY, SECRET), None);
    let server = util::start(util::config(2), service);
    let addr = server.local_addr();
    let (mut first, _) = connect(addr);
    assert_eq!(subscribe(&mut first, "cache-prices", None, None)["event"], "pusher_internal:subscription_succeeded");
    let miss = event(&mut first);
    assert_eq!((miss["event"].as_str(), miss["channel"].as_str()), (Some("pusher:cache_miss"), Some("cache-prices")));
    for n in 1..=2 {
        publish(addr, "cache-prices", n);
        assert_eq!(next_item(&mut first), (format!("item {n}"), n));
    }
    let (mut late, _) = connect(addr);
    assert_eq!(subscribe(&mut late, "cache-prices", None, None)["offset"], 2);
    assert_eq!(next_item(&mut late), ("item 2".to_owned(), 2), "the last event, at once");
    publish(addr, "cache-prices", 3);
    assert_eq!(next_item(&mut late).1, 3);
    // Other channels keep nothing without the history flags.
    subscribe(&mut late, "plain", None, None);
    publish(addr, "plain", 1);
    assert!(event(&mut late).get("offset").is_none());
    server.shutdown().unwrap();
}

#[test]
fn an_app_s_history_channels_narrow_history_to_their_prefixes_but_cache_channels_keep_their_last_event() {
    let mut app = App::new("42", KEY, SECRET);
    app.history_channels = Some(vec!["chat-".to_owned()]);
    let history = HistoryConfig { size: Some(10), ttl: None, max_bytes: 1 << 20 };
    let service = pusher_client::service(app, Some(history));
    let server = util::start(util::config(1), service);
    let addr = server.local_addr();
    let (mut client, _) = connect(addr);
    for channel in ["chat-lobby", "chat", "news"] {
        subscribe(&mut client, channel, None, None);
        publish(addr, channel, 1);
        let got = event(&mut client);
        assert_eq!(got["offset"].as_u64(), (channel == "chat-lobby").then_some(1), "{channel}: {got}");
    }
    let (status, _) = api(addr, "GET", "/apps/42/channels/news/history", &[], "");
    assert_eq!(status, 404, "news keeps no history");
    assert_eq!(subscribe(&mut client, "cache-x", None, None)["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(event(&mut client)["event"], "pusher:cache_miss", "cache channels keep their last event anyway");
    server.shutdown().unwrap();
}
