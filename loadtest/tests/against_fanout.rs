//! Verifies that a small `loadtest broadcast` against an in-process fanout server counts every delivery exactly.

mod util;

#[test]
fn broadcast_counts_are_exact_against_fanout() {
    let server = util::chat(util::config(2));
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "broadcast --url {url} -c 40 --publishers 4 --rate 200 -d 1s --warmup 200ms --settle 100ms --drain 1s \
         --threads 2 --json -q"
    ));
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    let report = util::json(&output);
    let sent = util::assert_chat_broadcast_complete(&report);
    // Each connection's first frame was the server's welcome text.
    assert_eq!(report["broadcast"]["other"].as_u64(), Some(40));
    assert_eq!(report["connections"]["opened"].as_u64(), Some(40));
    // The server saw every measured message (warm-up messages come on top).
    assert!(server.handle().stats().messages_in >= sent);
    server.shutdown().expect("shutdown");
}
