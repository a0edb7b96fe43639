//! Verifies that `loadtest socketio` speaks Engine.IO v4 / Socket.IO v5 to an in-process fanout:
//! every socket connects (and joins its room), answers the server's pings, and every stamped
//! event reaches every other ready socket exactly once, in order, namespace-wide and in a room
//! of a custom namespace.

mod util;

use std::time::Duration;

/// Runs the scenario over 30 sockets with 3 publishers at 150 events/s; `extra` adds flags.
fn run(server: &fanout::RunningServer, extra: &str) -> serde_json::Value {
    let output = util::loadtest(&format!(
        "socketio --url ws://{} -c 30 --publishers 3 --rate 150 -d 1s --warmup 200ms --settle 200ms --drain 1s \
         --threads 2 --json -q {extra}",
        server.local_addr()
    ));
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    util::json(&output)
}

/// Every measured event reached the 29 other sockets, once, in order, and none its sender.
fn assert_every_event_reached_every_other_socket(report: &serde_json::Value) {
    let b = &report["broadcast"];
    let sent = b["sent"].as_u64().expect("sent");
    assert!(sent >= 140, "only {sent} events were sent: {report}");
    assert_eq!(b["receivers"].as_u64(), Some(29), "{report}");
    assert_eq!(b["expected"].as_u64(), Some(sent * 29));
    assert_eq!(b["received"], b["expected"], "{report}");
    for counter in ["lost", "duplicates", "reordered", "self_received", "unsent"] {
        assert_eq!(b[counter].as_u64(), Some(0), "{counter} in {report}");
    }
    let sio = &report["socketio"];
    for counter in ["sessions", "connected", "ready_at_measure"] {
        assert_eq!(sio[counter].as_u64(), Some(30), "{counter} in {sio}");
    }
    assert_eq!(sio["refusals"], serde_json::json!({}), "{sio}");
}

#[test]
fn namespace_events_reach_every_other_socket_exactly_once() {
    let server = util::service(util::config(2));
    let report = run(&server, "");
    assert_every_event_reached_every_other_socket(&report);
    assert_eq!(report["socketio"]["joined"].as_u64(), Some(0), "no room, no join");
    assert_eq!(report["broadcast"]["other"].as_u64(), Some(0), "{report}");
    server.shutdown().expect("shutdown");
}

#[test]
fn room_events_of_a_custom_namespace_reach_every_other_member_and_pings_are_answered() {
    let mut config = util::config(2);
    // Pings every 300 ms, and a socket silent for 1 s is closed: receivers only stay open
    // through the ~2.5 s run by answering.
    config.ping_interval = Some(Duration::from_millis(300));
    config.idle_timeout = Some(Duration::from_secs(1));
    let server = util::service(config);
    let report = run(&server, "--room lobby --namespace /live");
    assert_every_event_reached_every_other_socket(&report);
    let sio = &report["socketio"];
    assert_eq!((sio["joined"].as_u64(), sio["namespace"].as_str()), (Some(30), Some("/live")), "{sio}");
    assert!(sio["pings_answered"].as_u64().is_some_and(|n| n >= 30 * 4), "{sio}");
    assert_eq!(report["connections"]["ended_early"], serde_json::json!({}), "{report}");
    server.shutdown().expect("shutdown");
}

#[test]
fn a_server_that_is_not_socket_io_fails_the_run_with_a_reason() {
    // The echo app upgrades on every path but never sends an Engine.IO open packet.
    let server = util::echo(util::config(1));
    let output = util::loadtest(&format!(
        "socketio --url ws://{} -c 4 --rate 10 -d 300ms --warmup 100ms --settle 100ms --drain 100ms -q",
        server.local_addr()
    ));
    assert!(!output.status.success(), "{}", util::printed(&output));
    let printed = util::printed(&output);
    assert!(printed.contains("no socket finished the Socket.IO connect"), "{printed}");
    server.shutdown().expect("shutdown");
}
