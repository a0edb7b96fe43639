//! Verifies that 1,000 clients that never read, while broadcasts flow, cost the server no more than their queue bounds, are closed with 1008 (or lose frames, counted exactly) as the slow-consumer policy says, and never delay or reorder what healthy clients receive.

mod crowd;
mod paced;
mod util;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crowd::{Crowd, Peer};
use fanout::{sys, ChatHandler, RunningServer, ServerHandle, SlowConsumerPolicy};

const STALLED: usize = 1000;
const HEALTHY: usize = 4;
const BACKPRESSURE: usize = 64 * 1024;
const FRAME: usize = 4096;
/// Broadcasts a healthy client may have outstanding.
const WINDOW: u64 = 4;
/// Payload shape and pacing of this file's broadcasts.
const PACED: paced::Paced = paced::Paced { frame: FRAME, window: WINDOW };
/// Most broadcasts a test sends before giving up on the policy kicking in.
const MAX_BROADCASTS: u64 = 1000;
/// What the process may grow by: the bound is the sum of the queue
/// bounds, but queued broadcasts share one encoded frame, so growth must
/// stay far below it.
const RSS_BUDGET: u64 = 16 << 20;

/// The two tests each hold 2,000 sockets and both cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn start(policy: SlowConsumerPolicy) -> RunningServer {
    let config = util::with_config(util::config(2), |c| {
        c.max_backpressure = BACKPRESSURE;
        c.slow_consumer = policy;
        // Long enough for the stalled clients to read their close frames later.
        c.close_timeout = Duration::from_secs(5);
    });
    util::start(config, ChatHandler::default())
}

/// Connects the stalled clients (4 KiB receive buffers) and takes their
/// welcomes; after that they read nothing until the test says so.
fn connect_stalled(addr: std::net::SocketAddr) -> Crowd {
    let mut stalled = Crowd::connect(addr, STALLED, Some(4096));
    stalled.upgrade_all("/chat");
    for (i, welcome) in stalled.take_one_frame_each().into_iter().enumerate() {
        assert!(String::from_utf8_lossy(&welcome.payload).contains("welcome"), "client {i}: {welcome:?}");
    }
    stalled
}

/// Waits until every client socket and its server side are closed.
fn assert_fds_back_to(baseline: usize) {
    let back = crowd::within(util::PATIENCE, || crowd::open_fds() == baseline);
    assert!(back, "open fds: {baseline} before the clients, {} after they left", crowd::open_fds());
}

/// A server under one policy with its stalled crowd and healthy readers
/// connected, and the baselines taken before any broadcast.
struct Scene {
    _serial: MutexGuard<'static, ()>,
    server: RunningServer,
    handle: ServerHandle,
    fds_before: usize,
    stalled: Crowd,
    readers: Vec<paced::Reader>,
    rss_before: u64,
}

impl Scene {
    fn new(policy: SlowConsumerPolicy) -> Self {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let server = start(policy);
        let handle = server.handle();
        let addr = server.local_addr();
        let fds_before = crowd::open_fds();
        let stalled = connect_stalled(addr);
        let readers = (0..HEALTHY).map(|_| PACED.spawn_reader(util::connect_chat(addr))).collect();
        let rss_before = rss();
        Scene { _serial, server, handle, fds_before, stalled, readers, rss_before }
    }
}

fn rss() -> u64 {
    sys::resident_bytes().expect("VmRSS")
}

/// Takes a stalled client's frames: the broadcast sequence numbers, then
/// whether "end" or a close frame (with its code) came last.
fn take_broadcasts(peer: &mut Peer, seqs: &mut Vec<u64>) -> Option<Result<(), u16>> {
    while let Some(frame) = peer.take_frame() {
        match frame.opcode {
            0x2 => seqs.push(PACED.seq_of(&frame.payload)),
            0x1 if frame.payload == b"end" => return Some(Ok(())),
            0x8 => return Some(Err(frame.close_code())),
            _ => panic!("unexpected frame {frame:?}"),
        }
    }
    None
}

#[test]
fn under_the_close_policy_a_thousand_stalled_clients_are_closed_with_1008_and_healthy_ones_get_everything() {
    let Scene { _serial, server, handle, fds_before, mut stalled, readers, rss_before } =
        Scene::new(SlowConsumerPolicy::Close);
    let mut rss_peak = rss_before;

    let started = Instant::now();
    let mut sent = 0;
    while handle.stats().slow_consumers_closed < STALLED as u64 {
        assert!(sent < MAX_BROADCASTS, "only {} stalled clients closed", handle.stats().slow_consumers_closed);
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
        rss_peak = rss_peak.max(rss());
    }
    let to_close_all = sent;
    // The healthy clients go on at full speed.
    for _ in 0..50 {
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
    }
    let took = started.elapsed();
    let stats = handle.stats();
    assert_eq!(stats.slow_consumers_closed, STALLED as u64);
    assert_eq!(stats.frames_dropped, 0);
    assert_eq!(stats.connections, HEALTHY);
    paced::assert_readers_got_everything(&handle, readers, sent);

    // Now the stalled clients read: an unbroken prefix of the broadcasts, then 1008.
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); STALLED];
    let mut endings: Vec<Option<Result<(), u16>>> = vec![None; STALLED];
    let mut finished = 0;
    stalled.set_recv_buffers(1 << 20);
    let all = stalled.pump_until(util::PATIENCE, |peers, ready| {
        for &i in ready {
            if endings[i].is_none() {
                endings[i] = take_broadcasts(&mut peers[i], &mut seqs[i]);
                finished += usize::from(endings[i].is_some());
            }
            assert!(endings[i].is_some() || peers[i].ended.is_none(), "client {i} ended without a close frame");
        }
        finished == STALLED
    });
    assert!(all, "only {finished} of {STALLED} stalled clients got their close frame");
    for (i, (seqs, ending)) in seqs.iter().zip(&endings).enumerate() {
        assert_eq!(*ending, Some(Err(1008)), "client {i}");
        assert!(seqs.iter().copied().eq(0..seqs.len() as u64), "client {i}'s prefix has gaps: {seqs:?}");
    }
    let delivered: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let grown = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "close policy: {to_close_all} broadcasts of {FRAME} B closed all {STALLED} stalled clients \
         ({} to {} frames delivered to each before 1008); {sent} broadcasts in {took:?}; \
         RSS grew {} KiB (queue bounds sum to {} KiB)",
        delivered.iter().min().unwrap(),
        delivered.iter().max().unwrap(),
        grown >> 10,
        (STALLED * BACKPRESSURE) >> 10,
    );
    assert!(grown < RSS_BUDGET, "the process grew by {} KiB", grown >> 10);
    drop(stalled);
    assert_fds_back_to(fds_before);
    server.shutdown().unwrap();
}

#[test]
fn under_the_drop_policy_a_thousand_stalled_clients_lose_frames_counted_exactly_and_then_catch_up_in_order() {
    let Scene { _serial, server, handle, fds_before, mut stalled, readers, rss_before } =
        Scene::new(SlowConsumerPolicy::Drop);
    let mut rss_peak = rss_before;

    let started = Instant::now();
    let mut sent = 0;
    while handle.stats().frames_dropped < STALLED as u64 {
        assert!(sent < MAX_BROADCASTS, "only {} frames dropped", handle.stats().frames_dropped);
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
    }
    // Go on well past the bound: the stalled queues must not grow.
    let keep_on = sent + 2 * (BACKPRESSURE / FRAME) as u64;
    while sent < keep_on {
        PACED.broadcast(&handle, &readers, sent);
        sent += 1;
        rss_peak = rss_peak.max(rss());
    }
    let took = started.elapsed();
    let stats = handle.stats();
    assert_eq!(stats.slow_consumers_closed, 0);
    assert_eq!(stats.connections, STALLED + HEALTHY);
    let grown = rss_peak.saturating_sub(rss_before);
    assert!(grown < RSS_BUDGET, "the process grew by {} KiB", grown >> 10);

    // The stalled clients drain what was queued for them...
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); STALLED];
    let mut endings: Vec<Option<Result<(), u16>>> = vec![None; STALLED];
    let mut quiet_since = Instant::now();
    stalled.set_recv_buffers(1 << 20);
    stalled.pump_until(util::PATIENCE, |peers, ready| {
        for &i in ready {
            endings[i] = take_broadcasts(&mut peers[i], &mut seqs[i]);
            assert!(endings[i].is_none() && peers[i].ended.is_none(), "client {i} ended: {:?}", endings[i]);
        }
        if !ready.is_empty() {
            quiet_since = Instant::now();
        }
        quiet_since.elapsed() > Duration::from_millis(300)
    });
    // ...and then receive what comes next, every one of them.
    paced::assert_readers_got_everything(&handle, readers, sent);
    let mut finished = 0;
    let all = stalled.pump_until(util::PATIENCE, |peers, ready| {
        for &i in ready {
            if endings[i].is_none() {
                endings[i] = take_broadcasts(&mut peers[i], &mut seqs[i]);
                finished += usize::from(endings[i].is_some());
            }
        }
        finished == STALLED
    });
    assert!(all, "only {finished} of {STALLED} stalled clients got the broadcast after draining");
    let mut missing = 0;
    for (i, seqs) in seqs.iter().enumerate() {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "client {i}'s frames are out of order");
        assert!((seqs.len() as u64) < sent, "client {i} lost nothing");
        missing += sent - seqs.len() as u64;
    }
    let stats = handle.stats();
    assert_eq!(stats.frames_dropped, missing, "frames_dropped does not match what the clients missed");
    assert_eq!(stats.slow_consumers_closed, 0);
    // The healthy clients hung up after "end"; the stalled ones are all still there.
    util::wait_until("the healthy clients to leave", || handle.connection_count() == STALLED);
    let delivered: Vec<usize> = seqs.iter().map(Vec::len).collect();
    eprintln!(
        "drop policy: {sent} broadcasts of {FRAME} B in {took:?}; each stalled client got {} to {} of them, \
         {missing} dropped in all (= frames_dropped); RSS grew {} KiB (queue bounds sum to {} KiB)",
        delivered.iter().min().unwrap(),
        delivered.iter().max().unwrap(),
        grown >> 10,
        (STALLED * BACKPRESSURE) >> 10,
    );
    drop(stalled);
    assert_fds_back_to(fds_before);
    server.shutdown().unwrap();
}
