//! permessage-deflate through real sockets: the agreement in the 101, a
//! broadcast compressed for the clients that agreed (RSV1 set, payload
//! inflating to the message) while the others get the plain frame of the
//! same broadcast, small messages left plain, compressed client messages
//! inflated and relayed, and a zip bomb closed with 1009 while the other
//! clients keep chatting.

mod pusher_client;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use fanout::{ChatHandler, Message};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A raw client on `/chat` that offered `extensions` (if any): the stream
/// after the 101 and its welcome, and the 101's extensions header.
fn raw_chat(addr: SocketAddr, extensions: Option<&str>) -> (TcpStream, Option<String>) {
    raw_client(addr, "/chat", extensions)
}

fn raw_client(addr: SocketAddr, path: &str, extensions: Option<&str>) -> (TcpStream, Option<String>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let offer = extensions.map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n")).unwrap_or_default();
    let request = util::upgrade_request(path).replace("\r\n\r\n", &format!("\r\n{offer}\r\n"));
    stream.write_all(request.as_bytes()).unwrap();
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let agreed = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: ")).map(|v| v.trim().to_owned());
    let (_, welcome) = read_message(&mut stream);
    assert!(String::from_utf8_lossy(&welcome).contains("welcome"));
    (stream, agreed)
}

/// The next message: whether RSV1 was set, and its payload inflated if so.
fn read_message(stream: &mut TcpStream) -> (bool, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head[0] & 0x80, 0x80, "one frame per message");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            usize::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).unwrap();
            usize::try_from(u64::from_be_bytes(ext)).unwrap()
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    let compressed = head[0] & 0x40 != 0;
    if !compressed {
        return (false, payload);
    }
    payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflate = Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    inflate.decompress_vec(&payload, &mut out, FlushDecompress::Sync).unwrap();
    (true, out)
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    compress.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame; `rsv1` marks it compressed.
fn client_frame(opcode: u8, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = util::client_frame(true, opcode, payload);
    if rsv1 {
        frame[0] |= 0x40;
    }
    frame
}

#[test]
fn a_broadcast_is_compressed_for_clients_that_agreed_and_plain_for_the_others() {
    let server = util::start(util::config(2), ChatHandler::default());
    let addr = server.local_addr();
    let (mut deflating, agreed) = raw_chat(addr, Some(OFFER));
    let agreed = agreed.expect("permessage-deflate agreed");
    assert!(agreed.starts_with("permessage-deflate") && agreed.contains("server_no_context_takeover"), "{agreed}");
    let (mut plain, none) = raw_chat(addr, None);
    assert_eq!(none, None, "nothing agreed with a client that offered nothing");
    let (mut refused_offer, none) = raw_chat(addr, Some("permessage-deflate; unheard_of_parameter"));
    assert_eq!(none, None, "an offer with unknown parameters is declined");

    let big = r#"{"event":"price","symbol":"ACME","bid":101.25,"ask":101.5}"#.repeat(40);
    for _ in 0..3 {
        server.handle().broadcast(&Message::text(big.clone()));
    }
    server.handle().broadcast(&Message::text("tiny"));
    for _ in 0..3 {
        assert_eq!(read_message(&mut deflating), (true, big.clone().into_bytes()));
        assert_eq!(read_message(&mut plain), (false, big.clone().into_bytes()));
        assert_eq!(read_message(&mut refused_offer), (false, big.clone().into_bytes()));
    }
    assert_eq!(read_message(&mut deflating), (false, b"tiny".to_vec()), "small messages go plain");
    assert_eq!(read_message(&mut plain), (false, b"tiny".to_vec()));
    server.shutdown().unwrap();
}

#[test]
fn compressed_client_messages_are_relayed_and_a_zip_bomb_is_closed_with_1009() {
    let config = util::with_config(util::config(1), |c| c.max_message_size = 64 * 1024);
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let (mut sender, _) = raw_chat(addr, Some(OFFER));
    let (mut deflating, _) = raw_chat(addr, Some(OFFER));
    let (mut plain, _) = raw_chat(addr, None);

    let line = "compressed by the client, inflated by the server; ".repeat(10);
    sender.write_all(&client_frame(0x1, true, &deflate(line.as_bytes()))).unwrap();
    assert_eq!(read_message(&mut deflating), (true, line.clone().into_bytes()));
    assert_eq!(read_message(&mut plain), (false, line.into_bytes()));

    let bomb = deflate(&vec![b'z'; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    sender.write_all(&client_frame(0x1, true, &bomb)).unwrap();
    let close = util::read_frame(&mut sender).expect("a close frame");
    assert_eq!(close.close_code(), 1009);

    deflating.write_all(&client_frame(0x1, false, b"still chatting")).unwrap();
    assert_eq!(read_message(&mut plain), (false, b"still chatting".to_vec()));
    server.shutdown().unwrap();
}

#[test]
fn with_compression_off_nothing_is_agreed_and_rsv1_is_a_protocol_error() {
    let config = util::with_config(util::config(1), |c| c.compression = false);
    let server = util::start(config, ChatHandler::default());
    let (mut client, agreed) = raw_chat(server.local_addr(), Some(OFFER));
    assert_eq!(agreed, None);
    client.write_all(&client_frame(0x1, true, &deflate(b"hello hello"))).unwrap();
    assert_eq!(util::read_frame(&mut client).expect("a close frame").close_code(), 1002);
    server.shutdown().unwrap();
}

#[test]
fn channel_publishes_one_by_one_and_in_a_busy_turn_are_compressed_for_room_members_that_agreed() {
    let app = fanout::pusher::App::new("42", pusher_client::KEY, pusher_client::SECRET);
    let server = util::start(util::config(1), pusher_client::service(app, None));
    let addr = server.local_addr();
    let (mut deflating, agreed) = raw_client(addr, "/chat/quotes", Some(OFFER));
    assert!(agreed.is_some());
    let (mut plain, _) = raw_client(addr, "/chat/quotes", None);
    let data = "ACME 101.25 / 101.50, volume 3000; ".repeat(20);
    // One request with ten events: one turn, one channel, a joined run.
    let batch: Vec<serde_json::Value> =
        (0..10).map(|_| serde_json::json!({"name": "quote", "channel": "quotes", "data": data})).collect();
    let (status, body) = pusher_client::api(
        addr,
        "POST",
        "/apps/42/batch_events",
        &[],
        &serde_json::json!({"batch": batch}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        pusher_client::trigger(addr, serde_json::json!({"name": "quote", "channel": "quotes", "data": data}));
    assert_eq!(status, 200, "{body}");
    for _ in 0..11 {
        assert_eq!(read_message(&mut deflating), (true, data.clone().into_bytes()));
        assert_eq!(read_message(&mut plain), (false, data.clone().into_bytes()));
    }
    server.shutdown().unwrap();
}
