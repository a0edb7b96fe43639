//! Verifies that 1,000 connections stalling or trickling half an upgrade request neither stop a new client from connecting and chatting nor outlive `--handshake-timeout`.

mod crowd;
mod util;

use std::time::{Duration, Instant};

use crowd::Crowd;
use fanout::ChatHandler;
use tungstenite::Message as WsMessage;

const LORIS: usize = 1000;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How late past the timeout a drop may come: the sweep tick (125 ms with
/// these settings) plus a loaded debug build's turn.
const LATE: Duration = Duration::from_secs(1);
/// Between two bytes of a trickling client.
const TRICKLE: Duration = Duration::from_millis(100);

fn chat_round_trip(a: &mut util::Client, b: &mut util::Client, text: &str) {
    a.send(WsMessage::text(text)).unwrap();
    assert_eq!(util::next_message(b), WsMessage::text(text));
}

#[test]
fn a_thousand_half_handshakes_do_not_block_a_new_chat_and_are_dropped_at_the_handshake_timeout() {
    let config = util::with_config(util::config(2), |c| {
        c.handshake_timeout = HANDSHAKE_TIMEOUT;
    });
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let addr = server.local_addr();
    let fds_before = crowd::open_fds();

    let started = Instant::now();
    let mut loris = Crowd::connect(addr, LORIS, None);
    let connected = Instant::now();
    // Even clients send half a request at once and stall; odd ones trickle
    // it a byte at a time, never reaching the end.
    let request = util::upgrade_request("/chat").into_bytes();
    for peer in loris.peers.iter_mut().step_by(2) {
        peer.send(&request[..request.len() / 2]).unwrap();
    }
    util::wait_until("every slowloris socket to be accepted", || handle.stats().accepted == LORIS as u64);

    // With all of them pending, newcomers connect and chat at once.
    let chat_started = Instant::now();
    let mut a = util::connect_chat(addr);
    let mut b = util::connect_chat(addr);
    chat_round_trip(&mut a, &mut b, "hello through the crowd");
    chat_round_trip(&mut b, &mut a, "hello back");
    let chat_took = chat_started.elapsed();
    assert_eq!(handle.stats().handshake_timeouts, 0, "the chat check ran past the handshake timeout");
    assert!(chat_took < Duration::from_millis(500), "two upgrades and two messages took {chat_took:?}");

    let mut sent = 0;
    let mut next_byte = Instant::now();
    let mut ended = 0;
    let all_dropped = loris.pump_until(HANDSHAKE_TIMEOUT + LATE + LATE, |peers, ready| {
        ended += ready.iter().filter(|&&i| peers[i].ended.is_some()).count();
        if Instant::now() >= next_byte && sent < request.len() - 1 {
            for peer in peers.iter_mut().skip(1).step_by(2).filter(|p| p.ended.is_none()) {
                // A write racing the server's close fails; the read sees the end.
                let _ = peer.send(&request[sent..sent + 1]);
            }
            sent += 1;
            next_byte += TRICKLE;
        }
        ended == LORIS
    });
    assert!(all_dropped, "only {ended} of {LORIS} slowloris sockets were dropped");
    assert!(sent > 10, "the trickling clients sent only {sent} bytes");
    for (i, peer) in loris.peers.iter().enumerate() {
        let at = peer.ended.expect("ended");
        // The server's clock counts whole milliseconds.
        let earliest = started + HANDSHAKE_TIMEOUT - Duration::from_millis(2);
        assert!(at >= earliest, "client {i} dropped {:?} early", earliest - at);
        assert!(at <= connected + HANDSHAKE_TIMEOUT + LATE, "client {i} dropped {:?} late", at - connected);
        assert_eq!(peer.total, 0, "client {i} got an answer to half a request");
    }
    let first = loris.peers.iter().filter_map(|p| p.ended).min().unwrap() - started;
    let last = loris.peers.iter().filter_map(|p| p.ended).max().unwrap() - started;
    eprintln!(
        "slowloris: a new chat took {chat_took:?} among {LORIS} half handshakes; they were dropped \
         between {first:?} and {last:?} after the first connect (timeout {HANDSHAKE_TIMEOUT:?})"
    );

    let stats = handle.stats();
    assert_eq!(stats.handshake_timeouts, LORIS as u64);
    assert_eq!((stats.opened, stats.connections), (2, 2));
    assert_eq!(stats.refused_handshakes, 0);
    chat_round_trip(&mut a, &mut b, "still here");
    drop(loris);
    // Only the two chat clients remain: their two sockets on each side.
    let back = crowd::within(util::PATIENCE, || crowd::open_fds() == fds_before + 4);
    assert!(back, "open fds: {} before the crowd, {} after (+4 expected)", fds_before, crowd::open_fds());
    server.shutdown().unwrap();
}
