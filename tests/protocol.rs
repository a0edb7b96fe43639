//! Verifies that the server speaks RFC 6455 on the wire: ping/pong, opcodes, fragmentation, the close handshake, and the close code for every kind of bad client frame.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fanout::{
    Accept, CloseInfo, CloseInitiator, ConnId, EchoHandler, Handler, Message, Rejection, RunningServer, ServerHandle,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message as WsMessage;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn echo_server() -> RunningServer {
    util::start(util::config(1), EchoHandler)
}

/// Writes `bytes` on an upgraded raw connection and returns the close code the
/// server answers with, checking that it then closes the TCP connection and
/// sent nothing but that close frame.
fn close_code_for(server: &RunningServer, bytes: &[u8]) -> u16 {
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    stream.write_all(bytes).expect("write frames");
    let frames = util::read_frames_to_eof(&mut stream);
    assert_eq!(frames.len(), 1, "expected only a close frame, got {frames:?}");
    frames[0].close_code()
}

/// Asserts that `bytes` make an echo server close with `code` and count a
/// protocol error.
fn assert_closed_with(bytes: &[u8], code: u16) {
    let server = echo_server();
    assert_eq!(close_code_for(&server, bytes), code);
    let handle = server.handle();
    util::wait_until("the connection to be forgotten", || handle.connection_count() == 0);
    assert_eq!(handle.stats().protocol_errors, 1);
}

#[test]
fn ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let server = echo_server();
    let mut client = util::connect(server.local_addr(), "/");
    client.send(WsMessage::Ping(b"are you there?".to_vec().into())).unwrap();
    assert_eq!(client.read().unwrap(), WsMessage::Pong(b"are you there?".to_vec().into()));
    client.send(WsMessage::Ping(Vec::new().into())).unwrap();
    assert_eq!(client.read().unwrap(), WsMessage::Pong(Vec::new().into()));
    let largest = vec![b'p'; 125];
    client.send(WsMessage::Ping(largest.clone().into())).unwrap();
    assert_eq!(client.read().unwrap(), WsMessage::Pong(largest.into()));
}

#[test]
fn text_stays_text_and_binary_stays_binary() {
    let server = echo_server();
    let mut client = util::connect(server.local_addr(), "/");
    let messages = [
        WsMessage::text("héllo"),
        WsMessage::binary(vec![0u8, 159, 146, 150]),
        WsMessage::binary(b"looks like text".to_vec()),
        WsMessage::text(""),
        WsMessage::binary(vec![7u8; 70_000]),
    ];
    for message in &messages {
        client.send(message.clone()).unwrap();
    }
    for message in messages {
        assert_eq!(util::next_message(&mut client), message);
    }
}

#[test]
fn client_close_1000_is_echoed_and_then_the_tcp_connection_closes() {
    let server = echo_server();
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    stream.write_all(&util::client_frame(true, CLOSE, b"\x03\xe8done")).unwrap();
    let frames = util::read_frames_to_eof(&mut stream);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].close_code(), 1000);
    util::wait_until("the connection to be forgotten", || server.handle().connection_count() == 0);
}

#[test]
fn client_close_with_tungstenite_completes_the_close_handshake() {
    let server = echo_server();
    let mut client = util::connect(server.local_addr(), "/");
    client.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).unwrap();
    loop {
        match client.read() {
            Ok(WsMessage::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake failed: {e}"),
        }
    }
}

#[test]
fn close_without_a_code_is_answered_with_1000() {
    let server = echo_server();
    assert_eq!(close_code_for(&server, &util::client_frame(true, CLOSE, b"")), 1000);
}

#[test]
fn close_with_a_code_a_peer_may_not_send_is_a_protocol_error() {
    // 1005 must never appear on the wire.
    assert_closed_with(&util::client_frame(true, CLOSE, b"\x03\xed"), 1002);
}

#[test]
fn unmasked_client_frame_is_closed_with_1002() {
    assert_closed_with(&[0x81, 0x02, b'h', b'i'], 1002);
}

#[test]
fn reserved_opcode_is_closed_with_1002() {
    assert_closed_with(&util::client_frame(true, 0x3, b"x"), 1002);
    assert_closed_with(&util::client_frame(true, 0xB, b"x"), 1002);
}

#[test]
fn rsv_bit_without_an_extension_is_closed_with_1002() {
    let mut frame = util::client_frame(true, TEXT, b"compressed?");
    frame[0] |= 0x40;
    assert_closed_with(&frame, 1002);
}

#[test]
fn control_frame_over_125_bytes_is_closed_with_1002() {
    assert_closed_with(&util::client_frame(true, PING, &[b'p'; 126]), 1002);
}

#[test]
fn fragmented_ping_is_closed_with_1002() {
    assert_closed_with(&util::client_frame(false, PING, b"half"), 1002);
}

#[test]
fn continuation_without_a_message_is_closed_with_1002() {
    assert_closed_with(&util::client_frame(true, CONTINUATION, b"orphan"), 1002);
}

#[test]
fn new_message_inside_a_fragmented_one_is_closed_with_1002() {
    let mut bytes = util::client_frame(false, TEXT, b"first ");
    bytes.extend(util::client_frame(true, TEXT, b"second"));
    assert_closed_with(&bytes, 1002);
}

#[test]
fn invalid_utf8_text_is_closed_with_1007() {
    assert_closed_with(&util::client_frame(true, TEXT, b"ok \xff\xfe"), 1007);
}

#[test]
fn invalid_utf8_split_across_fragments_is_closed_with_1007() {
    // E2 82 starts a three-byte sequence; 28 cannot continue it.
    let mut bytes = util::client_frame(false, TEXT, b"price: \xe2\x82");
    bytes.extend(util::client_frame(true, CONTINUATION, b"\x28"));
    assert_closed_with(&bytes, 1007);
}

#[test]
fn valid_utf8_split_across_fragments_is_accepted() {
    let server = echo_server();
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    let mut bytes = util::client_frame(false, TEXT, b"price: \xe2\x82");
    bytes.extend(util::client_frame(true, CONTINUATION, b"\xac5"));
    stream.write_all(&bytes).unwrap();
    let echo = util::read_frame(&mut stream).expect("the echo");
    assert_eq!((echo.opcode, echo.payload.as_slice()), (TEXT, "price: €5".as_bytes()));
}

#[test]
fn message_over_max_message_size_in_one_frame_is_closed_with_1009() {
    let config = util::with_config(util::config(1), |c| {
        c.max_message_size = 1024;
    });
    let server = util::start(config, EchoHandler);
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    stream.write_all(&util::client_frame(true, BINARY, &[1u8; 1024])).unwrap();
    let echo = util::read_frame(&mut stream).expect("a message at the limit is echoed");
    assert_eq!(echo.payload.len(), 1024);
    stream.write_all(&util::client_frame(true, BINARY, &[1u8; 1025])).unwrap();
    let frames = util::read_frames_to_eof(&mut stream);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].close_code(), 1009);
}

#[test]
fn message_over_max_message_size_across_fragments_is_closed_with_1009() {
    let config = util::with_config(util::config(1), |c| {
        c.max_message_size = 1024;
    });
    let server = util::start(config, EchoHandler);
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    let mut at_limit = util::client_frame(false, BINARY, &[1u8; 600]);
    at_limit.extend(util::client_frame(true, CONTINUATION, &[2u8; 424]));
    stream.write_all(&at_limit).unwrap();
    let echo = util::read_frame(&mut stream).expect("a message at the limit is echoed");
    assert_eq!(echo.payload.len(), 1024);
    let mut bytes = util::client_frame(false, BINARY, &[1u8; 600]);
    bytes.extend(util::client_frame(false, CONTINUATION, &[2u8; 400]));
    bytes.extend(util::client_frame(true, CONTINUATION, &[3u8; 100]));
    assert_eq!(close_code_for(&server, &bytes), 1009);
}

#[test]
fn length_with_the_top_bit_set_is_closed_with_1002() {
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    assert_closed_with(&frame, 1002);
}

#[test]
fn fragmented_messages_are_reassembled_around_an_interleaved_ping() {
    let server = echo_server();
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    let mut bytes = util::client_frame(false, TEXT, b"Hel");
    bytes.extend(util::client_frame(true, PING, b"mid-message"));
    bytes.extend(util::client_frame(false, CONTINUATION, b"lo"));
    bytes.extend(util::client_frame(true, CONTINUATION, b", world"));
    bytes.extend(util::client_frame(false, BINARY, &[1, 2]));
    bytes.extend(util::client_frame(false, CONTINUATION, &[]));
    bytes.extend(util::client_frame(true, CONTINUATION, &[3]));
    stream.write_all(&bytes).unwrap();
    let frames: Vec<_> = (0..3).map(|_| util::read_frame(&mut stream).expect("a frame")).collect();
    let got: Vec<(u8, &[u8])> = frames.iter().map(|f| (f.opcode, f.payload.as_slice())).collect();
    let expected: Vec<(u8, &[u8])> = vec![(PONG, b"mid-message"), (TEXT, b"Hello, world"), (BINARY, &[1, 2, 3])];
    assert_eq!(got, expected);
    assert!(frames.iter().all(|f| f.fin));
}

#[test]
fn fragments_written_one_at_a_time_are_reassembled() {
    let server = echo_server();
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let pieces: Vec<&[u8]> = payload.chunks(1000).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { BINARY } else { CONTINUATION };
        let frame = util::client_frame(i + 1 == pieces.len(), opcode, piece);
        // Split each frame too, so headers arrive in pieces.
        for part in frame.chunks(333) {
            stream.write_all(part).unwrap();
            stream.flush().unwrap();
        }
    }
    let echo = util::read_frame(&mut stream).expect("the echo");
    assert_eq!((echo.opcode, echo.payload), (BINARY, payload));
}

#[test]
fn a_protocol_error_on_one_connection_leaves_the_others_working() {
    let server = echo_server();
    let mut healthy = util::connect(server.local_addr(), "/");
    healthy.send(WsMessage::text("before")).unwrap();
    assert_eq!(util::next_message(&mut healthy), WsMessage::text("before"));
    assert_eq!(close_code_for(&server, &[0x81, 0x00]), 1002);
    healthy.send(WsMessage::text("after")).unwrap();
    assert_eq!(util::next_message(&mut healthy), WsMessage::text("after"));
    util::wait_until("one connection left", || server.handle().connection_count() == 1);
}

/// Echoes, and records every open and every close the server reports.
#[derive(Clone, Default)]
struct Recorder {
    opened: Arc<Mutex<Vec<ConnId>>>,
    closed: Arc<Mutex<Vec<(ConnId, CloseInfo)>>>,
}

impl Handler for Recorder {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &fanout::Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()))
    }

    fn on_open(&self, _server: &ServerHandle, conn: ConnId, _state: &mut ()) {
        self.opened.lock().unwrap().push(conn);
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, _state: &mut (), message: Message) {
        server.push(conn, &message);
    }

    fn on_close(&self, server: &ServerHandle, conn: ConnId, _state: (), close: &CloseInfo) {
        assert!(!server.exists(conn), "on_close runs after the id is gone");
        self.closed.lock().unwrap().push((conn, close.clone()));
    }
}

impl Recorder {
    /// The id of the connection opened last.
    fn last_opened(&self) -> ConnId {
        *self.opened.lock().unwrap().last().expect("a connection opened")
    }

    fn closes(&self) -> usize {
        self.closed.lock().unwrap().len()
    }
}

#[test]
fn on_close_runs_exactly_once_per_connection_with_who_ended_it() {
    let recorder = Recorder::default();
    let server = util::start(util::config(2), recorder.clone());
    let (addr, handle) = (server.local_addr(), server.handle());

    let mut by_client = util::connect(addr, "/");
    let by_client_id = recorder.last_opened();
    let mut by_violation = util::raw_upgrade(addr, "/");
    let by_violation_id = recorder.last_opened();
    let mut by_disconnect = util::connect(addr, "/");
    let by_disconnect_id = recorder.last_opened();
    let lost = util::raw_upgrade(addr, "/");
    let lost_id = recorder.last_opened();
    let mut at_shutdown = util::connect(addr, "/");
    let at_shutdown_id = recorder.last_opened();

    by_client.close(Some(CloseFrame { code: CloseCode::Away, reason: "leaving".into() })).unwrap();
    while by_client.read().is_ok() {}
    by_violation.write_all(&[0x82, 0x00]).unwrap();
    assert_eq!(util::read_frames_to_eof(&mut by_violation).last().map(util::ServerFrame::close_code), Some(1002));
    assert!(handle.disconnect(by_disconnect_id, 4001, "kicked"));
    assert_eq!(util::expect_close(&mut by_disconnect), 4001);
    drop(lost);
    util::wait_until("four closes", || recorder.closes() == 4);
    // Closed sockets linger until their client hangs up; let them go.
    drop((by_client, by_violation, by_disconnect));
    handle.shutdown();
    assert_eq!(util::expect_close(&mut at_shutdown), 1001);
    drop(at_shutdown);
    // Once the workers have stopped, no hook can run any more.
    server.wait().unwrap();

    let closed = recorder.closed.lock().unwrap().clone();
    let info = |id: ConnId| {
        let mut matches = closed.iter().filter(|(conn, _)| *conn == id);
        let (_, info) = matches.next().unwrap_or_else(|| panic!("no on_close for {id}"));
        assert!(matches.next().is_none(), "on_close ran twice for {id}");
        (info.initiator, info.code, info.reason.as_str())
    };
    assert_eq!(info(by_client_id), (CloseInitiator::Client, 1001, "leaving"));
    assert_eq!(info(by_violation_id).0, CloseInitiator::Server);
    assert_eq!(info(by_violation_id).1, 1002);
    assert_eq!(info(by_disconnect_id), (CloseInitiator::Server, 4001, "kicked"));
    assert_eq!(info(lost_id).0, CloseInitiator::Transport);
    assert_eq!(info(lost_id).1, 1006);
    assert_eq!(info(at_shutdown_id), (CloseInitiator::Server, 1001, "server shutting down"));
    assert_eq!(closed.len(), 5);
    assert_eq!(recorder.opened.lock().unwrap().len(), 5);
}

#[test]
fn close_reason_that_is_not_utf8_is_closed_with_1007() {
    assert_closed_with(&util::client_frame(true, CLOSE, b"\x03\xe8\xff"), 1007);
}

#[test]
fn close_payload_of_one_byte_is_closed_with_1002() {
    assert_closed_with(&util::client_frame(true, CLOSE, b"\x03"), 1002);
}

#[test]
fn frames_after_the_clients_close_frame_are_ignored() {
    let server = echo_server();
    let mut bytes = util::client_frame(true, TEXT, b"before");
    bytes.extend(util::client_frame(true, CLOSE, b"\x03\xe8"));
    bytes.extend(util::client_frame(true, TEXT, b"after"));
    bytes.extend(util::client_frame(true, PING, b"after"));
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    stream.write_all(&bytes).unwrap();
    let frames = util::read_frames_to_eof(&mut stream);
    let got: Vec<(u8, &[u8])> = frames.iter().map(|f| (f.opcode, f.payload.as_slice())).collect();
    assert_eq!(got, vec![(TEXT, &b"before"[..]), (CLOSE, &b"\x03\xe8"[..])]);
    assert_eq!(server.handle().stats().messages_in, 1);
}

#[test]
fn violation_in_frames_pipelined_with_the_handshake_follows_the_101() {
    let server = echo_server();
    let mut bytes = util::upgrade_request("/").into_bytes();
    bytes.extend(util::client_frame(true, TEXT, b"ok"));
    bytes.extend([0x81, 0x01, b'x']);
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.write_all(&bytes).unwrap();
    assert!(util::read_head(&mut stream).starts_with("HTTP/1.1 101 "));
    let frames = util::read_frames_to_eof(&mut stream);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!((frames[0].opcode, frames[0].payload.as_slice()), (TEXT, &b"ok"[..]));
    assert_eq!(frames[1].close_code(), 1002);
}
