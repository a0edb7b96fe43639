//! Verifies that inputs the fuzzer once crashed on are handled, and that every
//! input of the committed fuzz corpus still passes the fuzz targets' checks.
//!
//! The checks are the fuzz targets' own (`fuzz/src/`), included here so CI
//! replays the corpus on stable Rust without cargo-fuzz or nightly.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use fanout::ws::Decoder;
use std::fs;
use std::path::Path;

/// Every file under `fuzz/corpus/*/`; fails if there are none.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut inputs = Vec::new();
    for target in fs::read_dir(&root).expect("fuzz/corpus is readable") {
        for file in fs::read_dir(target.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            inputs.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    assert!(!inputs.is_empty(), "no corpus under {}", root.display());
    inputs
}

/// Runs `check` on every corpus input, naming the input that fails.
fn replay(check: fn(&[u8])) {
    for (name, input) in corpus() {
        if std::panic::catch_unwind(|| check(&input)).is_err() {
            panic!("corpus input {name} fails the check");
        }
    }
}

#[test]
fn every_corpus_input_passes_the_handshake_checks() {
    replay(checks::handshake::check);
}

#[test]
fn every_corpus_input_passes_the_decoder_checks() {
    replay(checks::decoder::check);
}

#[test]
fn every_corpus_input_passes_the_roundtrip_checks() {
    replay(checks::decoder_roundtrip::check);
}

/// Limit 16, fed in chunks of 16: a Ping announcing 85 bytes arrives in part.
/// The unfinished control frame is held whatever the message limit, which the
/// decoder's documented memory bound (then `max_message_size + 14`) left out.
#[test]
fn unfinished_ping_under_a_tiny_limit_stays_within_the_memory_bound() {
    let input = b"\xff\x78\x8d\x89\xd5\xff\x78\x8d\xff\xff\xff\x78\xff\xff\xff\x78\x8d\xff\x78\x8d";
    checks::decoder::check(input);

    // The same through the public API, with a Ping of 125 bytes of which 100 came.
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend_from_slice(&[0; 100]);
    let mut decoder = Decoder::new(16);
    let mut events = Vec::new();
    decoder.feed(&ping, &mut events).unwrap();
    assert!(events.is_empty() && !decoder.is_finished());
    assert!(decoder.buffered_bytes() > 16 + 14, "the partial Ping is held beyond the message limit");
    assert!(decoder.buffered_bytes() <= 2 * (16 + 139));
}
