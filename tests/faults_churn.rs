//! Verifies that 20,000 connect/disconnect cycles (clean closes, and clients vanishing mid-handshake, mid-frame, with FIN or RST) leave the server's open descriptors and connection count at their baseline, its memory within a small bound, and a long-lived client undisturbed.

mod crowd;
mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fanout::{sys, EchoHandler};
use socket2::SockRef;
use tungstenite::Message as WsMessage;

/// Both tests count the process's descriptors: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const CYCLES: usize = 20_000;
const THREADS: usize = 4;
/// Cycles run before the baseline is taken, so that tables and allocator
/// pools have reached their working size.
const WARM_UP: usize = 2_000;
/// Most the process may grow by over the cycles (server and clients).
const RSS_BUDGET: u64 = 4 << 20;

/// How a cycle's client ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cycle {
    /// Upgrade, one echo, close handshake: the server closes first.
    Clean,
    /// Half a request, then FIN.
    HalfHandshakeFin,
    /// Half a request, then RST.
    HalfHandshakeRst,
    /// Upgraded, half a frame, then FIN.
    HalfFrameFin,
    /// Upgraded, half a frame, then RST.
    HalfFrameRst,
    /// Upgraded, then gone without a close frame (FIN).
    UpgradedThenFin,
    /// Connected, nothing sent, RST.
    ConnectThenRst,
}

const KINDS: [Cycle; 7] = [
    Cycle::Clean,
    Cycle::HalfHandshakeFin,
    Cycle::HalfHandshakeRst,
    Cycle::HalfFrameFin,
    Cycle::HalfFrameRst,
    Cycle::UpgradedThenFin,
    Cycle::ConnectThenRst,
];

impl Cycle {
    fn upgrades(self) -> bool {
        matches!(self, Cycle::Clean | Cycle::HalfFrameFin | Cycle::HalfFrameRst | Cycle::UpgradedThenFin)
    }
}

/// Pre-built bytes every cycle sends.
struct Script {
    request: Vec<u8>,
    message: Vec<u8>,
    close: Vec<u8>,
    half_frame: Vec<u8>,
}

impl Script {
    fn new() -> Script {
        let message = util::client_frame(true, 0x1, b"churn");
        let big = util::client_frame(true, 0x2, &[7u8; 1000]);
        Script {
            request: util::upgrade_request("/").into_bytes(),
            message,
            close: util::client_frame(true, 0x8, b"\x03\xe8"),
            half_frame: big[..big.len() / 2].to_vec(),
        }
    }
}

/// Reads until `buf` ends with `end` (or holds `len` bytes); panics at EOF.
fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let mut chunk = [0u8; 512];
    while !done(buf) {
        match stream.read(&mut chunk) {
            Ok(0) => panic!("connection closed early; got {:?}", String::from_utf8_lossy(buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}; got {:?}", String::from_utf8_lossy(buf)),
        }
    }
}

fn upgrade(stream: &mut TcpStream, script: &Script) {
    stream.write_all(&script.request).unwrap();
    let mut head = Vec::new();
    read_until(stream, &mut head, |b| b.ends_with(b"\r\n\r\n"));
    assert!(head.starts_with(b"HTTP/1.1 101 "), "expected 101, got {:?}", String::from_utf8_lossy(&head));
}

fn rst(stream: TcpStream) {
    SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
}

fn run_cycle(addr: SocketAddr, kind: Cycle, script: &Script) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    match kind {
        Cycle::Clean => {
            upgrade(&mut stream, script);
            stream.write_all(&script.message).unwrap();
            let mut echo = Vec::new();
            read_until(&mut stream, &mut echo, |b| b.len() >= 7);
            assert_eq!(echo, b"\x81\x05churn");
            stream.write_all(&script.close).unwrap();
            let mut close = Vec::new();
            read_until(&mut stream, &mut close, |b| b.len() >= 4);
            assert_eq!(close, b"\x88\x02\x03\xe8");
            // The server hangs up first (so TIME_WAIT stays on its side).
            assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0, "no EOF after the close handshake");
        }
        Cycle::HalfHandshakeFin => stream.write_all(&script.request[..script.request.len() / 2]).unwrap(),
        Cycle::HalfHandshakeRst => {
            stream.write_all(&script.request[..script.request.len() / 2]).unwrap();
            rst(stream);
        }
        Cycle::HalfFrameFin => {
            upgrade(&mut stream, script);
            stream.write_all(&script.half_frame).unwrap();
        }
        Cycle::HalfFrameRst => {
            upgrade(&mut stream, script);
            stream.write_all(&script.half_frame).unwrap();
            rst(stream);
        }
        Cycle::UpgradedThenFin => upgrade(&mut stream, script),
        Cycle::ConnectThenRst => rst(stream),
    }
}

/// Runs `cycles` cycles on `THREADS` threads, kinds in rotation.
fn churn(addr: SocketAddr, cycles: usize) {
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let script = Script::new();
                for i in (t..cycles).step_by(THREADS) {
                    run_cycle(addr, KINDS[i % KINDS.len()], &script);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("churn thread");
    }
}

fn upgrades_in(cycles: usize) -> u64 {
    (0..cycles).filter(|i| KINDS[i % KINDS.len()].upgrades()).count() as u64
}

#[test]
fn twenty_thousand_connect_disconnect_cycles_leave_descriptors_connections_and_memory_at_baseline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = util::with_config(util::config(2), |c| {
        c.close_timeout = Duration::from_millis(500);
    });
    let server = util::start(config, EchoHandler);
    let handle = server.handle();
    let addr = server.local_addr();

    // A long-lived client echoing all along.
    let mut witness = util::connect(addr, "/");
    let stop = Arc::new(AtomicBool::new(false));
    let stop_witness = stop.clone();
    let witness = thread::spawn(move || {
        let mut round_trips = 0u64;
        while !stop_witness.load(Ordering::Relaxed) {
            let text = format!("witness {round_trips}");
            witness.send(WsMessage::text(text.clone())).unwrap();
            assert_eq!(util::next_message(&mut witness), WsMessage::text(text));
            round_trips += 1;
            thread::sleep(Duration::from_millis(2));
        }
        (witness, round_trips)
    });

    let settled =
        |fds: usize| crowd::within(util::PATIENCE, || handle.connection_count() == 1 && crowd::open_fds() == fds);
    churn(addr, WARM_UP);
    util::wait_until("the warm-up's connections to go", || handle.connection_count() == 1);
    // Closing sockets linger until the client's EOF, at most the close timeout.
    thread::sleep(Duration::from_millis(700));
    let fds_before = crowd::open_fds();
    let rss_before = sys::resident_bytes().unwrap();
    let stats_before = handle.stats();

    let started = Instant::now();
    churn(addr, CYCLES);
    let took = started.elapsed();
    let back = settled(fds_before);
    let settle_took = started.elapsed() - took;
    assert!(back, "fds {} (baseline {fds_before}), connections {}", crowd::open_fds(), handle.connection_count());
    let rss_after = sys::resident_bytes().unwrap();

    stop.store(true, Ordering::Relaxed);
    let (mut witness, round_trips) = witness.join().expect("the witness client");
    witness.send(WsMessage::text("last")).unwrap();
    assert_eq!(util::next_message(&mut witness), WsMessage::text("last"));

    let stats = handle.stats();
    assert_eq!(stats.accepted - stats_before.accepted, CYCLES as u64);
    assert_eq!(stats.opened - stats_before.opened, upgrades_in(CYCLES));
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.protocol_errors, 0);
    assert_eq!(stats.handshake_timeouts, 0, "a half handshake waited for its timeout instead of its EOF");
    assert_eq!(stats.refused_handshakes, 0);
    let grown = rss_after.saturating_sub(rss_before);
    eprintln!(
        "churn: {CYCLES} cycles on {THREADS} threads in {took:?} ({:.0}/s), settled {settle_took:?} later; \
         fds back to {fds_before}; RSS {} KiB -> {} KiB ({:+} KiB); witness made {round_trips} round trips",
        CYCLES as f64 / took.as_secs_f64(),
        rss_before >> 10,
        rss_after >> 10,
        (rss_after as i64 - rss_before as i64) / 1024,
    );
    assert!(grown <= RSS_BUDGET, "the process grew by {} KiB over the churn", grown >> 10);
    assert!(round_trips > 0);
    server.shutdown().unwrap();
}

/// Regression: a client's last bytes and its FIN often arrive together; the
/// short read of those bytes must not be taken for "drained", or the EOF is
/// never read and the socket stays open until a timer (if any) ends it.
#[test]
fn a_fin_arriving_with_the_last_bytes_is_seen_at_once_in_every_phase() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No timer may clean up after the bug: the idle timeout is off already.
    let config = util::with_config(util::config(1), |c| {
        c.handshake_timeout = Duration::from_secs(60);
        c.close_timeout = Duration::from_secs(60);
    });
    let server = util::start(config, EchoHandler);
    let handle = server.handle();
    let addr = server.local_addr();
    let fds_before = crowd::open_fds();
    let script = Script::new();
    let started = Instant::now();
    for _ in 0..100 {
        // Handshake phase: half a request, then FIN.
        run_cycle(addr, Cycle::HalfHandshakeFin, &script);
        // Open phase: half a frame, then FIN.
        run_cycle(addr, Cycle::HalfFrameFin, &script);
        // Closing phase: a close frame, then FIN at once.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
        upgrade(&mut stream, &script);
        stream.write_all(&script.close).unwrap();
    }
    let gone =
        crowd::within(Duration::from_secs(2), || handle.connection_count() == 0 && crowd::open_fds() == fds_before);
    assert!(
        gone,
        "{} connections and {} descriptors left {:?} after 300 clients hung up",
        handle.connection_count(),
        crowd::open_fds() - fds_before,
        started.elapsed()
    );
    server.shutdown().unwrap();
}
