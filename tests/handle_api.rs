//! Verifies that the server handle pushes, broadcasts, disconnects and inspects connections correctly from any thread, and that connection ids are never reused.

mod util;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fanout::{ChatHandler, ConnId, Message, Prepared, PushOutcome, RunningServer};
use tungstenite::Message as WsMessage;

fn chat_server(workers: usize) -> RunningServer {
    util::start(util::config(workers), ChatHandler::default())
}

/// Connects to the chat and returns the client with the id its welcome names.
fn connect(addr: SocketAddr) -> (util::Client, ConnId) {
    let mut client = util::connect(addr, "/chat");
    let welcome = util::next_message(&mut client);
    let text = welcome.to_text().expect("welcome is text");
    let id = text
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in welcome {text:?}"));
    (client, ConnId::from_u64(id))
}

/// The next `n` messages of `client`, as text.
fn texts(client: &mut util::Client, n: usize) -> Vec<String> {
    (0..n).map(|_| util::next_message(client).into_text().expect("a text message").to_string()).collect()
}

/// Closes `client` with a close handshake and waits until the server forgot `id`.
fn close(server: &RunningServer, mut client: util::Client, id: ConnId) {
    client.close(None).unwrap();
    while client.read().is_ok() {}
    util::wait_until("the id to be gone", || !server.handle().exists(id));
}

#[test]
fn push_to_an_open_connection_is_queued_and_received() {
    let server = chat_server(2);
    let (mut client, id) = connect(server.local_addr());
    assert_eq!(server.handle().push(id, &Message::text("just for you")), PushOutcome::Queued);
    assert_eq!(server.handle().push(id, &Message::binary(vec![1u8, 2])), PushOutcome::Queued);
    assert_eq!(util::next_message(&mut client), WsMessage::text("just for you"));
    assert_eq!(util::next_message(&mut client), WsMessage::binary(vec![1u8, 2]));
}

#[test]
fn push_to_a_closed_connection_reports_closed() {
    let server = chat_server(1);
    let (client, id) = connect(server.local_addr());
    close(&server, client, id);
    assert_eq!(server.handle().push(id, &Message::text("too late")), PushOutcome::Closed);
}

#[test]
fn push_to_an_id_never_issued_reports_closed() {
    let server = chat_server(2);
    let (_client, id) = connect(server.local_addr());
    let handle = server.handle();
    for never in [u64::MAX, 0, id.as_u64() + (1 << 40)] {
        let never = ConnId::from_u64(never);
        assert_eq!(handle.push(never, &Message::text("nobody")), PushOutcome::Closed, "{never}");
        assert!(!handle.exists(never));
        assert!(!handle.disconnect(never, 1000, ""));
    }
}

#[test]
fn a_stale_id_never_reaches_the_connection_that_took_its_place() {
    let server = chat_server(1);
    let (old, old_id) = connect(server.local_addr());
    close(&server, old, old_id);
    let (mut new, new_id) = connect(server.local_addr());
    assert_ne!(new_id, old_id);
    assert_eq!(server.handle().push(old_id, &Message::text("stale")), PushOutcome::Closed);
    assert_eq!(server.handle().push(new_id, &Message::text("fresh")), PushOutcome::Queued);
    assert_eq!(util::next_message(&mut new), WsMessage::text("fresh"));
}

#[test]
fn exists_is_true_while_open_and_false_once_the_client_closed() {
    let server = chat_server(2);
    let (client, id) = connect(server.local_addr());
    assert!(server.handle().exists(id));
    close(&server, client, id);
    assert!(!server.handle().exists(id));
}

#[test]
fn exists_turns_false_when_the_client_just_drops_the_tcp_connection() {
    let server = chat_server(2);
    let (client, id) = connect(server.local_addr());
    drop(client);
    util::wait_until("the id to be gone", || !server.handle().exists(id));
    assert_eq!(server.handle().connection_count(), 0);
}

#[test]
fn disconnect_sends_the_code_and_reason_and_forgets_the_id() {
    let server = chat_server(2);
    let (mut client, id) = connect(server.local_addr());
    assert!(server.handle().disconnect(id, 4000, "bye"));
    let frame = loop {
        match client.read().expect("a close frame") {
            WsMessage::Close(frame) => break frame.expect("a close code"),
            _ => continue,
        }
    };
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4000, "bye"));
    util::wait_until("the id to be gone", || !server.handle().exists(id));
    assert!(!server.handle().disconnect(id, 4000, "again"));
    assert_eq!(server.handle().push(id, &Message::text("after")), PushOutcome::Closed);
}

#[test]
fn disconnect_with_a_code_a_server_may_not_send_uses_1000() {
    let server = chat_server(1);
    let (mut client, id) = connect(server.local_addr());
    assert!(server.handle().disconnect(id, 1005, "no status is not a code"));
    assert_eq!(util::expect_close(&mut client), 1000);
}

#[test]
fn connections_lists_exactly_the_open_ids_and_the_count_matches() {
    let server = chat_server(2);
    let handle = server.handle();
    let mut clients: Vec<_> = (0..6).map(|_| connect(server.local_addr())).collect();
    let ids: HashSet<ConnId> = clients.iter().map(|(_, id)| *id).collect();
    assert_eq!(handle.connections().into_iter().collect::<HashSet<_>>(), ids);
    assert_eq!(handle.connection_count(), 6);
    for _ in 0..2 {
        let (client, id) = clients.pop().unwrap();
        close(&server, client, id);
    }
    let open: HashSet<ConnId> = clients.iter().map(|(_, id)| *id).collect();
    let listed = handle.connections();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), open);
    assert_eq!(handle.connection_count(), 4);
    assert_eq!(handle.stats().connections, 4);
}

#[test]
fn ids_are_never_reused_across_50_connections_on_two_workers() {
    let server = chat_server(2);
    let mut seen = HashSet::new();
    let mut workers = HashSet::new();
    for _ in 0..50 {
        let (client, id) = connect(server.local_addr());
        assert!(seen.insert(id), "id {id} issued twice");
        workers.insert(id.worker());
        drop(client);
        util::wait_until("the id to be gone", || !server.handle().exists(id));
    }
    assert_eq!(workers.len(), 2, "both workers took connections");
    assert_eq!(server.handle().connection_count(), 0);
}

#[test]
fn broadcast_from_a_thread_outside_the_workers_reaches_every_client() {
    let server = chat_server(2);
    let mut clients: Vec<_> = (0..6).map(|_| connect(server.local_addr()).0).collect();
    let handle = server.handle();
    std::thread::spawn(move || {
        handle.broadcast(&Message::text("to all"));
        handle.broadcast(&Message::binary(vec![0xFFu8, 0]));
    })
    .join()
    .unwrap();
    for client in &mut clients {
        assert_eq!(util::next_message(client), WsMessage::text("to all"));
        assert_eq!(util::next_message(client), WsMessage::binary(vec![0xFFu8, 0]));
    }
}

#[test]
fn broadcast_except_skips_only_the_excluded_connection() {
    let server = chat_server(2);
    let mut clients: Vec<_> = (0..4).map(|_| connect(server.local_addr())).collect();
    let handle = server.handle();
    handle.broadcast_except(&Message::text("not for 0"), clients[0].1);
    handle.broadcast(&Message::text("for all"));
    assert_eq!(util::next_message(&mut clients[0].0), WsMessage::text("for all"));
    for (client, _) in &mut clients[1..] {
        assert_eq!(util::next_message(client), WsMessage::text("not for 0"));
        assert_eq!(util::next_message(client), WsMessage::text("for all"));
    }
}

#[test]
fn a_prepared_message_is_framed_once_and_pushed_to_several_connections() {
    let server = chat_server(2);
    let mut clients: Vec<_> = (0..3).map(|_| connect(server.local_addr())).collect();
    let prepared = Prepared::new(&Message::binary(vec![1u8, 2, 3]));
    assert_eq!(prepared.wire_bytes(), &[0x82, 3, 1, 2, 3]);
    for (_, id) in &clients {
        assert_eq!(server.handle().push_prepared(*id, &prepared), PushOutcome::Queued);
    }
    for (client, _) in &mut clients {
        assert_eq!(util::next_message(client), WsMessage::binary(vec![1u8, 2, 3]));
    }
}

#[test]
fn a_push_made_in_on_open_arrives_before_broadcasts_sent_later() {
    let server = chat_server(2);
    let handle = server.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let broadcaster = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                handle.broadcast(&Message::text("tick"));
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    for _ in 0..20 {
        let mut client = util::connect(server.local_addr(), "/chat");
        let first = util::next_message(&mut client);
        assert!(first.to_text().unwrap().contains("welcome"), "first message was {first:?}");
        // The broadcasts really were flowing while the client joined.
        assert_eq!(util::next_message(&mut client), WsMessage::text("tick"));
    }
    stop.store(true, Ordering::Relaxed);
    broadcaster.join().unwrap();
}

#[test]
fn the_handle_serves_many_threads_at_once_keeping_each_threads_order() {
    const THREADS: usize = 4;
    const PUSHES: usize = 100;
    let server = chat_server(2);
    let (mut client, id) = connect(server.local_addr());
    let pushers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let handle = server.handle();
            std::thread::spawn(move || {
                for i in 0..PUSHES {
                    let outcome = handle.push(id, &Message::text(format!("{thread}:{i}")));
                    assert_eq!(outcome, PushOutcome::Queued);
                }
            })
        })
        .collect();
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * PUSHES {
        let message = util::next_message(&mut client);
        let text = message.to_text().unwrap();
        let (thread, i) = text.split_once(':').unwrap();
        let (thread, i): (usize, usize) = (thread.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[thread], "thread {thread} out of order");
        next[thread] += 1;
    }
    assert_eq!(next, [PUSHES; THREADS]);
    for pusher in pushers {
        pusher.join().unwrap();
    }
}

#[test]
fn pushes_and_broadcasts_from_one_thread_arrive_in_the_order_sent() {
    let server = chat_server(2);
    let mut clients: Vec<_> = (0..3).map(|_| connect(server.local_addr())).collect();
    let handle = server.handle();
    let target = clients[1].1;
    for i in 0..50 {
        if i % 3 == 0 {
            assert_eq!(handle.push(target, &Message::text(i.to_string())), PushOutcome::Queued);
        } else {
            handle.broadcast(&Message::text(i.to_string()));
        }
    }
    let expected: Vec<String> = (0..50).map(|i: i32| i.to_string()).collect();
    assert_eq!(texts(&mut clients[1].0, 50), expected);
    let broadcasts: Vec<String> = expected.iter().filter(|i| i.parse::<i32>().unwrap() % 3 != 0).cloned().collect();
    for index in [0, 2] {
        assert_eq!(texts(&mut clients[index].0, broadcasts.len()), broadcasts);
    }
}

#[test]
fn a_large_push_arrives_whole() {
    let server = chat_server(1);
    let (mut client, id) = connect(server.local_addr());
    let payload: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    assert_eq!(server.handle().push(id, &Message::binary(payload.clone())), PushOutcome::Queued);
    assert_eq!(util::next_message(&mut client), WsMessage::binary(payload));
}

#[test]
fn disconnect_with_a_long_reason_sends_a_valid_truncated_close_frame() {
    let server = chat_server(1);
    let (mut client, id) = connect(server.local_addr());
    let reason = "é".repeat(100);
    assert!(server.handle().disconnect(id, 4002, &reason));
    let frame = loop {
        match client.read().expect("a valid close frame") {
            WsMessage::Close(frame) => break frame.expect("a close code"),
            _ => continue,
        }
    };
    assert_eq!(u16::from(frame.code), 4002);
    assert!(frame.reason.len() <= 123 && reason.starts_with(frame.reason.as_str()), "{}", frame.reason);
    assert_eq!(frame.reason.len(), 122);
}
