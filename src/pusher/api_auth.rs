//! Signed HTTP API requests, checked the way Pusher checks them.
//!
//! Every request carries `auth_key`, `auth_timestamp`, `auth_version` and,
//! with a body, `body_md5` in its query, and `auth_signature`: the hex
//! HMAC-SHA256, under the app secret, of
//! `METHOD\nPATH\nk1=v1&k2=v2...` where the parameters are all the others,
//! keys lowercased and sorted, values as decoded, nothing escaped.

use md5::{Digest, Md5};

use super::auth;

/// How far `auth_timestamp` may be from the server's clock, either way.
pub const MAX_TIMESTAMP_SKEW_SECS: u64 = 600;

/// Why a signed API request is refused. All of them answer 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthError {
    /// A required parameter is absent.
    #[error("missing query parameter {0}")]
    MissingParam(&'static str),
    /// An authentication parameter appears more than once: which one counts
    /// would be a guess.
    #[error("query parameter {0} is given more than once")]
    DuplicateParam(&'static str),
    /// `auth_key` is not this app's key.
    #[error("auth_key is not this app's key")]
    WrongKey,
    /// `auth_timestamp` is not a number of seconds.
    #[error("auth_timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// `auth_timestamp` is too far from the server's clock.
    #[error("auth_timestamp is {skew_secs} s from the server's clock; at most {MAX_TIMESTAMP_SKEW_SECS} s is allowed")]
    StaleTimestamp {
        /// Request time minus server time, in seconds (negative: in the past).
        skew_secs: i64,
    },
    /// `auth_version` is present and not `1.0`.
    #[error("auth_version must be 1.0")]
    BadVersion,
    /// `body_md5` is not the MD5 of the body.
    #[error("body_md5 is not the MD5 of the body")]
    BodyMd5Mismatch,
    /// `auth_signature` does not sign this request with this app's secret.
    #[error("invalid auth_signature")]
    BadSignature,
}

impl ApiAuthError {
    /// The HTTP status to answer with: 401, Pusher's authentication error.
    pub fn status(&self) -> u16 {
        401
    }
}

/// Whether a request to `path` is signed by the app with `key` and `secret`.
///
/// `path` is the request path without the query; `params` are the query
/// parameters, percent-decoded, in any order; `body` is the request body.
/// Checks, in order: `auth_key` is `key`; `auth_timestamp` is within
/// [`MAX_TIMESTAMP_SKEW_SECS`] of `now_unix_secs`; `auth_version`, if
/// present, is `1.0`; `body_md5` is the body's MD5 (required with a body;
/// without one it may be absent or the MD5 of nothing); and last
/// `auth_signature`, compared in constant time.
pub fn verify_api_request(
    method: &str,
    path: &str,
    params: &[(impl AsRef<str>, impl AsRef<str>)],
    body: &[u8],
    key: &str,
    secret: &str,
    now_unix_secs: u64,
) -> Result<(), ApiAuthError> {
    let one = |name: &'static str| -> Result<Option<&str>, ApiAuthError> {
        let mut values = params.iter().filter(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref());
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(ApiAuthError::DuplicateParam(name)),
            (value, None) => Ok(value),
        }
    };
    let required = |name: &'static str| one(name)?.ok_or(ApiAuthError::MissingParam(name));

    if required("auth_key")? != key {
        return Err(ApiAuthError::WrongKey);
    }
    let timestamp: i64 = required("auth_timestamp")?.parse().map_err(|_| ApiAuthError::BadTimestamp)?;
    let skew_secs = timestamp.saturating_sub(i64::try_from(now_unix_secs).unwrap_or(i64::MAX));
    if skew_secs.unsigned_abs() > MAX_TIMESTAMP_SKEW_SECS {
        return Err(ApiAuthError::StaleTimestamp { skew_secs });
    }
    if one("auth_version")?.is_some_and(|version| version != "1.0") {
        return Err(ApiAuthError::BadVersion);
    }
    match one("body_md5")? {
        None if body.is_empty() => {}
        None => return Err(ApiAuthError::MissingParam("body_md5")),
        // Without a body this accepts the MD5 of nothing, which some SDKs
        // (Python's) send on GET requests.
        Some(md5) if md5.eq_ignore_ascii_case(&body_md5(body)) => {}
        Some(_) => return Err(ApiAuthError::BodyMd5Mismatch),
    }
    let signature = required("auth_signature")?;
    let signed = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).filter(|(k, _)| *k != "auth_signature");
    if auth::verify_signature(secret, string_to_sign(method, path, signed).as_bytes(), signature) {
        Ok(())
    } else {
        Err(ApiAuthError::BadSignature)
    }
}

/// The query string that signs a request, as Pusher's server SDKs build it:
/// `params` plus `auth_key`, `auth_timestamp` (`timestamp`), `auth_version`
/// and, with a body, `body_md5`, sorted, then `auth_signature`; values are
/// percent-encoded. For tests and the load generator.
pub fn sign_api_request(
    method: &str,
    path: &str,
    params: &[(impl AsRef<str>, impl AsRef<str>)],
    body: &[u8],
    key: &str,
    secret: &str,
    timestamp: u64,
) -> String {
    let mut all: Vec<(String, String)> =
        params.iter().map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().to_string())).collect();
    all.push(("auth_key".into(), key.into()));
    all.push(("auth_timestamp".into(), timestamp.to_string()));
    all.push(("auth_version".into(), "1.0".into()));
    if !body.is_empty() {
        all.push(("body_md5".into(), body_md5(body)));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let to_sign = string_to_sign(method, path, all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    all.push(("auth_signature".into(), auth::sign(secret, &to_sign)));
    let pairs: Vec<String> = all.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    pairs.join("&")
}

/// The lowercase hex MD5 of `body`.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// `METHOD\nPATH\nk=v&...` with keys lowercased and sorted; a stable sort,
/// so repeated keys keep the order they came in.
fn string_to_sign<'a>(method: &str, path: &str, params: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(String, &str)> = params.map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{path}\n{}", method.to_ascii_uppercase(), query.join("&"))
}

/// `text` with every byte but RFC 3986's unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "api_auth_tests.rs"]
mod tests;
