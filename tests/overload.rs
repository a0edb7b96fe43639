//! Verifies that when publishers outrun a worker the source is slowed down instead of healthy readers being punished: readers that keep up are never closed or dropped, whatever one turn queues, and a reader that stalls neither holds the publishers back nor costs more than its bound.

mod crowd;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fanout::{Accept, ConnId, Handler, Message, Rejection, Request, ServerHandle, SlowConsumerPolicy};

/// These tests load both cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TEXT: u8 = 0x1;

/// `/pub` clients' messages go to every `/sub` client; a text "burst" makes
/// the hook itself broadcast `BURST_FRAMES` frames of 64 KiB at once.
struct Relay;

const BURST_FRAMES: usize = 256;

impl Handler for Relay {
    /// True for publishers.
    type State = bool;

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<bool>, Rejection> {
        match request.path() {
            "/pub" => Ok(Accept::new(true)),
            "/sub" => Ok(Accept::new(false)),
            _ => Err(Rejection::not_found()),
        }
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, publisher: &mut bool, message: Message) {
        if message.as_text() == Some("burst") {
            for i in 0..BURST_FRAMES {
                server.broadcast(&Message::binary(vec![i as u8; 64 * 1024]));
            }
        } else if *publisher {
            server.broadcast_except(&message, conn);
        }
    }
}

/// What a reader saw: data frames, data bytes, and the close code if the
/// server closed it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    frames: u64,
    bytes: u64,
    close: Option<u16>,
}

/// Reads a raw connection in a tight loop on its own thread, counting data
/// frames, until `expected` frames, a close frame, EOF or `stop`.
fn spawn_reader(mut stream: TcpStream, expected: u64, stop: Arc<AtomicBool>) -> JoinHandle<Seen> {
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    thread::spawn(move || {
        let mut seen = Seen::default();
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut chunk = vec![0u8; 256 * 1024];
        while seen.frames < expected && !stop.load(Ordering::Relaxed) {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => panic!("reader: {e}"),
            }
            let mut at = 0;
            while let Some((frame, used)) = crowd::parse_frame(&buf[at..]) {
                at += used;
                match frame.opcode {
                    0x1 | 0x2 => {
                        seen.frames += 1;
                        seen.bytes += frame.payload.len() as u64;
                    }
                    0x8 => {
                        seen.close = Some(frame.close_code());
                        return seen;
                    }
                    _ => {}
                }
            }
            buf.drain(..at);
        }
        seen
    })
}

/// A publisher: writes `count` masked text frames of `size` payload bytes in
/// large writes, as fast as the server takes them, while a second thread
/// drains (and discards) what the server sends it.
fn spawn_publisher(addr: SocketAddr, count: usize, size: usize, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let mut stream = util::raw_upgrade(addr, "/pub");
    let drain = stream.try_clone().expect("clone");
    spawn_reader(drain, u64::MAX, stop);
    thread::spawn(move || {
        let frame = util::client_frame(true, TEXT, &vec![b'm'; size]);
        let batch = frame.repeat(500);
        let mut sent = 0;
        while sent < count {
            let n = (count - sent).min(500);
            stream.write_all(&batch[..n * frame.len()]).expect("the publisher was cut off");
            sent += n;
        }
        sent
    })
}

fn relay_server(workers: usize, change: impl FnOnce(&mut fanout::Config)) -> fanout::RunningServer {
    util::start(util::with_config(util::config(workers), change), Relay)
}

/// The value of an unlabelled-or-summed gauge or counter in a `/metrics` scrape.
fn scrape(addr: SocketAddr, metric: &str) -> u64 {
    let request = b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let answer = String::from_utf8(util::raw_exchange(addr, request)).expect("utf-8 scrape");
    answer
        .lines()
        .filter(|line| line.starts_with(metric) && line[metric.len()..].starts_with([' ', '{']))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn readers_that_keep_up_are_never_closed_when_publishers_outrun_the_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const READERS: usize = 16;
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 10_000;
    // A small bound: before output pressure, one turn's reads queued far
    // more than this for every reader and closed most of them.
    let server = relay_server(1, |c| c.max_backpressure = 64 * 1024);
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let expected = (PUBLISHERS * PER_PUBLISHER) as u64;
    let readers: Vec<_> =
        (0..READERS).map(|_| spawn_reader(util::raw_upgrade(addr, "/sub"), expected, stop.clone())).collect();
    let publishers: Vec<_> = (0..PUBLISHERS).map(|_| spawn_publisher(addr, PER_PUBLISHER, 48, stop.clone())).collect();
    for publisher in publishers {
        assert_eq!(publisher.join().expect("publisher"), PER_PUBLISHER);
    }
    for (i, reader) in readers.into_iter().enumerate() {
        let seen = reader.join().expect("reader");
        assert_eq!(seen.close, None, "reader {i} was closed: {seen:?}");
        assert_eq!(seen.frames, expected, "reader {i} missed messages");
    }
    stop.store(true, Ordering::Relaxed);
    let stats = server.handle().stats();
    assert_eq!((stats.slow_consumers_closed, stats.frames_dropped), (0, 0));
    assert_eq!(stats.messages_in, expected);
}

#[test]
fn a_hook_broadcasting_a_burst_does_not_close_readers_that_read_in_a_tight_loop() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The default bound (1 MiB) against a 16 MiB burst from one hook call.
    let server = relay_server(1, |_| {});
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> =
        (0..3).map(|_| spawn_reader(util::raw_upgrade(addr, "/sub"), BURST_FRAMES as u64, stop.clone())).collect();
    let mut trigger = util::raw_upgrade(addr, "/pub");
    // The trigger receives the burst too, and reads it.
    let trigger_reader = spawn_reader(trigger.try_clone().expect("clone"), BURST_FRAMES as u64, stop.clone());
    trigger.write_all(&util::client_frame(true, TEXT, b"burst")).expect("write");
    for (i, reader) in readers.into_iter().enumerate() {
        let seen = reader.join().expect("reader");
        assert_eq!(
            seen,
            Seen { frames: BURST_FRAMES as u64, bytes: (BURST_FRAMES * 64 * 1024) as u64, close: None },
            "reader {i}"
        );
    }
    assert_eq!(trigger_reader.join().expect("trigger").frames, BURST_FRAMES as u64);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(server.handle().stats().slow_consumers_closed, 0);
}

/// A reader that never reads, four that do, two publishers at full speed:
/// the publishers finish and the readers get everything, whatever the
/// stalled reader's fate under `policy`. Returns the stalled reader's socket.
fn publishers_outlast_a_stalled_reader(policy: SlowConsumerPolicy) -> (fanout::RunningServer, TcpStream) {
    const PER_PUBLISHER: usize = 20_000;
    let server = relay_server(1, |c| {
        c.max_backpressure = 64 * 1024;
        c.slow_consumer = policy;
    });
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    // Never reads; a small receive buffer so its kernel buffers fill soon.
    let mut stalled = crowd::tcp_connect(addr, Some(4096));
    stalled.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    stalled.write_all(util::upgrade_request("/sub").as_bytes()).expect("upgrade");
    let expected = (2 * PER_PUBLISHER) as u64;
    let readers: Vec<_> =
        (0..4).map(|_| spawn_reader(util::raw_upgrade(addr, "/sub"), expected, stop.clone())).collect();
    let publishers: Vec<_> = (0..2).map(|_| spawn_publisher(addr, PER_PUBLISHER, 200, stop.clone())).collect();
    // Were the stalled reader counted as draining, the worker would stop
    // reading the publishers for good and they would never finish.
    for publisher in publishers {
        assert_eq!(publisher.join().expect("publisher"), PER_PUBLISHER);
    }
    for reader in readers {
        assert_eq!(reader.join().expect("reader"), Seen { frames: expected, bytes: expected * 200, close: None });
    }
    stop.store(true, Ordering::Relaxed);
    (server, stalled)
}

#[test]
fn a_stalled_reader_is_closed_without_holding_the_publishers_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, mut stalled) = publishers_outlast_a_stalled_reader(SlowConsumerPolicy::Close);
    util::wait_until("the stalled reader's close", || server.handle().stats().slow_consumers_closed == 1);
    let head = util::read_head(&mut stalled);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let mut last = None;
    while let Some(frame) = util::read_frame(&mut stalled) {
        last = Some(frame);
    }
    assert_eq!(last.map(|f| f.close_code()), Some(1008), "the stalled reader ends with 1008");
}

#[test]
fn a_stalled_reader_losing_frames_does_not_hold_the_publishers_back_either() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, _stalled) = publishers_outlast_a_stalled_reader(SlowConsumerPolicy::Drop);
    let stats = server.handle().stats();
    assert!(stats.frames_dropped > 0, "the stalled reader lost frames");
    assert_eq!(stats.slow_consumers_closed, 0, "nobody was closed");
}

#[test]
fn a_reader_slower_than_the_broadcasts_is_closed_in_time_and_the_others_get_everything() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const PER_PUBLISHER: usize = 20_000;
    let server = relay_server(1, |c| c.max_backpressure = 64 * 1024);
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    // Reads 4 KiB every 20 ms (200 KB/s): always making progress, never
    // keeping up. It holds the others back for at most the lag grace.
    let mut slow = crowd::tcp_connect(addr, Some(4096));
    slow.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    slow.write_all(util::upgrade_request("/sub").as_bytes()).expect("upgrade");
    let slow_stop = stop.clone();
    let slow_reader = thread::spawn(move || {
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        while !slow_stop.load(Ordering::Relaxed) {
            match slow.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => data.extend_from_slice(&chunk[..n]),
            }
            thread::sleep(Duration::from_millis(20));
        }
        data
    });
    let expected = (2 * PER_PUBLISHER) as u64;
    let readers: Vec<_> =
        (0..3).map(|_| spawn_reader(util::raw_upgrade(addr, "/sub"), expected, stop.clone())).collect();
    let publishers: Vec<_> = (0..2).map(|_| spawn_publisher(addr, PER_PUBLISHER, 200, stop.clone())).collect();
    for publisher in publishers {
        assert_eq!(publisher.join().expect("publisher"), PER_PUBLISHER);
    }
    for reader in readers {
        assert_eq!(reader.join().expect("reader"), Seen { frames: expected, bytes: expected * 200, close: None });
    }
    util::wait_until("the slow reader's close", || server.handle().stats().slow_consumers_closed == 1);
    stop.store(true, Ordering::Relaxed);
    let data = slow_reader.join().expect("slow reader");
    let at = data.windows(4).position(|w| w == b"\r\n\r\n").expect("the 101's head") + 4;
    let mut rest = &data[at..];
    let mut close = None;
    while let Some((frame, used)) = crowd::parse_frame(rest) {
        rest = &rest[used..];
        if frame.opcode == 0x8 {
            close = Some(frame.close_code());
        }
    }
    // It may not have read as far as its close frame before the server hung up.
    assert!(close.is_none_or(|code| code == 1008), "closed with {close:?}");
}

#[test]
fn tiny_frames_for_a_reader_that_never_reads_cost_no_more_than_its_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const BOUND: usize = 1 << 20;
    let server = relay_server(1, |c| {
        c.max_backpressure = BOUND;
        c.slow_consumer = SlowConsumerPolicy::Drop;
        // The smallest inbox, so that what waits there does not hide what
        // the queue costs.
        c.inbox_bytes = 64 * 1024;
    });
    let addr = server.local_addr();
    let handle = server.handle();
    let stalled = crowd::tcp_connect(addr, Some(4096));
    (&stalled).write_all(util::upgrade_request("/sub").as_bytes()).expect("upgrade");
    util::wait_until("the stalled reader", || handle.connection_count() == 1);
    let before = fanout::sys::resident_bytes().expect("VmRSS");
    // 3-byte frames: counted by payload alone, a 1 MiB bound held 11 MiB.
    for _ in 0..300_000 {
        handle.broadcast(&Message::binary(&b"x"[..]));
    }
    util::wait_until("frames to be dropped", || handle.stats().frames_dropped > 0);
    util::wait_until("the worker to take every broadcast", || scrape(addr, "fanout_inbox_depth") == 0);
    let queued = scrape(addr, "fanout_queued_bytes");
    assert!(queued > 0 && queued <= BOUND as u64, "queued {queued} bytes against a bound of {BOUND}");
    let grown = fanout::sys::resident_bytes().expect("VmRSS").saturating_sub(before);
    assert!(grown < 3 * BOUND as u64, "RSS grew {grown} bytes for one reader bounded at {BOUND}");
    drop(stalled);
}
