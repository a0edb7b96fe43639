//! Verifies that a graceful shutdown (in process or by SIGTERM/SIGINT) delivers what was queued, closes every client with 1001, stops accepting and exits in time.

mod util;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fanout::{ChatHandler, Message};
use tungstenite::Message as WsMessage;

/// Reads data messages until the server's close frame; returns them and
/// the close code, after letting tungstenite finish the close handshake.
fn read_until_close(mut client: util::Client) -> (Vec<String>, u16) {
    let mut texts = Vec::new();
    loop {
        match client.read() {
            Ok(WsMessage::Text(text)) => texts.push(text.as_str().to_owned()),
            Ok(WsMessage::Close(frame)) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                // tungstenite answers the close; then the server hangs up.
                while client.read().is_ok() {}
                return (texts, code);
            }
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(e) => panic!("no close frame from the server: {e}"),
        }
    }
}

fn spawn_until_close(client: util::Client) -> JoinHandle<(Vec<String>, u16)> {
    thread::spawn(move || read_until_close(client))
}

fn assert_refuses_connections(addr: SocketAddr) {
    if let Ok(mut stream) = TcpStream::connect(addr) {
        // Acceptable only when the connection is dead on arrival.
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a stopped server still accepts connections: {other:?}"),
        }
    }
}

#[test]
fn shutdown_delivers_queued_broadcasts_then_closes_every_client_with_1001() {
    let config = util::with_config(util::config(2), |c| {
        c.shutdown_timeout = Duration::from_secs(2);
    });
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let addr = server.local_addr();
    let readers: Vec<_> = (0..10).map(|_| spawn_until_close(util::connect_chat(addr))).collect();
    util::wait_until("ten connections", || handle.connection_count() == 10);
    let expected: Vec<String> = (0..5).map(|i| format!("before shutdown {i}")).collect();
    for text in &expected {
        handle.broadcast(&Message::text(text.as_str()));
    }
    let started = Instant::now();
    server.shutdown().expect("clean shutdown");
    // The clients answer at once, so there is no waiting for the timeout.
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    for reader in readers {
        let (texts, code) = reader.join().expect("client thread");
        assert_eq!(texts, expected);
        assert_eq!(code, 1001);
    }
    assert_refuses_connections(addr);
}

#[test]
fn clients_that_read_only_after_shutdown_still_get_what_was_queued_then_1001() {
    let config = util::with_config(util::config(2), |c| {
        c.shutdown_timeout = Duration::from_secs(2);
    });
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..10).map(|_| util::connect_chat(addr)).collect();
    // Big enough that part of it is still queued in the server when the
    // close frames are due.
    let big = "x".repeat(150 * 1024);
    let expected: Vec<String> = (0..5).map(|i| format!("{i}{big}")).collect();
    for text in &expected {
        handle.broadcast(&Message::text(text.as_str()));
    }
    let started = Instant::now();
    let stopping = thread::spawn(move || server.shutdown());
    for client in clients {
        let (texts, code) = read_until_close(client);
        assert!(texts == expected, "got {} of {} messages (or altered ones)", texts.len(), expected.len());
        assert_eq!(code, 1001);
    }
    stopping.join().unwrap().expect("clean shutdown");
    assert!(started.elapsed() < Duration::from_secs(2) + Duration::from_millis(500), "took {:?}", started.elapsed());
    assert_refuses_connections(addr);
}

#[test]
fn shutdown_returns_within_its_timeout_when_clients_never_answer_the_close() {
    let config = util::with_config(util::config(2), |c| {
        c.shutdown_timeout = Duration::from_millis(400);
        c.close_timeout = Duration::from_secs(5);
    });
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let _silent: Vec<_> = (0..3).map(|_| util::connect_chat(addr)).collect();
    util::wait_until("three connections", || server.handle().connection_count() == 3);
    let started = Instant::now();
    server.shutdown().expect("clean shutdown");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(350), "shutdown did not wait for the clients at all: {took:?}");
    assert!(took < Duration::from_millis(1400), "shutdown took {took:?} with a 400 ms timeout");
    assert_refuses_connections(addr);
}

/// A `fanout` child process, killed if a test fails before it exits.
struct Fanout {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Fanout {
    fn spawn(args: &[&str]) -> Fanout {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fanout"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fanout");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Fanout { child, stderr }
    }

    /// The address from the start-up line "... listening on ADDR ...".
    fn listening_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + util::PATIENCE;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(wait).expect("a start-up line on stderr");
            if let Some((_, rest)) = line.split_once("listening on ") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"));
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal to the child we spawned.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Waits for the exit, failing after `limit`.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "fanout did not exit within {limit:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything it wrote to stderr (after it exited).
    fn stderr_text(&self) -> String {
        let mut text = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(1)) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_binary_closes_clients_with_1001_and_exits_0_on_sigterm() {
    let mut fanout = Fanout::spawn(&["--bind", "127.0.0.1:0", "--workers", "2", "--shutdown-timeout", "1"]);
    let addr = fanout.listening_addr();
    let mut clients: Vec<_> = (0..3).map(|_| util::connect_chat(addr)).collect();
    clients[0].send(WsMessage::text("before the signal")).unwrap();
    for client in &mut clients[1..] {
        assert_eq!(util::next_message(client), WsMessage::text("before the signal"));
    }
    let readers: Vec<_> = clients.into_iter().map(spawn_until_close).collect();
    fanout.signal(libc::SIGTERM);
    for reader in readers {
        let (texts, code) = reader.join().expect("client thread");
        assert!(texts.is_empty(), "unexpected messages {texts:?}");
        assert_eq!(code, 1001);
    }
    let status = fanout.exit_within(Duration::from_secs(3));
    assert!(status.success(), "exit status {status}");
    assert_refuses_connections(addr);
}

#[test]
fn the_binary_exits_0_on_sigint_with_no_clients() {
    let mut fanout = Fanout::spawn(&["--bind", "127.0.0.1:0", "--workers", "1", "--shutdown-timeout", "1"]);
    let addr = fanout.listening_addr();
    fanout.signal(libc::SIGINT);
    let status = fanout.exit_within(Duration::from_secs(3));
    assert!(status.success(), "exit status {status}");
    assert_refuses_connections(addr);
}

#[test]
fn the_binary_rejects_an_unknown_flag_with_a_clear_message() {
    let mut fanout = Fanout::spawn(&["--bogus-flag"]);
    let status = fanout.exit_within(util::PATIENCE);
    assert!(!status.success());
    let stderr = fanout.stderr_text();
    assert!(stderr.contains("--bogus-flag"), "stderr: {stderr}");
}

#[test]
fn the_binary_exits_nonzero_when_its_port_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut fanout = Fanout::spawn(&["--bind", &addr, "--workers", "1"]);
    let status = fanout.exit_within(util::PATIENCE);
    assert!(!status.success());
    let stderr = fanout.stderr_text();
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "stderr: {stderr}");
}
