//! Verifies that SIGTERM while 5,000 clients receive broadcasts gives each of them every frame already queued for it, in order, then close 1001, and that the process exits within `--shutdown-timeout`.

mod child;
mod crowd;
mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use child::Fanout;
use crowd::Crowd;
use fanout::ConnId;
use tungstenite::Message as WsMessage;

const CLIENTS: usize = 5000;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// Messages the publisher sends per burst, and the pause between bursts.
const BURST: u64 = 5;
const PAUSE: Duration = Duration::from_millis(40);

/// What one client saw after its welcome.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Broadcasts received, all in order from 0 (checked as they arrive).
    count: u64,
    /// The close frame's code, once it came.
    close: Option<u16>,
}

fn worker_of(welcome: &crowd::Frame) -> usize {
    let text = String::from_utf8_lossy(&welcome.payload);
    assert!(text.contains("welcome"), "not a welcome: {text}");
    let id: String = text.split("\"id\":").nth(1).expect("an id").chars().take_while(char::is_ascii_digit).collect();
    ConnId::from_u64(id.parse().expect("a numeric id")).worker()
}

#[test]
fn sigterm_while_five_thousand_clients_receive_broadcasts_delivers_what_was_queued_then_1001_and_exits_in_time() {
    let timeout = format!("{}", SHUTDOWN_TIMEOUT.as_secs());
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--shutdown-timeout",
        &timeout,
        "--ping-interval",
        "off",
        "--idle-timeout",
        "off",
    ];
    let mut fanout = Fanout::spawn(&args, None);
    let addr = fanout.addr;
    let connect_started = Instant::now();
    let mut crowd = Crowd::connect(addr, CLIENTS, None);
    crowd.upgrade_all("/chat");
    // The welcome names each client's id, and with it its worker.
    let workers: Vec<usize> = crowd.take_one_frame_each().iter().map(worker_of).collect();
    let connected_in = connect_started.elapsed();

    // One more chat client publishes numbered messages in bursts until the
    // server closes it; the relay sends each to all the others.
    let published = Arc::new(AtomicU64::new(0));
    let publishing = Arc::new(AtomicBool::new(true));
    let mut publisher = util::connect_chat(addr);
    let publisher = {
        let (published, publishing) = (published.clone(), publishing.clone());
        thread::spawn(move || {
            let mut seq = 0;
            'bursts: while publishing.load(Ordering::Relaxed) {
                for _ in 0..BURST {
                    if publisher.send(WsMessage::text(format!("m{seq}"))).is_err() {
                        break 'bursts;
                    }
                    seq += 1;
                    published.store(seq, Ordering::Relaxed);
                }
                thread::sleep(PAUSE);
            }
            // It is a client like the others: it gets 1001 too.
            util::expect_close(&mut publisher)
        })
    };

    let mut seen = vec![Seen::default(); CLIENTS];
    let mut sigterm_at: Option<Instant> = None;
    let mut closed = 0;
    let all = crowd.pump_until(Duration::from_secs(30), |peers, ready| {
        for &i in ready {
            let peer = &mut peers[i];
            while let Some(frame) = peer.take_frame() {
                let seen = &mut seen[i];
                assert!(seen.close.is_none(), "client {i} got {frame:?} after the close frame");
                match frame.opcode {
                    0x1 => {
                        let expected = format!("m{}", seen.count);
                        assert_eq!(frame.payload, expected.as_bytes(), "client {i}: a gap or a reordering");
                        seen.count += 1;
                    }
                    0x8 => {
                        seen.close = Some(frame.close_code());
                        closed += 1;
                        // Answer like a browser: a close frame, then hang up.
                        let _ = peer.send(&util::client_frame(true, 0x8, &frame.payload[..2]));
                        peer.hang_up();
                    }
                    _ => panic!("client {i}: unexpected frame {frame:?}"),
                }
            }
            assert!(peer.ended.is_none() || seen[i].close.is_some(), "client {i} ended without a close frame");
        }
        // Signal once every client has some broadcasts behind it and more are flowing.
        if sigterm_at.is_none() && seen.iter().all(|s| s.count >= 10) {
            fanout.signal(libc::SIGTERM);
            sigterm_at = Some(Instant::now());
        }
        closed == CLIENTS
    });
    let sigterm_at = sigterm_at.expect("the broadcasts never reached every client");
    let closed_in = sigterm_at.elapsed();
    assert!(all, "only {closed} of {CLIENTS} clients got a close frame");
    // The publisher stops too, reads its close frame and hangs up.
    publishing.store(false, Ordering::Relaxed);
    let publisher_close = publisher.join().expect("publisher");
    let status = fanout.exit_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1));
    let exited_in = sigterm_at.elapsed();
    let status = status.unwrap_or_else(|| panic!("fanout still running {exited_in:?} after SIGTERM"));
    assert!(status.success(), "exit status {status}");

    let sent = published.load(Ordering::Relaxed);
    let counts: Vec<u64> = seen.iter().map(|s| s.count).collect();
    let (fewest, most) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    eprintln!(
        "shutdown under load: {CLIENTS} clients connected in {connected_in:?}; SIGTERM after {} broadcasts \
         reached everyone; each client got {fewest} to {most} of {sent} published before its 1001; \
         all closed {closed_in:?} and the process exited {exited_in:?} after the signal",
        10
    );
    assert!(seen.iter().all(|s| s.close == Some(1001)), "a client got another close code");
    // A worker applies the shutdown between two broadcasts: all its clients
    // got exactly the broadcasts it had applied before, none lost.
    for worker in 0..2 {
        let mut on_worker = (0..CLIENTS).filter(|&i| workers[i] == worker).map(|i| seen[i].count);
        let first = on_worker.next().expect("clients on every worker");
        assert!(
            on_worker.all(|count| count == first),
            "clients of worker {worker} got different numbers of broadcasts"
        );
    }
    assert_eq!(publisher_close, 1001);
    assert!(most <= sent);
    assert!(exited_in < SHUTDOWN_TIMEOUT, "exit took {exited_in:?} with --shutdown-timeout {SHUTDOWN_TIMEOUT:?}");
}
