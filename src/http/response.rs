//! [`Response`]: what the server writes back, built by handlers, encoded here.

use super::reason_phrase;
use bytes::Bytes;

/// An HTTP/1.1 response: a status, header fields and a body.
///
/// Built with [`Response::new`] or [`Response::text`] and the `header` and
/// `body` methods; the server encodes it. Encoding guarantees that the bytes
/// are one well-framed response whatever the handler put in: the
/// `Content-Length` is always computed from the body (one set by hand is
/// dropped), `Connection` is decided by the server, and a header whose name is
/// not a token or whose value holds a control character (CR, LF, NUL, ...) is
/// left out, so a value taken from a request can never split the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// Set by a `Connection: close` header: the server closes after writing.
    close: bool,
    /// A placeholder for a response given later (`ServerHandle::defer_response`).
    deferred: Option<u64>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    ///
    /// `status` should be a three-digit code (100 to 999); anything else is
    /// encoded as 500, since it cannot be written in a status line.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Bytes::new(), close: false, deferred: None }
    }

    /// The placeholder of deferred response `id`.
    pub(crate) fn deferred(id: u64) -> Self {
        Response { deferred: Some(id), ..Response::new(500) }
    }

    /// The deferred response this placeholder stands for, if it is one.
    pub(crate) fn deferred_id(&self) -> Option<u64> {
        self.deferred
    }

    /// A response with `status` and `body` as `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status).header("Content-Type", "text/plain; charset=utf-8").body(body.into())
    }

    /// This response with one more header field, after those already set.
    ///
    /// `Content-Length` and `Transfer-Encoding` are ignored when encoding (the
    /// length is computed). `Connection` is decided by the server, except that
    /// a `Connection: close` makes it close after this response
    /// ([`Response::closes_connection`]) and that a 1xx response (such as a
    /// 101 completing a WebSocket upgrade) carries its `Connection` as set.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if name.eq_ignore_ascii_case("connection") && value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
            self.close = true;
        }
        self.headers.push((name, value));
        self
    }

    /// This response with `body` as its body, replacing any earlier one.
    /// A 1xx, 204 or 304 response is encoded without it.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code as given to the constructor.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body as set (also for statuses that are encoded without one).
    pub fn body_bytes(&self) -> &Bytes {
        &self.body
    }

    /// True when a `Connection: close` header was set: the server must close
    /// the connection once this response is written, whatever the request asked.
    pub fn closes_connection(&self) -> bool {
        self.close
    }

    /// The bytes to write: status line, header fields, an exact
    /// `Content-Length`, `Connection: keep-alive` or `close`, a default
    /// `Content-Type: text/plain; charset=utf-8` when there is a body and no
    /// type was set, the empty line, then the body.
    ///
    /// `head_only` answers a HEAD request: the body is left out but the
    /// `Content-Length` is the one a GET would have had. `keep_alive` is the
    /// server's decision (usually the request's `keep_alive()`); the header
    /// says `close` when it is false or [`Response::closes_connection`] holds.
    /// A 1xx response gets neither length nor `Connection` added; 1xx, 204 and
    /// 304 responses never carry a body.
    pub(crate) fn encode(&self, head_only: bool, keep_alive: bool) -> Bytes {
        let status = if (100..=999).contains(&self.status) { self.status } else { 500 };
        let informational = status < 200;
        let bodiless = informational || status == 204 || status == 304;
        let body: &[u8] = if bodiless || head_only { &[] } else { &self.body };
        let guess = 96 + self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + body.len();
        let mut out = Vec::with_capacity(guess);
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(&mut out, usize::from(status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(status).as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut has_type = false;
        for (name, value) in &self.headers {
            let computed = ["content-length", "transfer-encoding"].iter().any(|n| name.eq_ignore_ascii_case(n))
                || (!informational && name.eq_ignore_ascii_case("connection"));
            if computed || !is_token(name) || !is_field_value(value) {
                continue;
            }
            has_type |= name.eq_ignore_ascii_case("content-type");
            push_field(&mut out, name, value);
        }
        if !bodiless {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(&mut out, self.body.len());
            out.extend_from_slice(b"\r\n");
            if !self.body.is_empty() && !has_type {
                push_field(&mut out, "Content-Type", "text/plain; charset=utf-8");
            }
        }
        if !informational {
            let close = !keep_alive || self.close;
            push_field(&mut out, "Connection", if close { "close" } else { "keep-alive" });
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A field name (RFC 9110 section 5.1): one or more token characters.
pub(super) fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A field value we are willing to write: no control character except tab.
/// CR and LF would end the field early (response splitting), NUL is refused
/// by many clients, and the other controls are invalid in HTTP (RFC 9110 5.5).
fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
