//! Verifies that the chat app welcomes each client and relays every message to every other client.

mod util;

use fanout::ChatHandler;
use tungstenite::Message as WsMessage;

#[test]
fn a_message_reaches_every_other_client_but_not_its_sender() {
    let server = util::start(util::config(2), ChatHandler::default());
    let mut clients: Vec<_> = (0..3).map(|_| util::connect_chat(server.local_addr())).collect();
    util::wait_until("three connections", || server.handle().connection_count() == 3);
    clients[0].send(WsMessage::text("hello")).unwrap();
    for client in &mut clients[1..] {
        assert_eq!(util::next_message(client), WsMessage::text("hello"));
    }
    clients[1].send(WsMessage::binary(vec![1u8, 2, 3])).unwrap();
    // The sender of "hello" gets the next message, not its own.
    assert_eq!(util::next_message(&mut clients[0]), WsMessage::binary(vec![1u8, 2, 3]));
    server.shutdown().unwrap();
}
