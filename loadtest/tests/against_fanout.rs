//! Verifies that a small `loadtest broadcast` against an in-process fanout server counts every delivery exactly.

use std::process::Command;
use std::time::Duration;

use fanout::{ChatHandler, Config, Server};

#[test]
fn broadcast_counts_are_exact_against_fanout() {
    let mut config = Config::default();
    config.bind = "127.0.0.1:0".parse().expect("literal address");
    config.workers = 2;
    config.ping_interval = None;
    config.idle_timeout = None;
    config.shutdown_timeout = Duration::from_secs(2);
    let server = Server::bind(config, ChatHandler::default()).expect("bind").start().expect("start");
    let url = format!("ws://{}/chat", server.local_addr());
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["broadcast", "--url", &url, "-c", "40", "--publishers", "4", "--rate", "200"])
        .args(["-d", "1s", "--warmup", "200ms", "--settle", "100ms", "--drain", "1s", "--threads", "2", "--json", "-q"])
        .output()
        .expect("run loadtest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "loadtest failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("loadtest prints JSON");
    let broadcast = &report["broadcast"];
    let sent = broadcast["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "only {sent} messages were sent");
    // Chat relays to every connection but the sender: 39 receivers per message.
    assert_eq!(broadcast["expected"].as_u64(), Some(sent * 39));
    assert_eq!(broadcast["received"], broadcast["expected"], "{stdout}");
    for counter in ["lost", "duplicates", "reordered", "self_received"] {
        assert_eq!(broadcast[counter].as_u64(), Some(0), "{counter} in {stdout}");
    }
    // Each connection's first frame was the server's welcome text.
    assert_eq!(broadcast["other"].as_u64(), Some(40));
    assert_eq!(report["connections"]["opened"].as_u64(), Some(40));
    // The server saw every measured message (warm-up messages come on top).
    assert!(server.handle().stats().messages_in >= sent);
    server.shutdown().expect("shutdown");
}
