//! Verifies that upgrades breaking RFC 6455's header rules are refused with 400 through a real socket, that a valid one still upgrades, and that an application's refusal reaches the client intact and never as a success.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use fanout::{Accept, ChatHandler, Config, Handler, Rejection, Request, RunningServer, ServerHandle};

fn config() -> Config {
    util::with_config(util::config(1), |c| {
        c.subprotocols = vec!["chat.v2".into()];
    })
}

/// An HTTP answer read to the server's EOF.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    /// Every value of header `name` (any case), in order.
    fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
            .collect()
    }
}

/// Sends `request` and reads the answer until the server closes.
fn exchange(addr: SocketAddr, request: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut bytes = Vec::new();
    if let Err(e) = stream.read_to_end(&mut bytes) {
        panic!("the server did not close after {:?}: {e}", String::from_utf8_lossy(&bytes));
    }
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head") + 4;
    let head = String::from_utf8(bytes[..end].to_vec()).expect("an ASCII head");
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer { status, head, body: bytes[end..].to_vec() }
}

/// The sample upgrade for `/chat` with `extra` header lines added and
/// every line starting with `without` left out.
fn upgrade(extra: &[&str], without: Option<&str>) -> String {
    let sample = util::upgrade_request("/chat");
    let mut lines: Vec<&str> =
        sample.trim_end().split("\r\n").filter(|l| without.is_none_or(|w| !l.starts_with(w))).collect();
    lines.extend_from_slice(extra);
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

/// Sends `request` to a fresh chat server and checks it was refused with
/// 400, counted as a refusal, and never opened.
fn assert_refused_with_400(request: &str) {
    let server = util::start(config(), ChatHandler::default());
    let answer = exchange(server.local_addr(), request);
    assert_eq!(answer.status, 400, "{}{}", answer.head, String::from_utf8_lossy(&answer.body));
    let stats = server.handle().stats();
    assert_eq!((stats.refused_handshakes, stats.opened, stats.connections), (1, 0, 0));
}

#[test]
fn an_upgrade_without_host_is_refused_with_400() {
    assert_refused_with_400(&upgrade(&[], Some("Host:")));
}

#[test]
fn an_upgrade_with_two_keys_is_refused_with_400() {
    assert_refused_with_400(&upgrade(&["Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA=="], None));
}

#[test]
fn an_upgrade_with_the_same_key_twice_is_refused_with_400() {
    assert_refused_with_400(&upgrade(&["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], None));
}

#[test]
fn an_upgrade_with_two_version_headers_is_refused_with_400() {
    assert_refused_with_400(&upgrade(&["Sec-WebSocket-Version: 13"], None));
}

#[test]
fn an_offered_subprotocol_that_is_not_a_token_is_refused_with_400() {
    for offer in ["chat v2", "a/b", "chat.v2, \"quoted\"", "x;y"] {
        assert_refused_with_400(&upgrade(&[&format!("Sec-WebSocket-Protocol: {offer}")], None));
    }
}

#[test]
fn an_upgrade_offering_valid_tokens_upgrades_and_confirms_the_configured_one() {
    let server = util::start(config(), ChatHandler::default());
    let mut stream = TcpStream::connect(server.local_addr()).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    let request = upgrade(&["Sec-WebSocket-Protocol: x-other, chat.v2", "Sec-WebSocket-Protocol: v3"], None);
    stream.write_all(request.as_bytes()).expect("write request");
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nSec-WebSocket-Protocol: chat.v2\r\n"), "{head}");
    let welcome = util::read_frame(&mut stream).expect("the chat's welcome");
    assert!(String::from_utf8_lossy(&welcome.payload).contains("welcome"), "{welcome:?}");
}

/// Refuses every upgrade with the `Rejection` its `?as=` parameter names.
struct Refuser;

impl Handler for Refuser {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<()>, Rejection> {
        let status: u16 = request.query_param("as").and_then(|s| s.parse().ok()).unwrap_or(401);
        Err(match status {
            401 => Rejection::unauthorized("Bearer").header("Retry-After", "5").body(BODY),
            other => Rejection::new(other).body("not a success\n"),
        })
    }
}

/// A body with line breaks, an empty line and non-ASCII text.
const BODY: &str = "token expired\r\n\r\nplease sign in again: ünïcødé\n";

fn refuser() -> RunningServer {
    util::start(config(), Refuser)
}

#[test]
fn a_rejection_with_headers_and_a_body_reaches_the_client_intact() {
    let server = refuser();
    let answer = exchange(server.local_addr(), &util::upgrade_request("/?as=401"));
    assert!(answer.head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{}", answer.head);
    assert_eq!(answer.headers("www-authenticate"), ["Bearer"]);
    assert_eq!(answer.headers("retry-after"), ["5"]);
    assert_eq!(answer.headers("content-length"), [BODY.len().to_string()]);
    assert_eq!(answer.headers("connection"), ["close"]);
    assert!(answer.headers("upgrade").is_empty() && answer.headers("sec-websocket-accept").is_empty());
    assert_eq!(answer.body, BODY.as_bytes());
    assert_eq!(server.handle().stats().refused_handshakes, 1);
}

#[test]
fn a_rejection_with_a_status_that_is_not_an_error_is_answered_500() {
    let server = refuser();
    for status in [200, 101, 204, 302, 399, 600] {
        let answer = exchange(server.local_addr(), &util::upgrade_request(&format!("/?as={status}")));
        assert_eq!(answer.status, 500, "Rejection::new({status}): {}", answer.head);
        assert!(answer.headers("sec-websocket-accept").is_empty(), "{}", answer.head);
    }
    let stats = server.handle().stats();
    assert_eq!((stats.opened, stats.connections), (0, 0));
    assert_eq!(Rejection::new(200).status(), 500);
}
