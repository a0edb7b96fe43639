//! Browser origins (`allowed_origins`) and per-address limits
//! (`max_connections_per_ip`, `max_handshakes_per_ip`, with `trust_proxy`
//! deciding whose address counts), each refused before the upgrade while
//! the admitted clients keep chatting.

mod util;

use std::net::{SocketAddr, TcpStream};

use fanout::ChatHandler;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message as WsMessage;

/// Upgrades to `/chat` with extra request headers: the open client (its
/// welcome read), or the HTTP status and `Retry-After` of the refusal.
fn chat_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<util::Client, (u16, Option<String>)> {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    let mut request = format!("ws://{addr}/chat").into_client_request().expect("request");
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        request.headers_mut().insert(name, value.parse().expect("header value"));
    }
    match tungstenite::client(request, stream) {
        Ok((mut client, _)) => {
            let welcome = util::next_message(&mut client);
            assert!(welcome.to_text().expect("text").contains("welcome"), "{welcome:?}");
            Ok(client)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let retry = response.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
            Err((response.status().as_u16(), retry))
        }
        Err(e) => panic!("expected an upgrade or an HTTP refusal, got {e}"),
    }
}

fn refused_count(addr: SocketAddr, cause: &str) -> u64 {
    let answer = util::raw_exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let needle = format!("{{cause=\"{cause}\"}} ");
    text.lines()
        .filter(|l| {
            l.starts_with("fanout_connections_refused_total") || l.starts_with("fanout_handshake_failures_total")
        })
        .find_map(|l| l.split_once(&needle).map(|(_, n)| n.trim().parse::<u64>().expect("a count")))
        .unwrap_or_else(|| panic!("no count for cause {cause} in /metrics"))
}

fn chats(a: &mut util::Client, b: &mut util::Client) {
    a.send(WsMessage::text("still here")).expect("send");
    assert_eq!(util::next_message(b), WsMessage::text("still here"));
}

#[test]
fn only_listed_browser_origins_may_upgrade_and_clients_without_one_are_not_browsers() {
    let config = util::with_config(util::config(2), |c| {
        c.allowed_origins = vec!["https://chat.example.com".into(), "*.example.org".into()];
    });
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let mut listed = chat_with(addr, &[("Origin", "https://chat.example.com")]).expect("a listed origin");
    let mut wildcard = chat_with(addr, &[("Origin", "http://rooms.eu.example.org")]).expect("a subdomain");
    let _no_origin = chat_with(addr, &[]).expect("a client that is not a browser");
    for other in ["https://evil.com", "http://chat.example.com", "https://example.org", "null"] {
        let refusal = chat_with(addr, &[("Origin", other)]).err();
        assert_eq!(refusal.map(|r| r.0), Some(403), "origin {other}");
    }
    assert_eq!(refused_count(addr, "origin"), 4);
    chats(&mut listed, &mut wildcard);
    server.shutdown().unwrap();
}

#[test]
fn connections_past_the_per_address_limit_get_429_until_one_closes() {
    let config = util::with_config(util::config(2), |c| c.max_connections_per_ip = Some(3));
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let mut open: Vec<util::Client> = (0..3).map(|_| chat_with(addr, &[]).expect("under the limit")).collect();
    let Err((status, retry)) = chat_with(addr, &[]) else { panic!("the fourth was admitted") };
    assert_eq!(status, 429);
    assert!(retry.is_some(), "429 says when to retry");
    // Without trust_proxy a forwarded-for header changes nothing.
    let spoofed = chat_with(addr, &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(spoofed.err().map(|r| r.0), Some(429));
    assert_eq!(refused_count(addr, "per_ip"), 2);

    let mut leaving = open.pop().expect("three open");
    leaving.close(None).expect("close");
    util::expect_close(&mut leaving);
    drop(leaving);
    util::wait_until("the closed connection's slot to free", || chat_with(addr, &[]).map(|c| open.push(c)).is_ok());
    let (first, rest) = open.split_at_mut(1);
    chats(&mut first[0], &mut rest[0]);
    server.shutdown().unwrap();
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_count() {
    let config = util::with_config(util::config(1), |c| {
        c.max_connections_per_ip = Some(1);
        c.trust_proxy = true;
    });
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let mut a = chat_with(addr, &[("X-Forwarded-For", "203.0.113.1")]).expect("first address");
    let mut b = chat_with(addr, &[("X-Forwarded-For", "203.0.113.2, 10.0.0.1")]).expect("second address");
    let again = chat_with(addr, &[("X-Forwarded-For", "203.0.113.1")]);
    assert_eq!(again.err().map(|r| r.0), Some(429));
    chats(&mut a, &mut b);
    server.shutdown().unwrap();
}

#[test]
fn handshakes_past_the_per_address_rate_get_429_and_others_are_unaffected() {
    let config = util::with_config(util::config(1), |c| {
        c.max_handshakes_per_ip = Some(5);
        c.trust_proxy = true;
    });
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let hammer = [("X-Forwarded-For", "198.51.100.7")];
    let started = std::time::Instant::now();
    let mut admitted = 0u32;
    let status = loop {
        match chat_with(addr, &hammer) {
            Ok(_) => admitted += 1,
            Err((status, _)) => break status,
        }
        assert!(admitted < 100, "never refused");
    };
    assert_eq!(status, 429);
    // The burst of 5, plus what refilled (5 per second) while they ran.
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as u32;
    assert!((5..=5 + refilled).contains(&admitted), "{admitted} admitted, {refilled} refilled");
    assert!(chat_with(addr, &[("X-Forwarded-For", "198.51.100.8")]).is_ok(), "another address is not limited");
    server.shutdown().unwrap();
}
