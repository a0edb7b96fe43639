//! Verifies that upgrades past max_connections get HTTP 503 without disturbing the open connections, and that freed slots are reused.

mod util;

use std::net::TcpStream;

use fanout::ChatHandler;
use tungstenite::Message as WsMessage;

const LIMIT: usize = 5;

fn limited_server() -> fanout::RunningServer {
    util::start(
        util::with_config(util::config(2), |c| {
            c.max_connections = LIMIT;
        }),
        ChatHandler::default(),
    )
}

fn assert_refused_with_503(addr: std::net::SocketAddr) {
    let answer = util::raw_exchange(addr, util::upgrade_request("/chat").as_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "expected 503, got {answer:?}");
}

/// Every client sends one message and every other client receives it.
fn assert_all_chat(clients: &mut [util::Client]) {
    for i in 0..clients.len() {
        let text = format!("from {i}");
        clients[i].send(WsMessage::text(text.clone())).unwrap();
        for (j, client) in clients.iter_mut().enumerate().filter(|(j, _)| *j != i) {
            assert_eq!(util::next_message(client), WsMessage::text(text.clone()), "client {j}");
        }
    }
}

#[test]
fn the_upgrade_past_max_connections_gets_503_and_the_open_clients_keep_chatting() {
    let server = limited_server();
    let handle = server.handle();
    let mut clients: Vec<_> = (0..LIMIT).map(|_| util::connect_chat(server.local_addr())).collect();
    assert_eq!(handle.connection_count(), LIMIT);
    assert_refused_with_503(server.local_addr());
    assert_eq!(handle.stats().refused_over_limit, 1);
    // A real client sees the refusal as an HTTP error, not a hang.
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    match tungstenite::client(format!("ws://{}/chat", server.local_addr()), stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503);
        }
        Err(e) => panic!("expected HTTP 503, got {e}"),
        Ok(_) => panic!("the sixth upgrade was accepted"),
    }
    assert_eq!(handle.stats().refused_over_limit, 2);
    assert_eq!(handle.connection_count(), LIMIT);
    assert_all_chat(&mut clients);
    server.shutdown().unwrap();
}

#[test]
fn a_slot_freed_by_a_closing_client_admits_a_new_upgrade() {
    let server = limited_server();
    let handle = server.handle();
    let addr = server.local_addr();
    let mut clients: Vec<_> = (0..LIMIT).map(|_| util::connect_chat(addr)).collect();
    assert_refused_with_503(addr);

    // A clean close handshake frees one slot.
    let mut leaving = clients.remove(0);
    leaving.close(None).unwrap();
    let code = util::expect_close(&mut leaving);
    assert!(code == 1000 || code == 1005, "close echoed with {code}");
    drop(leaving);
    util::wait_until("the closed client to be forgotten", || handle.connection_count() == LIMIT - 1);
    clients.push(util::connect_chat(addr));
    assert_refused_with_503(addr);

    // So does a client that simply drops its TCP connection.
    drop(clients.remove(0));
    util::wait_until("the dropped client to be forgotten", || handle.connection_count() == LIMIT - 1);
    clients.push(util::connect_chat(addr));
    assert_eq!(handle.connection_count(), LIMIT);
    assert_refused_with_503(addr);

    assert_eq!(handle.stats().refused_over_limit, 3);
    assert_all_chat(&mut clients);
    server.shutdown().unwrap();
}

#[test]
fn refused_sockets_do_not_count_against_the_limit() {
    let server = limited_server();
    let handle = server.handle();
    let addr = server.local_addr();
    let mut clients: Vec<_> = (0..LIMIT - 1).map(|_| util::connect_chat(addr)).collect();
    // Plain HTTP and wrong paths are answered and closed without taking a slot.
    for _ in 0..10 {
        let answer = util::raw_exchange(addr, util::upgrade_request("/nowhere").as_bytes());
        assert!(answer.starts_with(b"HTTP/1.1 404"), "got {:?}", String::from_utf8_lossy(&answer));
    }
    clients.push(util::connect_chat(addr));
    assert_eq!(handle.connection_count(), LIMIT);
    assert_eq!(handle.stats().refused_over_limit, 0);
    assert_all_chat(&mut clients);
    server.shutdown().unwrap();
}
