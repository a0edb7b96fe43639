//! Verifies the channel core through real sockets: membership changes take
//! effect in order with pushes, a publish reaches exactly the members (in
//! their dialect, never the excluded sender), occupancy changes are
//! reported once across workers, and publishes from outside the workers
//! are all or nothing.

mod util;

use std::sync::Arc;

use fanout::{
    Accept, ChannelChange, ConnId, Dialect, Handler, Message, Prepared, Publication, Rejection, ServerHandle,
};
use parking_lot::Mutex;
use tungstenite::Message as WsMessage;

/// Commands over text: `sub C`, `sub2 C` (dialect 1), `unsub C`,
/// `pub C TEXT`, `pubx C TEXT` (not to the sender), `order C` (a push to
/// the sender, then a publish, then another push).
#[derive(Default)]
struct Commands {
    changes: Arc<Mutex<Vec<(String, ChannelChange)>>>,
}

impl Handler for Commands {
    type State = ();

    fn on_upgrade(&self, _: &ServerHandle, _: &fanout::Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()).without_broadcasts())
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _: &mut (), message: Message) {
        let Message::Text(text) = message else { return };
        let mut words = text.as_str().splitn(3, ' ');
        let (verb, channel, rest) =
            (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
        match verb {
            "sub" => {
                server.subscribe(conn, channel);
                server.push(conn, &Message::text(format!("joined {channel}")));
            }
            "sub2" => {
                server.subscribe_as(conn, channel, Dialect::new(1).expect("dialect"));
                server.push(conn, &Message::text(format!("joined {channel}")));
            }
            "unsub" => {
                server.unsubscribe(conn, channel);
                server.push(conn, &Message::text(format!("left {channel}")));
            }
            "pub" => server.publish(channel, &Message::text(rest)),
            "pubx" => server.publish_except(channel, &Message::text(rest), conn),
            "order" => {
                server.push(conn, &Message::text("first"));
                server.publish(channel, &Message::text("second"));
                server.push(conn, &Message::text("third"));
            }
            _ => {}
        }
    }

    fn on_channel(&self, _: &ServerHandle, channel: &str, change: ChannelChange) {
        self.changes.lock().push((channel.to_owned(), change));
    }
}

fn text(client: &mut util::Client) -> String {
    util::next_message(client).into_text().expect("text").to_string()
}

fn say(client: &mut util::Client, words: &str) {
    client.send(WsMessage::text(words)).expect("send");
}

#[test]
fn a_publish_reaches_members_only_and_never_the_excluded_sender() {
    let server = util::start(util::config(2), Commands::default());
    let addr = server.local_addr();
    let mut clients: Vec<_> = (0..4).map(|_| util::connect(addr, "/")).collect();
    for client in &mut clients[..3] {
        say(client, "sub news");
        assert_eq!(text(client), "joined news");
    }
    say(&mut clients[0], "pubx news hello");
    assert_eq!(text(&mut clients[1]), "hello");
    assert_eq!(text(&mut clients[2]), "hello");
    say(&mut clients[3], "pub news from outside");
    for client in &mut clients[..3] {
        // The sender of "hello" gets this one first: "hello" skipped it.
        assert_eq!(text(client), "from outside");
    }
    // The non-member hears nothing of it: its next message is its own.
    say(&mut clients[3], "sub other");
    assert_eq!(text(&mut clients[3]), "joined other");
    server.shutdown().unwrap();
}

#[test]
fn membership_changes_keep_their_place_among_pushes() {
    let server = util::start(util::config(1), Commands::default());
    let mut client = util::connect(server.local_addr(), "/");
    say(&mut client, "sub c");
    assert_eq!(text(&mut client), "joined c");
    say(&mut client, "order c");
    assert_eq!([text(&mut client), text(&mut client), text(&mut client)], ["first", "second", "third"]);
    say(&mut client, "unsub c");
    assert_eq!(text(&mut client), "left c");
    say(&mut client, "pub c not for me");
    say(&mut client, "sub d");
    assert_eq!(text(&mut client), "joined d", "a publish after leaving must not arrive");
    server.shutdown().unwrap();
}

#[test]
fn each_member_gets_the_frame_of_its_dialect() {
    let server = util::start(util::config(2), Commands::default());
    let handle = server.handle();
    let mut plain = util::connect(server.local_addr(), "/");
    let mut fancy = util::connect(server.local_addr(), "/");
    say(&mut plain, "sub mixed");
    say(&mut fancy, "sub2 mixed");
    assert_eq!(text(&mut plain), "joined mixed");
    assert_eq!(text(&mut fancy), "joined mixed");
    let publication = Publication::single(&Prepared::new(&Message::text("raw")))
        .with(Dialect::new(1).expect("dialect"), &Prepared::new(&Message::text("{\"data\":\"raw\"}")));
    assert_eq!(handle.try_publish("mixed", &publication, None, None), Ok(2), "two workers have members");
    assert_eq!(text(&mut plain), "raw");
    assert_eq!(text(&mut fancy), "{\"data\":\"raw\"}");
    assert_eq!(handle.try_publish("empty", &publication, None, None), Ok(0));
    server.shutdown().unwrap();
}

#[test]
fn occupancy_changes_are_reported_once_across_workers() {
    let handler = Commands::default();
    let changes = handler.changes.clone();
    let server = util::start(util::config(2), handler);
    let mut clients: Vec<_> = (0..4).map(|_| util::connect(server.local_addr(), "/")).collect();
    for client in &mut clients {
        say(client, "sub room");
        assert_eq!(text(client), "joined room");
    }
    assert_eq!(*changes.lock(), vec![("room".to_owned(), ChannelChange::Occupied)]);
    say(&mut clients[0], "unsub room");
    assert_eq!(text(&mut clients[0]), "left room");
    clients.truncate(1);
    util::wait_until("the room vacated", || server.handle().subscription_count("room") == 0);
    util::wait_until("the vacate reported", || changes.lock().len() == 2);
    assert_eq!(changes.lock()[1], ("room".to_owned(), ChannelChange::Vacated));
    server.shutdown().unwrap();
}

#[test]
fn a_burst_of_publishes_arrives_complete_and_in_order() {
    let server = util::start(util::config(2), Commands::default());
    let handle = server.handle();
    let mut members: Vec<_> = (0..6).map(|_| util::connect(server.local_addr(), "/")).collect();
    for client in &mut members {
        say(client, "sub burst");
        assert_eq!(text(client), "joined burst");
    }
    // Enough per turn to be joined into one buffer per worker.
    for i in 0..500 {
        handle.publish("burst", &Message::text(format!("m{i}")));
    }
    for client in &mut members {
        for i in 0..500 {
            assert_eq!(text(client), format!("m{i}"));
        }
    }
    server.shutdown().unwrap();
}
