//! Verifies that clients nobody here wrote work against the `fanout`
//! binary unchanged: pusher-js and Laravel Echo in Node, the npm `pusher`
//! server SDK (auth signatures, triggers, webhook checks) and the PyPI
//! `pusher` SDK. Each scenario is a script under `tests/clients/` that
//! exits 0 only when every check it makes passed (see its README).
//!
//! The scripts need `tests/clients/install` to have run (`.ci/run` does).
//! Without the packages a test fails under CI (`CI` set); elsewhere it
//! prints a note and skips, so a developer without Node can run the suite.

mod child;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use child::Fanout;

const APP: [&str; 3] = ["12345", "app-key", "app-secret"];

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The program to run the scripts with, or `None` (after a note) when the
/// packages are missing outside CI.
fn ready(python: bool) -> Option<String> {
    let node_modules = clients_dir().join("node_modules/pusher-js");
    let interpreter =
        if python { std::env::var("FANOUT_PYTHON").unwrap_or_else(|_| "python3".into()) } else { "node".into() };
    let probe = if python {
        Command::new(&interpreter).args(["-c", "import pusher"]).output().map(|o| o.status.success()).unwrap_or(false)
    } else {
        Command::new(&interpreter).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
    };
    if probe && node_modules.is_dir() {
        return Some(interpreter);
    }
    let hint = "run tests/clients/install (with FANOUT_PYTHON set for the Python SDK); .ci/run does";
    if std::env::var_os("CI").is_some() {
        panic!("the Pusher client packages are missing ({interpreter}, {}): {hint}", node_modules.display());
    }
    eprintln!("note: skipping a real-client Pusher test: packages missing; {hint}");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts fanout with the scripts' app and runs `script` against it.
fn run(script: &str) {
    let python = script.ends_with(".py");
    let Some(interpreter) = ready(python) else { return };
    let webhook_port = free_port().to_string();
    let webhook = format!("http://127.0.0.1:{webhook_port}/hooks");
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--app-id",
        APP[0],
        "--app-key",
        APP[1],
        "--app-secret",
        APP[2],
        "--app-client-events",
        "--app-webhook",
        &webhook,
    ];
    let server = Fanout::spawn(&args, None);
    let output = Command::new(interpreter)
        .arg(clients_dir().join(script))
        .env("PUSHER_HOST", "127.0.0.1")
        .env("PUSHER_PORT", server.addr.port().to_string())
        .env("PUSHER_APP_ID", APP[0])
        .env("PUSHER_APP_KEY", APP[1])
        .env("PUSHER_APP_SECRET", APP[2])
        .env("WEBHOOK_PORT", &webhook_port)
        .env("NODE", "node")
        .output()
        .expect("run the client script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(!stdout.contains("FAIL"), "{script}:\n{stdout}");
}

#[test]
fn pusher_js_public_channels_and_sdk_triggers() {
    run("public.mjs");
}

#[test]
fn pusher_js_private_and_encrypted_channels_and_client_events() {
    run("private.mjs");
}

#[test]
fn pusher_js_presence_members_once_per_user() {
    run("presence.mjs");
}

#[test]
fn laravel_echo_channels_presence_and_whispers() {
    run("echo.mjs");
}

#[test]
fn pusher_js_sign_in_server_to_user_and_watchlist() {
    run("signin.mjs");
}

#[test]
fn pusher_js_cache_channels_replay_the_last_event_or_say_cache_miss() {
    run("cache.mjs");
}

#[test]
fn pusher_error_codes_reach_the_client() {
    run("errors.mjs");
}

#[test]
fn webhooks_arrive_signed_delayed_and_cancelled_on_rejoin() {
    run("webhooks.mjs");
}

#[test]
fn the_python_sdk_triggers_and_inspects_channels() {
    run("sdk_python.py");
}
