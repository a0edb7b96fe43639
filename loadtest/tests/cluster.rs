//! Verifies the flags that point loadtest at a cluster, through real sockets: `channels
//! --api-url` and `--subscriber-url` against mock nodes sharing their channels (publishing on one
//! node, subscribing on the others, every event counted once) and against one fanout node named
//! several ways; `broadcast --publish-url` against two fanout nodes, one relaying into the other,
//! and against one node, where what reaches the publishers is not counted as a delivery; and
//! bad values refused with the flag named. No Redis: the nodes share through the test.

mod pusher_mock;
mod util;

use std::sync::atomic::Ordering::Relaxed;

use fanout::pusher::{App, Apps};
use fanout::service::{Service, ServiceConfig};
use fanout::{Accept, ConnId, Handler, Message, Rejection, Request, RunningServer, Server, ServerHandle};

/// Checks a fixed-rate channels step: `sent` events sent and accepted, each owed to `expected`
/// deliveries in all, every one received once and in order.
fn assert_step_complete(output: &std::process::Output, report: &serde_json::Value, sent: u64, expected: u64) {
    assert!(output.status.success(), "{}", util::printed(output));
    let step = &report["steps"][0];
    assert_eq!(step["sent"].as_u64(), Some(sent), "{step}");
    assert_eq!(step["accepted"].as_u64(), Some(sent), "{step}");
    assert_eq!(step["expected"].as_u64(), Some(expected), "{step}");
    assert_eq!(step["received"], step["expected"], "{}", util::printed(output));
    for counter in ["lost", "duplicates", "reordered", "errors"] {
        assert_eq!(step[counter].as_u64(), Some(0), "{counter}: {step}");
    }
    assert_eq!(report["misrouted"].as_u64(), Some(0));
}

#[test]
fn api_events_published_on_one_node_reach_subscribers_spread_over_the_others() {
    let cluster = pusher_mock::start_cluster(3);
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].addr);
    let (id, key, secret) = pusher_mock::APP;
    // --url names B: without --api-url the requests would go there.
    let output = util::loadtest(&format!(
        "channels --url ws://{b} --api-url http://{a} --subscriber-url ws://{c}/ignored --subscriber-url ws://{b} \
         --app-id {id} --app-key {key} --app-secret {secret} -c 20 --channels 4 --rate 200 -d 1s --warmup 200ms \
         --publishers 2 --settle 300ms --drain 1s -t 2 --json -q"
    ));
    let report = util::json(&output);
    // 200 events/s for 1 s, each to the 5 subscribers of its channel, wherever they are.
    assert_step_complete(&output, &report, 200, 1000);
    assert_eq!(cluster.seen.bad_signatures.load(Relaxed), 0);
    let [na, nb, nc] = [0, 1, 2].map(|i| &cluster.nodes[i].seen);
    // Every API request went to A, and no subscriber; the subscribers alternate C, B.
    assert_eq!(na.api_requests.load(Relaxed), cluster.seen.api_events.load(Relaxed));
    assert!(na.api_requests.load(Relaxed) >= 200);
    assert_eq!((nb.api_requests.load(Relaxed), nc.api_requests.load(Relaxed)), (0, 0));
    let sockets = [&na, &nb, &nc].map(|n| n.websockets.load(Relaxed));
    assert_eq!(sockets, [0, 10, 10], "subscribers per node");
    assert_eq!(report["api_url"].as_str(), Some(format!("http://{a}").as_str()));
    let subscriber_urls = format!("[\"ws://{c}/app/{key}?protocol=7&client=loadtest&version=1.0\",");
    assert!(report["subscriber_urls"].to_string().starts_with(&subscriber_urls), "{}", report["subscriber_urls"]);
}

#[test]
fn client_event_publishers_stay_on_url_while_subscribers_spread() {
    let cluster = pusher_mock::start_cluster(3);
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].addr);
    let (id, key, secret) = pusher_mock::APP;
    let output = util::loadtest(&format!(
        "channels --url ws://{a} --subscriber-url ws://{b} --subscriber-url ws://{c} --via client-events \
         --publishers 3 --app-id {id} --app-key {key} --app-secret {secret} -c 12 --channels 3 --rate 60 -d 1s \
         --warmup 200ms --settle 300ms --drain 1s -t 2 --json -q"
    ));
    let report = util::json(&output);
    // 60 events/s for 1 s, each to the 4 subscribers of its channel (two on B, two on C).
    assert_step_complete(&output, &report, 60, 240);
    assert_eq!(cluster.seen.bad_auth.load(Relaxed), 0);
    let sockets = [0, 1, 2].map(|i| cluster.nodes[i].seen.websockets.load(Relaxed));
    assert_eq!(sockets, [3, 6, 6], "the publishers on A, the subscribers on B and C");
    assert!(report.get("api_url").is_none(), "no API with client events: {report}");
}

#[test]
fn channels_against_one_fanout_node_named_as_api_and_twice_as_subscriber_url() {
    let (id, key, secret) = ("42", "cluster-key", "cluster-secret");
    let apps = Apps::single(App::new(id, key, secret));
    let service = Service::new(ServiceConfig { apps, ..ServiceConfig::default() }).expect("service");
    let server = Server::bind(util::config(2), service).expect("bind").start().expect("start");
    let (addr, port) = (server.local_addr(), server.local_addr().port());
    let output = util::loadtest(&format!(
        "channels --url ws://{addr}/ --api-url http://{addr} --subscriber-url ws://{addr}/ \
         --subscriber-url ws://localhost:{port}/ --app-id {id} --app-key {key} --app-secret {secret} -c 20 \
         --channels 4 --rate 200 -d 1s --warmup 200ms --publishers 2 --settle 300ms --drain 1s -t 2 --json -q"
    ));
    let report = util::json(&output);
    assert_step_complete(&output, &report, 200, 1000);
    assert_eq!(report["subscriptions"]["counted"].as_u64(), Some(20), "{report}");
    assert_eq!(report["subscriber_urls"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["api"]["answers"]["200"].as_u64().map(|n| n >= 200), Some(true), "{}", report["api"]);
    server.shutdown().expect("shutdown");
}

/// A node that sends every message it receives on to every client of another node, as a
/// cluster's bridge would, and to none of its own.
struct Bridge {
    to: ServerHandle,
}

impl Handler for Bridge {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()))
    }

    fn on_message(&self, _server: &ServerHandle, _conn: ConnId, _state: &mut (), message: Message) {
        self.to.broadcast(&message);
    }
}

fn broadcast(url: &str, publish_url: &str) -> (std::process::Output, serde_json::Value) {
    let output = util::loadtest(&format!(
        "broadcast --url {url} --publish-url {publish_url} -c 40 --publishers 4 --rate 200 -d 1s --warmup 200ms \
         --settle 100ms --drain 1s --threads 2 --json -q"
    ));
    let report = util::json(&output);
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    (output, report)
}

/// Checks that every measured message of a 40-connection run with 4 publishers reached each of
/// the 36 connections that do not publish, once and in order; returns the messages sent.
fn assert_receivers_complete(b: &serde_json::Value) -> u64 {
    let sent = b["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "only {sent} messages were sent");
    assert_eq!((b["publishers_active"].as_u64(), b["receivers"].as_u64()), (Some(4), Some(36)), "{b}");
    assert_eq!(b["expected"].as_u64(), Some(sent * 36));
    assert_eq!(b["received"], b["expected"], "{b}");
    for counter in ["lost", "duplicates", "reordered", "self_received"] {
        assert_eq!(b[counter].as_u64(), Some(0), "{counter} in {b}");
    }
    sent
}

#[test]
fn broadcast_publishers_on_one_node_reach_receivers_on_another() {
    let receivers = util::chat(util::config(2));
    let bridge = Bridge { to: receivers.handle() };
    let publishing: RunningServer = Server::bind(util::config(1), bridge).expect("bind").start().expect("start");
    let publish_url = format!("ws://{}/", publishing.local_addr());
    let (_, report) = broadcast(&util::chat_url(&receivers), &publish_url);
    let b = &report["broadcast"];
    let sent = assert_receivers_complete(b);
    assert_eq!(b["publish_url"].as_str(), Some(publish_url.as_str()));
    assert_eq!(b["received_by_publishers"].as_u64(), Some(0), "the bridge sends nothing back");
    // Only the chat's welcome to each of the 36 receivers is not a broadcast message.
    assert_eq!(b["other"].as_u64(), Some(36));
    assert_eq!(receivers.handle().stats().messages_in, 0, "the receivers' node got no message from a client");
    assert!(publishing.handle().stats().messages_in >= sent);
    publishing.shutdown().expect("shutdown");
    receivers.shutdown().expect("shutdown");
}

#[test]
fn with_publish_url_what_reaches_the_publishers_is_not_a_delivery() {
    // One chat node, named two ways: it relays each message to the 39 others, 3 of them
    // publishers, whose copies are counted apart.
    let server = util::chat(util::config(2));
    let publish_url = format!("ws://localhost:{}/chat", server.local_addr().port());
    let (_, report) = broadcast(&util::chat_url(&server), &publish_url);
    let b = &report["broadcast"];
    let sent = assert_receivers_complete(b);
    assert_eq!(b["received_by_publishers"].as_u64(), Some(sent * 3), "{b}");
    assert_eq!(b["publish_url"].as_str(), Some(publish_url.as_str()));
    server.shutdown().expect("shutdown");
}

#[test]
fn bad_cluster_urls_are_refused_naming_the_flag() {
    let (id, key, secret) = pusher_mock::APP;
    let app = format!("--app-id {id} --app-key {key} --app-secret {secret}");
    for (line, says) in [
        (format!("channels {app} --api-url ftp://x"), "--api-url ftp://x: unsupported URL scheme"),
        (format!("channels {app} --subscriber-url http://127.0.0.1:1/"), "--subscriber-url http://127.0.0.1:1/: "),
        (format!("channels {app} --via client-events --api-url http://127.0.0.1:1"), "--api-url only applies"),
        ("broadcast --publish-url https://127.0.0.1:1/".to_string(), "--publish-url https://127.0.0.1:1/: "),
    ] {
        let output = util::loadtest(&format!("{line} -q"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{line}: {}", util::printed(&output));
        assert!(stderr.contains(&format!("loadtest: error: {says}")), "{line}: {stderr}");
    }
    // A node that is not there is named by its flag before anything runs.
    let server = util::chat(util::config(1));
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!("broadcast --url {url} --publish-url ws://127.0.0.1:1/ -c 2 -d 100ms -q"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", util::printed(&output));
    assert!(stderr.contains("cannot connect to 127.0.0.1:1 (--publish-url)"), "{stderr}");
    server.shutdown().expect("shutdown");
}
