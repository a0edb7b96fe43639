//! Verifies `loadtest` over `wss://` against an in-process fanout server with TLS: a broadcast
//! trusting the test CA counts every delivery exactly, the channels scenario publishes through
//! the HTTP API over https, `--insecure` needs no CA, and a missing or wrong CA is refused with
//! a line that says what to do.

mod util;

use std::path::PathBuf;

use fanout::pusher::{App, Apps};
use fanout::service::{Service, ServiceConfig};
use fanout::{Config, RunningServer, Server};

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/ca.pem");
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/server1.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/server1-key.pem");

/// `util::config` serving TLS with the test certificate (valid for localhost and 127.0.0.1).
fn tls_config(workers: usize) -> Config {
    let mut config = util::config(workers);
    config.tls = Some(fanout::tls::TlsFiles { cert: PathBuf::from(CERT), key: PathBuf::from(KEY) });
    config
}

fn wss_chat_url(server: &RunningServer) -> String {
    format!("wss://{}/chat", server.local_addr())
}

#[test]
fn broadcast_over_wss_counts_every_delivery() {
    let server = util::chat(tls_config(2));
    let url = wss_chat_url(&server);
    let output = util::loadtest(&format!(
        "broadcast --url {url} --ca-file {CA} -c 40 --publishers 4 --rate 200 -d 1s --warmup 200ms --settle 200ms \
         --drain 1s --threads 2 --json -q"
    ));
    assert!(output.status.success(), "loadtest failed: {}", util::printed(&output));
    let report = util::json(&output);
    assert_eq!(report["url"].as_str(), Some(url.as_str()));
    let sent = util::assert_chat_broadcast_complete(&report);
    assert_eq!(report["connections"]["opened"].as_u64(), Some(40));
    assert!(report["handshake_ms"]["count"].as_u64() == Some(40), "{}", report["handshake_ms"]);
    assert!(server.handle().stats().messages_in >= sent);
    server.shutdown().expect("shutdown");
}

#[test]
fn channels_over_wss_publishes_through_https() {
    let (id, key, secret) = ("42", "tls-key", "tls-secret");
    let apps = Apps::single(App::new(id, key, secret));
    let service = Service::new(ServiceConfig { apps, ..ServiceConfig::default() }).expect("service");
    let server = Server::bind(tls_config(2), service).expect("bind").start().expect("start");
    let output = util::loadtest(&format!(
        "channels --url wss://{}/ --ca-file {CA} --app-id {id} --app-key {key} --app-secret {secret} -c 20 \
         --channels 4 --rate 200 -d 1s --warmup 200ms --publishers 2 --settle 300ms --drain 1s -t 2 --json -q",
        server.local_addr()
    ));
    assert!(output.status.success(), "{}", util::printed(&output));
    let report = util::json(&output);
    assert_eq!(report["subscriptions"]["counted"].as_u64(), Some(20), "{report}");
    let step = &report["steps"][0];
    assert_eq!(step["sent"].as_u64(), Some(200), "{step}");
    // Accepted over https: the API requests went through TLS on the same port.
    assert_eq!(step["accepted"].as_u64(), Some(200), "{report}");
    assert_eq!(step["received"], step["expected"], "{step}");
    assert_eq!(step["expected"].as_u64(), Some(1000));
    assert_eq!(report["api"]["answers"]["200"].as_u64().map(|n| n >= 200), Some(true), "{}", report["api"]);
    server.shutdown().expect("shutdown");
}

#[test]
fn insecure_accepts_the_certificate_without_a_ca() {
    let server = util::chat(tls_config(1));
    // `localhost`: the server name is checked by nobody, but still sent as SNI.
    let url = format!("wss://localhost:{}/chat", server.local_addr().port());
    let output = util::loadtest(&format!("connect --url {url} --insecure -c 5 -d 200ms --json -q"));
    assert!(output.status.success(), "{}", util::printed(&output));
    assert_eq!(util::json(&output)["connections"]["opened"].as_u64(), Some(5));
    server.shutdown().expect("shutdown");
}

#[test]
fn wss_without_trust_or_with_the_wrong_ca_is_refused_in_one_line() {
    let server = util::chat(tls_config(1));
    let url = wss_chat_url(&server);
    let none = util::loadtest(&format!("connect --url {url} -c 2 -d 100ms -q"));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success());
    assert!(stderr.contains("--ca-file") && stderr.contains("--insecure"), "{stderr}");
    // The server's own certificate is not the CA that signed it.
    let wrong = util::loadtest(&format!("connect --url {url} --ca-file {CERT} -c 2 -d 100ms -q"));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(stderr.contains("TLS handshake with") && stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(stderr.contains("pass --ca-file"), "{stderr}");
    // ws:// to the TLS port: the server's plain-HTTP refusal, not a hang.
    let plain = util::loadtest(&format!("connect --url ws://{}/chat -c 2 -d 100ms --json -q", server.local_addr()));
    assert!(!plain.status.success(), "{}", util::printed(&plain));
    server.shutdown().expect("shutdown");
}
