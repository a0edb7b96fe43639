//! Several fanout nodes, each a server of its own in this process, sharing
//! channels and broadcasts through a real `redis-server`: what is published
//! on one node reaches every member on every node exactly once, a node is
//! subscribed in Redis only to channels it has members of, and Redis being
//! absent at start, or killed and restarted mid-stream, costs what was
//! published while it was away and nothing else.
//! (The `fanout` binaries with real Pusher clients: `cluster_processes.rs`.)

mod http_client;
mod openmetrics;
mod pusher_client;
mod redis_process;
mod util;
mod webhook_sink;

use std::time::{Duration, Instant};

use fanout::cluster::ClusterConfig;
use fanout::pusher::{auth, App, WebhookTarget};
use fanout::RunningServer;
use pusher_client::{connect, event, send, subscribe, trigger, KEY, SECRET};
use redis_process::RedisProcess;
use serde_json::json;
use tungstenite::Message as WsMessage;

/// Short, so that a dead connection is noticed within a test's patience.
const HEARTBEAT: Duration = Duration::from_millis(200);

fn app() -> App {
    let mut app = App::new("42", KEY, SECRET);
    app.client_events = true;
    app
}

/// A node (two workers) of the cluster on `redis`.
fn node(redis: &RedisProcess) -> RunningServer {
    let mut cluster = ClusterConfig::new(vec![redis.url()]);
    cluster.heartbeat = HEARTBEAT;
    let config = util::with_config(util::config(2), |c| c.cluster = Some(cluster));
    util::start(config, pusher_client::service(app(), None))
}

fn get(server: &RunningServer, path: &str) -> String {
    let request = http_client::request("GET", path, "Connection: close\r\n");
    http_client::exchange_and_close(server.local_addr(), request.as_bytes()).text().to_owned()
}

/// The value of an unlabelled counter in `server`'s `/metrics`, as the real
/// OpenMetrics parser reads it (`None` outside CI without the parser).
fn counter(server: &RunningServer, name: &str) -> Option<u64> {
    let python = openmetrics::python()?;
    Some(openmetrics::parse(&python, &get(server, "/metrics")).value(&format!("{name}_total"), "") as u64)
}

/// Waits until `nodes` nodes are subscribed to the app's channel `channel`.
fn wait_subscribed(redis: &RedisProcess, channel: &str, nodes: u64) {
    let name = format!("fanout:ch:42:{channel}");
    util::wait_until(&format!("{nodes} nodes on {name}"), || redis.subscribers(&name) == nodes);
}

fn subscribe_private(client: &mut util::Client, socket_id: &str, channel: &str) {
    let signed = auth::channel_auth_string(KEY, SECRET, socket_id, channel, None);
    let answer = subscribe(client, channel, Some(signed), None);
    assert_eq!(answer["event"], "pusher_internal:subscription_succeeded", "{answer}");
}

#[test]
fn events_from_the_api_a_client_and_a_raw_room_reach_every_node_once() {
    let redis = RedisProcess::start();
    let nodes: Vec<RunningServer> = (0..3).map(|_| node(&redis)).collect();
    nodes.iter().for_each(|n| util::wait_bridged(n.local_addr()));
    let mut clients: Vec<(util::Client, String)> = nodes.iter().map(|n| connect(n.local_addr())).collect();
    for (client, socket_id) in &mut clients {
        subscribe_private(client, socket_id, "private-chat");
    }
    wait_subscribed(&redis, "private-chat", 3);

    // Through the HTTP API of the second node.
    let (status, _) =
        trigger(nodes[1].local_addr(), json!({"name": "news", "channel": "private-chat", "data": "from the API"}));
    assert_eq!(status, 200);
    for (client, _) in &mut clients {
        let got = event(client);
        assert_eq!((got["event"].as_str(), got["data"].as_str()), (Some("news"), Some("from the API")), "{got}");
    }

    // A client event from the third node: everyone but its sender.
    send(&mut clients[2].0, json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "c"}}));
    for (client, _) in &mut clients[..2] {
        let got = event(client);
        assert_eq!((got["event"].as_str(), &got["data"]), (Some("client-typing"), &json!({"who": "c"})), "{got}");
    }

    // A raw room client on the first node; Pusher members of the room's
    // channel on the other two.
    let mut room = util::connect(nodes[0].local_addr(), "/chat/lobby");
    util::next_message(&mut room);
    for (client, _) in &mut clients[1..] {
        assert_eq!(subscribe(client, "lobby", None, None)["event"], "pusher_internal:subscription_succeeded");
    }
    wait_subscribed(&redis, "lobby", 3);
    room.send(WsMessage::text("hello room")).expect("send");
    for (client, _) in &mut clients[1..] {
        let got = event(client);
        assert_eq!((got["event"].as_str(), got["data"].as_str()), (Some("message"), Some("hello room")), "{got}");
    }

    // Exactly once: nothing else arrives anywhere.
    for (client, _) in &mut clients {
        util::nothing_more(client);
    }
    util::nothing_more(&mut room);
    assert!(counter(&nodes[0], "fanout_cluster_malformed").is_none_or(|n| n == 0));
}

#[test]
fn chat_broadcasts_reach_every_node_and_not_their_sender() {
    let redis = RedisProcess::start();
    let nodes: Vec<RunningServer> = (0..3).map(|_| node(&redis)).collect();
    nodes.iter().for_each(|n| util::wait_bridged(n.local_addr()));
    let mut chatters: Vec<util::Client> = nodes.iter().map(|n| util::connect_chat(n.local_addr())).collect();
    chatters[1].send(WsMessage::text("hi all")).expect("send");
    for (i, chatter) in chatters.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(util::next_message(chatter).into_text().expect("text"), "hi all", "node {i}");
    }
    for chatter in &mut chatters {
        util::nothing_more(chatter);
    }
}

#[test]
fn a_node_is_subscribed_in_redis_only_to_channels_it_has_members_of() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    assert!(redis.channels("fanout:ch:*").is_empty());
    let (mut one, id) = connect(a.local_addr());
    subscribe_private(&mut one, &id, "private-one");
    let (mut two, id) = connect(a.local_addr());
    subscribe_private(&mut two, &id, "private-one");
    subscribe_private(&mut two, &id, "private-two");
    wait_subscribed(&redis, "private-one", 1);
    wait_subscribed(&redis, "private-two", 1);
    assert_eq!(redis.channels("fanout:ch:*"), ["fanout:ch:42:private-one", "fanout:ch:42:private-two"]);

    send(&mut two, json!({"event": "pusher:unsubscribe", "data": {"channel": "private-two"}}));
    wait_subscribed(&redis, "private-two", 0);
    drop(one);
    // One member of private-one left on this node: still subscribed.
    std::thread::sleep(HEARTBEAT);
    assert_eq!(redis.subscribers("fanout:ch:42:private-one"), 1);
    drop(two);
    util::wait_until("no channel subscribed", || redis.channels("fanout:ch:*").is_empty());
    // The nodes' own channels and the broadcast channel stay.
    assert_eq!(redis.channels("fanout:node:*").len(), 2);
    assert_eq!(redis.subscribers("fanout:broadcast"), 2);
}

#[test]
fn a_node_started_without_redis_serves_its_own_clients_and_joins_when_redis_appears() {
    let mut redis = RedisProcess::not_started();
    let a = node(&redis);
    let ready = get(&a, "/readyz");
    assert!(ready.starts_with("ready\n") && ready.contains("redis: disconnected from redis://127.0.0.1:"), "{ready}");
    assert!(get(&a, "/metrics").contains("fanout_cluster_redis_up{redis=\"0\"} 0"));
    let mut local = util::connect_chat(a.local_addr());
    let mut sender = util::connect_chat(a.local_addr());
    sender.send(WsMessage::text("alone")).expect("send");
    assert_eq!(util::next_message(&mut local).into_text().expect("text"), "alone");
    assert!(counter(&a, "fanout_cluster_lost").is_none_or(|n| n >= 1), "a broadcast with Redis away counts as lost");

    redis.restart();
    util::wait_bridged(a.local_addr());
    let b = node(&redis);
    util::wait_bridged(b.local_addr());
    let mut remote = util::connect_chat(b.local_addr());
    sender.send(WsMessage::text("together")).expect("send");
    assert_eq!(util::next_message(&mut local).into_text().expect("text"), "together");
    assert_eq!(util::next_message(&mut remote).into_text().expect("text"), "together");
}

#[test]
fn redis_killed_and_restarted_mid_stream_loses_only_what_was_sent_while_it_was_away() {
    let mut redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut listener, id) = connect(b.local_addr());
    subscribe_private(&mut listener, &id, "private-ticks");
    wait_subscribed(&redis, "private-ticks", 1);
    listener.get_mut().set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");

    let mut received: Vec<u64> = Vec::new();
    let read_ready = |listener: &mut util::Client, received: &mut Vec<u64>| loop {
        match listener.read() {
            Ok(WsMessage::Text(text)) => {
                let got: serde_json::Value = serde_json::from_str(&text).expect("json");
                received.push(got["data"].as_str().and_then(|n| n.parse().ok()).expect("a number"));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                return
            }
            Err(e) => panic!("the listener failed: {e}"),
        }
    };
    let mut n = 0u64;
    let tick = |n: &mut u64| {
        *n += 1;
        let (status, _) =
            trigger(a.local_addr(), json!({"name": "tick", "channel": "private-ticks", "data": n.to_string()}));
        assert_eq!(status, 200, "the API answers whether or not Redis is there");
    };
    while received.len() < 10 {
        tick(&mut n);
        read_ready(&mut listener, &mut received);
    }
    redis.kill();
    let killed_at = n;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_millis(500) {
        tick(&mut n);
        read_ready(&mut listener, &mut received);
    }
    redis.restart();
    let restarted_at = n;
    let deadline = Instant::now() + util::PATIENCE;
    while received.last().is_none_or(|&last| last <= restarted_at) {
        assert!(Instant::now() < deadline, "nothing arrived after Redis came back: {received:?}");
        tick(&mut n);
        read_ready(&mut listener, &mut received);
    }
    // In order, each once; everything before the kill arrived; what was
    // lost was sent while Redis was away (or in the moment it died).
    assert!(received.windows(2).all(|w| w[0] < w[1]), "{received:?}");
    assert!((1..killed_at.min(10)).all(|k| received.contains(&k)), "{received:?}");
    let missing: Vec<u64> = (1..=received[received.len() - 1]).filter(|k| !received.contains(k)).collect();
    assert!(!missing.is_empty(), "Redis was away for 500 ms, yet nothing was lost");
    assert!(missing.iter().all(|&k| k + 1 >= killed_at && k <= n), "{missing:?}");
    assert!(counter(&a, "fanout_cluster_lost").is_none_or(|n| n >= 1));
    assert!(counter(&b, "fanout_cluster_reconnects").is_none_or(|n| n >= 1));
}

#[test]
fn what_is_not_an_envelope_on_a_fanout_channel_is_counted_and_dropped() {
    let redis = RedisProcess::start();
    let a = node(&redis);
    util::wait_bridged(a.local_addr());
    let (mut client, id) = connect(a.local_addr());
    subscribe_private(&mut client, &id, "private-x");
    wait_subscribed(&redis, "private-x", 1);
    let _: u64 = redis.query(redis::cmd("PUBLISH").arg("fanout:ch:42:private-x").arg("not an envelope"));
    let _: u64 = redis.query(redis::cmd("PUBLISH").arg("fanout:broadcast").arg(b"F\x01\x02short".as_slice()));
    util::wait_until("both counted", || counter(&a, "fanout_cluster_malformed").is_none_or(|n| n == 2));
    util::nothing_more(&mut client);
    let (status, _) = trigger(a.local_addr(), json!({"name": "still", "channel": "private-x", "data": "here"}));
    assert_eq!(status, 200);
    assert_eq!(event(&mut client)["event"], "still");
}

/// A node whose app posts webhooks to `url`.
fn node_with_webhooks(redis: &RedisProcess, url: &str) -> RunningServer {
    let mut app = app();
    app.webhooks = vec![WebhookTarget { url: url.to_owned(), events: Vec::new() }];
    let mut cluster = ClusterConfig::new(vec![redis.url()]);
    cluster.heartbeat = HEARTBEAT;
    let config = util::with_config(util::config(2), |c| c.cluster = Some(cluster));
    util::start(config, pusher_client::service(app, None))
}

fn join_presence(client: &mut util::Client, socket_id: &str, user: &str) -> serde_json::Value {
    let channel_data = json!({"user_id": user, "user_info": {"name": user}}).to_string();
    let signed = auth::channel_auth_string(KEY, SECRET, socket_id, "presence-room", Some(&channel_data));
    let joined = subscribe(client, "presence-room", Some(signed), Some(&channel_data));
    assert_eq!(joined["event"], "pusher_internal:subscription_succeeded", "{joined}");
    pusher_client::data(&joined)["presence"].clone()
}

fn api_get(server: &RunningServer, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = pusher_client::api(server.local_addr(), "GET", path, params, "");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[test]
fn presence_counts_a_user_once_over_the_cluster_and_every_node_answers_alike() {
    let redis = RedisProcess::start();
    let (url, hooks) = webhook_sink::start();
    let nodes: Vec<RunningServer> = (0..3).map(|_| node_with_webhooks(&redis, &url)).collect();
    nodes.iter().for_each(|n| util::wait_bridged(n.local_addr()));
    let (mut watcher, id) = connect(nodes[2].local_addr());
    join_presence(&mut watcher, &id, "w");

    let (mut tab1, id) = connect(nodes[0].local_addr());
    let members = join_presence(&mut tab1, &id, "u1");
    assert_eq!(members["count"], 2, "{members}");
    let added = event(&mut watcher);
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(pusher_client::data(&added), json!({"user_id": "u1", "user_info": {"name": "u1"}}));

    // The same user on another node: already a member, nobody is told.
    let (mut tab2, id) = connect(nodes[1].local_addr());
    let members = join_presence(&mut tab2, &id, "u1");
    assert_eq!((members["count"].clone(), members["hash"]["w"].clone()), (json!(2), json!({"name": "w"})));
    util::nothing_more(&mut watcher);

    for node in &nodes {
        let users = api_get(node, "/apps/42/channels/presence-room/users", &[]);
        assert_eq!(users, json!({"users": [{"id": "u1"}, {"id": "w"}]}));
        let channels = api_get(node, "/apps/42/channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]);
        assert_eq!(channels, json!({"channels": {"presence-room": {"user_count": 2}}}));
        let info = api_get(node, "/apps/42/channels/presence-room", &[("info", "user_count")]);
        assert_eq!(info, json!({"occupied": true, "user_count": 2}));
    }

    drop(tab1);
    util::nothing_more(&mut watcher);
    send(&mut tab2, json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}));
    let removed = event(&mut watcher);
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(pusher_client::data(&removed)["user_id"], "u1");
    util::nothing_more(&mut watcher);
    drop(watcher);

    // Each once per cluster, whichever node saw it (departures are held
    // 3 s, in case the user comes back).
    util::wait_until("the channel vacated and w removed", || {
        let events = webhook_sink::events(&hooks);
        events.iter().any(|e| e["name"] == "channel_vacated")
            && events.iter().any(|e| e["name"] == "member_removed" && e["user_id"] == "w")
    });
    std::thread::sleep(Duration::from_millis(500));
    let events = webhook_sink::events(&hooks);
    let count = |name: &str, user: Option<&str>| {
        events.iter().filter(|e| e["name"] == name && user.is_none_or(|u| e["user_id"] == u)).count()
    };
    assert_eq!(count("channel_occupied", None), 1, "{events:?}");
    assert_eq!(count("member_added", Some("u1")), 1, "{events:?}");
    assert_eq!(count("member_added", Some("w")), 1, "{events:?}");
    assert_eq!(count("member_removed", Some("u1")), 1, "{events:?}");
    assert_eq!(count("member_removed", Some("w")), 1, "{events:?}");
    assert_eq!(count("channel_vacated", None), 1, "{events:?}");
    for node in &nodes {
        assert_eq!(api_get(node, "/apps/42/channels", &[]), json!({"channels": {}}));
    }
}

#[test]
fn a_public_channel_is_occupied_and_vacated_once_over_the_cluster() {
    let redis = RedisProcess::start();
    let (url, hooks) = webhook_sink::start();
    let (a, b) = (node_with_webhooks(&redis, &url), node_with_webhooks(&redis, &url));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut one, _) = connect(a.local_addr());
    let (mut two, _) = connect(b.local_addr());
    for client in [&mut one, &mut two] {
        assert_eq!(subscribe(client, "news", None, None)["event"], "pusher_internal:subscription_succeeded");
    }
    wait_subscribed(&redis, "news", 2);
    for node in [&a, &b] {
        assert_eq!(api_get(node, "/apps/42/channels", &[]), json!({"channels": {"news": {}}}));
    }
    drop(one);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api_get(&a, "/apps/42/channels/news", &[]), json!({"occupied": true}), "occupied on the other node");
    drop(two);
    util::wait_until("the channel to be vacated", || {
        webhook_sink::events(&hooks).iter().any(|e| e["name"] == "channel_vacated")
    });
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<String> =
        webhook_sink::events(&hooks).iter().map(|e| e["name"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(names, ["channel_occupied", "channel_vacated"]);
}

#[test]
fn presence_outlives_a_redis_restart_and_what_changed_meanwhile_reaches_the_other_nodes() {
    let mut redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut on_a, id) = connect(a.local_addr());
    join_presence(&mut on_a, &id, "oa");
    wait_subscribed(&redis, "presence-room", 1);
    let (mut on_b, id) = connect(b.local_addr());
    join_presence(&mut on_b, &id, "ob");
    let (mut leaving, id) = connect(b.local_addr());
    join_presence(&mut leaving, &id, "leaving");
    for user in ["ob", "leaving"] {
        assert_eq!(pusher_client::data(&event(&mut on_a))["user_id"], user);
    }
    assert_eq!(pusher_client::data(&event(&mut on_b))["user_id"], "leaving");

    redis.kill();
    for node in [&a, &b] {
        util::wait_until("the node to see Redis gone", || !get(node, "/readyz").contains("redis: connected"));
    }
    // While Redis is away each node tells its own clients, as one alone would.
    let (mut late, id) = connect(a.local_addr());
    join_presence(&mut late, &id, "late");
    assert_eq!(pusher_client::data(&event(&mut on_a))["user_id"], "late");
    drop(leaving);
    let removed = event(&mut on_b);
    assert_eq!(
        (removed["event"].as_str(), pusher_client::data(&removed)["user_id"].as_str()),
        (Some("pusher_internal:member_removed"), Some("leaving"))
    );

    redis.restart();
    // Each node puts its own members back; the other node hears what it missed.
    let added = event(&mut on_b);
    assert_eq!(
        (added["event"].as_str(), pusher_client::data(&added)["user_id"].as_str()),
        (Some("pusher_internal:member_added"), Some("late"))
    );
    let removed = event(&mut on_a);
    assert_eq!(
        (removed["event"].as_str(), pusher_client::data(&removed)["user_id"].as_str()),
        (Some("pusher_internal:member_removed"), Some("leaving"))
    );
    for node in [&a, &b] {
        let users = api_get(node, "/apps/42/channels/presence-room/users", &[]);
        assert_eq!(users, json!({"users": [{"id": "late"}, {"id": "oa"}, {"id": "ob"}]}));
    }
    util::nothing_more(&mut on_a);
    util::nothing_more(&mut on_b);
}

#[test]
fn a_node_dropped_by_redis_resubscribes_and_hears_the_others_again() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut listener, id) = connect(b.local_addr());
    subscribe_private(&mut listener, &id, "private-x");
    wait_subscribed(&redis, "private-x", 1);
    // What Redis does to a subscriber past its output buffer limit.
    let killed: u64 = redis.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"));
    assert!(killed >= 2, "both nodes' subscribers were dropped ({killed})");
    util::wait_until("b to resubscribe", || {
        redis.subscribers("fanout:ch:42:private-x") == 1 && get(&b, "/readyz").contains("redis: connected")
    });
    let (status, _) = trigger(a.local_addr(), json!({"name": "again", "channel": "private-x", "data": "1"}));
    assert_eq!(status, 200);
    assert_eq!(event(&mut listener)["event"], "again");
    assert!(counter(&b, "fanout_cluster_reconnects").is_none_or(|n| n >= 1));
}

#[test]
fn channels_spread_over_several_redis_instances_and_still_cross_once() {
    let (first, second) = (RedisProcess::start(), RedisProcess::start());
    let start = || {
        let mut cluster = ClusterConfig::new(vec![first.url(), second.url()]);
        cluster.heartbeat = HEARTBEAT;
        util::start(
            util::with_config(util::config(2), |c| c.cluster = Some(cluster)),
            pusher_client::service(app(), None),
        )
    };
    let (a, b) = (start(), start());
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let channels: Vec<String> = (0..8).map(|n| format!("room-{n}")).collect();
    let (mut listener, _) = connect(b.local_addr());
    for channel in &channels {
        assert_eq!(subscribe(&mut listener, channel, None, None)["event"], "pusher_internal:subscription_succeeded");
    }
    util::wait_until("every channel subscribed on one instance or the other", || {
        first.channels("fanout:ch:*").len() + second.channels("fanout:ch:*").len() == channels.len()
    });
    let (on_first, on_second) = (first.channels("fanout:ch:*"), second.channels("fanout:ch:*"));
    assert!(!on_first.is_empty() && !on_second.is_empty(), "{on_first:?} {on_second:?}");
    // Broadcasts and shared state live on the first instance.
    assert_eq!(first.subscribers("fanout:broadcast"), 2);
    assert_eq!(second.subscribers("fanout:broadcast"), 0);
    for channel in &channels {
        let (status, _) = trigger(a.local_addr(), json!({"name": "hi", "channel": channel, "data": channel}));
        assert_eq!(status, 200);
        let got = event(&mut listener);
        assert_eq!((got["channel"].as_str(), got["data"].as_str()), (Some(channel.as_str()), Some(channel.as_str())));
    }
    util::nothing_more(&mut listener);
}

#[test]
fn subscribed_means_events_from_every_node_arrive_from_then_on() {
    let redis = RedisProcess::start();
    // The subscribing node reaches Redis through a 50 ms delay each way, so
    // its Redis subscription lags well behind what its worker does.
    let far = redis_process::delaying_proxy(redis.port, Duration::from_millis(50));
    let a = node(&redis);
    let mut cluster = ClusterConfig::new(vec![format!("redis://127.0.0.1:{far}")]);
    cluster.heartbeat = HEARTBEAT;
    let b = util::start(
        util::with_config(util::config(2), |c| c.cluster = Some(cluster)),
        pusher_client::service(app(), None),
    );
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut listener, _) = connect(b.local_addr());
    // Fresh channels, published to on the other node the moment the
    // subscription is confirmed to the client.
    for n in 0..5 {
        let channel = format!("fresh-{n}");
        assert_eq!(subscribe(&mut listener, &channel, None, None)["event"], "pusher_internal:subscription_succeeded");
        let (status, _) = trigger(a.local_addr(), json!({"name": "first", "channel": channel, "data": n.to_string()}));
        assert_eq!(status, 200);
        let got = event(&mut listener);
        assert_eq!((got["channel"].as_str(), got["event"].as_str()), (Some(channel.as_str()), Some("first")));
    }
}

#[test]
fn nodes_share_channels_over_rediss_with_the_ca_they_are_given() {
    let redis = RedisProcess::start_tls();
    let tls_node = |ca: bool| {
        let mut cluster = ClusterConfig::new(vec![redis.url()]);
        cluster.heartbeat = HEARTBEAT;
        cluster.ca_file = ca.then(redis_process::test_ca);
        util::start(
            util::with_config(util::config(2), |c| c.cluster = Some(cluster)),
            pusher_client::service(app(), None),
        )
    };
    let (a, b) = (tls_node(true), tls_node(true));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut listener, id) = connect(b.local_addr());
    subscribe_private(&mut listener, &id, "private-tls");
    let (status, _) = trigger(a.local_addr(), json!({"name": "secret", "channel": "private-tls", "data": "x"}));
    assert_eq!(status, 200);
    assert_eq!(event(&mut listener)["event"], "secret");
    // Without the CA the server's certificate is not trusted: never connected.
    let stranger = tls_node(false);
    std::thread::sleep(Duration::from_millis(500));
    assert!(get(&stranger, "/readyz").contains("redis: disconnected"), "{}", get(&stranger, "/readyz"));
}

#[test]
fn a_cluster_node_s_figures_parse_as_openmetrics() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let mut listener = util::connect_chat(b.local_addr());
    let mut sender = util::connect_chat(a.local_addr());
    sender.send(WsMessage::text("counted")).expect("send");
    assert_eq!(util::next_message(&mut listener).into_text().expect("text"), "counted");
    let Some(python) = openmetrics::python() else { return };
    let parsed = openmetrics::parse(&python, &get(&a, "/metrics"));
    for (family, kind) in [
        ("fanout_cluster_published", "counter"),
        ("fanout_cluster_lost", "counter"),
        ("fanout_cluster_received", "counter"),
        ("fanout_cluster_dropped", "counter"),
        ("fanout_cluster_malformed", "counter"),
        ("fanout_cluster_reconnects", "counter"),
        ("fanout_cluster_redis_up", "gauge"),
        ("fanout_cluster_redis_channels", "gauge"),
    ] {
        assert_eq!(parsed.types.get(family).map(String::as_str), Some(kind), "{family}");
    }
    assert_eq!(parsed.value("fanout_cluster_redis_up", "redis=0"), 1.0);
    // The node's own channel and the broadcast channel.
    assert_eq!(parsed.value("fanout_cluster_redis_channels", "redis=0"), 2.0);
    util::wait_until("the broadcast to be counted as published", || {
        openmetrics::parse(&python, &get(&a, "/metrics")).value("fanout_cluster_published_total", "") >= 1.0
    });
    let received = openmetrics::parse(&python, &get(&b, "/metrics"));
    assert_eq!(received.value("fanout_cluster_received_total", ""), 1.0);
}
