//! The upgrade request parser on arbitrary bytes.
//!
//! The input is the bytes a client sent, as is. Checked: no panic; a complete
//! head reports `consumed` within the input and the limit; the verdict does
//! not depend on how the bytes were split across reads (a prefix of an
//! accepted head is incomplete, never refused); every refusal maps onto its
//! documented HTTP status and a well-formed response.

use fanout::ws::handshake::{accept_response, parse_request, validate_upgrade, HandshakeError, Parsed, Request};

/// Head size limits tried on every input: the server's default and the
/// smallest the configuration accepts.
const LIMITS: [usize; 2] = [8 * 1024, 256];

/// Checks the parser's invariants on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    for max_size in LIMITS {
        check_with_limit(data, max_size);
    }
}

fn check_with_limit(data: &[u8], max_size: usize) {
    let whole = parse_request(data, max_size);
    match &whole {
        Ok(Parsed::Complete { request, consumed }) => {
            assert!(*consumed <= data.len(), "consumed {consumed} of {} bytes", data.len());
            assert!(*consumed <= max_size, "a head of {consumed} bytes passed the limit {max_size}");
            check_request(request);
        }
        Ok(Parsed::Incomplete) => assert!(data.len() <= max_size, "{} bytes still incomplete", data.len()),
        Err(error) => check_refusal(error),
    }
    for end in prefix_ends(data, &whole) {
        let prefix = parse_request(&data[..end], max_size);
        match (&whole, &prefix) {
            (
                Ok(Parsed::Complete { consumed, request }),
                Ok(Parsed::Complete { consumed: early, request: early_req }),
            ) => {
                assert!(end >= *consumed && early == consumed, "prefix of {end} completed at {early}, not {consumed}");
                assert_same_request(request, early_req);
            }
            (Ok(Parsed::Complete { consumed, .. }), Ok(Parsed::Incomplete)) => {
                assert!(end < *consumed, "prefix of {end} bytes incomplete, whole head is {consumed}");
            }
            (Ok(Parsed::Incomplete), Ok(Parsed::Incomplete)) => {}
            // A refusal may need bytes a prefix does not have yet, but a prefix
            // never completes where the whole input does not.
            (Err(_), Ok(Parsed::Incomplete) | Err(_)) => {}
            (_, _) => panic!("prefix of {end} bytes gave {prefix:?}, the whole input {whole:?}"),
        }
    }
}

/// A few prefix lengths to re-parse: around the end of the head, half the
/// input, and one picked by the input's first byte.
fn prefix_ends(data: &[u8], whole: &Result<Parsed, HandshakeError>) -> Vec<usize> {
    let len = data.len();
    let mut ends = vec![len / 2, len.saturating_sub(1)];
    if let Some(&first) = data.first() {
        ends.push(usize::from(first) * len / 256);
    }
    if let Ok(Parsed::Complete { consumed, .. }) = whole {
        ends.extend([consumed.saturating_sub(1), *consumed]);
    }
    ends.retain(|&end| end <= len);
    ends
}

fn assert_same_request(a: &Request, b: &Request) {
    assert_eq!((&a.method, &a.target, a.version, &a.headers), (&b.method, &b.target, b.version, &b.headers));
}

/// Exercises every accessor of a parsed request, then validates it as an upgrade.
fn check_request(request: &Request) {
    assert!(request.target.starts_with(request.path()), "path is not a prefix of the target");
    if let Some(query) = request.query() {
        assert!(request.target.ends_with(query), "query is not a suffix of the target");
    }
    let _ = request.header("host");
    let offered = request.offered_protocols();
    for protocol in &offered {
        assert!(!protocol.is_empty() && protocol.trim() == protocol && !protocol.contains(','), "{protocol:?}");
    }
    match validate_upgrade(request) {
        Ok(upgrade) => {
            assert!(request.method == "GET" && request.version >= 1 && request.is_upgrade());
            assert_eq!(upgrade.key.len(), 24, "key {:?}", upgrade.key);
            assert_eq!(upgrade.accept.len(), 28, "accept {:?}", upgrade.accept);
            assert_eq!(upgrade.offered_protocols, offered);
            let response = accept_response(&upgrade.accept, offered.first().map(String::as_str));
            assert!(response.starts_with(b"HTTP/1.1 101 ") && response.ends_with(b"\r\n\r\n"));
        }
        Err(HandshakeError::TooLarge) => panic!("validate_upgrade refused with 431"),
        Err(error) => check_refusal(&error),
    }
}

/// A refusal has a documented status and a complete response naming it.
fn check_refusal(error: &HandshakeError) {
    let status = error.status();
    assert!(matches!(status, 400 | 405 | 426 | 431), "status {status} for {error:?}");
    let response = error.response();
    assert!(response.starts_with(format!("HTTP/1.1 {status} ").as_bytes()), "response to {error:?}");
}
