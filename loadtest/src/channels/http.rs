//! The HTTP/1.1 the API publisher speaks, as pure functions over bytes: a signed
//! `POST /apps/{id}/events` request, and the answers read back off a keep-alive connection
//! (bodies delimited by `Content-Length` or chunked encoding). An incomplete answer returns
//! `Ok(None)` and consumes nothing.

use thiserror::Error;

use crate::pusher::sign;

/// The largest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Why an answer cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    /// Not an HTTP/1.x response.
    #[error("malformed HTTP answer")]
    Malformed,
    /// A head over 16 KiB.
    #[error("HTTP answer head too large")]
    TooLarge,
    /// Broken chunked encoding.
    #[error("bad chunked encoding")]
    Chunk,
}

/// One complete answer at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// It carried a `Retry-After` header.
    pub retry_after: bool,
    /// The server will close the connection after it (`Connection: close`, or a body that
    /// runs to the end of the connection).
    pub close: bool,
    /// Bytes of head and body.
    pub len: usize,
}

impl Answer {
    /// How answers are counted in the report: the status, with a note when the server asked to
    /// be retried later.
    pub fn key(&self) -> String {
        if self.retry_after {
            format!("{} (Retry-After)", self.status)
        } else {
            self.status.to_string()
        }
    }
}

/// Appends a signed API request publishing `body` (an event) to `out`.
pub fn publish_request(out: &mut Vec<u8>, app: (&str, &str, &str), host: &str, body: &[u8], unix_secs: u64) {
    let (id, key, secret) = app;
    let path = format!("/apps/{id}/events");
    let query = sign::signed_query(key, secret, "POST", &path, body, unix_secs);
    out.extend_from_slice(
        format!(
            "POST {path}?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

/// Reads the answer at the start of `buf`; `Ok(None)` until it is complete.
pub fn parse_answer(buf: &[u8]) -> Result<Option<Answer>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HttpError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Malformed),
    };
    let status = resp.code.ok_or(HttpError::Malformed)?;
    let value = |name: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let has_token =
        |v: &[u8], token: &str| String::from_utf8_lossy(v).split(',').any(|t| t.trim().eq_ignore_ascii_case(token));
    let mut close = value("connection").is_some_and(|v| has_token(v, "close")) || resp.version == Some(0);
    let retry_after = value("retry-after").is_some();
    let body = if status < 200 || status == 204 || status == 304 {
        Some(0)
    } else if value("transfer-encoding").is_some_and(|v| has_token(v, "chunked")) {
        match chunked_len(&buf[head..])? {
            Some(n) => Some(n),
            None => return Ok(None),
        }
    } else if let Some(v) = value("content-length") {
        let n: usize = std::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok()).ok_or(HttpError::Malformed)?;
        Some(n)
    } else {
        // The body runs to the end of the connection: count the answer, then reconnect.
        close = true;
        Some(0)
    };
    let len = head + body.unwrap_or(0);
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Answer { status, retry_after, close, len }))
}

/// Length of a complete chunked body at the start of `buf`, trailers included.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&buf[at..]) else {
            return if buf.len() - at > 1024 { Err(HttpError::Chunk) } else { Ok(None) };
        };
        let line = std::str::from_utf8(&buf[at..at + eol]).map_err(|_| HttpError::Chunk)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Chunk)?;
        at += eol + 2;
        if size == 0 {
            // Trailers, each ending in CRLF, then an empty line.
            loop {
                let Some(eol) = find_crlf(&buf[at..]) else { return Ok(None) };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(HttpError::Chunk);
        }
        at += size + 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_signed_posts_with_the_body() {
        let mut out = Vec::new();
        publish_request(&mut out, ("3", "k", "s"), "h:1", b"{}", 1353088179);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /apps/3/events?auth_key=k&auth_timestamp=1353088179&auth_version=1.0&body_md5="));
        assert!(text.contains("&auth_signature=") && text.contains("\r\nHost: h:1\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn answers_are_read_one_at_a_time_whole_or_not_at_all() {
        let one = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let mut two = one.to_vec();
        two.extend_from_slice(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
        let a = parse_answer(&two).unwrap().unwrap();
        assert_eq!(a, Answer { status: 200, retry_after: false, close: false, len: one.len() });
        let b = parse_answer(&two[a.len..]).unwrap().unwrap();
        assert_eq!((b.status, b.retry_after, b.key()), (503, true, "503 (Retry-After)".to_string()));
        for cut in 0..one.len() {
            assert_eq!(parse_answer(&one[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn chunked_and_closing_answers() {
        let chunked =
            b"HTTP/1.1 413 Too Large\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT";
        let a = parse_answer(chunked).unwrap().unwrap();
        assert_eq!((a.status, a.len), (413, chunked.len() - 4));
        assert_eq!(parse_answer(&chunked[..chunked.len() - 6]), Ok(None));
        let close =
            parse_answer(b"HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(close.close);
        let eof = parse_answer(b"HTTP/1.0 200 OK\r\n\r\nbody...").unwrap().unwrap();
        assert!(eof.close);
        assert_eq!(parse_answer(b"SSH-2.0\r\n\r\n"), Err(HttpError::Malformed));
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_answer(bad), Err(HttpError::Chunk));
    }
}
