//! Reason phrases for status lines.

/// The canonical reason phrase of `status` (RFC 9110 section 15), or for a
/// code not listed here the generic phrase of its class.
///
/// Never empty, so a status line built from it always has a phrase; clients
/// ignore the phrase, but people reading captures do not.
pub fn reason_phrase(status: u16) -> &'static str {
    let canonical = match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    match (canonical, status / 100) {
        ("", 1) => "Informational",
        ("", 2) => "Success",
        ("", 3) => "Redirection",
        ("", 4) => "Client Error",
        ("", _) => "Server Error",
        (phrase, _) => phrase,
    }
}

#[cfg(test)]
mod tests {
    //! Verifies that common codes get their RFC 9110 phrase and others their class's.

    use super::*;

    #[test]
    fn common_codes_have_their_canonical_phrase() {
        for (status, phrase) in [
            (101, "Switching Protocols"),
            (200, "OK"),
            (204, "No Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (413, "Content Too Large"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
        ] {
            assert_eq!(reason_phrase(status), phrase, "{status}");
        }
    }

    #[test]
    fn unlisted_codes_get_their_class_phrase() {
        assert_eq!(reason_phrase(103), "Informational");
        assert_eq!(reason_phrase(299), "Success");
        assert_eq!(reason_phrase(399), "Redirection");
        assert_eq!(reason_phrase(418), "Client Error");
        assert_eq!(reason_phrase(599), "Server Error");
        assert_eq!(reason_phrase(999), "Server Error");
    }
}
