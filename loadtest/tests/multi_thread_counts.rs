//! Verifies that multi-thread broadcast runs at a high rate count every delivery exactly: no loss,
//! duplicates or reordering against a server configured to lose nothing, run after run.

mod util;

/// Runs of the same scenario: the miscount this guards against (a receiving thread that starts
/// counting after publishers on another thread sent measured messages) showed up in roughly one
/// run in ten, so one run proves little.
const RUNS: usize = 7;

#[test]
fn multi_thread_broadcast_loses_nothing_run_after_run() {
    let mut config = util::config(2);
    // Lossless by configuration: the send queue may grow to 1 GiB before the slow-consumer policy
    // applies, so any loss reported is the client miscounting.
    config.max_backpressure = 1 << 30;
    let server = util::chat(config);
    let url = util::chat_url(&server);
    for run in 0..RUNS {
        let closed_before = server.handle().stats().slow_consumers_closed;
        let output = util::loadtest(&format!(
            "broadcast --url {url} -c 30 --publishers 5 --rate 20000 -t 2 -d 300ms --warmup 100ms \
             --settle 300ms --drain 1s --json -q"
        ));
        let report = util::json(&output);
        let closed = server.handle().stats().slow_consumers_closed - closed_before;
        let ended = &report["connections"]["ended_early"];
        assert!(
            closed == 0 && ended.as_object().is_none_or(|m| m.is_empty()),
            "run {run}: the server closed clients ({closed} as slow consumers; client saw {ended}), so this run \
             cannot show whether loadtest counts right: {}",
            util::printed(&output)
        );
        assert!(output.status.success(), "run {run}: {}", util::printed(&output));
        let b = &report["broadcast"];
        let sent = b["sent"].as_u64().expect("sent");
        assert!(sent > 1000, "run {run}: only {sent} messages sent");
        assert_eq!(b["unsent"].as_u64(), Some(0), "run {run}: {}", util::printed(&output));
        // On a loaded machine a handshake may finish after measuring began; such a connection is
        // left out on both sides of the count, so the check stays exact.
        let receivers = report["connections"]["open_at_measure"].as_u64().expect("open_at_measure");
        assert!(receivers >= 20, "run {run}: only {receivers} of 30 connections open when measuring began");
        assert_eq!(b["expected"].as_u64(), Some(sent * (receivers - 1)), "run {run}");
        for counter in ["lost", "duplicates", "reordered"] {
            assert_eq!(b[counter].as_u64(), Some(0), "run {run}: {counter} in {}", util::printed(&output));
        }
        assert_eq!(b["received"], b["expected"], "run {run}");
    }
    server.shutdown().expect("shutdown");
}
