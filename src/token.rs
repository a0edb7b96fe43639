//! Login tokens for WebSocket clients: a JWT (HS256 with a shared secret,
//! or RS256/ES256 with the issuer's public key) checked before the upgrade.
//!
//! The token may come as `?token=` in the URL, as `Authorization: Bearer`,
//! or, for browsers (which cannot set headers on a WebSocket), as a
//! subprotocol: the client offers [`TOKEN_PROTOCOL`] and the token itself
//! (`new WebSocket(url, ["fanout.token", jwt])`), and the server confirms
//! `fanout.token`, never echoing the token.
//!
//! Checked: the signature, the algorithm (only the configured key's),
//! `exp` and `nbf` against the clock with no leeway (the connection is
//! closed at `exp`, so a token is valid exactly until then), and `sub`
//! present. `aud` and `iss` are not checked: give fanout a key of its own.
//! Verification uses the `jsonwebtoken` crate; nothing here is hand-made
//! cryptography.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::http::Request;

/// The subprotocol a browser offers next to its token.
pub const TOKEN_PROTOCOL: &str = "fanout.token";

/// A key that cannot verify tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    /// The secret is empty.
    #[error("the token secret is empty")]
    EmptySecret,
    /// The PEM text is neither an RSA nor an EC (P-256) public key.
    #[error("not an RSA or EC P-256 public key in PEM form ({0})")]
    NotAPublicKey(String),
}

/// Why a token was refused; the text is safe to send back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token came with the request.
    #[error("a token is required (?token=, Authorization: Bearer, or the fanout.token subprotocol)")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is still ahead.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Wrong signature, or signed with another algorithm than the key's.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// Not a JWT, or its claims are not what they must be.
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user id (`sub`).
    pub user_id: String,
    /// When the token expires (`exp`, seconds since 1970), if it does.
    pub expires_at: Option<u64>,
    /// The rooms it may join (`rooms`, or `channels`): exact names, or
    /// prefixes ending in `*`. `None`: any room.
    pub rooms: Option<Vec<String>>,
}

impl TokenClaims {
    /// Whether the token lets its holder into `room`.
    pub fn may_join(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|rooms| {
            rooms.iter().any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => allowed == room,
            })
        })
    }
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    exp: Option<u64>,
    rooms: Option<Vec<String>>,
    channels: Option<Vec<String>>,
}

/// Checks tokens against one key.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("algorithms", &self.validation.algorithms).finish()
    }
}

impl TokenVerifier {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Result<TokenVerifier, TokenKeyError> {
        if secret.is_empty() {
            return Err(TokenKeyError::EmptySecret);
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| TokenKeyError::NotAPublicKey(e.to_string()))?;
        Ok(TokenVerifier::with(key, Algorithm::HS256))
    }

    /// Verifies RS256 tokens (an RSA public key) or ES256 tokens (an EC
    /// P-256 public key), whichever `pem` holds.
    pub fn public_key_pem(pem: &[u8]) -> Result<TokenVerifier, TokenKeyError> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(TokenVerifier::with(key, Algorithm::RS256));
        }
        match DecodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(TokenVerifier::with(key, Algorithm::ES256)),
            Err(e) => Err(TokenKeyError::NotAPublicKey(e.to_string())),
        }
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> TokenVerifier {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["sub"]);
        TokenVerifier { key, validation }
    }

    /// The claims of `token` if it is valid now.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
                _ => TokenError::Malformed(e.to_string()),
            })?;
        let claims = data.claims;
        // jsonwebtoken lets a token through in the second it expires.
        if claims.exp.is_some_and(|exp| exp <= now_secs()) {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims { user_id: claims.sub, expires_at: claims.exp, rooms: claims.rooms.or(claims.channels) })
    }
}

/// Seconds since 1970 now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCarrier {
    /// `?token=` in the URL.
    Query,
    /// `Authorization: Bearer`.
    Header,
    /// A subprotocol next to [`TOKEN_PROTOCOL`]: the upgrade must confirm
    /// that protocol (browsers fail a handshake that confirms none).
    Subprotocol,
}

/// The token a request carries, and how.
pub fn token_in(request: &Request) -> Option<(String, TokenCarrier)> {
    if let Some(token) = request.query_param("token") {
        return Some((token.into_owned(), TokenCarrier::Query));
    }
    if let Some(value) = request.header("Authorization") {
        if let Some((scheme, token)) = value.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some((token.trim().to_owned(), TokenCarrier::Header));
            }
        }
    }
    let offered: Vec<&str> = request
        .header_values("Sec-WebSocket-Protocol")
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.contains(&TOKEN_PROTOCOL) {
        let token = offered.iter().find(|p| **p != TOKEN_PROTOCOL)?;
        return Some(((*token).to_owned(), TokenCarrier::Subprotocol));
    }
    None
}

#[cfg(test)]
mod tests;
