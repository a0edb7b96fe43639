//! Shared helpers for the loadtest integration tests: an in-process fanout server and a way to
//! run the `loadtest` binary against it and read its JSON.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};
use std::time::Duration;

use fanout::service::{Service, ServiceConfig};
use fanout::{ChatHandler, Config, EchoHandler, RunningServer, Server};

/// A server configuration for tests: port 0, no pings or idle timeouts to disturb counts.
pub fn config(workers: usize) -> Config {
    let mut config = Config::default();
    config.bind = "127.0.0.1:0".parse().expect("literal address");
    config.workers = workers;
    config.ping_interval = None;
    config.idle_timeout = None;
    config.shutdown_timeout = Duration::from_secs(2);
    config
}

/// Starts the chat app (relay to everyone but the sender) with `config`.
pub fn chat(config: Config) -> RunningServer {
    Server::bind(config, ChatHandler::default()).expect("bind").start().expect("start")
}

/// Starts fanout's default service (chat, rooms, Socket.IO on `/socket.io/`; no Pusher app), as
/// the binary runs it without flags.
pub fn service(config: Config) -> RunningServer {
    let service = Service::new(ServiceConfig::default()).expect("a service without a history directory");
    Server::bind(config, service).expect("bind").start().expect("start")
}

/// Starts the echo app (every message back to its sender only) with `config`.
pub fn echo(config: Config) -> RunningServer {
    Server::bind(config, EchoHandler).expect("bind").start().expect("start")
}

/// The `/chat` URL of a running server.
pub fn chat_url(server: &RunningServer) -> String {
    format!("ws://{}/chat", server.local_addr())
}

/// Runs `loadtest` with the whitespace-separated arguments in `line` and returns its output.
pub fn loadtest(line: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest")).args(line.split_whitespace()).output().expect("run loadtest")
}

/// Parses the JSON report on stdout, failing the test with stdout and stderr if it is not JSON.
pub fn json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("loadtest did not print JSON ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr))
    })
}

/// Everything the run printed, for assertion messages.
pub fn printed(output: &Output) -> String {
    format!(
        "status {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks a chat `broadcast` report over 40 connections: at least 150
/// messages sent, each relayed to the 39 others, nothing lost, duplicated,
/// reordered or echoed to its sender. Gives the messages sent.
pub fn assert_chat_broadcast_complete(report: &serde_json::Value) -> u64 {
    let broadcast = &report["broadcast"];
    let sent = broadcast["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "only {sent} messages were sent");
    // Chat relays to every connection but the sender: 39 receivers per message.
    assert_eq!(broadcast["expected"].as_u64(), Some(sent * 39));
    assert_eq!(broadcast["received"], broadcast["expected"], "{report}");
    for counter in ["lost", "duplicates", "reordered", "self_received"] {
        assert_eq!(broadcast[counter].as_u64(), Some(0), "{counter} in {report}");
    }
    sent
}
