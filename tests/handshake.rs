//! Verifies that upgrades succeed with the RFC 6455 answer, that every bad request is refused with the right HTTP status and then closed, and that plain HTTP never hangs.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fanout::{Accept, ChatHandler, Config, EchoHandler, Rejection, RunningServer, ServerHandle};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message as WsMessage;

/// The RFC 6455 section 1.3 sample key and the accept value it must yield.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A one-worker config whose handshake timeout is far beyond any wait in
/// these tests, so a connection that closes was closed by its answer.
fn config() -> Config {
    util::with_config(util::config(1), |c| {
        c.handshake_timeout = Duration::from_secs(60);
    })
}

fn chat_server() -> RunningServer {
    util::start(config(), ChatHandler::default())
}

/// A complete HTTP answer, read until the server closed the connection.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` on a fresh connection and reads the answer through to
/// the server's EOF, failing if the server keeps the connection open.
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    stream.write_all(request).expect("write request");
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        panic!("server did not close after {:?}: {e}", String::from_utf8_lossy(&answer));
    }
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete head in {text:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Answer { status, head: head.to_owned(), body: body.to_owned() }
}

/// The sample upgrade request for `/chat` with header line `old` (matched by
/// prefix) replaced by `new`, or removed when `new` is empty.
fn upgrade_with(old: &str, new: &str) -> String {
    let request = util::upgrade_request("/chat");
    let line = request.lines().find(|line| line.starts_with(old)).expect("header in sample request");
    request.replacen(&format!("{line}\r\n"), new, 1)
}

/// Sends `request`, expects `status` and a close, and checks that the refusal
/// was counted and no connection was.
fn assert_refused(request: &[u8], status: u16) -> Answer {
    let server = chat_server();
    let answer = exchange(server.local_addr(), request);
    assert_eq!(answer.status, status, "head: {}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
    let handle = server.handle();
    assert_eq!(handle.connection_count(), 0);
    let stats = handle.stats();
    assert_eq!((stats.refused_handshakes, stats.opened), (1, 0));
    answer
}

#[test]
fn upgrade_answers_101_with_the_accept_key_of_the_rfc_sample() {
    let server = util::start(config(), EchoHandler);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.write_all(util::upgrade_request("/").as_bytes()).unwrap();
    let head = util::read_head(&mut stream);
    let answer = parse_answer(head.as_bytes());
    assert_eq!(answer.status, 101, "{head}");
    assert!(util::upgrade_request("/").contains(SAMPLE_KEY));
    assert_eq!(answer.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    assert_eq!(answer.header("connection"), Some("Upgrade"));
    assert_eq!(answer.header("sec-websocket-protocol"), None);
    util::wait_until("the connection to be counted", || server.handle().connection_count() == 1);
}

#[test]
fn upgrade_without_a_key_is_refused_with_400() {
    assert_refused(upgrade_with("Sec-WebSocket-Key:", "").as_bytes(), 400);
}

#[test]
fn upgrade_with_a_key_that_is_not_16_base64_bytes_is_refused_with_400() {
    let request = upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: not-a-valid-key\r\n");
    assert_refused(request.as_bytes(), 400);
}

#[test]
fn upgrade_with_another_version_is_refused_with_426_naming_version_13() {
    let request = upgrade_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n");
    let answer = assert_refused(request.as_bytes(), 426);
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
}

#[test]
fn upgrade_without_connection_upgrade_is_refused_with_400() {
    let request = upgrade_with("Connection:", "Connection: keep-alive\r\n");
    assert_refused(request.as_bytes(), 400);
}

#[test]
fn upgrade_with_post_is_refused_with_405() {
    let request = util::upgrade_request("/chat").replacen("GET", "POST", 1);
    let answer = assert_refused(request.as_bytes(), 405);
    assert_eq!(answer.header("allow"), Some("GET"));
}

#[test]
fn upgrade_to_a_path_the_handler_does_not_serve_is_refused_with_404() {
    assert_refused(util::upgrade_request("/elsewhere").as_bytes(), 404);
}

#[test]
fn header_block_larger_than_max_handshake_size_is_refused_with_431() {
    let padding = format!("X-Padding: {}\r\n\r\n", "a".repeat(2000));
    let request = util::upgrade_request("/chat").replacen("\r\n\r\n", &format!("\r\n{padding}"), 1);
    assert!(request.len() > 1024);
    let server = util::start(
        util::with_config(config(), |c| {
            c.max_handshake_size = 1024;
        }),
        ChatHandler::default(),
    );
    let answer = exchange(server.local_addr(), request.as_bytes());
    assert_eq!(answer.status, 431, "{}", answer.head);
    assert_eq!(server.handle().stats().refused_handshakes, 1);
}

#[test]
fn unterminated_header_block_over_the_limit_is_refused_with_431_at_once() {
    let server = util::start(
        util::with_config(config(), |c| {
            c.max_handshake_size = 1024;
        }),
        ChatHandler::default(),
    );
    let request = format!("GET /chat HTTP/1.1\r\nX-Endless: {}", "b".repeat(4000));
    let answer = exchange(server.local_addr(), request.as_bytes());
    assert_eq!(answer.status, 431, "{}", answer.head);
}

#[test]
fn garbage_bytes_are_refused_with_400() {
    // The start of a TLS ClientHello: what a wss:// client sends to a ws:// port.
    let answer = assert_refused(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff\r\n\r\n", 400);
    assert!(!answer.body.is_empty());
}

#[test]
fn plain_get_of_the_root_answers_200_with_name_and_connection_count() {
    let server = chat_server();
    let _client = util::connect_chat(server.local_addr());
    let answer = exchange(server.local_addr(), b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(answer.body.contains("fanout"), "{}", answer.body);
    assert!(answer.body.contains("connections: 1"), "{}", answer.body);
    assert_eq!(answer.header("content-length"), Some(answer.body.len().to_string().as_str()));
    assert_eq!(server.handle().connection_count(), 1);
}

#[test]
fn plain_get_of_an_unknown_path_answers_404() {
    let server = chat_server();
    let answer = exchange(server.local_addr(), b"GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 404, "{}", answer.head);
    assert_eq!(server.handle().connection_count(), 0);
}

#[test]
fn plain_http_1_0_get_without_headers_is_answered_and_closed() {
    let server = chat_server();
    let answer = exchange(server.local_addr(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(answer.body.contains("connections: 0"), "{}", answer.body);
}

#[test]
fn configured_subprotocol_offered_by_the_client_is_echoed() {
    let config = util::with_config(config(), |c| {
        c.subprotocols = vec!["chat.v1".into()];
    });
    let server = util::start(config, EchoHandler);
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let mut request = format!("ws://{}/", server.local_addr()).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "x, chat.v1".parse().unwrap());
    let (mut client, response) = tungstenite::client(request, stream).expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    client.send(WsMessage::text("over chat.v1")).unwrap();
    assert_eq!(util::next_message(&mut client), WsMessage::text("over chat.v1"));
}

#[test]
fn only_unknown_subprotocols_offered_get_no_protocol_header() {
    let config = util::with_config(config(), |c| {
        c.subprotocols = vec!["chat.v1".into()];
    });
    let server = util::start(config, EchoHandler);
    let request = util::upgrade_request("/").replacen("\r\n\r\n", "\r\nSec-WebSocket-Protocol: x, chat.v2\r\n\r\n", 1);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let answer = parse_answer(util::read_head(&mut stream).as_bytes());
    assert_eq!(answer.status, 101, "{}", answer.head);
    assert_eq!(answer.header("sec-websocket-protocol"), None);
}

#[test]
fn handshake_split_across_many_writes_still_upgrades() {
    let server = util::start(config(), EchoHandler);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    let request = util::upgrade_request("/");
    for piece in request.as_bytes().chunks(7) {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let answer = parse_answer(util::read_head(&mut stream).as_bytes());
    assert_eq!(answer.status, 101, "{}", answer.head);
    assert_eq!(answer.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
    let mut client = WebSocket::from_raw_socket(stream, Role::Client, None);
    client.send(WsMessage::text("after a slow upgrade")).unwrap();
    assert_eq!(util::next_message(&mut client), WsMessage::text("after a slow upgrade"));
}

#[test]
fn frames_sent_in_the_same_write_as_the_handshake_are_processed() {
    let server = util::start(config(), EchoHandler);
    let mut bytes = util::upgrade_request("/").into_bytes();
    bytes.extend(util::client_frame(true, 0x9, b"early ping"));
    bytes.extend(util::client_frame(true, 0x1, b"early text"));
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.write_all(&bytes).unwrap();
    assert_eq!(parse_answer(util::read_head(&mut stream).as_bytes()).status, 101);
    let pong = util::read_frame(&mut stream).expect("a pong");
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"early ping"[..]));
    let echo = util::read_frame(&mut stream).expect("an echo");
    assert_eq!((echo.opcode, echo.payload.as_slice()), (0x1, &b"early text"[..]));
}

#[test]
fn refused_upgrades_are_counted_as_refusals_never_as_connections() {
    let server = chat_server();
    let addr = server.local_addr();
    let requests = [
        upgrade_with("Sec-WebSocket-Key:", ""),
        upgrade_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 7\r\n"),
        util::upgrade_request("/nope"),
        "\u{1}\u{2}garbage\r\n\r\n".to_owned(),
    ];
    for request in &requests {
        let answer = exchange(addr, request.as_bytes());
        assert!(answer.status >= 400, "{}", answer.head);
    }
    let mut client = util::connect_chat(addr);
    let stats = server.handle().stats();
    assert_eq!(stats.refused_handshakes, requests.len() as u64);
    assert_eq!((stats.opened, stats.connections), (1, 1));
    assert_eq!(server.handle().connection_count(), 1);
    client.close(None).unwrap();
}

#[test]
fn upgrade_with_browser_style_header_spelling_succeeds() {
    let server = util::start(config(), EchoHandler);
    let request = util::upgrade_request("/")
        .replacen("Upgrade: websocket", "upgrade: WebSocket", 1)
        .replacen("Connection: Upgrade", "connection: keep-alive, Upgrade", 1)
        .replacen("Sec-WebSocket-Version", "sec-websocket-version", 1);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let answer = parse_answer(util::read_head(&mut stream).as_bytes());
    assert_eq!(answer.status, 101, "{}", answer.head);
    assert_eq!(answer.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
}

#[test]
fn upgrade_over_http_1_0_is_refused_with_400() {
    let request = util::upgrade_request("/chat").replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_refused(request.as_bytes(), 400);
}

#[test]
fn upgrade_with_more_than_64_headers_is_refused_with_431() {
    let extra: String = (0..65).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
    let request = util::upgrade_request("/chat").replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1);
    assert!(request.len() < config().max_handshake_size);
    assert_refused(request.as_bytes(), 431);
}

#[test]
fn upgrade_path_is_matched_without_its_query_string() {
    let server = chat_server();
    let mut client = util::connect(server.local_addr(), "/chat?token=abc&room=1");
    let welcome = util::next_message(&mut client);
    assert!(welcome.to_text().unwrap().contains("welcome"), "{welcome:?}");
}

/// Admits only upgrades that carry `?token=secret`.
struct TokenGate;

impl fanout::Handler for TokenGate {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, request: &fanout::Request) -> Result<Accept<()>, Rejection> {
        if request.query_param("token").as_deref() == Some("secret") {
            Ok(Accept::new(()))
        } else {
            Err(Rejection::unauthorized("Token realm=\"chat\"").header("Retry-After", "30").body("bad token\n"))
        }
    }
}

#[test]
fn upgrade_refused_by_the_handler_gets_the_handlers_status() {
    let server = util::start(config(), TokenGate);
    let answer = exchange(server.local_addr(), util::upgrade_request("/?token=guess").as_bytes());
    assert_eq!(answer.status, 401, "{}", answer.head);
    let head = answer.head.to_ascii_lowercase();
    assert!(head.contains("\r\nwww-authenticate: token realm=\"chat\"\r\n"), "{}", answer.head);
    assert!(head.contains("\r\nretry-after: 30\r\n"), "{}", answer.head);
    assert_eq!(answer.body, "bad token\n");
    assert_eq!(server.handle().stats().refused_handshakes, 1);
    let _client = util::connect(server.local_addr(), "/?token=secret");
    util::wait_until("the admitted connection", || server.handle().connection_count() == 1);
}

#[test]
fn head_request_gets_the_status_headers_without_a_body() {
    let server = chat_server();
    let answer = exchange(server.local_addr(), b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.body, "", "a HEAD response has no body");
    assert_ne!(answer.header("content-length"), Some("0"));
}

/// Confirms a subprotocol whatever the client offered.
struct PushyProtocol;

impl fanout::Handler for PushyProtocol {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &fanout::Request) -> Result<Accept<()>, Rejection> {
        Ok(Accept::new(()).with_protocol(Some("never.offered")))
    }
}

#[test]
fn a_subprotocol_the_client_did_not_offer_is_never_confirmed() {
    let server = util::start(config(), PushyProtocol);
    let request = util::upgrade_request("/").replacen("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat.v1\r\n\r\n", 1);
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"), "{head}");
}
