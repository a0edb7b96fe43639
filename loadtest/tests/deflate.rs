//! Verifies `--deflate` against an in-process fanout server (which agrees to permessage-deflate
//! by default): every connection agrees, the relayed JSON messages arrive compressed, and once
//! inflated every delivery is counted exactly, as in a plain run.

mod util;

#[test]
fn compressed_broadcast_counts_every_delivery() {
    let config = util::config(2);
    assert!(config.compression, "fanout compresses by default");
    let server = util::chat(config);
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "broadcast --url {url} -c 20 --publishers 2 --rate 200 --size 1024 --payload json --deflate -d 1s \
         --warmup 200ms --settle 100ms --drain 1s --threads 2 --json -q"
    ));
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    let report = util::json(&output);
    let broadcast = &report["broadcast"];
    let sent = broadcast["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "only {sent} messages were sent");
    assert_eq!(broadcast["payload"], "json");
    // Chat relays to every connection but the sender: 19 receivers per message.
    assert_eq!(broadcast["expected"].as_u64(), Some(sent * 19));
    assert_eq!(broadcast["received"], broadcast["expected"], "{report}");
    for counter in ["lost", "duplicates", "reordered", "self_received"] {
        assert_eq!(broadcast[counter].as_u64(), Some(0), "{counter} in {report}");
    }
    let connections = &report["connections"];
    assert_eq!(connections["opened"].as_u64(), Some(20));
    let deflate = &connections["permessage_deflate"];
    assert_eq!(deflate["agreed"].as_u64(), Some(20), "{report}");
    assert_eq!(deflate["not_compressed"].as_u64(), Some(0));
    // Every relayed message came compressed (warm-up and drain included), and JSON shrinks.
    let compressed = deflate["compressed_messages"].as_u64().expect("compressed_messages");
    assert!(compressed >= sent * 19, "{compressed} compressed messages for {} deliveries", sent * 19);
    assert_eq!(deflate["inflated_bytes"].as_u64(), Some(compressed * 1024));
    assert!(deflate["compressed_bytes"].as_u64().expect("bytes") * 2 < compressed * 1024, "{deflate}");
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("deflate"), "{warnings}");
    server.shutdown().expect("shutdown");
}

#[test]
fn the_table_says_deflate_was_agreed_on_every_connection() {
    let server = util::chat(util::config(1));
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "broadcast --url {url} -c 5 --rate 100 --size 1024 --payload json --deflate -d 300ms --warmup 100ms \
         --settle 100ms --drain 500ms -q"
    ));
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("permessage-deflate agreed on 5 of 5 connections; "), "{table}");
    assert!(table.contains("messages arrived compressed"), "{table}");
    server.shutdown().expect("shutdown");
}

#[test]
fn a_server_without_compression_leaves_connections_uncompressed() {
    let mut config = util::config(1);
    config.compression = false;
    let server = util::chat(config);
    let url = util::chat_url(&server);
    let output = util::loadtest(&format!(
        "broadcast --url {url} -c 4 --rate 100 --size 512 --payload json --deflate -d 300ms --warmup 100ms \
         --settle 100ms --drain 500ms -q --json"
    ));
    // Not agreeing is allowed: the run works, uncompressed, and says so.
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    let report = util::json(&output);
    assert_eq!(report["broadcast"]["received"], report["broadcast"]["expected"], "{report}");
    let deflate = &report["connections"]["permessage_deflate"];
    assert_eq!((deflate["agreed"].as_u64(), deflate["not_compressed"].as_u64()), (Some(0), Some(4)), "{report}");
    assert_eq!(deflate["compressed_messages"].as_u64(), Some(0));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("did not agree to permessage-deflate on 4 of 4 connections"), "{warnings}");
    server.shutdown().expect("shutdown");
}
