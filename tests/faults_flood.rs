//! Verifies that a client flooding as fast as it can does not starve others on its worker (work per loop turn is capped), and that `--max-message-rate` closes a flood past it with 1008 while clients within it are served.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fanout::{Accept, ConnId, EchoHandler, Handler, Message, Rejection, Request, ServerHandle};
use tungstenite::Message as WsMessage;

/// Round trips measured while the flood runs.
const PROBES: usize = 100;
/// Messages the steady client sends at 40 a second, within the limit.
const STEADY: u64 = 40;

/// The tests measure time on a shared machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const PING: u8 = 0x9;

/// Echoes text, swallows binary: the flood costs the server its reads and
/// decoding only, and the flooder need not read anything.
struct EchoText;

impl Handler for EchoText {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()))
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _state: &mut (), message: Message) {
        if message.is_text() {
            server.push(conn, &message);
        }
    }
}

/// Writes `chunk` over and over on an upgraded raw connection until `stop`;
/// returns the bytes written.
fn spawn_flooder(addr: SocketAddr, chunk: Vec<u8>, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let mut stream = util::raw_upgrade(addr, "/");
    thread::spawn(move || {
        let mut written = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match stream.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(e) => panic!("the flooder was cut off: {e}"),
            }
        }
        written
    })
}

/// Round trips of a text message; returns each one's duration.
fn round_trips(client: &mut util::Client, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let text = format!("probe {i}");
            let sent = Instant::now();
            client.send(WsMessage::text(text.clone())).unwrap();
            assert_eq!(util::next_message(client), WsMessage::text(text));
            sent.elapsed()
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

#[test]
fn a_client_flooding_as_fast_as_it_can_does_not_starve_another_on_the_same_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = util::start(util::config(1), EchoText);
    let handle = server.handle();
    let addr = server.local_addr();
    let mut probe = util::connect(addr, "/");
    let quiet = {
        let mut times = round_trips(&mut probe, 50);
        times.sort();
        percentile(&times, 50)
    };

    // 64 KiB of 100-byte binary messages, written back to back.
    let frame = util::client_frame(true, BINARY, &[0x5a; 100]);
    let chunk: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * (64 * 1024 / frame.len())).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = spawn_flooder(addr, chunk, stop.clone());
    util::wait_until("the flood to reach the server", || handle.stats().messages_in > 50 + 10_000);

    let before = handle.stats().messages_in;
    let started = Instant::now();
    let mut times = round_trips(&mut probe, PROBES);
    let took = started.elapsed();
    let flooded = handle.stats().messages_in - before;
    stop.store(true, Ordering::Relaxed);
    let written = flooder.join().expect("flooder");
    times.sort();
    let (median, p99, max) = (percentile(&times, 50), percentile(&times, 99), *times.last().unwrap());
    eprintln!(
        "flood: {PROBES} round trips in {took:?} while the server decoded {flooded} flood messages \
         ({:.0}/s; {} MiB written by the flooder); round trip median {median:?}, p99 {p99:?}, max {max:?} \
         (median {quiet:?} without the flood)",
        flooded as f64 / took.as_secs_f64(),
        written >> 20,
    );
    assert!(flooded > 10_000, "the flood was too thin to prove anything: {flooded} messages");
    // A turn reads at most 256 KiB of the flood (5-30 ms of decoding in a
    // debug build here); without that cap the probe starves outright.
    assert!(median < Duration::from_millis(100), "median round trip {median:?} under the flood");
    assert!(max < Duration::from_secs(1), "slowest round trip {max:?} under the flood");
    assert_eq!(handle.stats().connections, 2);
    server.shutdown().unwrap();
}

/// Reads a raw connection's frames to the end: the echoes (or pongs) seen,
/// and the close frame's code and reason.
fn echoes_then_close(stream: &mut TcpStream) -> (usize, u16, String) {
    let mut echoes = 0;
    loop {
        let frame = util::read_frame(stream).expect("a close frame before EOF");
        if frame.opcode == 0x8 {
            return (echoes, frame.close_code(), frame.close_reason());
        }
        echoes += 1;
    }
}

#[test]
fn max_message_rate_closes_a_flood_with_1008_and_spares_clients_within_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const RATE: u32 = 100;
    let config = util::with_config(util::config(1), |c| {
        c.max_message_rate = Some(RATE);
    });
    let server = util::start(config, EchoHandler);
    let handle = server.handle();
    let addr = server.local_addr();

    // A client within the limit, on the same worker, all along: 40 a second.
    let steady_count = Arc::new(AtomicU64::new(0));
    let count = steady_count.clone();
    let mut steady = util::connect(addr, "/");
    let steady = thread::spawn(move || {
        for i in 0..STEADY {
            let text = format!("steady {i}");
            steady.send(WsMessage::text(text.clone())).unwrap();
            assert_eq!(util::next_message(&mut steady), WsMessage::text(text));
            count.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(25));
        }
        steady
    });

    // A burst of exactly the limit is allowed at once.
    let mut burst = util::raw_upgrade(addr, "/");
    let message = util::client_frame(true, TEXT, b"burst");
    burst.write_all(&message.repeat(RATE as usize)).unwrap();
    for i in 0..RATE {
        let echo = util::read_frame(&mut burst).expect("an echo");
        assert_eq!((echo.opcode, echo.payload.as_slice()), (TEXT, &b"burst"[..]), "echo {i}");
    }
    assert_eq!(handle.stats().rate_limited, 0);

    // Ten times the limit at once is a flood: some echoes, then 1008.
    let mut flood = util::raw_upgrade(addr, "/");
    let started = Instant::now();
    flood.write_all(&message.repeat(10 * RATE as usize)).unwrap();
    let (echoes, code, reason) = echoes_then_close(&mut flood);
    assert_eq!(code, 1008);
    assert_eq!(reason, "message rate limit exceeded");
    assert!((RATE as usize..2 * RATE as usize).contains(&echoes), "{echoes} messages passed before the close");
    let flood_closed = started.elapsed();

    // Pings count too: a ping flood is closed the same way.
    let mut pinger = util::raw_upgrade(addr, "/");
    let ping = util::client_frame(true, PING, b"ping");
    pinger.write_all(&ping.repeat(10 * RATE as usize)).unwrap();
    let (pongs, code, _) = echoes_then_close(&mut pinger);
    assert_eq!(code, 1008);
    assert!((RATE as usize..2 * RATE as usize).contains(&pongs), "{pongs} pings answered before the close");

    let mut steady = steady.join().expect("the steady client was closed");
    assert_eq!(steady_count.load(Ordering::Relaxed), STEADY);
    steady.send(WsMessage::text("still here")).unwrap();
    assert_eq!(util::next_message(&mut steady), WsMessage::text("still here"));
    // The burst client may go on at the rate.
    burst.write_all(&message).unwrap();
    assert_eq!(util::read_frame(&mut burst).expect("an echo").payload, b"burst");

    let stats = handle.stats();
    assert_eq!(stats.rate_limited, 2);
    assert_eq!(stats.protocol_errors, 0);
    drop((flood, pinger));
    util::wait_until("the flooders to be gone", || handle.connection_count() == 2);
    eprintln!("rate limit {RATE}/s: a flood of {} was closed after {echoes} echoes in {flood_closed:?}", 10 * RATE);
    server.shutdown().unwrap();
}
