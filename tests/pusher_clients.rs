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
mod pusher_scripts;

use std::net::TcpListener;

use child::Fanout;
use pusher_scripts::{app_args, app_env, ready, run_script};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts fanout with the scripts' app and runs `script` against it.
fn run(script: &str) {
    let python = script.ends_with(".py");
    let Some(interpreter) = ready(python) else { return };
    let webhook_port = free_port().to_string();
    let webhook = format!("http://127.0.0.1:{webhook_port}/hooks");
    let mut args = app_args();
    args.extend(["--app-client-events", "--app-webhook", &webhook]);
    let server = Fanout::spawn(&args, None);
    let mut env = app_env(server.addr.port());
    env.extend([("WEBHOOK_PORT", webhook_port), ("NODE", "node".to_owned())]);
    run_script(&interpreter, script, &env);
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
