//! Parsing one complete request head with httparse, exactly once.

use super::{HttpError, Request};

#[cfg(test)]
thread_local! {
    /// Heads parsed by this thread: lets tests check that no head is parsed twice.
    pub(super) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Parses `head`: a request line and header fields ending with the empty
/// line that closes them, and nothing after it.
///
/// Refusals: more than `max_headers` fields (431), a version other than
/// HTTP/1.0 or 1.1 (505), anything else httparse rejects (400).
pub(super) fn parse_head(head: &[u8], max_headers: usize) -> Result<Request, HttpError> {
    #[cfg(test)]
    PARSES.with(|parses| parses.set(parses.get() + 1));
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        // The reader cut the head at its first empty line, where httparse
        // stops too; a disagreement means the bytes are not what they seem.
        Ok(_) => return Err(HttpError::Malformed("the head does not end at its empty line")),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders { limit: max_headers }),
        Err(httparse::Error::Version) if names_a_version(head) => return Err(HttpError::UnsupportedVersion),
        Err(error) => return Err(HttpError::Malformed(describe(error))),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    Ok(Request::parsed(method, target, version, parsed.headers))
}

/// True when the request line is three words, the last `HTTP/` and a
/// digit: a version, just not one we speak (HTTP/2.0, the HTTP/2 preface,
/// HTTP/1.2), as opposed to bytes that are not an HTTP request line at all.
fn names_a_version(head: &[u8]) -> bool {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&byte| byte == b' ');
    let version = words.nth(2).unwrap_or_default();
    words.next().is_none()
        && version.strip_prefix(b"HTTP/").and_then(|rest| rest.first()).is_some_and(u8::is_ascii_digit)
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or target",
        httparse::Error::Version => "invalid HTTP version",
        _ => "not an HTTP/1.x request head",
    }
}
