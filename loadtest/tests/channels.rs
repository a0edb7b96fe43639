//! Verifies that `loadtest channels` subscribes, signs, publishes and counts every delivery
//! exactly against a minimal Pusher server, through the HTTP API (kept alive, or closed by the
//! server after each answer) and through client events, at a fixed rate and in a short
//! saturation search.

mod pusher_mock;
mod util;

use std::sync::atomic::Ordering::Relaxed;

fn run(mock: &pusher_mock::MockPusher, args: &str) -> (std::process::Output, serde_json::Value) {
    let (id, key, secret) = pusher_mock::APP;
    let output = util::loadtest(&format!(
        "channels --url ws://{} --app-id {id} --app-key {key} --app-secret {secret} --settle 300ms --drain 1s \
         -t 2 --json -q {args}",
        mock.addr
    ));
    let report = util::json(&output);
    (output, report)
}

#[test]
fn api_events_reach_every_subscriber_once_and_in_order() {
    let mock = pusher_mock::start();
    let (output, report) = run(&mock, "-c 20 --channels 4 --rate 200 -d 1s --warmup 200ms --publishers 2");
    assert!(output.status.success(), "{}", util::printed(&output));
    assert_eq!(mock.seen.bad_signatures.load(Relaxed), 0, "every API request is signed right");
    assert_eq!(report["subscriptions"]["counted"].as_u64(), Some(20));
    let step = &report["steps"][0];
    // 200 events/s for 1 s, each to the 5 subscribers of its channel.
    assert_eq!(step["sent"].as_u64(), Some(200), "{step}");
    assert_eq!(step["accepted"].as_u64(), Some(200));
    assert_eq!(step["expected"].as_u64(), Some(1000));
    assert_eq!(step["received"], step["expected"], "{}", util::printed(&output));
    for counter in ["lost", "duplicates", "reordered", "errors"] {
        assert_eq!(step[counter].as_u64(), Some(0), "{counter}: {step}");
    }
    assert_eq!(step["sustained"], true);
    assert_eq!(report["misrouted"].as_u64(), Some(0));
    let answers = &report["api"]["answers"];
    assert_eq!(answers["200"].as_u64(), Some(mock.seen.api_events.load(Relaxed)), "{answers}");
}

#[test]
fn a_server_closing_api_connections_after_each_answer_loses_nothing() {
    let mock = pusher_mock::start_with(true);
    let (output, report) = run(&mock, "-c 10 --channels 5 --rate 100 -d 1s --warmup 200ms --pipeline 8");
    assert!(output.status.success(), "{}", util::printed(&output));
    let step = &report["steps"][0];
    assert_eq!(step["sent"].as_u64(), Some(100), "{step}");
    assert_eq!(step["accepted"].as_u64(), Some(100), "{step}");
    assert_eq!(step["received"], step["expected"], "{}", util::printed(&output));
    assert_eq!(
        report["api"]["unanswered"].as_u64(),
        Some(0),
        "pipelined requests the server never read are sent again"
    );
    let closed = report["api"]["closed_by_server"].as_u64().expect("closed_by_server");
    assert_eq!(Some(closed), report["api"]["answers"]["200"].as_u64(), "one connection per answer");
    assert!(report["warnings"].to_string().contains("no keep-alive"), "{}", report["warnings"]);
}

#[test]
fn client_events_are_signed_private_subscriptions_and_counted() {
    let mock = pusher_mock::start();
    let args = "-c 12 --channels 3 --via client-events --publishers 6 --rate 60 -d 1s --warmup 200ms";
    let (output, report) = run(&mock, args);
    assert!(output.status.success(), "{}", util::printed(&output));
    assert_eq!(mock.seen.bad_auth.load(Relaxed), 0, "private subscriptions are signed right");
    assert_eq!(report["connections"]["opened"].as_u64(), Some(18), "12 subscribers and 6 publishers");
    assert_eq!(report["subscriptions"]["publishers"].as_u64(), Some(6));
    let step = &report["steps"][0];
    // 60 events/s for 1 s, each to the 4 subscribers of its channel.
    assert_eq!(step["sent"].as_u64(), Some(60), "{step}");
    assert_eq!(step["expected"].as_u64(), Some(240));
    assert_eq!(step["received"], step["expected"], "{}", util::printed(&output));
    for counter in ["lost", "duplicates", "reordered"] {
        assert_eq!(step[counter].as_u64(), Some(0), "{counter}: {step}");
    }
}

#[test]
fn a_saturation_search_reports_its_steps_and_the_half_load_latency() {
    let mock = pusher_mock::start();
    let args = "-c 8 --channels 2 --start-rate 50 --search-steps 2 --step-duration 500ms --step-gap 300ms";
    let (output, report) = run(&mock, args);
    assert!(output.status.success(), "{}", util::printed(&output));
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "two search steps and the half-load step: {report}");
    assert_eq!(steps[2]["role"], "half load");
    let saturation = &report["saturation"];
    let decisions = saturation["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 3, "every step is judged: {saturation}");
    // Each step drained at once, so the next started then, not a whole --step-gap later.
    for d in decisions {
        assert_eq!(d["drained"], true, "{d}");
        assert!(d["waited_ms"].as_f64().is_some_and(|w| w < 250.0), "{d}");
    }
    // The mock keeps up with 50 and 100 events/s: both sustained, half load at 50.
    assert_eq!(steps[0]["rate"].as_f64(), Some(50.0));
    assert_eq!(steps[1]["rate"].as_f64(), Some(100.0), "{report}");
    assert_eq!(saturation["sustained_rate"].as_f64(), Some(100.0), "{report}");
    assert_eq!(steps[2]["rate"].as_f64(), Some(50.0));
    assert!(saturation["half_load_p99_ms"].as_f64().is_some(), "{saturation}");
}
