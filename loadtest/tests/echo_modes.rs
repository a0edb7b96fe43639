//! Verifies that `loadtest echo` fails with a hint against a server that does not echo, and that
//! its open loop (`--rate`) sends exactly the scheduled messages and gets each one back.

mod util;

#[test]
fn echo_against_a_relay_server_fails_with_a_hint() {
    let server = util::chat(util::config(1));
    let url = util::chat_url(&server);
    for mode in ["--in-flight 2", "--rate 200"] {
        let output = util::loadtest(&format!(
            "echo --url {url} -c 3 {mode} -d 300ms --warmup 100ms --settle 100ms --drain 300ms -q --json"
        ));
        let report = util::json(&output);
        assert!(!output.status.success(), "{mode}: a run with no echo must fail: {}", util::printed(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no echo received") && stderr.contains("fanout --mode echo"), "{stderr}");
        assert_eq!(report["echo"]["no_echo"], true, "{mode}");
        assert_eq!(report["echo"]["round_trips"].as_u64(), Some(0));
    }
    server.shutdown().expect("shutdown");
}

#[test]
fn open_loop_echo_sends_on_schedule_and_counts_every_reply() {
    let server = util::echo(util::config(1));
    let url = format!("ws://{}/", server.local_addr());
    let output = util::loadtest(&format!(
        "echo --url {url} -c 10 --rate 2000 -t 2 -d 500ms --warmup 100ms --settle 100ms --drain 1s -q --json"
    ));
    assert!(output.status.success(), "{}", util::printed(&output));
    let echo = &util::json(&output)["echo"];
    // 2000 msg/s over a 0.5 s window: exactly 1000 scheduled sends, whatever the replies did.
    assert_eq!(echo["rate"].as_f64(), Some(2000.0));
    assert_eq!(echo["sent"].as_u64(), Some(1000), "{echo}");
    assert_eq!(echo["round_trips"].as_u64(), Some(1000), "{echo}");
    assert_eq!(echo["unanswered"].as_u64(), Some(0));
    assert_eq!(echo["no_echo"], false);
    assert_eq!(echo["rtt_ms"]["count"].as_u64(), Some(1000));
    server.shutdown().expect("shutdown");
}

#[test]
fn closed_loop_echo_reports_no_rate() {
    let server = util::echo(util::config(1));
    let url = format!("ws://{}/", server.local_addr());
    let output = util::loadtest(&format!(
        "echo --url {url} -c 4 --in-flight 2 -d 300ms --warmup 100ms --settle 100ms --drain 500ms -q --json"
    ));
    assert!(output.status.success(), "{}", util::printed(&output));
    let echo = &util::json(&output)["echo"];
    assert!(echo["rate"].is_null(), "{echo}");
    assert!(echo["round_trips"].as_u64().is_some_and(|n| n > 0), "{echo}");
    assert_eq!(echo["round_trips"], echo["sent"], "{echo}");
    server.shutdown().expect("shutdown");
}
