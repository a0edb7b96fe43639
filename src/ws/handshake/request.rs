//! Parsing the upgrade request and checking its WebSocket headers.

use super::response::HandshakeError;
use tungstenite::handshake::derive_accept_key;

/// The most request headers accepted; more is refused with 431.
pub const MAX_HEADERS: usize = 64;

/// A parsed HTTP request head. Header names and values are kept as sent
/// (values decoded lossily if not UTF-8); lookups are case-insensitive.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/app/key?protocol=7`.
    pub target: String,
    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Every header in order, as (name, value).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The target without its `?query` part.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The query string after `?`, if there is one (possibly empty).
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The value of the first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.trim())
    }

    /// True when an `Upgrade` header lists the token `websocket` (any case).
    pub fn is_upgrade(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }

    /// Every subprotocol offered in `Sec-WebSocket-Protocol` headers, in
    /// order: comma-split, trimmed, empty entries dropped.
    pub fn offered_protocols(&self) -> Vec<String> {
        self.values("sec-websocket-protocol")
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Values of every header named `name`, which may legally repeat.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// True when some `name` header lists `token` among its comma-separated values.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).flat_map(|value| value.split(',')).any(|item| item.trim().eq_ignore_ascii_case(token))
    }
}

/// The outcome of parsing the bytes received so far.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// The header block has not ended yet; read more and call again with
    /// all bytes so far.
    Incomplete,
    /// The request head is complete; it took the first `consumed` bytes of
    /// the buffer (anything after it was sent early by the client).
    Complete {
        /// The parsed request.
        request: Request,
        /// Length of the request head, including the final empty line.
        consumed: usize,
    },
}

/// Parses an HTTP/1.1 request head from the start of `buf`.
///
/// Returns [`Parsed::Incomplete`] while the head is unfinished and `buf` is
/// within `max_size`; [`HandshakeError::TooLarge`] (431) once the head
/// exceeds `max_size` or has more than [`MAX_HEADERS`] headers;
/// [`HandshakeError::Malformed`] (400) when it is not HTTP.
pub fn parse_request(buf: &[u8], max_size: usize) -> Result<Parsed, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let consumed = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(consumed)) => consumed,
        Ok(httparse::Status::Partial) if buf.len() > max_size => return Err(HandshakeError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooLarge),
        Err(error) => return Err(HandshakeError::Malformed(error.to_string())),
    };
    // Judged on the head itself, so the verdict does not depend on how the
    // bytes were split across reads.
    if consumed > max_size {
        return Err(HandshakeError::TooLarge);
    }
    let request = Request {
        method: parsed.method.unwrap_or_default().to_owned(),
        target: parsed.path.unwrap_or_default().to_owned(),
        version: parsed.version.unwrap_or_default(),
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
    };
    Ok(Parsed::Complete { request, consumed })
}

/// The checked WebSocket part of an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Key`: base64 of exactly 16 bytes.
    pub key: String,
    /// The matching `Sec-WebSocket-Accept` value to send back.
    pub accept: String,
    /// Subprotocols the client offered, in its order of preference.
    pub offered_protocols: Vec<String>,
}

/// Checks that `req` is a valid WebSocket upgrade (RFC 6455 section 4.2.1).
///
/// Refusals: method other than GET (405); HTTP/1.0 (400); no `Upgrade:
/// websocket` or no `Connection: upgrade` token (400); `Sec-WebSocket-Version`
/// other than 13 (426); missing or malformed `Sec-WebSocket-Key` (400).
pub fn validate_upgrade(req: &Request) -> Result<Upgrade, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.version < 1 {
        return Err(HandshakeError::Malformed("WebSocket upgrade needs HTTP/1.1".into()));
    }
    if !req.is_upgrade() {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HandshakeError::BadRequest("missing Connection: upgrade"));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = req
        .header("sec-websocket-key")
        .filter(|key| is_base64_of_16_bytes(key))
        .ok_or(HandshakeError::BadRequest("missing or invalid Sec-WebSocket-Key"))?;
    Ok(Upgrade {
        key: key.to_owned(),
        accept: derive_accept_key(key.as_bytes()),
        offered_protocols: req.offered_protocols(),
    })
}

/// True for the base64 encoding of exactly 16 bytes: 22 alphabet characters
/// then `==`. The last data character carries 4 unused bits, which canonical
/// encoders leave zero; we accept any, as browsers' keys are all canonical.
fn is_base64_of_16_bytes(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes.iter().take(22).all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
