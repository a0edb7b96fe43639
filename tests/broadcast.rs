//! Verifies that messages fan out across workers to every client exactly once, in order per sender, keeping their opcode.

mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use fanout::{ChatHandler, ConnId, Message};
use tungstenite::Message as WsMessage;

const WORKERS: usize = 4;
const CLIENTS: usize = 100;
const SENDERS: usize = 5;
const PER_SENDER: usize = 20;

/// Reads chat messages "s{sender}-{seq}" until every sender but `own` has
/// delivered all of its messages; panics on a gap, a duplicate, a reordering
/// or the client's own message.
fn receive_every_sender_in_order(client: &mut util::Client, own: Option<usize>) {
    let mut next = [0usize; SENDERS];
    let complete = |next: &[usize; SENDERS]| (0..SENDERS).all(|s| Some(s) == own || next[s] == PER_SENDER);
    while !complete(&next) {
        let message = util::next_message(client);
        let text = message.to_text().expect("chat messages are text");
        let (sender, seq) = text
            .strip_prefix('s')
            .and_then(|t| t.split_once('-'))
            .and_then(|(s, q)| Some((s.parse::<usize>().ok()?, q.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("unexpected message {text:?}"));
        assert_ne!(Some(sender), own, "a sender received its own message {text:?}");
        assert_eq!(seq, next[sender], "sender {sender}: expected seq {} next, got {text:?}", next[sender]);
        next[sender] += 1;
    }
}

/// The connection id announced in a chat welcome.
fn welcome_id(welcome: &WsMessage) -> ConnId {
    let text = welcome.to_text().expect("welcome is text");
    let digits: String = text
        .split("\"id\":")
        .nth(1)
        .unwrap_or_else(|| panic!("no id in {text:?}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    ConnId::from_u64(digits.parse().expect("numeric id"))
}

#[test]
fn connections_made_one_at_a_time_spread_evenly_over_four_workers() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let handle = server.handle();
    let mut per_worker = [0usize; WORKERS];
    let _clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut client = util::connect(server.local_addr(), "/chat");
            per_worker[welcome_id(&util::next_message(&mut client)).worker()] += 1;
            client
        })
        .collect();
    util::wait_until("100 connections", || handle.connection_count() == CLIENTS);
    assert_eq!(handle.stats().connections_per_worker, vec![CLIENTS / WORKERS; WORKERS]);
    assert_eq!(per_worker, [CLIENTS / WORKERS; WORKERS], "worker index in the announced ids");
}

#[test]
fn every_client_gets_each_relayed_message_once_in_sender_order_across_four_workers() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let handle = server.handle();
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("100 connections", || handle.connection_count() == CLIENTS);
    assert_eq!(handle.stats().connections_per_worker, vec![CLIENTS / WORKERS; WORKERS]);

    // Each sender is one of the first five clients, so they sit on
    // different workers; they send concurrently and then read.
    let senders: Vec<_> = clients
        .drain(..SENDERS)
        .enumerate()
        .map(|(s, mut client)| {
            thread::spawn(move || {
                for seq in 0..PER_SENDER {
                    client.send(WsMessage::text(format!("s{s}-{seq}"))).expect("send");
                }
                receive_every_sender_in_order(&mut client, Some(s));
                client
            })
        })
        .collect();
    for client in &mut clients {
        receive_every_sender_in_order(client, None);
    }
    clients.extend(senders.into_iter().map(|t| t.join().expect("sender thread")));

    // Nothing else is queued for anyone: a broadcast from the test thread
    // is the very next message every client reads.
    handle.broadcast(&Message::text("end"));
    for client in &mut clients {
        assert_eq!(util::next_message(client), WsMessage::text("end"));
    }
    assert_eq!(handle.stats().messages_in, (SENDERS * PER_SENDER) as u64);
    server.shutdown().unwrap();
}

#[test]
fn a_broadcast_from_outside_the_server_reaches_all_100_clients() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let handle = server.handle();
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("100 connections", || handle.connection_count() == CLIENTS);
    handle.broadcast(&Message::text("to everyone"));
    handle.broadcast(&Message::binary(vec![0u8, 255, 7]));
    for client in &mut clients {
        assert_eq!(util::next_message(client), WsMessage::text("to everyone"));
        assert_eq!(util::next_message(client), WsMessage::binary(vec![0u8, 255, 7]));
    }
    server.shutdown().unwrap();
}

#[test]
fn the_welcome_arrives_first_even_while_broadcasts_are_flowing() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let handle = server.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (handle, stop) = (handle.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                handle.broadcast(&Message::text(format!("tick {n}")));
                n += 1;
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    for i in 0..20 {
        let mut client = util::connect(server.local_addr(), "/chat");
        let first = util::next_message(&mut client);
        let text = first.to_text().expect("welcome is text");
        assert!(text.starts_with("{\"type\":\"welcome\",\"id\":"), "client {i} got {text:?} first");
        // Ticks follow, in order, with no gap.
        let next_tick = |client: &mut util::Client| -> u64 {
            let message = util::next_message(client);
            let text = message.to_text().expect("tick is text");
            text.strip_prefix("tick ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("got {text:?}"))
        };
        let a = next_tick(&mut client);
        assert_eq!(next_tick(&mut client), a + 1);
    }
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    server.shutdown().unwrap();
}

#[test]
fn with_echo_to_sender_the_sender_receives_its_own_message_too() {
    let server = util::start(util::config(WORKERS), ChatHandler { echo_to_sender: true });
    let mut clients: Vec<_> = (0..6).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("six connections", || server.handle().connection_count() == 6);
    clients[2].send(WsMessage::text("for all of us")).unwrap();
    for client in &mut clients {
        assert_eq!(util::next_message(client), WsMessage::text("for all of us"));
    }
    server.shutdown().unwrap();
}

#[test]
fn without_echo_to_sender_the_sender_does_not_receive_its_own_message() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let mut clients: Vec<_> = (0..6).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("six connections", || server.handle().connection_count() == 6);
    clients[2].send(WsMessage::text("for the others")).unwrap();
    for (i, client) in clients.iter_mut().enumerate().filter(|(i, _)| *i != 2) {
        assert_eq!(util::next_message(client), WsMessage::text("for the others"), "client {i}");
    }
    // The sender's next message is the one after, not its own.
    clients[0].send(WsMessage::text("second")).unwrap();
    assert_eq!(util::next_message(&mut clients[2]), WsMessage::text("second"));
    server.shutdown().unwrap();
}

#[test]
fn binary_and_text_messages_keep_their_opcode_across_workers() {
    let server = util::start(util::config(WORKERS), ChatHandler::default());
    let mut clients: Vec<_> = (0..8).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("eight connections", || server.handle().connection_count() == 8);
    assert_eq!(server.handle().stats().connections_per_worker, vec![2; WORKERS]);
    let payload: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00]).collect();
    clients[0].send(WsMessage::binary(payload.clone())).unwrap();
    // Text that happens to look like bytes stays text.
    clients[0].send(WsMessage::text("0xff")).unwrap();
    for client in &mut clients[1..] {
        assert_eq!(util::next_message(client), WsMessage::binary(payload.clone()));
        assert_eq!(util::next_message(client), WsMessage::text("0xff"));
    }
    server.shutdown().unwrap();
}
