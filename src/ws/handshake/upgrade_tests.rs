//! Verifies that every invalid upgrade is refused with the right error and
//! that a valid one yields its accept key and subprotocols.

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The sample upgrade with `skip` left out and `extra` added.
fn upgrade(skip: &str, extra: &[(&str, &str)]) -> Request {
    let base = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Protocol", "chat, , superchat"),
        ("sec-websocket-protocol", "v2"),
    ];
    let mut request = Request::new("GET", "/app/key?protocol=7");
    for (name, value) in base.iter().filter(|(name, _)| !name.eq_ignore_ascii_case(skip)).chain(extra) {
        request = request.with_header(name, value);
    }
    request
}

#[test]
fn a_valid_upgrade_yields_the_accept_key_and_the_offered_protocols() {
    let headers = validate_upgrade(&upgrade("", &[])).expect("valid");
    assert_eq!(headers.key, KEY);
    assert_eq!(headers.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(headers.offered_protocols, vec!["chat", "superchat", "v2"]);
}

#[test]
fn a_missing_or_repeated_host_is_refused() {
    assert_eq!(validate_upgrade(&upgrade("host", &[])), Err(HandshakeError::BadRequest("missing Host")));
    let twice = upgrade("", &[("Host", "other.example")]);
    assert_eq!(validate_upgrade(&twice), Err(HandshakeError::BadRequest("more than one Host header")));
}

#[test]
fn repeated_key_or_version_headers_are_refused() {
    let keys = upgrade("", &[("Sec-WebSocket-Key", KEY)]);
    assert!(matches!(validate_upgrade(&keys), Err(HandshakeError::BadRequest(_))));
    let versions = upgrade("", &[("Sec-WebSocket-Version", "13")]);
    assert!(matches!(validate_upgrade(&versions), Err(HandshakeError::BadRequest(_))));
}

#[test]
fn offered_protocols_must_be_tokens() {
    for bad in ["chat v2", "a/b", "\"quoted\"", "x;y", "é"] {
        let request = upgrade("sec-websocket-protocol", &[("Sec-WebSocket-Protocol", bad)]);
        assert!(matches!(validate_upgrade(&request), Err(HandshakeError::BadRequest(_))), "{bad:?}");
    }
    let fine = upgrade("sec-websocket-protocol", &[("Sec-WebSocket-Protocol", "mqtt, v1.json-rpc_2~x")]);
    assert_eq!(validate_upgrade(&fine).expect("valid").offered_protocols, vec!["mqtt", "v1.json-rpc_2~x"]);
}

#[test]
fn every_missing_piece_is_refused_with_its_error() {
    assert_eq!(
        validate_upgrade(&upgrade("upgrade", &[])),
        Err(HandshakeError::BadRequest("missing Upgrade: websocket"))
    );
    assert_eq!(
        validate_upgrade(&upgrade("connection", &[("Connection", "keep-alive")])),
        Err(HandshakeError::BadRequest("missing Connection: upgrade"))
    );
    assert_eq!(validate_upgrade(&upgrade("sec-websocket-version", &[])), Err(HandshakeError::UnsupportedVersion));
    assert_eq!(
        validate_upgrade(&upgrade("sec-websocket-version", &[("Sec-WebSocket-Version", "8")])),
        Err(HandshakeError::UnsupportedVersion)
    );
    for key in ["", "short==", "dGhlIHNhbXBsZSBub25jZQ=!", "dGhlIHNhbXBsZSBub25jZQ"] {
        let request = upgrade("sec-websocket-key", &[("Sec-WebSocket-Key", key)]);
        assert!(matches!(validate_upgrade(&request), Err(HandshakeError::BadRequest(_))), "{key:?}");
    }
}

#[test]
fn only_get_over_http_1_1_upgrades() {
    let mut post = Request::new("POST", "/chat");
    for (name, value) in [("Host", "h"), ("Upgrade", "websocket"), ("Connection", "Upgrade")] {
        post = post.with_header(name, value);
    }
    assert_eq!(validate_upgrade(&post), Err(HandshakeError::MethodNotAllowed));
}

#[test]
fn tokens_follow_rfc_9110() {
    assert!(is_token("chat") && is_token("v1.2-x_y~z!#$%&'*+^`|"));
    assert!(!is_token("") && !is_token("a b") && !is_token("a,b") && !is_token("a=b") && !is_token("(x)"));
}
