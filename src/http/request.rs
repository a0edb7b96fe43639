//! [`Request`]: the one request type of the crate, for WebSocket upgrade
//! requests and plain HTTP requests alike.

use super::query;
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// An HTTP/1.x request: method, target, version, header fields and body.
///
/// The server builds it from socket bytes; tests and embedders build one with
/// [`Request::new`] and the `with_*` methods. Guarantees: header fields keep
/// the order they were sent in; values that are not UTF-8 are decoded lossily
/// (each invalid sequence becomes U+FFFD); every lookup by header name is
/// ASCII case-insensitive; no accessor panics, whatever the request holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, the target, then every header name and value, back to
    /// back: one allocation for the whole head rather than two per field.
    text: String,
    /// `text[..method_end]` is the method.
    method_end: usize,
    /// `text[method_end..target_end]` is the target.
    target_end: usize,
    /// Where each header field lies in `text`, in the order sent.
    fields: Vec<Field>,
    /// The HTTP minor version: 1 or 0.
    version: u8,
    body: Bytes,
    peer: Option<SocketAddr>,
    /// Whether the peer is a proxy whose `X-Forwarded-For` is believed.
    trust_proxy: bool,
}

/// One header field: its name is `text[name..value]`, its value `text[value..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    name: usize,
    value: usize,
    end: usize,
}

impl Request {
    /// A request for `target` with `method`, HTTP/1.1, no header fields, an
    /// empty body and no peer address.
    ///
    /// Nothing is validated: this is for tests, and for embedders handing
    /// requests to handlers. The server builds requests only from parsed heads.
    pub fn new(method: &str, target: &str) -> Self {
        Request::with_capacity(method, target, 0, 0)
    }

    /// This request with one more header field, after those already present.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.push_field(name, value);
        self
    }

    /// This request with `body` as its body. No `Content-Length` is added:
    /// the body's framing is the reader's business, not the handler's.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// This request as HTTP/1.`minor`; values above 1 are taken as 1.
    pub fn with_version(mut self, minor: u8) -> Self {
        self.version = minor.min(1);
        self
    }

    /// A request from a head that httparse has parsed, with an empty body.
    pub(super) fn parsed(method: &str, target: &str, version: u8, headers: &[httparse::Header<'_>]) -> Self {
        let text_len = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
        let mut request = Request::with_capacity(method, target, text_len, headers.len());
        request.version = version.min(1);
        for header in headers {
            request.push_field(header.name, &String::from_utf8_lossy(header.value));
        }
        request
    }

    fn with_capacity(method: &str, target: &str, header_text: usize, fields: usize) -> Self {
        let mut text = String::with_capacity(method.len() + target.len() + header_text);
        text.push_str(method);
        text.push_str(target);
        Request {
            method_end: method.len(),
            target_end: text.len(),
            text,
            fields: Vec::with_capacity(fields),
            version: 1,
            body: Bytes::new(),
            peer: None,
            trust_proxy: false,
        }
    }

    fn push_field(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push_str(value);
        self.fields.push(Field { name: start, value: start + name.len(), end: self.text.len() });
    }

    /// Records the address the request came from. With `trust_proxy`, the
    /// peer is a reverse proxy and [`Request::client_ip`] believes its
    /// `X-Forwarded-For`.
    pub(crate) fn set_peer(&mut self, peer: SocketAddr, trust_proxy: bool) {
        self.peer = Some(peer);
        self.trust_proxy = trust_proxy;
    }

    /// Heap bytes held by the head (for the reader's memory accounting).
    pub(super) fn heap_size(&self) -> usize {
        self.text.capacity() + self.fields.capacity() * std::mem::size_of::<Field>()
    }

    /// The method as sent, e.g. `GET` (methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.text.get(..self.method_end).unwrap_or_default()
    }

    /// The request target as sent, e.g. `/apps/1/events?auth_key=k`.
    pub fn target(&self) -> &str {
        self.text.get(self.method_end..self.target_end).unwrap_or_default()
    }

    /// The target without its `?query` part; not percent-decoded.
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string after the first `?`, if there is one (possibly
    /// empty); not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, query)| query)
    }

    /// The value of the first query parameter named `name`, percent-decoded
    /// with `+` as a space (form encoding); bytes that do not decode to UTF-8
    /// become U+FFFD. A parameter without `=` has the empty value. Borrowed
    /// when nothing needed decoding.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        query::param(self.query()?, name)
    }

    /// Every query parameter, percent-decoded, in the order sent.
    pub fn query_pairs(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        self.query().map_or_else(Vec::new, query::pairs)
    }

    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Every header field as (name, value), in the order sent, names as sent
    /// and values as parsed (without the whitespace around them).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|field| {
            let name = self.text.get(field.name..field.value).unwrap_or_default();
            (name, self.text.get(field.value..field.end).unwrap_or_default())
        })
    }

    /// The value of the first field named `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.trim())
    }

    /// The trimmed value of every field named `name` (any case), in order:
    /// fields such as `Sec-WebSocket-Protocol` may legally repeat.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers().filter(move |(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.trim())
    }

    /// How many fields are named `name` (any case).
    pub fn header_count(&self, name: &str) -> usize {
        self.header_values(name).count()
    }

    /// True when some field named `name` lists `token` (any case) among its
    /// comma-separated values, as `Connection: keep-alive, Upgrade` lists `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name).flat_map(|value| value.split(',')).any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// The body, after chunked decoding; empty for a request without one and
    /// for an upgrade request (whatever follows its head belongs to the new
    /// protocol).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The address of the connection's other end, once the server has set it.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The client's address: the first `X-Forwarded-For` hop when the peer
    /// is a trusted proxy and that hop is an IP address (optionally with a
    /// port), otherwise the peer's own address; `None` before a peer is set.
    ///
    /// The first hop is the address the first proxy saw only if that proxy
    /// replaces the header; a proxy that appends to it passes on whatever
    /// the client claimed, so trust only a proxy configured to replace it.
    pub fn client_ip(&self) -> Option<IpAddr> {
        let peer = self.peer?;
        let forwarded = self.trust_proxy.then(|| self.header("x-forwarded-for")).flatten().and_then(first_hop);
        Some(forwarded.unwrap_or(peer.ip()))
    }

    /// Whether the client is willing to send another request on this
    /// connection: in HTTP/1.1 unless `Connection: close`; in HTTP/1.0 only
    /// with `Connection: keep-alive` (RFC 9112 section 9.3).
    pub fn keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            return false;
        }
        self.version >= 1 || self.has_token("connection", "keep-alive")
    }

    /// True when an `Upgrade` field lists `websocket` (any case). Whether the
    /// upgrade is valid is for the WebSocket handshake to judge.
    pub fn is_upgrade(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }
}

/// The first entry of an `X-Forwarded-For` value, if it is an address.
fn first_hop(value: &str) -> Option<IpAddr> {
    let hop = value.split(',').next()?.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body", &self.body)
            .field("peer", &self.peer)
            .field("trust_proxy", &self.trust_proxy)
            .finish()
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
