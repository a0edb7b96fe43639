//! [`RequestReader`]: socket bytes in, complete requests out, one at a time.

use super::body::BodyReader;
use super::head::parse_head;
use super::{HttpError, Request};

#[cfg(test)]
thread_local! {
    /// Bytes this thread's readers have searched for a head's end or moved
    /// to compact a buffer: tests check the work stays linear in the input.
    pub(super) static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How much one request may hold; exceeding a limit refuses the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request head (request line, header fields and the empty
    /// line after them) in bytes, and the longest chunked trailer section;
    /// 431 beyond. A head is refused as soon as more than this many bytes
    /// arrived without its end.
    pub max_head: usize,
    /// The largest body in bytes, after chunked decoding; 413 beyond, as soon
    /// as a declared length or a chunk size says so.
    pub max_body: usize,
    /// The most header fields in one head; 431 beyond.
    pub max_headers: usize,
}

impl Default for Limits {
    /// 8 KiB of head, 64 fields, and 256 KiB of body: room for a Pusher
    /// batch of ten 10 KB events.
    fn default() -> Self {
        Limits { max_head: 8 * 1024, max_body: 256 * 1024, max_headers: 64 }
    }
}

/// The incremental HTTP/1.x request parser of one connection.
///
/// The worker [`feed`](Self::feed)s what it reads, then calls
/// [`next_request`](Self::next_request) until it returns `Ok(None)`, which
/// yields pipelined requests one by one in order. Guarantees:
/// - Linear work: each byte is searched for the end of a head once, each
///   head is parsed once, each body byte is copied once into its request.
/// - No panic, whatever the bytes.
/// - Bounded memory, when `next_request` is called after every `feed`: the
///   buffer then holds at most a partial head (`max_head` bytes) plus the
///   last bytes fed, and a body in progress at most `max_body` bytes.
/// - A new reader allocates nothing, and a reader goes back to holding no
///   heap memory whenever it has handed out everything it was fed.
/// - After an error, the reader is finished: it buffers nothing, ignores
///   what it is fed, and returns no more requests.
#[derive(Debug)]
pub(crate) struct RequestReader {
    /// Bytes fed and not yet taken; `buf[start..]` is what is left.
    buf: Vec<u8>,
    start: usize,
    /// How far the current head has been searched for its end, so that each
    /// byte is searched once however the head was split across reads.
    scanned: usize,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a complete head.
    Head,
    /// Head parsed; its body is arriving. Boxed: rare, and larger than the rest.
    Body(Box<Pending>),
    /// An upgrade request was returned; what follows is the new protocol's.
    Upgraded,
    /// An error was returned.
    Finished,
}

#[derive(Debug)]
struct Pending {
    request: Request,
    body: BodyReader,
    /// The client awaits `100 Continue` before sending the body.
    expect_continue: bool,
}

impl RequestReader {
    /// An empty reader; allocates nothing.
    pub(crate) fn new() -> Self {
        RequestReader { buf: Vec::new(), start: 0, scanned: 0, phase: Phase::Head }
    }

    /// Appends bytes read from the connection. Nothing is parsed here: call
    /// [`next_request`](Self::next_request) next. Ignored once finished.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        if !matches!(self.phase, Phase::Finished) {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete request (head and body), its bytes removed, or
    /// `Ok(None)` when more bytes are needed. Bytes after it stay for the
    /// next call, so pipelined requests come out in order.
    ///
    /// An upgrade request ([`Request::is_upgrade`]) is returned as soon as
    /// its head is complete, with an empty body; after it this returns
    /// `Ok(None)`, and [`take_rest`](Self::take_rest) hands over what the
    /// client sent after the head. On `Err`, answer with
    /// [`HttpError::response`] and close: the reader is finished.
    pub(crate) fn next_request(&mut self, limits: &Limits) -> Result<Option<Request>, HttpError> {
        let result = self.advance(limits);
        match &result {
            Err(_) => *self = RequestReader { phase: Phase::Finished, ..RequestReader::new() },
            Ok(Some(_)) if self.start == self.buf.len() => self.release(),
            Ok(Some(_)) => {}
            Ok(None) => self.compact(),
        }
        result
    }

    fn advance(&mut self, limits: &Limits) -> Result<Option<Request>, HttpError> {
        if let Phase::Head = self.phase {
            let Some(end) = self.find_head_end(limits)? else { return Ok(None) };
            let request = parse_head(self.buf.get(self.start..end).unwrap_or_default(), limits.max_headers)?;
            self.start = end;
            if request.is_upgrade() {
                // Whatever follows the head is WebSocket frames: not waited
                // for, not framed as a body.
                self.phase = Phase::Upgraded;
                return Ok(Some(request));
            }
            let Some(body) = BodyReader::for_request(&request, limits)? else { return Ok(Some(request)) };
            let expect_continue =
                self.start == self.buf.len() && request.version() == 1 && request.has_token("expect", "100-continue");
            self.phase = Phase::Body(Box::new(Pending { request, body, expect_continue }));
        }
        let Phase::Body(pending) = &mut self.phase else { return Ok(None) };
        let (taken, done) = pending.body.consume(self.buf.get(self.start..).unwrap_or_default(), limits)?;
        self.start += taken;
        pending.expect_continue &= taken == 0;
        if !done {
            return Ok(None);
        }
        let Phase::Body(pending) = std::mem::replace(&mut self.phase, Phase::Head) else { return Ok(None) };
        self.scanned = self.start;
        let Pending { request, body, .. } = *pending;
        Ok(Some(request.with_body(body.finish())))
    }

    /// Where the head starting at `start` ends (just past its empty line),
    /// searching only bytes not searched before, and no further than a head
    /// within `max_head` could reach.
    fn find_head_end(&mut self, limits: &Limits) -> Result<Option<usize>, HttpError> {
        if self.scanned <= self.start && !self.skip_empty_lines() {
            return Ok(None);
        }
        let from = self.scanned.max(self.start);
        let window = self.buf.get(..self.start.saturating_add(limits.max_head)).unwrap_or(&self.buf);
        let mut at = from;
        let mut end = None;
        while let Some(offset) = window.get(at..).and_then(|rest| rest.iter().position(|&byte| byte == b'\n')) {
            at += offset + 1;
            // A line feed ends the head when the line it ends is empty: the
            // byte before it is another line feed, or a CR after one.
            let line = window.get(self.start..at - 1).unwrap_or_default();
            if line.ends_with(b"\n") || line.ends_with(b"\n\r") {
                end = Some(at);
                break;
            }
        }
        self.scanned = end.unwrap_or(window.len());
        #[cfg(test)]
        WORK.with(|work| work.set(work.get() + (self.scanned - from)));
        if end.is_none() && self.buf.len() - self.start > limits.max_head {
            return Err(HttpError::HeadTooLarge { limit: limits.max_head });
        }
        Ok(end)
    }

    /// Drops empty lines before a request line, as RFC 9112 section 2.2
    /// allows (some clients send a CRLF after a POST body). False while no
    /// byte of the head itself has arrived: nothing, or a CR that may yet be
    /// the start of another empty line.
    fn skip_empty_lines(&mut self) -> bool {
        loop {
            match self.buf.get(self.start..).unwrap_or_default() {
                [b'\r', b'\n', ..] => self.start += 2,
                [b'\n', ..] => self.start += 1,
                [] | [b'\r'] => {
                    self.scanned = self.start;
                    return false;
                }
                _ => return true,
            }
        }
    }

    /// Frees the buffer once everything fed has been handed out, so an idle
    /// keep-alive connection holds no heap memory.
    fn release(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
    }

    /// Moves what is left to the front of the buffer before more is fed.
    fn compact(&mut self) {
        if matches!(self.phase, Phase::Upgraded) || self.start == 0 {
            return;
        }
        if self.start == self.buf.len() {
            if matches!(self.phase, Phase::Head) {
                return self.release();
            }
            // A body is arriving: keep the allocation for its next read.
            self.buf.clear();
        } else {
            #[cfg(test)]
            WORK.with(|work| work.set(work.get() + (self.buf.len() - self.start)));
            self.buf.drain(..self.start);
        }
        self.scanned -= self.scanned.min(self.start);
        self.start = 0;
    }

    /// True once per request when the client sent `Expect: 100-continue`,
    /// its head was accepted and none of its body has arrived: the server
    /// should write `HTTP/1.1 100 Continue` so that the client sends the body
    /// now rather than after its own timeout (curl waits a second).
    pub(crate) fn take_expect_continue(&mut self) -> bool {
        match &mut self.phase {
            Phase::Body(pending) => std::mem::take(&mut pending.expect_continue),
            _ => false,
        }
    }

    /// What the client sent after the last request returned, typically the
    /// first WebSocket frames after an upgrade request. Resets the reader to
    /// a new one, dropping any request in progress.
    pub(crate) fn take_rest(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.drain(..self.start.min(rest.len()));
        *self = RequestReader::new();
        rest
    }

    /// Heap bytes held (buffer capacity and any request in progress), for
    /// memory accounting. Zero when idle.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let pending = match &self.phase {
            Phase::Body(pending) => {
                std::mem::size_of::<Pending>() + pending.request.heap_size() + pending.body.heap_size()
            }
            _ => 0,
        };
        self.buf.capacity() + pending
    }

    /// True when no part of a request is buffered: between requests, a
    /// server may apply its idle timeout rather than its request timeout.
    pub(crate) fn is_idle(&self) -> bool {
        !matches!(self.phase, Phase::Body(_)) && self.start == self.buf.len()
    }
}

impl Default for RequestReader {
    fn default() -> Self {
        RequestReader::new()
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
