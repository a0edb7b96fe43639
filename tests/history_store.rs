//! Verifies the durable history store (`--history-dir`) with the real
//! binary: publishes answered 200 survive `kill -9`, a restarted server
//! keeps epochs and offsets so a client recovers across the restart, a full
//! disk turns publishes into 507 while live delivery goes on, and a store
//! that is not one (or a directory without history) stops the start with an
//! error naming the file.

mod child;
mod http_client;
mod pusher_client;
mod util;

use std::path::PathBuf;
use std::process::Command;

use child::Fanout;
use pusher_client::{api, connect, data, event, send, subscribe, trigger};
use serde_json::json;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fanout-history-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(dir: &std::path::Path) -> Fanout {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    let args = ["--bind", "127.0.0.1:0", "--workers", "2", "--app-id", "42", "--app-key", "app-key"];
    let args = [&args[..], &["--app-secret", "app-secret", "--history-size", "100", "--history-dir", dir]].concat();
    Fanout::spawn(&args, None)
}

#[test]
fn every_acknowledged_publish_survives_kill_9_and_a_client_recovers_across_the_restart() {
    let dir = temp_dir("kill");
    let first = start(&dir);
    let (mut watcher, _) = connect(first.addr);
    subscribe(&mut watcher, "room", None, None);
    for n in 1..=20 {
        let (status, body) =
            trigger(first.addr, json!({"name": "news", "channel": "room", "data": format!("item {n}")}));
        assert_eq!(status, 200, "publish {n}: {body}");
    }
    let epoch = event(&mut watcher)["epoch"].as_str().expect("the first event's epoch").to_owned();
    first.signal(libc::SIGKILL);
    drop(first);

    let second = start(&dir);
    let (status, page) = api(second.addr, "GET", "/apps/42/channels/room/history", &[("limit", "100")], "");
    assert_eq!((status, &page["epoch"], &page["offset"]), (200, &json!(epoch), &json!(20)), "{page}");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(20));
    let (mut back, _) = connect(second.addr);
    send(
        &mut back,
        json!({"event": "pusher:subscribe", "data": {"channel": "room", "since": {"epoch": epoch, "offset": 15}}}),
    );
    assert_eq!(event(&mut back)["offset"], 20, "subscription_succeeded says where the stream stands");
    for n in 16..=20 {
        let got = event(&mut back);
        assert_eq!((got["offset"].as_u64(), got["data"].as_str()), (Some(n), Some(format!("item {n}").as_str())));
    }
    assert_eq!(data(&event(&mut back))["recovered"], true);
    assert_eq!(trigger(second.addr, json!({"name": "news", "channel": "room", "data": "item 21"})).0, 200);
    let got = event(&mut back);
    assert_eq!((got["offset"].as_u64(), got.get("epoch")), (Some(21), None), "the same stream goes on: {got}");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

fn refused_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_fanout")).args(args).output().expect("run fanout");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_store_that_is_not_one_or_a_directory_without_history_stops_the_start_naming_the_file() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history.redb");
    std::fs::write(&file, vec![0x42; 16 << 10]).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let stderr = refused_start(&["--bind", "127.0.0.1:0", "--history-size", "10", "--history-dir", dir_arg]);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), vec![0x42; 16 << 10], "the file is left as it was");
    let stderr = refused_start(&["--bind", "127.0.0.1:0", "--history-dir", dir_arg]);
    assert!(stderr.contains("needs history"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_directory_stops_the_start_naming_it() {
    let dir = temp_dir("file-in-the-way");
    std::fs::write(&dir, b"a file where the directory should be").unwrap();
    let stderr =
        refused_start(&["--bind", "127.0.0.1:0", "--history-size", "10", "--history-dir", dir.to_str().unwrap()]);
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn a_full_disk_answers_507_counts_it_and_live_delivery_goes_on() {
    let dir = temp_dir("full");
    let dir_arg = dir.to_str().unwrap();
    let args = ["--bind", "127.0.0.1:0", "--app-id", "42", "--app-key", "app-key", "--app-secret", "app-secret"];
    let args = [&args[..], &["--history-size", "1000", "--history-dir", dir_arg]].concat();
    // No file may grow past 2 MiB: the store fills up after a few hundred events.
    let server = Fanout::spawn_with_file_size_limit(&args, 2 << 20);
    let (mut client, _) = connect(server.addr);
    subscribe(&mut client, "room", None, None);
    let big = "x".repeat(9_000);
    let mut statuses = Vec::new();
    for n in 0..2_000 {
        let (status, body) =
            trigger(server.addr, json!({"name": "news", "channel": "room", "data": format!("{n} {big}")}));
        assert!(status == 200 || status == 507, "publish {n}: {status} {body}");
        // Delivered live either way.
        let got = event(&mut client);
        assert!(got["data"].as_str().is_some_and(|d| d.starts_with(&format!("{n} "))), "publish {n}");
        statuses.push(status);
        if status == 507 {
            assert!(body["error"].as_str().is_some_and(|e| e.contains("history.redb")), "{body}");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&507), "the store never filled up ({} publishes)", statuses.len());
    assert!(statuses.iter().filter(|&&s| s == 200).count() > 10, "{statuses:?}");
    let request = http_client::request("GET", "/metrics", "Connection: close\r\n");
    let scrape = http_client::exchange_and_close(server.addr, request.as_bytes());
    let failures = scrape.text().lines().find_map(|l| l.strip_prefix("fanout_history_store_failures_total{} "));
    assert!(failures.is_some_and(|n| n.trim() != "0"), "{}", scrape.text());
    // What failed left its stream: the next event opens a new epoch.
    let (_, _) = trigger(server.addr, json!({"name": "news", "channel": "room", "data": "after"}));
    let after = event(&mut client);
    assert_eq!((after["offset"].as_u64(), after["epoch"].is_string()), (Some(1), true), "{after}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
