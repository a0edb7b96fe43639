//! Verifies that the `fanout` binary meets a swoole user's expectations at the command line: durations with units, the bind forms, a pid file that comes and goes, and every bad flag, value or log level reported once and clearly.

mod child;

use std::process::{Command, Output};
use std::time::Duration;

use child::Fanout;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fanout"));
    command.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run fanout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_invalid_setting_is_reported_once_naming_its_flag_before_anything_else() {
    let output = run(&["--bind", "127.0.0.1:0", "--workers", "0", "--max-connections", "100000"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text, "fanout: invalid --workers: must be between 1 and 1024\n", "nothing else, once");
}

#[test]
fn bad_values_and_unknown_flags_fail_with_the_expected_form() {
    for (args, expected) in [
        (&["--max-connections", "many"][..], "invalid value 'many'"),
        (&["--handshake-timeout", "soon"][..], "e.g. 10s, 500ms, 2m"),
        (&["--log-level", "fanout=loud"][..], "is not a log level"),
        (&["--bogus"][..], "unexpected argument '--bogus'"),
        (&["--history-size", "0"][..], "0 is not in 1.."),
        (&["--history-ttl", "0"][..], "must be a positive duration"),
        (
            &["--history-size", "9", "--history-dir", "/tmp", "--redis", "redis://127.0.0.1:1"][..],
            "cannot be used with",
        ),
    ] {
        // A port of its own in case a bad value were taken for a good one.
        let output = run(&[args, &["--bind", "127.0.0.1:0"][..]].concat(), &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn a_bind_without_a_port_names_the_forms_it_takes() {
    let output = run(&["--bind", "localhost"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("expected HOST:PORT, :PORT or PORT"), "{}", stderr(&output));
}

#[test]
fn a_bad_rust_log_is_a_warning_and_the_server_still_starts() {
    let server = Fanout::spawn_with_env(&["--bind", "127.0.0.1:0"], &[("RUST_LOG", "fanout=chatty")]);
    let early: Vec<String> = server.lines_so_far();
    assert!(early.iter().any(|l| l.contains("WARN") && l.contains("ignoring RUST_LOG")), "{early:?}");
}

#[test]
fn durations_take_units_and_the_bind_takes_a_colon_port() {
    let mut server = Fanout::spawn(
        &["--bind", ":0", "--handshake-timeout", "750ms", "--ping-interval", "1m", "--shutdown-timeout", "2s"],
        None,
    );
    assert!(server.addr.ip().is_unspecified(), "':0' listens on every interface: {}", server.addr);
    server.signal(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

#[test]
fn the_pid_file_holds_the_pid_while_running_and_is_removed_on_exit() {
    let dir = std::env::temp_dir().join(format!("fanout-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fanout.pid");
    let path_text = path.to_str().expect("utf-8 path");
    let mut server = Fanout::spawn(&["--bind", "127.0.0.1:0", "--pid-file", path_text], None);
    let written = std::fs::read_to_string(&path).expect("the pid file exists once listening");
    assert_eq!(written.trim(), server.pid().to_string());
    server.signal(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(5)).is_some_and(|s| s.success()));
    assert!(!path.exists(), "the pid file is removed on exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_pid_file_is_an_error_at_start() {
    let output = run(&["--bind", "127.0.0.1:0", "--pid-file", "/nonexistent-dir/fanout.pid"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot write the pid file /nonexistent-dir/fanout.pid"), "{}", stderr(&output));
}

#[test]
fn a_bad_apps_file_is_reported_with_its_file_and_line() {
    let dir = std::env::temp_dir().join(format!("fanout-apps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("apps.toml");
    std::fs::write(&path, "[[app]]\nid = \"1\"\nkey = \"k\"\nsecrt = \"s\"\n").expect("write");
    let output = run(&["--bind", "127.0.0.1:0", "--apps-file", path.to_str().expect("utf-8")], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("apps.toml") && text.contains("line 4") && text.contains("secrt"), "{text}");
    let missing = run(&["--bind", "127.0.0.1:0", "--apps-file", "/nonexistent/apps.toml"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/nonexistent/apps.toml"), "{}", stderr(&missing));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_apps_file_serves_its_apps() {
    let dir = std::env::temp_dir().join(format!("fanout-apps-ok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("apps.toml");
    let apps =
        "[[app]]\nid = \"1\"\nkey = \"one\"\nsecret = \"s1\"\n\n[[app]]\nid = \"2\"\nkey = \"two\"\nsecret = \"s2\"\n";
    std::fs::write(&path, apps).expect("write");
    let server = Fanout::spawn(&["--bind", "127.0.0.1:0", "--apps-file", path.to_str().expect("utf-8")], None);
    assert!(server.lines_so_far().iter().any(|l| l.contains("2 app(s)")), "{:?}", server.lines_so_far());
    for key in ["one", "two"] {
        let url = format!("ws://{}/app/{key}?protocol=7", server.addr);
        let stream = std::net::TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let (mut client, _) = tungstenite::client(url, stream).expect("upgrade");
        let text = client.read().expect("a frame").into_text().expect("text").to_string();
        assert!(text.contains("pusher:connection_established"), "{key}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_history_flags_give_rooms_offsets_a_new_client_is_told() {
    let server = Fanout::spawn(&["--bind", "127.0.0.1:0", "--history-size", "10", "--history-ttl", "1m"], None);
    let connect = || {
        let stream = std::net::TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let (mut client, _) = tungstenite::client(format!("ws://{}/chat/lobby", server.addr), stream).expect("upgrade");
        let welcome = client.read().expect("the welcome").into_text().expect("text").to_string();
        (client, welcome)
    };
    let (mut speaker, _) = connect();
    let (mut listener, _) = connect();
    speaker.send(tungstenite::Message::text("first words")).expect("send");
    assert_eq!(listener.read().expect("relayed").into_text().expect("text").as_str(), "first words");
    let (_, welcome) = connect();
    let welcome: serde_json::Value = serde_json::from_str(&welcome).expect("JSON welcome");
    assert_eq!(welcome["offset"], 1, "{welcome}");
    assert!(welcome["epoch"].is_string(), "{welcome}");
}

#[test]
fn token_keys_that_cannot_be_used_are_errors_naming_the_flag_and_file() {
    let dir = std::env::temp_dir().join(format!("fanout-cli-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let empty = dir.join("empty-secret");
    std::fs::write(&empty, "  \n").unwrap();
    let missing = dir.join("missing.pem");
    let (bad_key, empty_secret, absent) =
        (not_a_key.display().to_string(), empty.display().to_string(), missing.display().to_string());
    for (args, expected) in [
        (&["--auth-public-key", bad_key.as_str()][..], format!("--auth-public-key {bad_key}: not an RSA or EC")),
        (
            &["--auth-secret-file", empty_secret.as_str()][..],
            format!("--auth-secret-file {empty_secret}: the token secret is empty"),
        ),
        (&["--auth-public-key", absent.as_str()][..], format!("--auth-public-key {absent}: cannot read it")),
        (&["--auth-secret", "s", "--auth-public-key", absent.as_str()][..], "cannot be used with".to_owned()),
    ] {
        let output = run(&[args, &["--bind", "127.0.0.1:0"][..]].concat(), &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(&expected), "{args:?}: {}", stderr(&output));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_flags_go_together_and_a_bad_certificate_is_named_at_start() {
    let output = run(&["--bind", "127.0.0.1:0", "--tls-cert", "cert.pem"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--tls-key"), "{}", stderr(&output));
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let key = format!("{fixtures}/server1-key.pem");
    let wrong_cert = format!("{fixtures}/server2.pem");
    let output = run(&["--bind", "127.0.0.1:0", "--tls-cert", &wrong_cert, "--tls-key", &key], &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains(&key) && text.contains("does not belong to the certificate"), "{text}");
}
