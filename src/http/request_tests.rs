//! Verifies that a request answers every lookup the server and handlers
//! make: target parts, header fields and tokens, keep-alive, client address.

use super::*;

fn sample() -> Request {
    Request::new("GET", "/apps/1/channels?filter_by_prefix=presence-&info=user_count")
        .with_header("Host", "example.com")
        .with_header("Connection", " keep-alive, Upgrade ")
        .with_header("Upgrade", "WebSocket")
        .with_header("Sec-WebSocket-Protocol", "chat, superchat")
        .with_header("sec-websocket-protocol", "v2")
}

fn peer() -> SocketAddr {
    "10.0.0.2:5555".parse().unwrap()
}

#[test]
fn target_splits_into_path_and_query() {
    let request = sample();
    assert_eq!(request.method(), "GET");
    assert_eq!(request.target(), "/apps/1/channels?filter_by_prefix=presence-&info=user_count");
    assert_eq!(request.path(), "/apps/1/channels");
    assert_eq!(request.query(), Some("filter_by_prefix=presence-&info=user_count"));
    assert_eq!(request.query_param("info").as_deref(), Some("user_count"));
    let bare = Request::new("GET", "/healthz");
    assert_eq!((bare.path(), bare.query(), bare.query_param("x")), ("/healthz", None, None));
    assert_eq!(Request::new("GET", "/x?").query(), Some(""));
}

#[test]
fn header_lookups_ignore_case_and_trim() {
    let request = sample();
    assert_eq!(request.header("HOST"), Some("example.com"));
    assert_eq!(request.header("connection"), Some("keep-alive, Upgrade"));
    assert_eq!(request.header("x-missing"), None);
    assert_eq!(request.header("Sec-WebSocket-Protocol"), Some("chat, superchat"));
    assert_eq!(request.header_values("SEC-WEBSOCKET-PROTOCOL").collect::<Vec<_>>(), ["chat, superchat", "v2"]);
    assert_eq!(request.header_count("sec-websocket-protocol"), 2);
    assert_eq!(request.header_count("x-missing"), 0);
    let names: Vec<&str> = request.headers().map(|(name, _)| name).collect();
    assert_eq!(names, ["Host", "Connection", "Upgrade", "Sec-WebSocket-Protocol", "sec-websocket-protocol"]);
}

#[test]
fn tokens_are_found_in_comma_separated_lists_of_any_field_occurrence() {
    let request = sample();
    assert!(request.has_token("connection", "upgrade"));
    assert!(request.has_token("Connection", "KEEP-ALIVE"));
    assert!(request.has_token("sec-websocket-protocol", "v2"));
    assert!(!request.has_token("connection", "close"));
    assert!(!request.has_token("connection", "keep"));
    assert!(request.is_upgrade());
    assert!(!Request::new("GET", "/").with_header("Upgrade", "h2c").is_upgrade());
}

#[test]
fn keep_alive_follows_the_version_and_connection_tokens() {
    let get = |version: u8, connection: Option<&str>| {
        let request = Request::new("GET", "/").with_version(version);
        connection.map_or(request.clone(), |value| request.with_header("Connection", value)).keep_alive()
    };
    assert!(get(1, None));
    assert!(get(1, Some("keep-alive")));
    assert!(!get(1, Some("close")));
    assert!(!get(1, Some("Upgrade, Close")));
    assert!(!get(0, None));
    assert!(get(0, Some("Keep-Alive")));
    assert!(!get(0, Some("keep-alive, close")));
    assert_eq!(Request::new("GET", "/").with_version(7).version(), 1);
}

#[test]
fn client_ip_believes_forwarded_for_only_from_a_trusted_proxy() {
    let forwarded = |value: &str, trust: bool| {
        let mut request = Request::new("GET", "/").with_header("X-Forwarded-For", value);
        request.set_peer(peer(), trust);
        request.client_ip().map(|ip| ip.to_string())
    };
    assert_eq!(forwarded("203.0.113.7, 10.0.0.1", false).as_deref(), Some("10.0.0.2"));
    assert_eq!(forwarded("203.0.113.7, 10.0.0.1", true).as_deref(), Some("203.0.113.7"));
    assert_eq!(forwarded(" 2001:db8::1 ", true).as_deref(), Some("2001:db8::1"));
    assert_eq!(forwarded("203.0.113.7:4711", true).as_deref(), Some("203.0.113.7"));
    assert_eq!(forwarded("[2001:db8::1]:4711", true).as_deref(), Some("2001:db8::1"));
    assert_eq!(forwarded("unknown, 203.0.113.7", true).as_deref(), Some("10.0.0.2"));
    assert_eq!(forwarded("", true).as_deref(), Some("10.0.0.2"));
    let mut direct = Request::new("GET", "/");
    assert_eq!(direct.client_ip(), None);
    direct.set_peer(peer(), true);
    assert_eq!(direct.client_ip(), Some(peer().ip()));
    assert_eq!(direct.peer_addr(), Some(peer()));
}

#[test]
fn a_parsed_head_decodes_values_lossily_and_keeps_order() {
    let headers = [
        httparse::Header { name: "X-Bytes", value: b"caf\xe9" },
        httparse::Header { name: "Host", value: b"example.com" },
    ];
    let request = Request::parsed("POST", "/events", 0, &headers);
    assert_eq!(request.header("x-bytes"), Some("caf\u{FFFD}"));
    assert_eq!(request.version(), 0);
    assert_eq!(
        request,
        Request::new("POST", "/events")
            .with_version(0)
            .with_header("X-Bytes", "caf\u{FFFD}")
            .with_header("Host", "example.com")
    );
}

#[test]
fn the_builder_sets_the_body_and_debug_shows_the_head() {
    let request = Request::new("POST", "/events").with_header("Content-Type", "application/json").with_body("{}");
    assert_eq!(request.body().as_ref(), b"{}");
    assert!(Request::new("GET", "/").body().is_empty());
    let debug = format!("{request:?}");
    assert!(debug.contains("\"POST\"") && debug.contains("(\"Content-Type\", \"application/json\")"), "{debug}");
}
