//! Verifies that a storm of malformed handshakes and frames, hundreds at once on shared workers, gets the right HTTP error or close code every time, frees every connection, and goes unnoticed by healthy clients on the same workers.

mod crowd;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fanout::EchoHandler;
use tungstenite::Message as WsMessage;

const STORM_THREADS: usize = 8;
const ROUNDS: usize = 6;
const HEALTHY: usize = 4;
const MAX_MESSAGE: usize = 64 * 1024;
/// Random garbage that might still be the start of a request is dropped at
/// this timeout instead of being answered.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// What the server must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This HTTP status, then EOF; never an upgrade.
    Http(u16),
    /// 101, then exactly one close frame with this code, then EOF.
    Close(u16),
    /// Random bytes: an HTTP 400, or (while they could still begin a
    /// request) silence until the handshake timeout.
    Garbage,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

/// The sample upgrade with the header line starting with `old` replaced by
/// `new` (or removed when `new` is empty).
fn upgrade_with(old: &str, new: &str) -> Vec<u8> {
    let request = util::upgrade_request("/");
    let line = request.lines().find(|line| line.starts_with(old)).expect("header in the sample request");
    request.replacen(&format!("{line}\r\n"), new, 1).into_bytes()
}

fn frame_case(name: &str, frames: Vec<u8>, code: u16) -> Case {
    Case { name: name.to_owned(), bytes: frames, expect: Expect::Close(code) }
}

/// Every malformed input of the issue, plus neighbours of each.
fn cases() -> Vec<Case> {
    let http = |name: &str, bytes: Vec<u8>, status| Case { name: name.to_owned(), bytes, expect: Expect::Http(status) };
    let mut cases = vec![
        http("missing key", upgrade_with("Sec-WebSocket-Key:", ""), 400),
        http("short key", upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: c2hvcnQ=\r\n"), 400),
        http(
            "key not base64",
            upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n"),
            400,
        ),
        http("version 8", upgrade_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n"), 426),
        http("missing version", upgrade_with("Sec-WebSocket-Version:", ""), 426),
        http("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff\r\n\r\n".to_vec(), 400),
    ];
    let mut unmasked = vec![0x81, 0x05];
    unmasked.extend_from_slice(b"hello");
    cases.push(frame_case("unmasked text", unmasked, 1002));
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        cases.push(frame_case(&format!("reserved opcode {opcode:#x}"), util::client_frame(true, opcode, b"x"), 1002));
    }
    for rsv in [0x40, 0x20, 0x10] {
        let mut frame = util::client_frame(true, TEXT, b"compressed?");
        frame[0] |= rsv;
        cases.push(frame_case(&format!("RSV bit {rsv:#x}"), frame, 1002));
    }
    cases.push(frame_case("ping of 126 bytes", util::client_frame(true, PING, &[b'p'; 126]), 1002));
    cases.push(frame_case("close of 126 bytes", util::client_frame(true, CLOSE, &[b'c'; 126]), 1002));
    cases.push(frame_case("fragmented ping", util::client_frame(false, PING, b"half"), 1002));
    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    cases.push(frame_case("length 2^63", huge, 1002));
    let mut too_big = vec![0x82, 0x80 | 127];
    too_big.extend_from_slice(&(1u64 << 40).to_be_bytes());
    too_big.extend_from_slice(&[1, 2, 3, 4]);
    cases.push(frame_case("length 2^40", too_big, 1009));
    let mut split = util::client_frame(false, TEXT, b"price: \xe2\x82");
    split.extend(util::client_frame(true, CONTINUATION, b"\x28"));
    cases.push(frame_case("invalid UTF-8 split across fragments", split, 1007));
    let mut over = util::client_frame(false, BINARY, &vec![1u8; MAX_MESSAGE]);
    over.extend(util::client_frame(true, CONTINUATION, b"1"));
    cases.push(frame_case("message one byte over the limit", over, 1009));
    cases
}

/// Deterministic random bytes (xorshift64*).
fn garbage(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let len = 16 + (next() % 1000) as usize;
    (0..len).map(|_| (next() >> 56) as u8).collect()
}

/// What a storm client observed.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    refused: u64,
    closed: u64,
    timed_out: u64,
}

/// Sends one case (frame cases after an upgrade, pipelined or not) and
/// checks the answer; returns which counter it should have moved.
fn run_case(addr: SocketAddr, case: &Case, pipelined: bool) -> Tally {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    match case.expect {
        Expect::Close(_) if !pipelined => {
            stream.write_all(util::upgrade_request("/").as_bytes()).unwrap();
            answer.extend_from_slice(util::read_head(&mut stream).as_bytes());
            // The server may close (and reset) before a long case is all written.
            let _ = stream.write_all(&case.bytes);
        }
        Expect::Close(_) => {
            let mut bytes = util::upgrade_request("/").into_bytes();
            bytes.extend_from_slice(&case.bytes);
            let _ = stream.write_all(&bytes);
        }
        _ => stream.write_all(&case.bytes).unwrap(),
    }
    if let Err(e) = stream.read_to_end(&mut answer) {
        panic!("{}: no clean end ({e}) after {:?}", case.name, String::from_utf8_lossy(&answer));
    }
    let text = String::from_utf8_lossy(&answer);
    match case.expect {
        Expect::Http(status) => {
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{}: got {text:?}", case.name);
            Tally { refused: 1, ..Tally::default() }
        }
        Expect::Garbage if answer.is_empty() => {
            let waited = started.elapsed();
            assert!(waited >= HANDSHAKE_TIMEOUT - Duration::from_millis(50), "{}: dropped after {waited:?}", case.name);
            Tally { timed_out: 1, ..Tally::default() }
        }
        Expect::Garbage => {
            assert!(text.starts_with("HTTP/1.1 400 "), "{}: got {text:?}", case.name);
            Tally { refused: 1, ..Tally::default() }
        }
        Expect::Close(code) => {
            let head_end = text.find("\r\n\r\n").unwrap_or_else(|| panic!("{}: no head in {text:?}", case.name)) + 4;
            assert!(text.starts_with("HTTP/1.1 101 "), "{}: got {text:?}", case.name);
            let rest = &answer[head_end..];
            assert!(rest.len() >= 4 && rest[0] == 0x88, "{}: expected only a close frame, got {rest:?}", case.name);
            assert_eq!(usize::from(rest[1]) + 2, rest.len(), "{}: more than one close frame: {rest:?}", case.name);
            assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), code, "{}", case.name);
            Tally { closed: 1, ..Tally::default() }
        }
    }
}

/// An echo client checking every round trip until told to stop; returns
/// how many it made and the slowest.
fn spawn_healthy(addr: SocketAddr, stop: Arc<AtomicBool>, n: usize) -> thread::JoinHandle<(u64, Duration)> {
    let mut client = util::connect(addr, "/");
    thread::spawn(move || {
        let (mut round_trips, mut slowest) = (0u64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let text = format!("healthy {n} message {round_trips}");
            let sent = Instant::now();
            client.send(WsMessage::text(text.clone())).unwrap();
            assert_eq!(client.read().expect("an echo"), WsMessage::text(text), "healthy client {n}");
            slowest = slowest.max(sent.elapsed());
            round_trips += 1;
        }
        client.close(None).unwrap();
        while client.read().is_ok() {}
        (round_trips, slowest)
    })
}

#[test]
fn a_storm_of_bad_handshakes_and_frames_gets_the_right_answers_and_healthy_clients_notice_nothing() {
    let config = util::with_config(util::config(2), |c| {
        c.max_message_size = MAX_MESSAGE;
        c.handshake_timeout = HANDSHAKE_TIMEOUT;
    });
    let server = util::start(config, EchoHandler);
    let handle = server.handle();
    let addr = server.local_addr();
    let fds_before = crowd::open_fds();

    let stop = Arc::new(AtomicBool::new(false));
    let healthy: Vec<_> = (0..HEALTHY).map(|n| spawn_healthy(addr, stop.clone(), n)).collect();
    util::wait_until("the healthy clients", || handle.connection_count() == HEALTHY);

    let started = Instant::now();
    let storm: Vec<_> = (0..STORM_THREADS)
        .map(|t| {
            thread::spawn(move || {
                let mut cases = cases();
                let mut tally = Tally::default();
                for round in 0..ROUNDS {
                    let seed = (t * ROUNDS + round) as u64;
                    cases.push(Case { name: format!("garbage {seed}"), bytes: garbage(seed), expect: Expect::Garbage });
                    for (i, case) in cases.iter().enumerate() {
                        let got = run_case(addr, case, (round + i + t) % 2 == 0);
                        tally.refused += got.refused;
                        tally.closed += got.closed;
                        tally.timed_out += got.timed_out;
                    }
                    cases.pop();
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for thread in storm {
        let got = thread.join().expect("storm thread");
        tally.refused += got.refused;
        tally.closed += got.closed;
        tally.timed_out += got.timed_out;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut slowest = Duration::ZERO;
    for (n, client) in healthy.into_iter().enumerate() {
        let (round_trips, slow) = client.join().unwrap_or_else(|_| panic!("healthy client {n} noticed"));
        assert!(round_trips > 10, "healthy client {n} made only {round_trips} round trips");
        slowest = slowest.max(slow);
    }

    let stats = handle.stats();
    let total = tally.refused + tally.closed + tally.timed_out;
    assert_eq!(total, (STORM_THREADS * ROUNDS * (cases().len() + 1)) as u64);
    assert_eq!(stats.refused_handshakes, tally.refused);
    assert_eq!(stats.protocol_errors, tally.closed);
    assert_eq!(stats.handshake_timeouts, tally.timed_out);
    assert_eq!(stats.opened, tally.closed + HEALTHY as u64);
    assert_eq!(stats.accepted, total + HEALTHY as u64);
    // Every bad connection is gone: not counted, no descriptor left on either side.
    let freed = crowd::within(util::PATIENCE, || handle.connection_count() == 0 && crowd::open_fds() == fds_before);
    assert!(freed, "fds {} (baseline {fds_before}), connections {}", crowd::open_fds(), handle.connection_count());
    eprintln!(
        "bad input: {total} bad connections ({} refused over HTTP, {} closed with a code, {} random ones \
         dropped at the handshake timeout) in {took:?}; healthy round trips at worst {slowest:?}",
        tally.refused, tally.closed, tally.timed_out
    );
    assert!(slowest < Duration::from_secs(1), "a healthy round trip took {slowest:?}");
    server.shutdown().unwrap();
}
