//! Channel history shared by a cluster through a real `redis-server`: every
//! node gives an event the same offset, each member gets it once, a client
//! recovers on another node than the one it left, the history API and cache
//! channels answer alike on every node, and a Redis that lost the streams
//! is told to the members as a gap (`recovered: false`), never hidden.

mod http_client;
mod pusher_client;
mod redis_process;
mod util;

use std::time::Duration;

use fanout::cluster::ClusterConfig;
use fanout::history::HistoryConfig;
use fanout::pusher::App;
use fanout::RunningServer;
use pusher_client::{api, connect, data, event, trigger, KEY, SECRET};
use redis_process::RedisProcess;
use serde_json::{json, Value};

/// A node (two workers) of the cluster on `redis`, keeping 100 events per channel.
fn node(redis: &RedisProcess) -> RunningServer {
    let mut cluster = ClusterConfig::new(vec![redis.url()]);
    cluster.heartbeat = Duration::from_millis(200);
    let history = HistoryConfig { size: Some(100), ttl: None, max_bytes: 16 << 20 };
    let config = util::with_config(util::config(2), |c| c.cluster = Some(cluster));
    util::start(config, pusher_client::service(App::new("42", KEY, SECRET), Some(history)))
}

fn publish(server: &RunningServer, channel: &str, n: u64) {
    let (status, body) =
        trigger(server.local_addr(), json!({"name": "news", "channel": channel, "data": format!("item {n}")}));
    assert_eq!(status, 200, "{body}");
}

/// The next event, which must be item `n` at offset `n`.
fn expect_item(client: &mut util::Client, n: u64) -> Value {
    let got = event(client);
    assert_eq!(
        (got["event"].as_str(), got["data"].as_str()),
        (Some("news"), Some(format!("item {n}").as_str())),
        "{got}"
    );
    assert_eq!(got["offset"].as_u64(), Some(n), "{got}");
    got
}

#[test]
fn events_published_on_any_node_take_one_offset_and_reach_each_member_once() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut on_a, _) = connect(a.local_addr());
    let (mut on_b, _) = connect(b.local_addr());
    assert!(pusher_client::join(&mut on_a, "room", None).get("offset").is_none(), "no stream before the first event");
    pusher_client::join(&mut on_b, "room", None);
    for n in 1..=6 {
        publish(if n % 2 == 1 { &a } else { &b }, "room", n);
    }
    // Redis orders the nodes' publishes (each API call answers once its
    // event is queued there): both members see the one order it chose.
    let seen = |client: &mut util::Client| -> Vec<(u64, String, Option<String>)> {
        (0..6)
            .map(|_| {
                let got = event(client);
                assert_eq!(got["event"], "news", "{got}");
                let epoch = got["epoch"].as_str().map(str::to_owned);
                (got["offset"].as_u64().expect("an offset"), got["data"].as_str().expect("data").to_owned(), epoch)
            })
            .collect()
    };
    let (by_a, by_b) = (seen(&mut on_a), seen(&mut on_b));
    assert_eq!(by_a, by_b, "one stream, one order, one epoch");
    assert_eq!(by_a.iter().map(|(offset, ..)| *offset).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let mut items: Vec<&str> = by_a.iter().map(|(_, data, _)| data.as_str()).collect();
    items.sort_unstable();
    assert_eq!(items, ["item 1", "item 2", "item 3", "item 4", "item 5", "item 6"], "each once");
    assert!(by_a[0].2.is_some(), "the first event names the epoch");
    util::nothing_more(&mut on_a);
    util::nothing_more(&mut on_b);
    // Redis holds the stream; the nodes hold only where their members are.
    let stream: u64 = redis.query(redis::cmd("XLEN").arg("fanout:hx:42:room"));
    assert_eq!(stream, 6);
    // The last member gone, no node stays subscribed to the channel.
    drop((on_a, on_b));
    util::wait_until("both nodes to unsubscribe", || redis.subscribers("fanout:ch:42:room") == 0);
}

#[test]
fn a_client_recovers_on_another_node_than_the_one_it_left() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut client, _) = connect(a.local_addr());
    pusher_client::join(&mut client, "room", None);
    // One from each node, the second once the first is in (Redis orders
    // the nodes' publishes as they reach it).
    publish(&b, "room", 1);
    let epoch = expect_item(&mut client, 1)["epoch"].as_str().expect("the first event names the epoch").to_owned();
    publish(&a, "room", 2);
    expect_item(&mut client, 2);
    drop(client);

    for n in 3..=5 {
        publish(&a, "room", n);
    }
    util::wait_until("item 5 in the stream", || {
        api(a.local_addr(), "GET", "/apps/42/channels/room/history", &[("limit", "1")], "").1["offset"] == 5
    });
    // Node B has had no member of the channel: it reads the stream from Redis.
    let (mut back, _) = connect(b.local_addr());
    let answer = pusher_client::join(&mut back, "room", Some((&epoch, 2)));
    assert_eq!((answer["epoch"].as_str(), answer["offset"].as_u64()), (Some(epoch.as_str()), Some(5)), "{answer}");
    for n in 3..=5 {
        expect_item(&mut back, n);
    }
    let marker = event(&mut back);
    assert_eq!(marker["event"], "fanout:recovery", "{marker}");
    assert_eq!(data(&marker), json!({"recovered": true, "epoch": epoch, "offset": 5}));
    publish(&a, "room", 6);
    expect_item(&mut back, 6);
    util::nothing_more(&mut back);

    // Another epoch, or a gap Redis no longer holds, is not recovered.
    let (mut stranger, _) = connect(a.local_addr());
    pusher_client::join(&mut stranger, "room", Some(("0123456789ab", 3)));
    let marker = event(&mut stranger);
    assert_eq!(data(&marker), json!({"recovered": false, "epoch": epoch, "offset": 6}), "{marker}");
}

#[test]
fn the_history_api_and_cache_channels_answer_alike_on_every_node() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    for n in 1..=3 {
        publish(&a, "cache-price", n);
    }
    // An API publish answers once it is queued for Redis: wait until all three are in.
    util::wait_until("the three events in the stream", || {
        api(a.local_addr(), "GET", "/apps/42/channels/cache-price/history", &[], "").1["offset"] == 3
    });
    for server in [&a, &b] {
        let (status, body) =
            api(server.local_addr(), "GET", "/apps/42/channels/cache-price/history", &[("limit", "2")], "");
        assert_eq!(status, 200, "{body}");
        let offsets: Vec<u64> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["offset"].as_u64().expect("offset"))
            .collect();
        assert_eq!((offsets, body["offset"].as_u64()), (vec![2, 3], Some(3)), "{body}");
        // A cache channel greets a new member with its last event.
        let (mut client, _) = connect(server.local_addr());
        pusher_client::join(&mut client, "cache-price", None);
        expect_item(&mut client, 3);
    }
}

#[test]
fn a_redis_that_lost_the_streams_is_told_to_the_members_as_a_gap() {
    let mut redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut client, _) = connect(b.local_addr());
    pusher_client::join(&mut client, "room", None);
    publish(&a, "room", 1);
    let old_epoch = expect_item(&mut client, 1)["epoch"].as_str().expect("epoch").to_owned();
    redis.kill();
    redis.restart(); // without persistence: the stream and its epoch are gone
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    util::wait_until("node B to resubscribe", || redis.subscribers("fanout:ch:42:room") == 1);
    // Node A may not have noticed Redis leaving yet: publish until one gets through.
    client.get_mut().set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let marker = (0..50)
        .find_map(|_| {
            publish(&a, "room", 1);
            client.read().ok()
        })
        .expect("an event reaches node B once Redis is back");
    client.get_mut().set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    let marker: Value = serde_json::from_str(marker.to_text().expect("text")).expect("json");
    assert_eq!(marker["event"], "fanout:recovery", "{marker}");
    assert_eq!(data(&marker)["recovered"], false, "{marker}");
    let got = expect_item(&mut client, 1);
    let new_epoch = got["epoch"].as_str().expect("a new stream names its epoch");
    assert_ne!(new_epoch, old_epoch);
    let request = http_client::request("GET", "/metrics", "Connection: close\r\n");
    let metrics = http_client::exchange_and_close(b.local_addr(), request.as_bytes()).text().to_owned();
    assert!(metrics.lines().any(|l| l.starts_with("fanout_history_gaps_total") && l.ends_with(" 1")), "{metrics}");
}

/// The next text message of a raw client, parsed as JSON.
fn raw_json(client: &mut util::Client) -> Value {
    serde_json::from_str(util::next_message(client).to_text().expect("text")).expect("JSON")
}

#[test]
fn a_raw_room_member_recovers_or_reads_recent_messages_on_another_node() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let mut talker = util::connect(a.local_addr(), "/chat/lobby");
    assert_eq!(raw_json(&mut talker)["type"], "welcome");
    let mut listener = util::connect(b.local_addr(), "/chat/lobby");
    raw_json(&mut listener);
    for n in 1..=3 {
        talker.send(tungstenite::Message::text(format!("line {n}"))).expect("send");
        assert_eq!(util::next_message(&mut listener), tungstenite::Message::text(format!("line {n}")));
    }
    let (_, page) = api(b.local_addr(), "GET", "/apps/42/channels/lobby/history", &[("limit", "1")], "");
    let epoch = page["epoch"].as_str().expect("epoch").to_owned();
    drop(listener);
    talker.send(tungstenite::Message::text("line 4")).expect("send");
    util::wait_until("line 4 in the stream", || {
        api(b.local_addr(), "GET", "/apps/42/channels/lobby/history", &[("limit", "1")], "").1["offset"] == 4
    });

    // Back on the other node, from offset 2.
    let mut back = util::connect(a.local_addr(), &format!("/chat/lobby?since=2&epoch={epoch}"));
    let welcome = raw_json(&mut back);
    assert_eq!((welcome["type"].as_str(), welcome["offset"].as_u64()), (Some("welcome"), Some(4)), "{welcome}");
    assert_eq!(util::next_message(&mut back), tungstenite::Message::text("line 3"));
    assert_eq!(util::next_message(&mut back), tungstenite::Message::text("line 4"));
    assert_eq!(raw_json(&mut back), json!({"type": "recovery", "recovered": true, "epoch": epoch, "offset": 4}));

    // A newcomer on node B asks for the two most recent.
    let mut newcomer = util::connect(b.local_addr(), "/chat/lobby?history=2");
    raw_json(&mut newcomer);
    assert_eq!(util::next_message(&mut newcomer), tungstenite::Message::text("line 3"));
    assert_eq!(util::next_message(&mut newcomer), tungstenite::Message::text("line 4"));
    assert_eq!(raw_json(&mut newcomer), json!({"type": "history", "count": 2, "epoch": epoch, "offset": 4}));
    talker.send(tungstenite::Message::text("line 5")).expect("send");
    assert_eq!(util::next_message(&mut newcomer), tungstenite::Message::text("line 5"));
    assert_eq!(util::next_message(&mut back), tungstenite::Message::text("line 5"));
    util::nothing_more(&mut newcomer);
    drop((talker, back, newcomer));
    util::wait_until("both nodes to unsubscribe", || redis.subscribers("fanout:ch:42:lobby") == 0);
}

#[test]
fn while_redis_is_away_a_channel_with_history_still_serves_the_node_s_own_clients() {
    let redis = RedisProcess::not_started();
    let lonely = node(&redis);
    let (mut client, _) = connect(lonely.local_addr());
    let answer = pusher_client::join(&mut client, "room", None);
    assert!(answer.get("offset").is_none(), "no stream can be read: {answer}");
    publish(&lonely, "room", 1);
    let got = event(&mut client);
    assert_eq!(got["data"], "item 1", "{got}");
    assert!(got.get("offset").is_none(), "an event Redis never placed has no offset: {got}");
    let (status, body) = api(lonely.local_addr(), "GET", "/apps/42/channels/room/history", &[], "");
    assert_eq!(status, 503, "{body}");
}

#[test]
fn a_socket_io_socket_in_a_room_with_history_hears_what_any_node_publishes_there() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    // The only member of the room on node A is a Socket.IO socket.
    let mut sio = util::connect(a.local_addr(), "/socket.io/?EIO=4&transport=websocket");
    assert!(util::next_message(&mut sio).to_text().expect("text").starts_with('0'), "the open packet");
    sio.send(tungstenite::Message::text("40")).expect("send");
    assert!(util::next_message(&mut sio).to_text().expect("text").starts_with("40"), "connected");
    sio.send(tungstenite::Message::text(r#"421["join","lobby"]"#)).expect("send");
    assert_eq!(util::next_message(&mut sio).to_text().expect("text"), "431[]");
    util::wait_until("node A on the room", || redis.subscribers("fanout:ch:42:lobby") == 1);
    for (server, n) in [(&b, 1), (&a, 2)] {
        publish(server, "lobby", n);
        let got = util::next_message(&mut sio);
        assert_eq!(got.to_text().expect("text"), format!(r#"42["news","item {n}"]"#));
    }
    drop(sio);
    util::wait_until("node A to leave the room", || redis.subscribers("fanout:ch:42:lobby") == 0);
}
