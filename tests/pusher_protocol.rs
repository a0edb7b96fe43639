//! Verifies the Pusher protocol on `/app/{key}` and the signed HTTP API
//! through real sockets: the handshake, ping, public, private and presence
//! subscriptions, client events, API publishes with `socket_id` exclusion,
//! refusals with the protocol's codes (4201 for a silent client), the
//! Pusher figures of `/metrics` as a real OpenMetrics parser reads them, and
//! that a raw room and the Pusher channel of its name are one audience.

mod http_client;
mod openmetrics;
mod pusher_client;
mod util;
mod webhook_sink;

use fanout::pusher::{auth, App, WebhookTarget};
use fanout::RunningServer;
use serde_json::json;
use tungstenite::Message as WsMessage;

use pusher_client::{api, connect, data, event, send, subscribe, trigger, KEY, SECRET};

fn start(client_events: bool) -> RunningServer {
    let mut app = App::new("42", KEY, SECRET);
    app.client_events = client_events;
    app.limits.max_presence_members = 2;
    let service = pusher_client::service(app, None);
    util::start(util::config(2), service)
}

#[test]
fn public_channels_receive_api_events_except_the_excluded_socket() {
    let server = start(false);
    let addr = server.local_addr();
    let (mut a, a_id) = connect(addr);
    let (mut b, _) = connect(addr);
    for client in [&mut a, &mut b] {
        let ok = subscribe(client, "news", None, None);
        assert_eq!(
            (ok["event"].as_str(), ok["channel"].as_str()),
            (Some("pusher_internal:subscription_succeeded"), Some("news"))
        );
    }
    send(&mut a, json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(event(&mut a)["event"], "pusher:pong");
    assert_eq!(trigger(addr, json!({"name": "headline", "channel": "news", "data": "{\"n\":1}"})).0, 200);
    for client in [&mut a, &mut b] {
        let got = event(client);
        assert_eq!(
            (got["event"].as_str(), got["channel"].as_str(), got["data"].as_str()),
            (Some("headline"), Some("news"), Some("{\"n\":1}"))
        );
    }
    let (status, _) =
        trigger(addr, json!({"name": "second", "channels": ["news", "other"], "data": "x", "socket_id": a_id}));
    assert_eq!(status, 200);
    assert_eq!(event(&mut b)["event"], "second");
    assert_eq!(trigger(addr, json!({"name": "third", "channel": "news", "data": "y"})).0, 200);
    assert_eq!(event(&mut a)["event"], "third", "the excluded socket skipped 'second'");
    let (status, info) = api(addr, "GET", "/apps/42/channels/news", &[("info", "subscription_count")], "");
    assert_eq!((status, &info["occupied"], &info["subscription_count"]), (200, &json!(true), &json!(2)));
    let (status, list) = api(addr, "GET", "/apps/42/channels", &[], "");
    assert_eq!((status, list["channels"].as_object().map(|c| c.contains_key("news"))), (200, Some(true)));
    server.shutdown().unwrap();
}

#[test]
fn private_channels_need_a_valid_signature() {
    let server = start(true);
    let (mut a, a_id) = connect(server.local_addr());
    let (mut b, b_id) = connect(server.local_addr());
    let refused = subscribe(&mut a, "private-x", Some(format!("{KEY}:{}", "0".repeat(64))), None);
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(data(&refused)["status"], 401);
    let refused = subscribe(&mut a, "private-x", None, None);
    assert_eq!(data(&refused)["status"], 401);
    for (client, id) in [(&mut a, &a_id), (&mut b, &b_id)] {
        let signed = auth::channel_auth_string(KEY, SECRET, id, "private-x", None);
        assert_eq!(
            subscribe(client, "private-x", Some(signed), None)["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    send(&mut a, json!({"event": "client-typing", "channel": "private-x", "data": {"who": "a"}}));
    let got = event(&mut b);
    assert_eq!((got["event"].as_str(), &got["data"]), (Some("client-typing"), &json!({"who": "a"})));
    // Not echoed: a's next event is the answer to its own ping.
    send(&mut a, json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(event(&mut a)["event"], "pusher:pong");
    // Client events on a public channel are refused.
    subscribe(&mut a, "public", None, None);
    send(&mut a, json!({"event": "client-x", "channel": "public", "data": {}}));
    assert_eq!(event(&mut a)["event"], "pusher:error");
    server.shutdown().unwrap();
}

#[test]
fn presence_members_are_announced_once_per_user() {
    let server = start(true);
    let addr = server.local_addr();
    let join = |client: &mut util::Client, id: &str, user: &str| {
        let channel_data = json!({"user_id": user, "user_info": {"name": user}}).to_string();
        let signed = auth::channel_auth_string(KEY, SECRET, id, "presence-room", Some(&channel_data));
        subscribe(client, "presence-room", Some(signed), Some(&channel_data))
    };
    let (mut tab1, id1) = connect(addr);
    let (mut tab2, id2) = connect(addr);
    let (mut other, id3) = connect(addr);
    let first = join(&mut tab1, &id1, "1");
    assert_eq!(data(&first)["presence"]["count"], 1);
    let second = join(&mut tab2, &id2, "1");
    assert_eq!(data(&second)["presence"]["ids"], json!(["1"]), "a second tab is the same member");
    let third = join(&mut other, &id3, "2");
    assert_eq!(data(&third)["presence"]["count"], 2);
    assert_eq!(data(&third)["presence"]["hash"]["1"], json!({"name": "1"}));
    for tab in [&mut tab1, &mut tab2] {
        let added = event(tab);
        assert_eq!(
            (added["event"].as_str(), data(&added)["user_id"].as_str()),
            (Some("pusher_internal:member_added"), Some("2"))
        );
    }
    let (status, users) = api(addr, "GET", "/apps/42/channels/presence-room/users", &[], "");
    assert_eq!((status, users["users"].as_array().map(Vec::len)), (200, Some(2)));
    // A third user does not fit (the test app allows two).
    let (mut late, late_id) = connect(addr);
    assert_eq!(data(&join(&mut late, &late_id, "3"))["status"], 403);
    // Client events on presence channels carry the sender's user id.
    send(&mut other, json!({"event": "client-wave", "channel": "presence-room", "data": {}}));
    assert_eq!(event(&mut tab1)["user_id"], "2");
    assert_eq!(event(&mut tab2)["user_id"], "2");
    // One tab leaving says nothing; the last one says member_removed.
    drop(tab1);
    send(&mut tab2, json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}));
    let removed = event(&mut other);
    assert_eq!(
        (removed["event"].as_str(), data(&removed)["user_id"].as_str()),
        (Some("pusher_internal:member_removed"), Some("1"))
    );
    server.shutdown().unwrap();
}

#[test]
fn unknown_keys_and_versions_are_closed_with_the_protocol_codes() {
    let server = start(false);
    let mut stranger = util::connect(server.local_addr(), "/app/nobody?protocol=7");
    assert_eq!(data(&event(&mut stranger))["code"], 4001);
    assert_eq!(util::expect_close(&mut stranger), 4001);
    let mut old = util::connect(server.local_addr(), &format!("/app/{KEY}?protocol=2"));
    assert_eq!(data(&event(&mut old))["code"], 4007);
    assert_eq!(util::expect_close(&mut old), 4007);
    let (status, _) = api(server.local_addr(), "POST", "/apps/43/events", &[], "{}");
    assert_eq!(status, 404);
    server.shutdown().unwrap();
}

#[test]
fn a_silent_pusher_client_is_closed_with_4201_and_a_silent_room_client_with_1001() {
    let app = App::new("42", KEY, SECRET);
    let service = pusher_client::service(app, None);
    let config = util::with_config(util::config(1), |c| c.idle_timeout = Some(std::time::Duration::from_millis(300)));
    let server = util::start(config, service);
    // Neither client sends anything (pings are off, so reading sends no pong).
    let (mut pusher, _) = connect(server.local_addr());
    let mut room = util::connect(server.local_addr(), "/chat/lobby");
    assert_eq!(util::expect_close(&mut pusher), 4201);
    assert_eq!(util::expect_close(&mut room), 1001);
    assert_eq!(server.handle().stats().idle_timeouts, 2);
    server.shutdown().unwrap();
}

#[test]
fn a_raw_room_and_the_pusher_channel_of_its_name_are_one_audience() {
    let server = start(false);
    let addr = server.local_addr();
    let mut raw = util::connect(addr, "/chat/lobby");
    assert!(util::next_message(&mut raw).into_text().expect("welcome").contains("welcome"));
    let (mut pusher, _) = connect(addr);
    subscribe(&mut pusher, "lobby", None, None);
    util::wait_until("both in the room", || server.handle().channels("").iter().any(|c| c.subscriptions == 2));
    assert_eq!(trigger(addr, json!({"name": "notice", "channel": "lobby", "data": "hello room"})).0, 200);
    assert_eq!(util::next_message(&mut raw), WsMessage::text("hello room"));
    assert_eq!(event(&mut pusher)["data"], "hello room");
    raw.send(WsMessage::text("from the raw side")).unwrap();
    let got = event(&mut pusher);
    assert_eq!((got["event"].as_str(), got["data"].as_str()), (Some("message"), Some("from the raw side")));
    server.shutdown().unwrap();
}

#[test]
fn api_requests_with_bad_signatures_are_refused() {
    let server = start(false);
    let addr = server.local_addr();
    let body = json!({"name": "x", "channel": "c", "data": "d"}).to_string();
    let request = format!(
        "POST /apps/42/events?auth_key={KEY}&auth_timestamp=1&auth_version=1.0&auth_signature=00 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = String::from_utf8_lossy(&util::raw_exchange(addr, request.as_bytes())).into_owned();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    let (status, _) = trigger(addr, json!({"name": "x", "channel": "bad channel!", "data": "d"}));
    assert_eq!(status, 400);
    let (status, _) = trigger(addr, json!({"name": "x", "channel": "c", "data": "d".repeat(20_000)}));
    assert_eq!(status, 413);
    server.shutdown().unwrap();
}

#[test]
fn metrics_count_apps_channels_members_api_requests_client_events_and_webhooks() {
    let (url, posts) = webhook_sink::start();
    let mut app = App::new("42", KEY, SECRET);
    app.client_events = true;
    app.webhooks = vec![WebhookTarget { url, events: Vec::new() }];
    let service = pusher_client::service(app, None);
    let server = util::start(util::config(2), service);
    let addr = server.local_addr();
    let (mut a, a_id) = connect(addr);
    let (mut b, b_id) = connect(addr);
    for (client, id, user) in [(&mut a, &a_id, "1"), (&mut b, &b_id, "2")] {
        let channel_data = json!({"user_id": user}).to_string();
        let signed = auth::channel_auth_string(KEY, SECRET, id, "presence-room", Some(&channel_data));
        let joined = subscribe(client, "presence-room", Some(signed), Some(&channel_data));
        assert_eq!(joined["event"], "pusher_internal:subscription_succeeded");
    }
    assert_eq!(event(&mut a)["event"], "pusher_internal:member_added");
    assert_eq!(subscribe(&mut a, "news", None, None)["event"], "pusher_internal:subscription_succeeded");
    send(&mut a, json!({"event": "client-wave", "channel": "presence-room", "data": {}}));
    assert_eq!(event(&mut b)["event"], "client-wave");
    assert_eq!(trigger(addr, json!({"name": "headline", "channel": "news", "data": "x"})).0, 200);
    assert_eq!(event(&mut a)["event"], "headline");
    assert_eq!(trigger(addr, json!({"name": "headline"})).0, 400);
    // Two channels occupied, a member added twice, a client event: webhooks.
    util::wait_until("a webhook post", || !posts.lock().expect("bodies").is_empty());

    let scrape = || {
        let request = http_client::request("GET", "/metrics", "Connection: close\r\n");
        http_client::exchange_and_close(addr, request.as_bytes()).text().to_owned()
    };
    // The post is counted once its answer is read, just after the receiver saw it.
    util::wait_until("the post to be counted", || !scrape().contains("fanout_webhook_posts_total 0\n"));
    let Some(python) = openmetrics::python() else { return };
    let parsed = openmetrics::parse(&python, &scrape());
    for (family, kind) in [
        ("fanout_app_connections", "gauge"),
        ("fanout_app_channels", "gauge"),
        ("fanout_app_subscriptions", "gauge"),
        ("fanout_app_presence_members", "gauge"),
        ("fanout_client_events", "counter"),
        ("fanout_api_requests", "counter"),
        ("fanout_webhook_events", "counter"),
        ("fanout_webhook_posts", "counter"),
        ("fanout_webhook_events_dropped", "counter"),
        ("fanout_webhook_posts_failed", "counter"),
    ] {
        assert_eq!(parsed.types.get(family).map(String::as_str), Some(kind), "the type of {family}");
    }
    let app = |name: &str| parsed.value(name, "app=42");
    assert_eq!(app("fanout_app_connections"), 2.0);
    assert_eq!(app("fanout_app_channels"), 2.0);
    assert_eq!(app("fanout_app_subscriptions"), 3.0);
    assert_eq!(app("fanout_app_presence_members"), 2.0);
    assert_eq!(parsed.value("fanout_client_events_total", ""), 1.0);
    assert_eq!(parsed.value("fanout_api_requests_total", "endpoint=events,status=200"), 1.0);
    assert_eq!(parsed.value("fanout_api_requests_total", "endpoint=events,status=400"), 1.0);
    // channel_occupied twice, member_added twice, client_event once.
    assert_eq!(parsed.value("fanout_webhook_events_total", ""), 5.0);
    assert!(parsed.value("fanout_webhook_posts_total", "") >= 1.0);
    assert_eq!(parsed.value("fanout_webhook_events_dropped_total", ""), 0.0);
    assert_eq!(parsed.value("fanout_webhook_posts_failed_total", ""), 0.0);
    server.shutdown().unwrap();
}
