//! Verifies that a client that never reads is closed or has frames dropped at max_backpressure, while the other clients get every message in order and memory stays bounded.

mod paced;
mod util;

use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fanout::{sys, ChatHandler, ConnId, Message, PushOutcome, RunningServer, SlowConsumerPolicy};
use socket2::{Domain, Protocol, Socket, Type};
use tungstenite::Message as WsMessage;

const BACKPRESSURE: usize = 256 * 1024;
const FRAME: usize = 64 * 1024;
const HEALTHY: usize = 3;
/// Broadcasts a healthy client may have outstanding: well under the bound,
/// so only the stalled client ever reaches it.
const WINDOW: u64 = 2;
/// Payload shape and pacing of this file's broadcasts.
const PACED: paced::Paced = paced::Paced { frame: FRAME, window: WINDOW };
/// Most broadcasts a test sends before giving up on the policy kicking in.
const MAX_BROADCASTS: u64 = 400;
/// Most the process may grow while all this is queued.
const RSS_BUDGET: u64 = 32 << 20;

fn start(policy: SlowConsumerPolicy) -> RunningServer {
    let config = util::with_config(util::config(2), |c| {
        c.max_backpressure = BACKPRESSURE;
        c.slow_consumer = policy;
        // Long enough for the stalled client to read its close frame.
        c.close_timeout = Duration::from_secs(3);
    });
    util::start(config, ChatHandler::default())
}

/// Connects a chat client with a small TCP receive buffer that will never
/// read past its welcome; returns it with its connection id.
fn connect_stalled(addr: SocketAddr) -> (util::Client, ConnId) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let (mut client, _) = tungstenite::client(format!("ws://{addr}/chat"), stream).expect("upgrade");
    let welcome = util::next_message(&mut client);
    let text = welcome.to_text().expect("welcome is text");
    let id: String = text.split("\"id\":").nth(1).expect("an id").chars().take_while(char::is_ascii_digit).collect();
    (client, ConnId::from_u64(id.parse().unwrap()))
}

fn process_rss() -> u64 {
    sys::resident_bytes().expect("VmRSS")
}

#[test]
fn under_the_close_policy_a_client_that_never_reads_is_closed_with_1008_and_the_others_get_everything() {
    let server = start(SlowConsumerPolicy::Close);
    let handle = server.handle();
    let addr = server.local_addr();
    let (mut stalled, stalled_id) = connect_stalled(addr);
    let readers: Vec<_> = (0..HEALTHY).map(|_| PACED.spawn_reader(util::connect_chat(addr))).collect();
    assert!(handle.exists(stalled_id));
    let rss_before = process_rss();
    let mut rss_peak = rss_before;

    let mut sent = 0;
    while handle.stats().slow_consumers_closed == 0 {
        assert!(sent < MAX_BROADCASTS, "the stalled client was never closed");
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
        rss_peak = rss_peak.max(process_rss());
    }
    // It may start reading now: what it gets is an unbroken prefix, then 1008.
    let late_reader = thread::spawn(move || {
        let mut seqs = Vec::new();
        loop {
            match stalled.read() {
                Ok(WsMessage::Binary(data)) => seqs.push(PACED.seq_of(&data)),
                Ok(WsMessage::Close(frame)) => return (seqs, frame.map(|f| u16::from(f.code))),
                Ok(other) => panic!("unexpected message {other:?}"),
                Err(e) => panic!("the stalled client got no close frame: {e} after {} messages", seqs.len()),
            }
        }
    });
    assert!(!handle.exists(stalled_id));
    assert!(!handle.connections().contains(&stalled_id));
    assert_eq!(handle.push(stalled_id, &Message::text("late")), PushOutcome::Closed);
    // The others go on receiving at full speed.
    for _ in 0..20 {
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
    }
    let stats = handle.stats();
    assert_eq!(stats.slow_consumers_closed, 1);
    assert_eq!(stats.frames_dropped, 0);
    assert_eq!(stats.connections, HEALTHY);
    paced::assert_readers_got_everything(&handle, readers, sent);

    let (seqs, code) = late_reader.join().expect("stalled client reader");
    assert_eq!(code, Some(1008));
    assert!(!seqs.is_empty(), "the stalled client had nothing delivered at all");
    assert!(seqs.iter().copied().eq(0..seqs.len() as u64), "the stalled client's prefix has gaps: {seqs:?}");
    let grown = rss_peak.saturating_sub(rss_before);
    assert!(grown < RSS_BUDGET, "the process grew by {} KiB", grown >> 10);
    server.shutdown().unwrap();
}

#[test]
fn under_the_drop_policy_a_client_that_never_reads_loses_frames_but_stays_and_recovers_in_order() {
    let server = start(SlowConsumerPolicy::Drop);
    let handle = server.handle();
    let addr = server.local_addr();
    let (stalled, stalled_id) = connect_stalled(addr);
    let readers: Vec<_> = (0..HEALTHY).map(|_| PACED.spawn_reader(util::connect_chat(addr))).collect();
    let rss_before = process_rss();
    let mut rss_peak = rss_before;
    let probe = Message::text("probe");

    let mut sent = 0;
    while handle.stats().frames_dropped == 0 {
        assert!(sent < MAX_BROADCASTS, "no frame was ever dropped for the stalled client");
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
    }
    util::wait_until("push to report Dropped", || handle.push(stalled_id, &probe) == PushOutcome::Dropped);
    // Keep going well past the bound: the stalled client's queue must not grow.
    let keep_on = sent + (RSS_BUDGET + (8 << 20)) / FRAME as u64;
    while sent < keep_on {
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
        rss_peak = rss_peak.max(process_rss());
    }
    assert!(handle.exists(stalled_id), "the drop policy closed the stalled client");
    assert_eq!(handle.push(stalled_id, &probe), PushOutcome::Dropped);
    let stats = handle.stats();
    assert!(stats.frames_dropped > 0);
    assert_eq!(stats.slow_consumers_closed, 0);
    assert_eq!(stats.connections, HEALTHY + 1);
    let grown = rss_peak.saturating_sub(rss_before);
    assert!(grown < RSS_BUDGET, "the process grew by {} KiB", grown >> 10);

    // Now it reads: an in-order subset of whole frames, then what comes
    // after it drained.
    let late = spawn_reader_with_probes(stalled);
    util::wait_until("push to the drained client to be queued", || {
        handle.push(stalled_id, &probe) == PushOutcome::Queued
    });
    paced::assert_readers_got_everything(&handle, readers, sent);
    let seqs = late.join().expect("late reader");
    assert!(!seqs.is_empty(), "the stalled client got nothing at all");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "the stalled client's frames are out of order");
    assert!((seqs.len() as u64) < sent, "nothing was dropped for the stalled client");
    server.shutdown().unwrap();
}

/// Reads broadcasts until "end", skipping probes; every frame must parse.
fn spawn_reader_with_probes(mut client: util::Client) -> JoinHandle<Vec<u64>> {
    thread::spawn(move || {
        let mut seqs = Vec::new();
        let mut probes = 0;
        loop {
            match util::next_message(&mut client) {
                WsMessage::Binary(data) => seqs.push(PACED.seq_of(&data)),
                WsMessage::Text(text) if text.as_str() == "probe" => probes += 1,
                WsMessage::Text(text) if text.as_str() == "end" => {
                    assert!(probes >= 1, "the probe queued after draining never arrived");
                    return seqs;
                }
                other => panic!("unexpected message {other:?}"),
            }
        }
    })
}
