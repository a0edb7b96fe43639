//! [`BodyReader`]: how a request's body is framed, and its bytes so far.

use super::chunked::ChunkedDecoder;
use super::{HttpError, Limits, Request};
use bytes::Bytes;

/// The body of one request in progress.
///
/// Its buffer grows with the bytes that arrive, never ahead of them (a
/// `Content-Length` is a claim, not a reason to allocate), and never past what
/// the body may hold: the declared length, or the body limit when chunked.
#[derive(Debug)]
pub(super) struct BodyReader {
    body: Vec<u8>,
    framing: Framing,
}

#[derive(Debug)]
enum Framing {
    /// `Content-Length`, with this many bytes still to come.
    Length { remaining: usize },
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
}

impl BodyReader {
    /// The reader for `request`'s body, or `None` when it has none
    /// (RFC 9112 section 6.3: no `Content-Length` or `Transfer-Encoding`
    /// means an empty body, for every method).
    ///
    /// Refusals: both fields (400, the classic request-smuggling setup); a
    /// `Content-Length` that is not digits (400) or disagrees with another
    /// (400) or exceeds `max_body` (413, before any of the body is read); a
    /// transfer coding other than chunked (501); `chunked` repeated, or sent
    /// by HTTP/1.0 (400).
    pub(super) fn for_request(request: &Request, limits: &Limits) -> Result<Option<Self>, HttpError> {
        let encoded = request.header_count("transfer-encoding") > 0;
        if encoded && request.header_count("content-length") > 0 {
            return Err(HttpError::AmbiguousLength);
        }
        let framing = if encoded {
            check_transfer_coding(request)?;
            Framing::Chunked(ChunkedDecoder::new())
        } else {
            match content_length(request)? {
                None | Some(0) => return Ok(None),
                Some(length) => match usize::try_from(length) {
                    Ok(remaining) if remaining <= limits.max_body => Framing::Length { remaining },
                    _ => return Err(HttpError::BodyTooLarge { limit: limits.max_body }),
                },
            }
        };
        Ok(Some(BodyReader { body: Vec::new(), framing }))
    }

    /// Takes body bytes from the start of `input`: returns how many it took
    /// and whether the body is now complete. Bytes after the body's end are
    /// not taken; they belong to the next request.
    pub(super) fn consume(&mut self, input: &[u8], limits: &Limits) -> Result<(usize, bool), HttpError> {
        match &mut self.framing {
            Framing::Length { remaining } => {
                let take = (*remaining).min(input.len());
                let declared = self.body.len() + *remaining;
                reserve_within(&mut self.body, take, declared);
                self.body.extend_from_slice(input.get(..take).unwrap_or_default());
                *remaining -= take;
                Ok((take, *remaining == 0))
            }
            Framing::Chunked(decoder) => decoder.decode(input, &mut self.body, limits),
        }
    }

    /// Heap bytes held by the body so far.
    pub(super) fn heap_size(&self) -> usize {
        self.body.capacity()
    }

    /// The complete body, without a copy.
    pub(super) fn finish(self) -> Bytes {
        Bytes::from(self.body)
    }
}

/// Makes room for `additional` more bytes in `buf`, doubling its capacity so
/// that growth stays linear, but never past `ceiling` (the most it will need)
/// unless the bytes themselves need more.
pub(super) fn reserve_within(buf: &mut Vec<u8>, additional: usize, ceiling: usize) {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return;
    }
    let target = (buf.capacity() * 2).max(256).max(needed).min(ceiling.max(needed));
    buf.reserve_exact(target - buf.len());
}

/// The declared body length: every `Content-Length` value, each possibly a
/// comma-separated list (RFC 9110 section 8.6 lets a recipient accept
/// `42, 42`), must be decimal digits and all must agree.
fn content_length(request: &Request) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for item in request.header_values("content-length").flat_map(|value| value.split(',')) {
        let item = item.trim();
        if item.is_empty() || !item.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(HttpError::InvalidContentLength);
        }
        // Saturating: a length past u64 is refused as too large all the same.
        let value = item.bytes().fold(0u64, |n, digit| n.saturating_mul(10).saturating_add(u64::from(digit - b'0')));
        match length {
            Some(seen) if seen != value => return Err(HttpError::ConflictingContentLength),
            _ => length = Some(value),
        }
    }
    Ok(length)
}

/// Accepts exactly one `chunked` coding, in HTTP/1.1 (RFC 9112 section 6.1:
/// an HTTP/1.0 message with `Transfer-Encoding` has faulty framing).
fn check_transfer_coding(request: &Request) -> Result<(), HttpError> {
    if request.version() == 0 {
        return Err(HttpError::InvalidTransferEncoding);
    }
    let mut chunked = 0;
    let codings = request.header_values("transfer-encoding").flat_map(|value| value.split(','));
    for coding in codings.map(str::trim).filter(|coding| !coding.is_empty()) {
        if !coding.eq_ignore_ascii_case("chunked") {
            return Err(HttpError::UnsupportedTransferCoding);
        }
        chunked += 1;
    }
    match chunked {
        1 => Ok(()),
        _ => Err(HttpError::InvalidTransferEncoding),
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
