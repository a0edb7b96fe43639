//! Checking the WebSocket headers of an upgrade request.

use super::response::HandshakeError;
use crate::http::Request;
use tungstenite::handshake::derive_accept_key;

/// The checked WebSocket part of an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeHeaders {
    /// The client's `Sec-WebSocket-Key`: base64 of exactly 16 bytes.
    pub key: String,
    /// The matching `Sec-WebSocket-Accept` value to send back.
    pub accept: String,
    /// Subprotocols the client offered, in its order of preference (every
    /// one a valid HTTP token).
    pub offered_protocols: Vec<String>,
}

/// Checks that `req` is a valid WebSocket upgrade (RFC 6455 section 4.2.1).
///
/// Refusals: a method other than GET (405); HTTP/1.0 (400); no `Host` or
/// more than one (400); no `Upgrade: websocket` or no `Connection: upgrade`
/// token (400); a `Sec-WebSocket-Version` other than one header saying 13
/// (two headers: 400; another version: 426); a missing, repeated or
/// malformed `Sec-WebSocket-Key` (400); an offered subprotocol that is not
/// an HTTP token (400).
pub fn validate_upgrade(req: &Request) -> Result<UpgradeHeaders, HandshakeError> {
    if req.method() != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.version() < 1 {
        return Err(HandshakeError::BadRequest("a WebSocket upgrade needs HTTP/1.1"));
    }
    match req.header_count("host") {
        0 => return Err(HandshakeError::BadRequest("missing Host")),
        1 => {}
        _ => return Err(HandshakeError::BadRequest("more than one Host header")),
    }
    if !req.is_upgrade() {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HandshakeError::BadRequest("missing Connection: upgrade"));
    }
    if req.header_count("sec-websocket-version") > 1 {
        return Err(HandshakeError::BadRequest("more than one Sec-WebSocket-Version header"));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    if req.header_count("sec-websocket-key") > 1 {
        return Err(HandshakeError::BadRequest("more than one Sec-WebSocket-Key header"));
    }
    let key = req
        .header("sec-websocket-key")
        .filter(|key| is_base64_of_16_bytes(key))
        .ok_or(HandshakeError::BadRequest("missing or invalid Sec-WebSocket-Key"))?;
    Ok(UpgradeHeaders {
        key: key.to_owned(),
        accept: derive_accept_key(key.as_bytes()),
        offered_protocols: offered_protocols(req)?,
    })
}

/// Every subprotocol offered in `Sec-WebSocket-Protocol` headers, in order:
/// comma-split, trimmed, empty entries dropped; each must be a token.
fn offered_protocols(req: &Request) -> Result<Vec<String>, HandshakeError> {
    let mut offered = Vec::new();
    for item in req.header_values("sec-websocket-protocol").flat_map(|value| value.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if !is_token(item) {
            return Err(HandshakeError::BadRequest("an offered subprotocol is not a valid token"));
        }
        offered.push(item.to_owned());
    }
    Ok(offered)
}

/// True for an RFC 9110 token: one or more of `!#$%&'*+-.^_`|~`, digits
/// and letters.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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
#[path = "upgrade_tests.rs"]
mod tests;
