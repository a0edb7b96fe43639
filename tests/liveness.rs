//! Verifies that server pings, the idle timeout and the handshake timeout end dead connections and spare live ones.

mod util;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use fanout::ChatHandler;
use tungstenite::Message as WsMessage;

/// Reads everything that arrives for `period`, answering pings (tungstenite
/// queues the pong on read and flushes it on the next read); returns the
/// pings and data messages seen. Panics if the connection ends.
fn read_for(client: &mut util::Client, period: Duration) -> (usize, Vec<WsMessage>) {
    client.get_mut().set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let deadline = Instant::now() + period;
    let (mut pings, mut messages) = (0, Vec::new());
    while Instant::now() < deadline {
        match client.read() {
            Ok(WsMessage::Ping(_)) => pings += 1,
            Ok(WsMessage::Pong(_)) => {}
            Ok(WsMessage::Close(frame)) => panic!("connection closed: {frame:?}"),
            Ok(message) => messages.push(message),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    client.get_mut().set_read_timeout(Some(util::PATIENCE)).unwrap();
    (pings, messages)
}

/// Reads a raw socket until the server closes it; returns how long that took.
fn time_until_dropped(stream: &mut TcpStream, started: Instant) -> Duration {
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => started.elapsed(),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => started.elapsed(),
        Ok(n) => panic!("the server answered a stalled handshake: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("no EOF from the server: {e}"),
    }
}

#[test]
fn a_reading_client_receives_pings_and_stays_open_past_the_idle_timeout() {
    let config = util::with_config(util::config(2), |c| {
        c.ping_interval = Some(Duration::from_millis(200));
        c.idle_timeout = Some(Duration::from_millis(500));
    });
    let server = util::start(config, ChatHandler::default());
    let mut client = util::connect_chat(server.local_addr());
    // The client never sends a message; its automatic pongs keep it alive.
    let (pings, messages) = read_for(&mut client, Duration::from_millis(1300));
    assert!(pings >= 4, "only {pings} pings in 1.3 s at a 200 ms interval");
    assert!(messages.is_empty(), "unexpected messages {messages:?}");
    assert_eq!(server.handle().connection_count(), 1);
    assert_eq!(server.handle().stats().idle_timeouts, 0);
    // Still a working chat connection.
    let mut other = util::connect_chat(server.local_addr());
    other.send(WsMessage::text("still there?")).unwrap();
    assert_eq!(util::next_message(&mut client), WsMessage::text("still there?"));
    server.shutdown().unwrap();
}

#[test]
fn a_client_answering_pings_gets_a_pong_for_its_own_ping() {
    let config = util::with_config(util::config(1), |c| {
        c.ping_interval = Some(Duration::from_millis(200));
    });
    let server = util::start(config, ChatHandler::default());
    let mut client = util::connect_chat(server.local_addr());
    client.send(WsMessage::Ping(b"are you there".to_vec().into())).unwrap();
    loop {
        match client.read().expect("read") {
            WsMessage::Pong(payload) => {
                assert_eq!(&payload[..], b"are you there");
                break;
            }
            WsMessage::Ping(_) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    server.shutdown().unwrap();
}

#[test]
fn a_silent_client_is_closed_with_1001_after_the_idle_timeout_while_an_active_one_stays() {
    let config = util::with_config(util::config(2), |c| {
        c.idle_timeout = Some(Duration::from_millis(300));
    });
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let mut silent = util::connect_chat(server.local_addr());
    let mut active = util::connect_chat(server.local_addr());
    let started = Instant::now();
    let chatter = thread::spawn(move || {
        for i in 0..10 {
            active.send(WsMessage::text(format!("beat {i}"))).expect("active client can still send");
            thread::sleep(Duration::from_millis(100));
        }
        active
    });
    // Reading sends nothing while pings are off: the silent client stays silent.
    let close = loop {
        match silent.read() {
            Ok(WsMessage::Close(frame)) => break frame.expect("a close frame with a code"),
            Ok(WsMessage::Text(_)) => continue,
            other => panic!("expected the idle close, got {other:?}"),
        }
    };
    let waited = started.elapsed();
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "idle timeout");
    assert!(waited >= Duration::from_millis(250), "closed after only {waited:?}");
    assert!(waited < Duration::from_millis(1000), "closed only after {waited:?}");
    // Then EOF: tungstenite reports the finished close handshake.
    match silent.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected the end of the connection, got {other:?}"),
    }
    let mut active = chatter.join().unwrap();
    assert_eq!(handle.stats().idle_timeouts, 1);
    assert_eq!(handle.connection_count(), 1);
    let mut late = util::connect_chat(server.local_addr());
    active.send(WsMessage::text("after")).unwrap();
    assert_eq!(util::next_message(&mut late), WsMessage::text("after"));
    server.shutdown().unwrap();
}

#[test]
fn stalled_and_empty_handshakes_are_dropped_after_the_handshake_timeout() {
    let config = util::with_config(util::config(2), |c| {
        c.handshake_timeout = Duration::from_millis(300);
    });
    let server = util::start(config, ChatHandler::default());
    let handle = server.handle();
    let addr = server.local_addr();
    let mut chatting = util::connect_chat(addr);
    let started = Instant::now();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n").unwrap();
    let mut empty = TcpStream::connect(addr).unwrap();
    let half_dropped = time_until_dropped(&mut half, started);
    let empty_dropped = time_until_dropped(&mut empty, started);
    for (what, took) in [("half upgrade", half_dropped), ("silent socket", empty_dropped)] {
        assert!(took >= Duration::from_millis(250), "{what} dropped after only {took:?}");
        assert!(took < Duration::from_millis(1000), "{what} dropped only after {took:?}");
    }
    assert_eq!(handle.stats().handshake_timeouts, 2);
    // The upgraded connection, older than the timeout, is untouched, and
    // new clients chat as usual.
    let mut newcomer = util::connect_chat(addr);
    newcomer.send(WsMessage::text("hi")).unwrap();
    assert_eq!(util::next_message(&mut chatting), WsMessage::text("hi"));
    chatting.send(WsMessage::text("hello")).unwrap();
    assert_eq!(util::next_message(&mut newcomer), WsMessage::text("hello"));
    assert_eq!(handle.connection_count(), 2);
    assert_eq!(handle.stats().handshake_timeouts, 2);
    server.shutdown().unwrap();
}

#[test]
fn an_upgrade_sent_slowly_but_within_the_handshake_timeout_succeeds() {
    let config = util::with_config(util::config(1), |c| {
        c.handshake_timeout = Duration::from_millis(500);
    });
    let server = util::start(config, ChatHandler::default());
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    let request = util::upgrade_request("/chat");
    let (head, tail) = request.split_at(request.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(150));
    stream.write_all(tail.as_bytes()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 101");
    assert_eq!(server.handle().stats().handshake_timeouts, 0);
    server.shutdown().unwrap();
}
