//! Verifies that `loadtest overload` reports one JSON object per step with offered rates that
//! follow the multipliers, delivers without loss at the lowest step, finds a capacity by probing
//! when none is given, and reports connections the server closes as closes, not as loss.

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fanout::RunningServer;

/// A chat server that loses nothing: a 1 GiB send queue per connection before the slow-consumer
/// policy applies.
fn lossless() -> RunningServer {
    let mut config = util::config(2);
    config.max_backpressure = 1 << 30;
    util::chat(config)
}

#[test]
fn steps_follow_the_multipliers_and_lose_nothing_at_the_lowest() {
    let server = lossless();
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "overload --url {url} -c 50 --publishers 2 --capacity 400 --steps 0.5,1,2 --step-duration 1s -t 2 \
         --settle 200ms --drain 1s --json -q"
    ));
    assert!(output.status.success(), "{}", util::printed(&output));
    let report = util::json(&output);
    assert_eq!(report["capacity"]["found_by"], "given");
    assert_eq!(report["capacity"]["msgs_per_sec"].as_f64(), Some(400.0));
    let steps = report["steps"].as_array().expect("steps array");
    assert_eq!(steps.len(), 3, "one object per step: {report}");
    for (step, m) in steps.iter().zip([0.5, 1.0, 2.0]) {
        assert_eq!(step["multiplier"].as_f64(), Some(m));
        assert_eq!(step["offered_msgs_per_sec"].as_f64(), Some(400.0 * m));
        // A 1 s step at m × 400 msg/s is exactly that many scheduled messages.
        assert_eq!(step["scheduled"].as_u64(), Some((400.0 * m) as u64), "{step}");
        assert!(step["p99_ms"].as_f64().is_some(), "{step}");
    }
    let closed: u64 = steps.iter().map(|s| s["closed"].as_u64().unwrap_or(0)).sum();
    assert_eq!(closed, 0, "the server closed connections, so loss cannot be judged: {report}");
    let lowest = &steps[0];
    assert!(lowest["delivered_deliveries_per_sec"].as_f64().is_some_and(|d| d > 0.0), "{lowest}");
    assert_eq!(lowest["sent"], lowest["scheduled"], "{lowest}");
    // 49 receivers per message: every connection but the publisher.
    assert_eq!(lowest["expected"].as_u64(), Some(200 * 49), "{lowest}");
    for counter in ["lost", "duplicates", "reordered", "unsent"] {
        assert_eq!(lowest[counter].as_u64(), Some(0), "{counter} in {lowest}");
    }
    assert_eq!(report["counted_connections"].as_u64(), Some(50));
    server.shutdown().expect("shutdown");
}

#[test]
fn without_a_capacity_the_probe_finds_one_and_the_steps_use_it() {
    let server = lossless();
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "overload --url {url} -c 20 --publishers 2 --probe-duration 1s --steps 0.5,1 --step-duration 500ms \
         --settle 200ms --drain 1s --json -q"
    ));
    assert!(output.status.success(), "{}", util::printed(&output));
    let report = util::json(&output);
    let capacity = &report["capacity"];
    assert_eq!(capacity["found_by"], "probe", "{capacity}");
    let found = capacity["msgs_per_sec"].as_f64().expect("capacity");
    assert!(found > 0.0, "{capacity}");
    assert_eq!(capacity["probe_receivers"].as_u64(), Some(20));
    assert!(capacity["how"].as_str().is_some_and(|h| h.contains("probe")));
    let steps = report["steps"].as_array().expect("steps array");
    assert_eq!(steps.len(), 2);
    for (step, m) in steps.iter().zip([0.5, 1.0]) {
        let offered = step["offered_msgs_per_sec"].as_f64().expect("offered");
        assert!((offered - m * found).abs() < 1e-6 * found, "{offered} vs {m} x {found}");
    }
    server.shutdown().expect("shutdown");
}

#[test]
fn connections_the_server_closes_are_reported_as_closes_not_loss() {
    let server = lossless();
    let url = util::chat_url(&server);
    let child = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(
            format!(
                "overload --url {url} -c 30 --publishers 2 --capacity 300 --steps 0.5,1,1.5 --step-duration 1s \
                 --settle 200ms --drain 1s --json -q"
            )
            .split_whitespace(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadtest");
    // With --capacity there is no probe and no warm-up: the first relayed message means the
    // first step has begun. Then close five receivers the way a slow-consumer policy would.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.handle().stats().messages_in == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut ids = server.handle().connections();
    ids.sort_by_key(|id| id.as_u64());
    // The last connections to open are receivers: publishers are connections 0 and 1.
    let victims: Vec<_> = ids.iter().rev().take(5).collect();
    for id in &victims {
        assert!(server.handle().disconnect(**id, 1008, "slow consumer"), "{id:?} was open");
    }
    let output = child.wait_with_output().expect("loadtest finished");
    assert!(output.status.success(), "server closes are a result, not a failure: {}", util::printed(&output));
    let report = util::json(&output);
    let steps = report["steps"].as_array().expect("steps array");
    let closes_1008: u64 = steps.iter().map(|s| s["close_codes"]["1008"].as_u64().unwrap_or(0)).sum();
    assert_eq!(closes_1008, 5, "{report}");
    assert_eq!(report["surviving_connections"].as_u64(), Some(25), "{report}");
    let mut open = report["counted_connections"].as_u64().expect("counted");
    assert_eq!(open, 30);
    for step in steps {
        assert_eq!(step["receivers"].as_u64(), Some(open), "closed receivers leave later steps: {step}");
        open -= step["closed"].as_u64().expect("closed");
        for counter in ["lost", "duplicates", "reordered"] {
            assert_eq!(step[counter].as_u64(), Some(0), "{counter} in {step}");
        }
        assert!(step["expected"].as_u64().is_some_and(|e| e > 0), "{step}");
    }
    server.shutdown().expect("shutdown");
}
