//! Verifies that chat rooms (`/chat/{room}`, `/` for the default room) are
//! separate audiences: a message reaches its room's other members only,
//! and a publish to the channel of a room's name reaches the room.

mod util;

use fanout::{ChatHandler, Message};
use tungstenite::Message as WsMessage;

fn join(addr: std::net::SocketAddr, path: &str) -> util::Client {
    let mut client = util::connect(addr, path);
    let welcome = util::next_message(&mut client);
    assert!(welcome.to_text().expect("text").contains("welcome"), "got {welcome:?}");
    client
}

#[test]
fn a_room_message_reaches_its_room_only() {
    let server = util::start(util::config(2), ChatHandler::default());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut a1 = join(addr, "/chat/a");
    let mut a2 = join(addr, "/chat/a");
    let mut b1 = join(addr, "/chat/b");
    let mut everyone = join(addr, "/chat");
    util::wait_until("both rooms joined", || {
        handle.subscription_count("a") == 2 && handle.subscription_count("b") == 1
    });

    a1.send(WsMessage::text("for room a")).unwrap();
    assert_eq!(util::next_message(&mut a2), WsMessage::text("for room a"));
    b1.send(WsMessage::text("for room b")).unwrap();
    everyone.send(WsMessage::text("for /chat")).unwrap();
    // Each next message is the first one meant for that client: nothing leaked before it.
    handle.publish("a", &Message::text("marker a"));
    assert_eq!(util::next_message(&mut a1), WsMessage::text("marker a"));
    assert_eq!(util::next_message(&mut a2), WsMessage::text("marker a"));
    handle.publish("b", &Message::text("marker b"));
    assert_eq!(util::next_message(&mut b1), WsMessage::text("marker b"));
    // /chat and the rooms never cross: a whole-server broadcast reaches
    // /chat only, and no room message reached /chat before it.
    handle.broadcast(&Message::text("to /chat"));
    assert_eq!(util::next_message(&mut everyone), WsMessage::text("to /chat"));
    handle.publish("a", &Message::text("after"));
    assert_eq!(util::next_message(&mut a1), WsMessage::text("after"));
    server.shutdown().unwrap();
}

#[test]
fn the_root_path_joins_the_default_room() {
    let server = util::start(util::config(2), ChatHandler::default());
    let addr = server.local_addr();
    let mut root = join(addr, "/");
    let mut named = join(addr, &format!("/chat/{}", fanout::chat::DEFAULT_ROOM));
    util::wait_until("two members", || server.handle().subscription_count(fanout::chat::DEFAULT_ROOM) == 2);
    root.send(WsMessage::text("from a mini-program")).unwrap();
    assert_eq!(util::next_message(&mut named), WsMessage::text("from a mini-program"));
    named.send(WsMessage::text("back")).unwrap();
    assert_eq!(util::next_message(&mut root), WsMessage::text("back"));
    server.shutdown().unwrap();
}

#[test]
fn closing_members_vacates_the_room() {
    let server = util::start(util::config(2), ChatHandler::default());
    let handle = server.handle();
    let clients: Vec<_> = (0..4).map(|_| join(server.local_addr(), "/chat/lobby")).collect();
    util::wait_until("four members", || handle.subscription_count("lobby") == 4);
    let listed = handle.channels("lob");
    assert_eq!((listed.len(), listed[0].name.as_str(), listed[0].subscriptions), (1, "lobby", 4));
    drop(clients);
    util::wait_until("the room emptied", || handle.subscription_count("lobby") == 0 && handle.channel_count() == 0);
    assert!(handle.channels("").is_empty());
    server.shutdown().unwrap();
}

#[test]
fn a_bad_room_name_is_refused_before_the_upgrade() {
    let server = util::start(util::config(1), ChatHandler::default());
    let answer = util::raw_exchange(server.local_addr(), util::upgrade_request("/chat/no%20spaces").as_bytes());
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
    let long = format!("/chat/{}", "x".repeat(165));
    let answer = util::raw_exchange(server.local_addr(), util::upgrade_request(&long).as_bytes());
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"));
    server.shutdown().unwrap();
}
