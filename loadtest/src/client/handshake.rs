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
    /// `Sec-WebSocket-Extensions` names an extension the request did not offer (RFC 6455 §4.1
    /// says to fail the connection).
    #[error("server answered with extension {0:?}, which was not offered")]
    Extension(String),
    /// permessage-deflate agreed without `server_no_context_takeover`: the server's messages
    /// would need an inflate window kept per connection, and loadtest inflates each alone.
    #[error(
        "server agreed to permessage-deflate without server_no_context_takeover; \
         loadtest --deflate inflates every message alone"
    )]
    ContextTakeover,
}

/// The extension offered with `--deflate`: permessage-deflate, any server window (`client_max_
/// window_bits` only says the client could take a smaller window for what it sends; it sends
/// uncompressed anyway).
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Builds the GET upgrade request for `path` on `host` with the base64 `key`; `deflate` offers
/// permessage-deflate.
pub fn request(host: &str, path: &str, key: &str, deflate: bool) -> Vec<u8> {
    let extensions = if deflate { format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n") } else { String::new() };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}User-Agent: fanout-loadtest\r\n\r\n"
    )
    .into_bytes()
}

/// A valid 101 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Bytes of response head; the bytes after it are WebSocket frames.
    pub head_len: usize,
    /// The server agreed to permessage-deflate.
    pub deflate: bool,
}

/// A fresh random `Sec-WebSocket-Key` and the accept value the server must answer with.
pub fn new_key() -> (String, String) {
    let key = tungstenite::handshake::client::generate_key();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    (key, accept)
}

/// Checks the response at the start of `buf` to a request that offered permessage-deflate if
/// `deflate_offered`. `Ok(None)`: the head is incomplete, read more. `Ok(Some(a))`: a valid 101
/// whose head is `a.head_len` bytes, and whether the server agreed to permessage-deflate.
pub fn parse_response(
    buf: &[u8],
    expected_accept: &str,
    deflate_offered: bool,
) -> Result<Option<Accepted>, HandshakeError> {
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
    // Each extension agreed (comma-separated, possibly over several header lines) must be one
    // offered, once: here only permessage-deflate.
    let mut deflate = false;
    for h in resp.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions")) {
        for extension in String::from_utf8_lossy(h.value).split(',') {
            let mut params = extension.split(';').map(str::trim);
            let name = params.next().unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            if !deflate_offered || deflate || !name.eq_ignore_ascii_case("permessage-deflate") {
                return Err(HandshakeError::Extension(extension.trim().to_string()));
            }
            if !params.any(|p| p.eq_ignore_ascii_case("server_no_context_takeover")) {
                return Err(HandshakeError::ContextTakeover);
            }
            deflate = true;
        }
    }
    Ok(Some(Accepted { head_len: n, deflate }))
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
        let text = String::from_utf8(request("h:1", "/chat?x=1", "KEY", false)).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: KEY\r\n") && text.ends_with("\r\n\r\n"));
        assert!(!text.contains("Extensions"));
        let offer = String::from_utf8(request("h:1", "/", "KEY", true)).unwrap();
        assert!(offer.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
        assert!(offer.ends_with("\r\n\r\n"));
    }

    #[test]
    fn accepts_valid_101_and_reports_its_length() {
        // The RFC 6455 §1.3 example key/accept pair.
        let accept = tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut wire = response(&accept).into_bytes();
        let head = wire.len();
        wire.extend_from_slice(&[0x81, 0]);
        let plain = Accepted { head_len: head, deflate: false };
        assert_eq!(parse_response(&wire, &accept, false), Ok(Some(plain)));
        assert_eq!(parse_response(&wire[..head - 1], &accept, false), Ok(None));
        // Offered and not agreed: a plain connection.
        assert_eq!(parse_response(&wire, &accept, true), Ok(Some(plain)));
    }

    fn with_extensions(accept: &str, lines: &[&str]) -> Vec<u8> {
        let mut text = response(accept);
        text.truncate(text.len() - 2);
        for l in lines {
            text.push_str(&format!("Sec-WebSocket-Extensions: {l}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }

    #[test]
    fn deflate_is_agreed_only_when_offered_and_without_context_takeover() {
        let (_, accept) = new_key();
        let fanout = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        let wire = with_extensions(&accept, &[fanout]);
        let agreed = parse_response(&wire, &accept, true).unwrap().unwrap();
        assert_eq!(agreed, Accepted { head_len: wire.len(), deflate: true });
        let small_window =
            with_extensions(&accept, &["Permessage-Deflate;server_no_context_takeover;server_max_window_bits=10"]);
        assert!(parse_response(&small_window, &accept, true).unwrap().unwrap().deflate);
        assert!(matches!(parse_response(&wire, &accept, false), Err(HandshakeError::Extension(_))), "not offered");
        let keeps_context = with_extensions(&accept, &["permessage-deflate; client_no_context_takeover"]);
        assert_eq!(parse_response(&keeps_context, &accept, true), Err(HandshakeError::ContextTakeover));
        for other in [&["x-webkit-deflate-frame"][..], &[fanout, fanout], &[&format!("{fanout}, mystery")]] {
            let wire = with_extensions(&accept, other);
            assert!(matches!(parse_response(&wire, &accept, true), Err(HandshakeError::Extension(_))), "{other:?}");
        }
    }

    #[test]
    fn rejects_wrong_status_accept_and_garbage() {
        let (_, accept) = new_key();
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(not_found, &accept, false), Err(HandshakeError::Status(404)));
        assert_eq!(parse_response(response("nope").as_bytes(), &accept, false), Err(HandshakeError::Accept));
        assert_eq!(parse_response(b"\x00\x01garbage\r\n\r\n", &accept, false), Err(HandshakeError::Malformed));
        let no_upgrade = format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        assert_eq!(parse_response(no_upgrade.as_bytes(), &accept, false), Err(HandshakeError::Upgrade));
        let endless = vec![b'a'; MAX_RESPONSE_HEAD + 1];
        let mut partial = b"HTTP/1.1 101 OK\r\nX: ".to_vec();
        partial.extend_from_slice(&endless);
        assert_eq!(parse_response(&partial, &accept, false), Err(HandshakeError::TooLarge));
    }
}
