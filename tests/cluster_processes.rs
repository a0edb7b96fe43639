//! Three `fanout` processes on one real `redis-server`, as users run them:
//! pusher-js clients on different nodes get every event exactly once,
//! whichever node it entered by (`tests/clients/cluster.mjs`), directly and
//! through HAProxy with `deploy/haproxy.cfg`; and a node killed with
//! `kill -9` takes its presence members along within the heartbeat timeout.

mod child;
mod pusher_client;
mod pusher_scripts;
mod redis_process;
mod util;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use child::Fanout;
use fanout::pusher::auth;
use pusher_scripts::{ready, run_script};
use redis_process::RedisProcess;
use serde_json::json;

use pusher_scripts::APP;

/// A node of the cluster on `redis`.
fn node(redis: &RedisProcess) -> Fanout {
    let url = redis.url();
    let mut args = pusher_scripts::app_args();
    args.extend(["--app-client-events", "--redis", &url]);
    Fanout::spawn(&args, None)
}

fn ready_line(node: &Fanout) -> String {
    let request = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    String::from_utf8_lossy(&util::raw_exchange(node.addr, request.as_bytes())).into_owned()
}

fn cluster(redis: &RedisProcess) -> Vec<Fanout> {
    let nodes: Vec<Fanout> = (0..3).map(|_| node(redis)).collect();
    for node in &nodes {
        util::wait_until("a node to join Redis", || ready_line(node).contains("redis: connected"));
    }
    nodes
}

fn script_env(ports: [u16; 3]) -> Vec<(&'static str, String)> {
    let mut env = pusher_scripts::app_env(ports[0]);
    env.push(("PUSHER_PORTS", ports.map(|p| p.to_string()).join(",")));
    env
}

#[test]
fn pusher_js_clients_on_three_nodes_get_each_event_once() {
    let Some(node_js) = ready(false) else { return };
    let redis = RedisProcess::start();
    let nodes = cluster(&redis);
    run_script(
        &node_js,
        "cluster.mjs",
        &script_env([nodes[0].addr.port(), nodes[1].addr.port(), nodes[2].addr.port()]),
    );
}

/// HAProxy running `deploy/haproxy.cfg` in front of `nodes`, killed when dropped.
struct Balancer {
    child: Child,
    port: u16,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn balancer(nodes: &[Fanout]) -> Balancer {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&config).env("FANOUT_LB_BIND", format!("127.0.0.1:{port}"));
    for (i, node) in nodes.iter().enumerate() {
        command.env(format!("FANOUT_NODE_{}", i + 1), node.addr.to_string());
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haproxy (Debian's haproxy package; .ci/run installs it)");
    let mut balancer = Balancer { child, port };
    let deadline = Instant::now() + util::PATIENCE;
    let lb = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let request = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if std::net::TcpStream::connect(lb).is_ok()
            && String::from_utf8_lossy(&util::raw_exchange(lb, request.as_bytes())).contains("ready")
        {
            return balancer;
        }
        if Instant::now() >= deadline || matches!(balancer.child.try_wait(), Ok(Some(_))) {
            let mut balancer = balancer;
            let _ = balancer.child.kill();
            let mut said = String::new();
            if let Some(mut stderr) = balancer.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
            }
            panic!("haproxy did not come up on port {port}:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_same_cluster_behind_haproxy_serves_clients_that_land_on_any_node() {
    let Some(node_js) = ready(false) else { return };
    let redis = RedisProcess::start();
    let nodes = cluster(&redis);
    let lb = balancer(&nodes);
    run_script(&node_js, "cluster.mjs", &script_env([lb.port; 3]));
    // leastconn spread the scenario's clients: every node served some.
    for node in &nodes {
        let metrics = String::from_utf8_lossy(&util::raw_exchange(
            node.addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ))
        .into_owned();
        let accepted = metrics
            .lines()
            .find(|l| l.starts_with("fanout_connections_accepted_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("fanout_connections_accepted_total in {metrics}"));
        assert!(accepted > 0, "a node behind HAProxy got no client");
    }
}

#[test]
fn a_node_killed_with_sigkill_takes_its_presence_members_along() {
    let redis = RedisProcess::start();
    let nodes = cluster(&redis);
    let join = |node: &Fanout, user: &str| {
        // The helpers sign with key `app-key` and secret `app-secret`: this app's.
        let (mut client, socket_id) = pusher_client::connect(node.addr);
        let channel_data = json!({"user_id": user}).to_string();
        let signed = auth::channel_auth_string(APP[1], APP[2], &socket_id, "presence-room", Some(&channel_data));
        let joined = pusher_client::subscribe(&mut client, "presence-room", Some(signed), Some(&channel_data));
        assert_eq!(joined["event"], "pusher_internal:subscription_succeeded", "{joined}");
        client
    };
    let mut observer = join(&nodes[0], "observer");
    let _doomed = join(&nodes[2], "doomed");
    let added = pusher_client::event(&mut observer);
    assert_eq!(
        (added["event"].as_str(), pusher_client::data(&added)["user_id"].as_str()),
        (Some("pusher_internal:member_added"), Some("doomed"))
    );

    nodes[2].signal(libc::SIGKILL);
    let killed = Instant::now();
    let removed = pusher_client::event(&mut observer);
    assert_eq!(removed["event"], "pusher_internal:member_removed", "{removed}");
    assert_eq!(pusher_client::data(&removed)["user_id"], "doomed");
    // Heartbeats every second, gone after three missed (plus a beat to notice).
    assert!(killed.elapsed() < Duration::from_secs(6), "noticed after {:?}", killed.elapsed());
    let (status, users) = pusher_client::api(nodes[1].addr, "GET", "/apps/12345/channels/presence-room/users", &[], "");
    assert_eq!((status, users), (200, json!({"users": [{"id": "observer"}]})));
}
