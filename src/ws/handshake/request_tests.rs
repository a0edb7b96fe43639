//! Verifies that upgrade requests are parsed incrementally and that every
//! invalid upgrade is refused with the right error.

use super::*;

const UPGRADE: &str = "GET /app/key?protocol=7&client=js HTTP/1.1\r\n\
    Host: example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: keep-alive, Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: chat, , superchat\r\n\
    sec-websocket-protocol: v2\r\n\
    \r\n";

fn request(text: &str) -> Request {
    match parse_request(text.as_bytes(), 8192) {
        Ok(Parsed::Complete { request, .. }) => request,
        other => panic!("expected a complete request, got {other:?}"),
    }
}

/// The sample upgrade with one header line replaced (or removed when `new` is empty).
fn upgrade_with(old: &str, new: &str) -> Request {
    let line = UPGRADE.lines().find(|line| line.starts_with(old)).unwrap();
    let replaced = format!("{line}\r\n");
    request(&UPGRADE.replacen(&replaced, new, 1))
}

#[test]
fn complete_request_is_parsed_with_its_length() {
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend_from_slice(b"\x81\x80early frame");
    match parse_request(&bytes, 8192).unwrap() {
        Parsed::Complete { request, consumed } => {
            assert_eq!(consumed, UPGRADE.len());
            assert_eq!((request.method.as_str(), request.version), ("GET", 1));
            assert_eq!(request.path(), "/app/key");
            assert_eq!(request.query(), Some("protocol=7&client=js"));
            assert_eq!(request.header("HOST"), Some("example.com"));
            assert!(request.is_upgrade());
            assert_eq!(request.offered_protocols(), vec!["chat", "superchat", "v2"]);
        }
        Parsed::Incomplete => panic!("should be complete"),
    }
}

#[test]
fn unfinished_head_is_incomplete_at_every_split() {
    for end in 0..UPGRADE.len() {
        let parsed = parse_request(&UPGRADE.as_bytes()[..end], 8192);
        assert!(matches!(parsed, Ok(Parsed::Incomplete)), "at {end}: {parsed:?}");
    }
}

#[test]
fn head_over_the_size_limit_is_too_large() {
    assert_eq!(parse_request(&UPGRADE.as_bytes()[..100], 99).unwrap_err(), HandshakeError::TooLarge);
    assert_eq!(parse_request(UPGRADE.as_bytes(), 100).unwrap_err(), HandshakeError::TooLarge);
    assert!(matches!(parse_request(&UPGRADE.as_bytes()[..100], 100), Ok(Parsed::Incomplete)));
}

#[test]
fn more_than_64_headers_is_too_large() {
    let headers: String = (0..65).map(|i| format!("X-H{i}: v\r\n")).collect();
    let text = format!("GET / HTTP/1.1\r\n{headers}\r\n");
    assert_eq!(parse_request(text.as_bytes(), 1 << 20).unwrap_err().status(), 431);
}

#[test]
fn garbage_is_malformed() {
    let error = parse_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 8192).unwrap_err();
    assert!(matches!(error, HandshakeError::Malformed(_)));
    assert_eq!(error.status(), 400);
}

#[test]
fn plain_http_1_0_get_parses_without_upgrade() {
    let request = request("GET /health HTTP/1.0\r\n\r\n");
    assert_eq!((request.version, request.path(), request.query()), (0, "/health", None));
    assert!(!request.is_upgrade());
    assert_eq!(request.header("upgrade"), None);
}

#[test]
fn rfc_6455_sample_key_yields_the_sample_accept() {
    let upgrade = validate_upgrade(&request(UPGRADE)).unwrap();
    assert_eq!(upgrade.key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(upgrade.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(upgrade.offered_protocols, vec!["chat", "superchat", "v2"]);
}

#[test]
fn upgrade_with_a_method_other_than_get_is_not_allowed() {
    let req = request(&UPGRADE.replacen("GET", "POST", 1));
    assert_eq!(validate_upgrade(&req).unwrap_err(), HandshakeError::MethodNotAllowed);
}

#[test]
fn upgrade_over_http_1_0_is_malformed() {
    let req = request(&UPGRADE.replacen("HTTP/1.1", "HTTP/1.0", 1));
    assert!(matches!(validate_upgrade(&req), Err(HandshakeError::Malformed(_))));
}

#[test]
fn upgrade_without_websocket_token_is_a_bad_request() {
    let req = upgrade_with("Upgrade:", "Upgrade: h2c\r\n");
    assert!(!req.is_upgrade());
    assert!(matches!(validate_upgrade(&req), Err(HandshakeError::BadRequest(_))));
}

#[test]
fn upgrade_without_connection_upgrade_is_a_bad_request() {
    let req = upgrade_with("Connection:", "Connection: keep-alive\r\n");
    assert!(matches!(validate_upgrade(&req), Err(HandshakeError::BadRequest(_))));
}

#[test]
fn upgrade_with_another_version_is_unsupported() {
    let req = upgrade_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n");
    assert_eq!(validate_upgrade(&req).unwrap_err(), HandshakeError::UnsupportedVersion);
    let missing = upgrade_with("Sec-WebSocket-Version:", "");
    assert_eq!(validate_upgrade(&missing).unwrap_err().status(), 426);
}

#[test]
fn upgrade_with_a_missing_or_malformed_key_is_a_bad_request() {
    for key in [
        "",
        "Sec-WebSocket-Key: short==\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==AAAA\r\n",
    ] {
        let req = upgrade_with("Sec-WebSocket-Key:", key);
        assert!(matches!(validate_upgrade(&req), Err(HandshakeError::BadRequest(_))), "{key:?}");
    }
}

#[test]
fn header_lookup_is_case_insensitive_first_match_and_trimmed() {
    let req = request("GET / HTTP/1.1\r\nX-Thing:   one  \r\nx-thing: two\r\n\r\n");
    assert_eq!(req.header("x-THING"), Some("one"));
    assert_eq!(req.header("missing"), None);
}
