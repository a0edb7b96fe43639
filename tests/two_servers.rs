//! Verifies that two servers in one process never mix: a hook of one server pushing and broadcasting through the other's handle reaches only the other's clients, whatever either's worker count.

mod util;

use std::collections::BTreeSet;

use fanout::{Accept, ChatHandler, ConnId, Handler, Message, Rejection, Request, RunningServer, ServerHandle};
use tungstenite::Message as WsMessage;

/// Server A's application: each message names a connection id of server B;
/// the hook pushes to that id and broadcasts through B's handle, then
/// answers its own client with "ack" and what B's push returned.
struct Relay {
    other: ServerHandle,
}

impl Handler for Relay {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()))
    }

    fn on_open(&self, server: &ServerHandle, conn: ConnId, _state: &mut ()) {
        server.push(conn, &Message::text(conn.as_u64().to_string()));
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _state: &mut (), message: Message) {
        let target = ConnId::from_u64(message.as_text().and_then(|t| t.parse().ok()).expect("an id"));
        let outcome = self.other.push(target, &Message::text(format!("pushed via A to {target}")));
        self.other.broadcast(&Message::text("broadcast via A"));
        server.push(conn, &Message::text(format!("ack {outcome:?}")));
    }
}

/// Server B: the chat, whose welcome names each client's id.
fn server_b(workers: usize) -> RunningServer {
    util::start(util::config(workers), ChatHandler::default())
}

/// Server A: one worker relaying into `b`.
fn server_a(b: &RunningServer) -> RunningServer {
    util::start(util::config(1), Relay { other: b.handle() })
}

/// Connects to B's chat; returns the client and the id its welcome names.
fn connect_b(b: &RunningServer) -> (util::Client, ConnId) {
    let mut client = util::connect(b.local_addr(), "/chat");
    let welcome = util::next_message(&mut client).into_text().expect("a text welcome");
    let id = welcome
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {welcome:?}"));
    (client, ConnId::from_u64(id))
}

/// Connects to A; returns the client and the id A's `on_open` sent it.
fn connect_a(a: &RunningServer) -> (util::Client, ConnId) {
    let mut client = util::connect(a.local_addr(), "/");
    let id = util::next_message(&mut client).into_text().expect("a text id").parse().expect("an id");
    (client, ConnId::from_u64(id))
}

/// Asks A to push to `target` on B and broadcast there; returns A's answer.
fn relay(client: &mut util::Client, target: ConnId) -> String {
    client.send(WsMessage::text(target.as_u64().to_string())).expect("send");
    util::next_message(client).into_text().expect("a text answer").to_string()
}

#[test]
fn a_push_through_the_other_servers_handle_reaches_its_client_never_ours_with_the_same_id() {
    let b = server_b(1);
    let (mut on_b, b_id) = connect_b(&b);
    let a = server_a(&b);
    let (mut on_a, a_id) = connect_a(&a);
    assert_eq!(a_id, b_id, "both servers gave their first connection the same id");

    // Had the push leaked into A's own worker, it would arrive before the ack.
    assert_eq!(relay(&mut on_a, a_id), "ack Queued");
    assert_eq!(util::next_message(&mut on_b), WsMessage::text(format!("pushed via A to {b_id}")));
    assert_eq!(util::next_message(&mut on_b), WsMessage::text("broadcast via A"));
    assert_eq!(relay(&mut on_a, a_id), "ack Queued");
    assert_eq!(util::next_message(&mut on_b), WsMessage::text(format!("pushed via A to {b_id}")));
    assert_eq!(util::next_message(&mut on_b), WsMessage::text("broadcast via A"));

    let (a_stats, b_stats) = (a.handle().stats(), b.handle().stats());
    assert_eq!((a_stats.handler_panics, a_stats.connections, a_stats.messages_in), (0, 1, 2));
    assert_eq!((b_stats.connections, b_stats.messages_in), (1, 0));
}

#[test]
fn a_one_worker_server_broadcasts_through_a_four_worker_server_without_panicking() {
    let b = server_b(4);
    let mut on_b: Vec<(util::Client, ConnId)> = (0..4).map(|_| connect_b(&b)).collect();
    let workers: BTreeSet<usize> = on_b.iter().map(|(_, id)| id.worker()).collect();
    assert_eq!(workers, BTreeSet::from([0, 1, 2, 3]), "one client per worker of B");
    let a = server_a(&b);
    let (mut on_a, _) = connect_a(&a);

    // Worker 3 of B has no counterpart in A.
    let target = on_b.iter().map(|(_, id)| *id).find(|id| id.worker() == 3).expect("a client on worker 3");
    assert_eq!(relay(&mut on_a, target), "ack Queued");
    for (client, id) in &mut on_b {
        if *id == target {
            assert_eq!(util::next_message(client), WsMessage::text(format!("pushed via A to {target}")));
        }
        assert_eq!(util::next_message(client), WsMessage::text("broadcast via A"));
    }
    assert_eq!(a.handle().stats().handler_panics, 0);
    assert_eq!(a.handle().connection_count(), 1);
}
