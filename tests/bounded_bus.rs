//! Verifies that a thread outside the workers can publish without blocking forever: `try_broadcast` answers `Full` at the inbox bound and sends all or nothing, publishing to a stopped server returns at once, and a flood of broadcasts never holds up new connections.

mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fanout::{ChatHandler, Message, SendError};
use tungstenite::Message as WsMessage;

const BIG: usize = 40 * 1024;

/// Reads `client` on a thread, counting data messages until "end".
fn count_until_end(mut client: util::Client) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut count = 0;
        loop {
            match util::next_message(&mut client) {
                WsMessage::Text(text) if text.as_str() == "end" => return count,
                _ => count += 1,
            }
        }
    })
}

#[test]
fn try_broadcast_answers_full_at_the_inbox_bound_and_sends_all_or_nothing() {
    let config = util::with_config(util::config(2), |c| c.inbox_bytes = 64 * 1024);
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let clients: Vec<_> = (0..4).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("four connections", || handle.connection_count() == 4);
    let readers: Vec<_> = clients.into_iter().map(count_until_end).collect();
    let big = Message::binary(vec![7u8; BIG]);
    let (mut sent, mut full) = (0u64, 0u64);
    let started = Instant::now();
    for _ in 0..400 {
        match handle.try_broadcast(&big) {
            Ok(()) => sent += 1,
            Err(SendError::Full) => full += 1,
            Err(SendError::Closed) => panic!("the server is running"),
        }
    }
    assert!(full > 0, "400 broadcasts of 40 KiB into 64 KiB inboxes never found one full");
    assert!(started.elapsed() < util::PATIENCE, "try_broadcast waited");
    handle.broadcast_timeout(&big, util::PATIENCE).expect("room comes within the timeout");
    sent += 1;
    handle.broadcast(&Message::text("end"));
    for reader in readers {
        assert_eq!(
            reader.join().expect("reader"),
            sent,
            "every accepted broadcast reached every client, no refused one did"
        );
    }
}

#[test]
fn publishing_to_a_stopped_server_returns_at_once_instead_of_waiting_for_room() {
    let server = util::start(util::config(2), ChatHandler::default());
    let handle = server.handle();
    server.shutdown().expect("a clean stop");
    let big = Message::binary(vec![1u8; BIG]);
    let started = Instant::now();
    assert_eq!(handle.try_broadcast(&big), Err(SendError::Closed));
    assert_eq!(handle.broadcast_timeout(&big, util::PATIENCE), Err(SendError::Closed));
    handle.broadcast(&big);
    assert!(started.elapsed() < Duration::from_secs(1), "publishing to a stopped server waited");
}

#[test]
fn new_connections_are_accepted_while_another_thread_floods_the_inboxes() {
    let config = util::with_config(util::config(1), |c| c.inbox_bytes = 64 * 1024);
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let addr = server.local_addr();
    let readers: Vec<_> = (0..8).map(|_| count_until_end(util::connect_chat(addr))).collect();
    util::wait_until("eight connections", || handle.connection_count() == 8);
    let flooding = Arc::new(AtomicBool::new(true));
    let floods = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (handle, flooding, floods) = (handle.clone(), flooding.clone(), floods.clone());
        thread::spawn(move || {
            let big = Message::binary(vec![3u8; BIG]);
            while flooding.load(Ordering::Relaxed) {
                // Blocks whenever the inbox is full.
                handle.broadcast(&big);
                floods.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    util::wait_until("the flood to fill the inbox", || floods.load(Ordering::Relaxed) > 50);
    // The acceptor hands sockets over on the control channel: a newcomer is
    // adopted and welcomed while the flood goes on.
    let newcomer = util::connect_chat(addr);
    assert!(flooding.load(Ordering::Relaxed));
    let at_welcome = floods.load(Ordering::Relaxed);
    flooding.store(false, Ordering::Relaxed);
    flooder.join().expect("flooder");
    handle.broadcast(&Message::text("end"));
    let total = floods.load(Ordering::Relaxed);
    for reader in readers {
        assert_eq!(reader.join().expect("reader"), total);
    }
    assert!(at_welcome <= total);
    drop(newcomer);
}
