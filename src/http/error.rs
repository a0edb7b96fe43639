//! [`HttpError`]: why a request was refused, and the status that says so.

use super::Response;

/// Why the bytes a client sent are not a request this server will serve.
///
/// Each variant names the problem and maps onto one status through
/// [`HttpError::status`]: 400 for a malformed head or body framing, 413 for a
/// body over the limit, 431 for a head over the limit, 501 for a transfer
/// coding other than chunked, 505 for a version other than HTTP/1.0 and 1.1.
/// After any of them the connection cannot be trusted to be in step with the
/// client, so [`HttpError::response`] always closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not a valid HTTP/1.x request head; the text names the part at fault (400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A `Content-Length` value is not a list of decimal digits (400).
    #[error("invalid Content-Length: only decimal digits are allowed")]
    InvalidContentLength,
    /// `Content-Length` values disagree with each other (400).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` were sent (400): two
    /// framings that a proxy in front might read differently (request smuggling).
    #[error("both Content-Length and Transfer-Encoding: the body length is ambiguous")]
    AmbiguousLength,
    /// `Transfer-Encoding` is empty, does not end in one `chunked`, or was
    /// sent in an HTTP/1.0 request, which cannot use it (400).
    #[error("invalid Transfer-Encoding: it must end in a single chunked, in HTTP/1.1")]
    InvalidTransferEncoding,
    /// The chunked body breaks the chunked coding; the text names how (400).
    #[error("malformed chunked body: {0}")]
    MalformedChunk(&'static str),
    /// The body is larger than the limit (413).
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// The head, or the trailer section of a chunked body, is longer than the limit (431).
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge {
        /// The longest head accepted, in bytes.
        limit: usize,
    },
    /// The head has more header fields than the limit (431).
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The most header fields accepted.
        limit: usize,
    },
    /// A transfer coding other than `chunked` was applied to the body (501).
    #[error("unsupported transfer coding: only chunked is implemented")]
    UnsupportedTransferCoding,
    /// The request line names a version other than HTTP/1.0 or HTTP/1.1,
    /// such as the HTTP/2 preface `PRI * HTTP/2.0` (505).
    #[error("unsupported HTTP version: only HTTP/1.0 and HTTP/1.1 are served")]
    UnsupportedVersion,
}

impl HttpError {
    /// The status to answer with: 400, 413, 431, 501 or 505.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_)
            | HttpError::InvalidContentLength
            | HttpError::ConflictingContentLength
            | HttpError::AmbiguousLength
            | HttpError::InvalidTransferEncoding
            | HttpError::MalformedChunk(_) => 400,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::UnsupportedVersion => 505,
        }
    }

    /// The refusal to send: [`HttpError::status`], a plain-text body naming
    /// the problem, and `Connection: close`, since what follows on the
    /// connection can no longer be framed reliably.
    pub fn response(&self) -> Response {
        Response::text(self.status(), format!("{self}\n")).header("Connection", "close")
    }
}

#[cfg(test)]
mod tests {
    //! Verifies that every refusal maps to its status and closes the connection.

    use super::*;

    #[test]
    fn every_refusal_maps_to_its_status_and_closes() {
        let cases = [
            (HttpError::Malformed("invalid token"), 400),
            (HttpError::InvalidContentLength, 400),
            (HttpError::ConflictingContentLength, 400),
            (HttpError::AmbiguousLength, 400),
            (HttpError::InvalidTransferEncoding, 400),
            (HttpError::MalformedChunk("invalid chunk size"), 400),
            (HttpError::BodyTooLarge { limit: 10 }, 413),
            (HttpError::HeadTooLarge { limit: 10 }, 431),
            (HttpError::TooManyHeaders { limit: 10 }, 431),
            (HttpError::UnsupportedTransferCoding, 501),
            (HttpError::UnsupportedVersion, 505),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error}");
            let response = error.response();
            assert_eq!(response.status(), status);
            assert!(response.closes_connection());
            assert_eq!(response.body_bytes().as_ref(), format!("{error}\n").as_bytes());
            let encoded = response.encode(false, true);
            assert!(encoded.windows(19).any(|w| w == b"Connection: close\r\n"), "{error}");
        }
    }
}
