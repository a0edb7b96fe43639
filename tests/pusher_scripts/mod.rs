//! Running the real-client scenario scripts of `tests/clients/` (Node and
//! Python): where they are, and whether their packages are installed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The scenario scripts' directory.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The program to run the scripts with, or `None` (after a note) when the
/// packages are missing outside CI; under CI (`CI` set) a missing package
/// fails the test.
pub fn ready(python: bool) -> Option<String> {
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

/// Like [`ready`] for Node scripts that need npm package `package` of
/// `tests/clients` (installed by the same `npm ci`): `node`, or `None`
/// after a note (a failure under CI).
pub fn ready_with(package: &str) -> Option<String> {
    let node = ready(false)?;
    if clients_dir().join("node_modules").join(package).is_dir() {
        return Some(node);
    }
    let hint = "run tests/clients/install (.ci/run does)";
    if std::env::var_os("CI").is_some() {
        panic!("npm package {package} is missing from tests/clients: {hint}");
    }
    eprintln!("note: skipping a real-client test: npm package {package} missing; {hint}");
    None
}

/// Runs `script` with `env` and asserts that every check it made passed.
pub fn run_script(interpreter: &str, script: &str, env: &[(&str, String)]) {
    let mut command = Command::new(interpreter);
    command.arg(clients_dir().join(script));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the client script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(!stdout.contains("FAIL"), "{script}:\n{stdout}");
}

/// The app every client script signs with: id, key, secret.
pub const APP: [&str; 3] = ["12345", "app-key", "app-secret"];

/// fanout's flags for a server of [`APP`] on a free loopback port with two
/// workers; callers add their own after these.
pub fn app_args() -> Vec<&'static str> {
    vec!["--bind", "127.0.0.1:0", "--workers", "2", "--app-id", APP[0], "--app-key", APP[1], "--app-secret", APP[2]]
}

/// What tells a script where fanout listens and which app it serves.
pub fn app_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PUSHER_HOST", "127.0.0.1".to_owned()),
        ("PUSHER_PORT", port.to_string()),
        ("PUSHER_APP_ID", APP[0].to_owned()),
        ("PUSHER_APP_KEY", APP[1].to_owned()),
        ("PUSHER_APP_SECRET", APP[2].to_owned()),
    ]
}
