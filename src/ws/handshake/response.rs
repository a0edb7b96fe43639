//! Handshake responses: the 101 that opens a WebSocket, and refusals.

/// Why a handshake was refused; each maps onto an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The request head exceeded the size limit or had too many headers (431).
    #[error("request header fields too large")]
    TooLarge,
    /// The bytes are not a valid HTTP/1.x request, or HTTP/1.0 asked for an upgrade (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// An upgrade with a method other than GET (405).
    #[error("method not allowed: WebSocket upgrades use GET")]
    MethodNotAllowed,
    /// A required upgrade header is missing or invalid (400).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// `Sec-WebSocket-Version` is not 13 (426, answered with the version we speak).
    #[error("unsupported WebSocket version: only 13 is supported")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// The HTTP status to answer with: 431, 400, 405, 400 or 426.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::TooLarge => 431,
            HandshakeError::Malformed(_) | HandshakeError::BadRequest(_) => 400,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
        }
    }

    /// A complete HTTP/1.1 response for this refusal (see [`http_response`]),
    /// whose body names the problem.
    pub fn response(&self) -> Vec<u8> {
        http_response(self.status(), &format!("{self}\n"))
    }
}

/// The `101 Switching Protocols` response that completes an upgrade.
///
/// `accept` is [`super::Upgrade::accept`]; `protocol`, when given, must be
/// one of the subprotocols the client offered.
pub fn accept_response(accept: &str, protocol: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A complete HTTP/1.1 response with `status` and a plain-text `body`.
///
/// Always carries `Connection: close` (the server closes after writing it),
/// `Content-Type: text/plain; charset=utf-8` and an exact `Content-Length`.
/// Adds `Sec-WebSocket-Version: 13` to a 426, `Allow: GET` to a 405 and
/// `Retry-After: 1` to a 503.
pub fn http_response(status: u16, body: &str) -> Vec<u8> {
    let extra = match status {
        405 => "Allow: GET\r\n",
        426 => "Sec-WebSocket-Version: 13\r\n",
        503 => "Retry-After: 1\r\n",
        _ => "",
    };
    format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        reason_phrase(status),
        body.len(),
    )
    .into_bytes()
}

/// The canonical reason phrase of `status` (RFC 9110), or for an unlisted
/// code the generic phrase of its class.
fn reason_phrase(status: u16) -> &'static str {
    let canonical = match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    match (canonical, status / 100) {
        ("", 1) => "Informational",
        ("", 2) => "Success",
        ("", 3) => "Redirection",
        ("", 4) => "Client Error",
        ("", _) => "Server Error",
        (phrase, _) => phrase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn accept_response_has_the_exact_upgrade_headers() {
        let response = text(accept_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", None));
        assert_eq!(
            response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn accept_response_names_the_chosen_protocol() {
        let response = text(accept_response("abc", Some("chat")));
        assert!(response.ends_with("Sec-WebSocket-Accept: abc\r\nSec-WebSocket-Protocol: chat\r\n\r\n"));
    }

    #[test]
    fn http_response_has_status_line_length_and_close() {
        let response = text(http_response(404, "no such app"));
        assert_eq!(
            response,
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 11\r\n\r\nno such app"
        );
    }

    #[test]
    fn status_specific_headers_are_added() {
        assert!(text(http_response(426, "")).contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text(http_response(503, "")).contains("\r\nRetry-After: 1\r\n"));
        assert!(text(http_response(405, "")).contains("\r\nAllow: GET\r\n"));
        assert!(!text(http_response(200, "")).contains("Retry-After"));
    }

    #[test]
    fn every_common_status_has_its_canonical_phrase() {
        for (status, phrase) in [
            (200, "OK"),
            (400, "Bad Request"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
        ] {
            assert!(text(http_response(status, "")).starts_with(&format!("HTTP/1.1 {status} {phrase}\r\n")));
        }
    }

    #[test]
    fn refusals_map_to_their_status_and_name_the_problem() {
        let cases = [
            (HandshakeError::TooLarge, 431),
            (HandshakeError::Malformed("x".into()), 400),
            (HandshakeError::MethodNotAllowed, 405),
            (HandshakeError::BadRequest("missing key"), 400),
            (HandshakeError::UnsupportedVersion, 426),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status);
            let response = text(error.response());
            assert!(response.starts_with(&format!("HTTP/1.1 {status} ")));
            assert!(response.ends_with(&format!("{error}\n")));
        }
    }
}
