//! Verifies that the real `socket.io-client` 4.x works against the `fanout`
//! binary's `/socket.io/` endpoint, with the WebSocket transport only, with
//! default options (long-polling, then the upgrade) and with polling only:
//! connecting, chatting in a namespace without echo, acks, custom
//! namespaces with `auth`, rooms that are the channels of their names (an
//! HTTP API publish through the npm `pusher` SDK reaches them, and
//! pusher-js subscribers of the same channel). Each scenario is a script
//! under `tests/clients/` that exits 0 only when every check passed.
//!
//! The scripts need `tests/clients/install` to have run (`.ci/run` does);
//! without the packages a test fails under CI and skips elsewhere.

mod child;
mod pusher_scripts;

use child::Fanout;
use pusher_scripts::{app_args, app_env, ready_with, run_script};

/// Starts fanout with one app (whose channels are the Socket.IO rooms) and
/// `extra` flags, and runs `script` against it with `env` added.
fn run(script: &str, extra: &[&str], env: &[(&str, String)]) {
    let Some(node) = ready_with("socket.io-client") else { return };
    let mut args = app_args();
    args.extend_from_slice(extra);
    let server = Fanout::spawn(&args, None);
    let mut all = app_env(server.addr.port());
    all.extend_from_slice(env);
    run_script(&node, script, &all);
}

#[test]
fn socket_io_clients_chat_over_websocket_without_echo_and_get_acks() {
    // Short heartbeats: the script checks that the client's session outlives
    // several idle timeouts by answering the server's pings.
    run(
        "socketio_chat.mjs",
        &["--ping-interval", "250ms", "--idle-timeout", "1500ms"],
        &[("SIO_IDLE_MS", "1500".into())],
    );
}

#[test]
fn socket_io_custom_namespaces_take_auth_and_stay_apart() {
    run("socketio_namespaces.mjs", &[], &[]);
}

#[test]
fn socket_io_rooms_are_channels_the_http_api_and_pusher_clients_share() {
    run("socketio_rooms.mjs", &[], &[]);
}

#[test]
fn socket_io_clients_with_default_options_upgrade_and_polling_clients_chat_and_join_rooms() {
    run("socketio_polling.mjs", &[], &[]);
}
