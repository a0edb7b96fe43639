//! Nodes sharing one Redis Cluster (`--redis-cluster`, three masters of
//! Debian's redis-server on loopback): channels spread over the masters by
//! hash slot with sharded pub/sub, and what a single Redis gives (every
//! event once on every node, history, presence, chat broadcasts) still holds.

mod http_client;
mod pusher_client;
mod redis_process;
mod util;

use std::time::Duration;

use fanout::cluster::ClusterConfig;
use fanout::history::HistoryConfig;
use fanout::pusher::{auth, App};
use fanout::RunningServer;
use pusher_client::{connect, data, event, subscribe, trigger, KEY, SECRET};
use redis_process::RedisCluster;
use serde_json::json;

/// A node (two workers) on the Redis Cluster, keeping 100 events per channel.
fn node(redis: &RedisCluster) -> RunningServer {
    let mut cluster = ClusterConfig::new(vec![redis.url()]);
    cluster.heartbeat = Duration::from_millis(200);
    cluster.redis_cluster = true;
    let history = HistoryConfig { size: Some(100), ttl: None, max_bytes: 16 << 20 };
    let config = util::with_config(util::config(2), |c| c.cluster = Some(cluster));
    util::start(config, pusher_client::service(App::new("42", KEY, SECRET), Some(history)))
}

#[test]
fn events_spread_over_the_masters_reach_every_node_once_through_sharded_pub_sub() {
    let redis = RedisCluster::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    // Channels without history (presence-less private ones are plain
    // publishes) and with it, enough of them to land on every master.
    let channels: Vec<String> = (0..8).map(|n| format!("news-{n}")).collect();
    let (mut listener, _) = connect(a.local_addr());
    for channel in &channels {
        pusher_client::join(&mut listener, channel, None);
    }
    for channel in &channels {
        let name = format!("fanout:ch:{{42:{channel}}}");
        util::wait_until(&format!("node A on {name}"), || redis.shard_subscribers(&name) == 1);
    }
    let masters_used = redis
        .masters
        .iter()
        .filter(|m| {
            let held: Vec<String> = m.query(redis::cmd("PUBSUB").arg("SHARDCHANNELS").arg("fanout:ch:*"));
            !held.is_empty()
        })
        .count();
    assert!(masters_used >= 2, "eight channels should spread over the masters, got {masters_used}");
    for channel in &channels {
        let (status, body) = trigger(b.local_addr(), json!({"name": "news", "channel": channel, "data": channel}));
        assert_eq!(status, 200, "{body}");
    }
    let mut got: Vec<String> = (0..channels.len())
        .map(|_| {
            let news = event(&mut listener);
            assert_eq!(news["offset"], 1, "{news}");
            news["channel"].as_str().expect("a channel").to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, channels);
    util::nothing_more(&mut listener);

    // No plain pub/sub channel carries a fanout channel.
    for master in &redis.masters {
        assert!(master.channels("fanout:ch:*").is_empty());
    }
    drop(listener);
    for channel in &channels {
        let name = format!("fanout:ch:{{42:{channel}}}");
        util::wait_until(&format!("node A to leave {name}"), || redis.shard_subscribers(&name) == 0);
    }
}

#[test]
fn history_presence_and_chat_broadcasts_work_across_nodes_on_a_redis_cluster() {
    let redis = RedisCluster::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());

    // History: recovered on the other node.
    let (mut client, _) = connect(a.local_addr());
    pusher_client::join(&mut client, "room", None);
    for n in 1..=2 {
        trigger(b.local_addr(), json!({"name": "news", "channel": "room", "data": format!("item {n}")}));
    }
    let epoch = event(&mut client)["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(event(&mut client)["offset"], 2);
    drop(client);
    trigger(a.local_addr(), json!({"name": "news", "channel": "room", "data": "item 3"}));
    util::wait_until("item 3 in the stream", || {
        let (_, page) = pusher_client::api(b.local_addr(), "GET", "/apps/42/channels/room/history", &[], "");
        page["offset"] == 3
    });
    let (mut back, _) = connect(b.local_addr());
    pusher_client::join(&mut back, "room", Some((&epoch, 2)));
    assert_eq!(event(&mut back)["data"], "item 3");
    assert_eq!(data(&event(&mut back)), json!({"recovered": true, "epoch": epoch, "offset": 3}));

    // Presence: the cluster's members, told once.
    let join = |client: &mut util::Client, socket_id: &str, user: &str| {
        let channel_data = json!({"user_id": user}).to_string();
        let signed = auth::channel_auth_string(KEY, SECRET, socket_id, "presence-team", Some(&channel_data));
        let joined = subscribe(client, "presence-team", Some(signed), Some(&channel_data));
        assert_eq!(joined["event"], "pusher_internal:subscription_succeeded", "{joined}");
        data(&joined)["presence"]["count"].clone()
    };
    let (mut first, id) = connect(a.local_addr());
    assert_eq!(join(&mut first, &id, "u1"), 1);
    let (mut second, id) = connect(b.local_addr());
    assert_eq!(join(&mut second, &id, "u2"), 2);
    let added = event(&mut first);
    assert_eq!(
        (added["event"].as_str(), data(&added)["user_id"].as_str()),
        (Some("pusher_internal:member_added"), Some("u2"))
    );

    // Chat broadcasts cross as a shard channel too.
    let mut talker = util::connect_chat(a.local_addr());
    let mut hearer = util::connect_chat(b.local_addr());
    talker.send(tungstenite::Message::text("hello cluster")).expect("send");
    assert_eq!(util::next_message(&mut hearer).into_text().expect("text"), "hello cluster");
    util::nothing_more(&mut hearer);
}

#[test]
fn a_slot_moved_to_another_master_is_followed_and_its_channel_keeps_delivering() {
    let redis = RedisCluster::start();
    let (a, b) = (node(&redis), node(&redis));
    util::wait_bridged(a.local_addr());
    util::wait_bridged(b.local_addr());
    let (mut listener, _) = connect(a.local_addr());
    pusher_client::join(&mut listener, "moving", None);
    let name = "fanout:ch:{42:moving}";
    util::wait_until("node A on the shard channel", || redis.shard_subscribers(name) == 1);

    // Hand the channel's slot (empty: nothing was published yet) to another master, telling
    // every master (as `redis-cli --cluster reshard` does).
    let slot: u64 = redis.masters[0].query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(name));
    let owner = redis
        .masters
        .iter()
        .position(|m| {
            let keys: u64 = m.query(redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot));
            let mine: Vec<Vec<redis::Value>> = m.query(redis::cmd("CLUSTER").arg("SLOTS"));
            keys == 0
                && mine.iter().any(|range| match (&range[0], &range[1], &range[2]) {
                    (redis::Value::Int(from), redis::Value::Int(to), redis::Value::Array(node)) => {
                        (*from as u64..=*to as u64).contains(&slot)
                            && node.get(1) == Some(&redis::Value::Int(i64::from(m.port)))
                    }
                    _ => false,
                })
        })
        .expect("the slot's master");
    let target = (owner + 1) % redis.masters.len();
    let target_id: String = redis.masters[target].query(redis::cmd("CLUSTER").arg("MYID"));
    for master in [target, owner, (owner + 2) % redis.masters.len()] {
        let _: () =
            redis.masters[master].query(redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(&target_id));
    }
    util::wait_until("node A to subscribe on the new master", || {
        let on_target: Vec<(String, u64)> =
            redis.masters[target].query(redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(name));
        on_target.first().is_some_and(|(_, n)| *n == 1)
    });
    let (status, body) =
        trigger(b.local_addr(), json!({"name": "news", "channel": "moving", "data": "after the move"}));
    assert_eq!(status, 200, "{body}");
    let got = event(&mut listener);
    assert_eq!((got["data"].as_str(), got["offset"].as_u64()), (Some("after the move"), Some(1)), "{got}");
    // Node B's stale slot map cost nothing: the redirected publish was sent again.
    let request = http_client::request("GET", "/metrics", "Connection: close\r\n");
    let metrics = http_client::exchange_and_close(b.local_addr(), request.as_bytes()).text().to_owned();
    let lost = metrics.lines().find(|l| l.starts_with("fanout_cluster_lost_total")).expect("the lost counter");
    assert!(lost.ends_with(" 0"), "{lost}");
}
