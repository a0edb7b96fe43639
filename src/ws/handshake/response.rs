//! Handshake responses: the 101 that opens a WebSocket, and refusals.

use crate::http::Response;

/// Why an upgrade request was refused; each maps onto an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// An upgrade with a method other than GET (405).
    #[error("method not allowed: WebSocket upgrades use GET")]
    MethodNotAllowed,
    /// A required upgrade header is missing, repeated or invalid (400).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// `Sec-WebSocket-Version` is not 13 (426, answered with the version we speak).
    #[error("unsupported WebSocket version: only 13 is supported")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// The HTTP status to answer with: 405, 400 or 426.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::BadRequest(_) => 400,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
        }
    }

    /// The refusal: a plain-text body naming the problem, with
    /// `Allow: GET` on a 405 and `Sec-WebSocket-Version: 13` on a 426.
    pub fn response(&self) -> Response {
        let response = Response::text(self.status(), format!("{self}\n"));
        match self {
            HandshakeError::MethodNotAllowed => response.header("Allow", "GET"),
            HandshakeError::UnsupportedVersion => response.header("Sec-WebSocket-Version", "13"),
            HandshakeError::BadRequest(_) => response,
        }
    }
}

/// The `101 Switching Protocols` response that completes an upgrade.
///
/// `accept` is [`super::Upgrade::accept`]; `protocol`, when given, must be
/// one of the subprotocols the client offered.
pub fn accept_response(accept: &str, protocol: Option<&str>) -> Vec<u8> {
    accept_response_with(accept, protocol, None)
}

/// [`accept_response`] with a `Sec-WebSocket-Extensions` value (the
/// extensions agreed, e.g. permessage-deflate's parameters).
pub fn accept_response_with(accept: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
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
    if let Some(extensions) = extensions {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(extensions.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
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
    fn refusals_map_to_their_status_and_name_the_problem() {
        let cases = [
            (HandshakeError::MethodNotAllowed, 405),
            (HandshakeError::BadRequest("missing key"), 400),
            (HandshakeError::UnsupportedVersion, 426),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status);
            let response = error.response();
            assert_eq!(response.status(), status);
            assert!(response.body_bytes().ends_with(format!("{error}\n").as_bytes()));
        }
    }
}
