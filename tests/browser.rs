//! The chat page the `fanout` binary serves on `GET /`, in a real browser:
//! `tests/browser/chat.mjs` drives headless Chromium through Playwright
//! against the binary (names and member lists, a message with its sender and
//! time, rooms kept apart, recent history for a late joiner, a page that
//! loses its network and shows what it missed once, in order) and exits 0
//! only when every check passed. It leaves a screenshot in
//! `target/browser/chat.png`. `tests/browser/edge.mjs` is the edge: a page
//! of an allowed origin chatting over wss:// (the test certificate pinned), a login token
//! as a subprotocol and permessage-deflate, and the refusals without a token
//! or from another origin.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and `npm ci` in
//! `tests/browser` (`.ci/run` does both). Without them the test fails under
//! CI (`CI` set); elsewhere it prints a note and skips.

mod child;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::Fanout;

/// The whole scenario takes a few seconds; a browser that hangs is killed.
const LIMIT: Duration = Duration::from_secs(120);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The browser to drive, or `None` (after a note) when something is
/// missing outside CI.
fn chromium() -> Option<PathBuf> {
    let browser = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let playwright = root().join("tests/browser/node_modules/playwright-core");
    let missing: Vec<String> = [
        (!node).then(|| "node".to_owned()),
        (!browser.is_file()).then(|| browser.display().to_string()),
        (!playwright.is_dir()).then(|| playwright.display().to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(browser);
    }
    let hint = "apt-get install chromium, and npm ci in tests/browser; .ci/run does both";
    if std::env::var_os("CI").is_some() {
        panic!("the browser test needs {}: {hint}", missing.join(", "));
    }
    eprintln!("note: skipping the browser test: missing {}; {hint}", missing.join(", "));
    None
}

#[test]
fn the_chat_page_works_in_chromium() {
    let Some(browser) = chromium() else { return };
    let server = Fanout::spawn(&["--bind", "127.0.0.1:0", "--workers", "2", "--history-size", "100"], None);
    let shots = root().join("target/browser");
    std::fs::create_dir_all(&shots).expect("create target/browser");
    let screenshot = shots.join("chat.png");
    let _ = std::fs::remove_file(&screenshot);
    run_script("chat.mjs", &[&format!("http://{}/", server.addr), &screenshot.display().to_string()], &browser);
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
    println!("screenshot: {}", screenshot.display());
}

/// Runs `node tests/browser/SCRIPT ARGS` with `browser`, killing it past
/// [`LIMIT`]; fails unless it exits 0 having printed "all checks passed".
fn run_script(script: &str, args: &[&str], browser: &Path) {
    let mut child = Command::new("node")
        .arg(root().join("tests/browser").join(script))
        .args(args)
        .env("CHROMIUM", browser)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // Drained as it runs, so a chatty browser never fills a pipe and stalls.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            break child.wait().expect("reap node");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("stdout");
    let stderr = stderr.join().expect("stderr");
    println!("{stdout}");
    assert!(status.success(), "{script} failed ({status}, {:?}):\n{stdout}\n{stderr}", started.elapsed());
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn a_browser_on_another_origin_chats_over_wss_with_a_token_and_compression() {
    let Some(browser) = chromium() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let fixtures = root().join("tests/fixtures/tls");
    let (cert, key) = (fixtures.join("server1.pem"), fixtures.join("server1-key.pem"));
    let secret = "the edge test's token secret, long enough";
    let origin = format!("https://localhost:{port}");
    let bind = format!("127.0.0.1:{port}");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let args = [
        "--bind",
        &bind,
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
        "--auth-secret",
        secret,
        "--allowed-origin",
        &origin,
    ];
    let _server = Fanout::spawn(&args, None);
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 600;
    let claims = serde_json::json!({"sub": "edge-user", "exp": exp, "rooms": ["edge-*"]});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("a key"),
    )
    .expect("a token");
    run_script("edge.mjs", &[&port.to_string(), &cert_arg, &token], &browser);
}
