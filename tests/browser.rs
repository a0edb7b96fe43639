//! The chat page the `fanout` binary serves on `GET /`, in a real browser:
//! `tests/browser/chat.mjs` drives headless Chromium through Playwright
//! against the binary (names and member lists, a message with its sender and
//! time, rooms kept apart, recent history for a late joiner, a page that
//! loses its network and shows what it missed once, in order) and exits 0
//! only when every check passed. It leaves a screenshot in
//! `target/browser/chat.png`.
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
    let mut script = Command::new("node")
        .arg(root().join("tests/browser/chat.mjs"))
        .arg(format!("http://{}/", server.addr))
        .arg(&screenshot)
        .env("CHROMIUM", &browser)
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
    let stdout = drain(script.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(script.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = script.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = script.kill();
            break script.wait().expect("reap node");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("stdout");
    let stderr = stderr.join().expect("stderr");
    println!("{stdout}");
    assert!(status.success(), "chat.mjs failed ({status}, {:?}):\n{stdout}\n{stderr}", started.elapsed());
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
    println!("screenshot: {}", screenshot.display());
}
