//! The client side of the opening handshake (RFC 6455 §4.1): build the upgrade request and check
//! the server's answer. Pure functions over bytes, so they are tested without sockets.

use thiserror::Error;

/// The largest response head accepted; a server sending more without `\r\n\r\n` is broken.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why the server's handshake response was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with another HTTP status than 101 Switching Protocols.
    #[error("HTTP status {0} instead of 101")]
    Status(u16),
    /// The response is not valid HTTP.
    #[error("malformed HTTP response")]
    Malformed,
    /// `Sec-WebSocket-Accept` missing or not derived from our key.
    #[error("bad Sec-WebSocket-Accept")]
    Accept,
    /// `Upgrade: websocket` / `Connection: upgrade` missing.
    #[error("response lacks Upgrade: websocket")]
    Upgrade,
    /// The response head exceeded [`MAX_RESPONSE_HEAD`].
    #[error("response head too large")]
    TooLarge,
}

/// Builds the GET upgrade request for `path` on `host` with the base64 `key`.
pub fn request(host: &str, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: fanout-loadtest\r\n\r\n"
    )
    .into_bytes()
}

/// A fresh random `Sec-WebSocket-Key` and the accept value the server must answer with.
pub fn new_key() -> (String, String) {
    let key = tungstenite::handshake::client::generate_key();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    (key, accept)
}

/// Checks the response at the start of `buf`. `Ok(None)`: the head is incomplete, read more.
/// `Ok(Some(n))`: a valid 101 whose head is `n` bytes; bytes after it are WebSocket frames.
pub fn parse_response(buf: &[u8], expected_accept: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => return Err(HandshakeError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HandshakeError::Malformed),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let upgrade_ok = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection_ok =
        header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if !upgrade_ok || !connection_ok {
        return Err(HandshakeError::Upgrade);
    }
    if header("sec-websocket-accept").as_deref() != Some(expected_accept) {
        return Err(HandshakeError::Accept);
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    }

    #[test]
    fn request_carries_key_host_and_path() {
        let text = String::from_utf8(request("h:1", "/chat?x=1", "KEY")).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: KEY\r\n") && text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn accepts_valid_101_and_reports_its_length() {
        // The RFC 6455 §1.3 example key/accept pair.
        let accept = tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut wire = response(&accept).into_bytes();
        let head = wire.len();
        wire.extend_from_slice(&[0x81, 0]);
        assert_eq!(parse_response(&wire, &accept), Ok(Some(head)));
        assert_eq!(parse_response(&wire[..head - 1], &accept), Ok(None));
    }

    #[test]
    fn rejects_wrong_status_accept_and_garbage() {
        let (_, accept) = new_key();
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(not_found, &accept), Err(HandshakeError::Status(404)));
        assert_eq!(parse_response(response("nope").as_bytes(), &accept), Err(HandshakeError::Accept));
        assert_eq!(parse_response(b"\x00\x01garbage\r\n\r\n", &accept), Err(HandshakeError::Malformed));
        let no_upgrade = format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        assert_eq!(parse_response(no_upgrade.as_bytes(), &accept), Err(HandshakeError::Upgrade));
        let endless = vec![b'a'; MAX_RESPONSE_HEAD + 1];
        let mut partial = b"HTTP/1.1 101 OK\r\nX: ".to_vec();
        partial.extend_from_slice(&endless);
        assert_eq!(parse_response(&partial, &accept), Err(HandshakeError::TooLarge));
    }
}
