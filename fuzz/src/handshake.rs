//! The HTTP request reader and the upgrade check on arbitrary bytes.
//!
//! The input is the bytes a client sent, as is. Checked: no panic; the
//! requests read (and the refusal, if any) do not depend on how the bytes
//! were split across reads; the reader never holds more than its limits
//! allow; every request's accessors agree with each other; every refusal
//! maps onto its documented HTTP status and a response with that status;
//! an accepted upgrade yields a well-formed 101.

use fanout::bench_support::{ReaderOutcome, ReaderRig};
use fanout::http::{Limits, Request};
use fanout::ws::handshake::{accept_response, validate_upgrade};

/// Limits tried on every input: the server's defaults and the smallest the
/// configuration accepts.
const LIMITS: [Limits; 2] = [
    Limits { max_head: 8 * 1024, max_body: 1 << 20, max_headers: 64 },
    Limits { max_head: 256, max_body: 16, max_headers: 8 },
];

/// Checks the reader's invariants on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    for limits in &LIMITS {
        check_with_limits(data, limits);
    }
}

fn check_with_limits(data: &[u8], limits: &Limits) {
    let mut whole = ReaderRig::default();
    let outcomes = whole.feed(data, limits);
    let bound = limits.max_head + limits.max_body + data.len().min(limits.max_head) + 4096;
    assert!(whole.buffered_bytes() <= bound.max(2 * data.len()), "reader holds {} bytes", whole.buffered_bytes());
    for outcome in &outcomes {
        match outcome {
            ReaderOutcome::Request(request) => check_request(request),
            ReaderOutcome::Refused(error) => {
                let status = error.status();
                assert!(matches!(status, 400 | 413 | 431 | 501 | 505), "status {status} for {error:?}");
                assert_eq!(error.response().status(), status);
            }
        }
    }
    for end in split_points(data) {
        let mut split = ReaderRig::default();
        let mut again = split.feed(&data[..end], limits);
        let stopped = matches!(again.last(), Some(ReaderOutcome::Refused(_)))
            || matches!(again.last(), Some(ReaderOutcome::Request(r)) if r.is_upgrade());
        if !stopped {
            again.extend(split.feed(&data[end..], limits));
        }
        assert_eq!(again, outcomes, "split at {end} of {} bytes reads differently", data.len());
    }
}

/// A few places to split the input: half, one before the end, and one
/// picked by the input's first byte.
fn split_points(data: &[u8]) -> Vec<usize> {
    let len = data.len();
    let mut ends = vec![len / 2, len.saturating_sub(1)];
    if let Some(&first) = data.first() {
        ends.push(usize::from(first) * len / 256);
    }
    ends.retain(|&end| end > 0 && end < len);
    ends
}

/// Exercises every accessor of a request, then validates it as an upgrade.
fn check_request(request: &Request) {
    assert!(request.target().starts_with(request.path()), "path is not a prefix of the target");
    if let Some(query) = request.query() {
        assert!(request.target().ends_with(query), "query is not a suffix of the target");
    }
    let _ = (request.header("host"), request.keep_alive(), request.query_param("x"), request.client_ip());
    assert_eq!(request.header_values("host").count(), request.header_count("host"));
    match validate_upgrade(request) {
        Ok(upgrade) => {
            assert!(request.method() == "GET" && request.version() >= 1 && request.is_upgrade());
            assert_eq!(upgrade.key.len(), 24, "key {:?}", upgrade.key);
            assert_eq!(upgrade.accept.len(), 28, "accept {:?}", upgrade.accept);
            for protocol in &upgrade.offered_protocols {
                assert!(!protocol.is_empty() && !protocol.contains([',', ' ']), "{protocol:?}");
            }
            let response = accept_response(&upgrade.accept, upgrade.offered_protocols.first().map(String::as_str));
            assert!(response.starts_with(b"HTTP/1.1 101 ") && response.ends_with(b"\r\n\r\n"));
        }
        Err(error) => {
            let status = error.status();
            assert!(matches!(status, 400 | 405 | 426), "status {status} for {error:?}");
            assert_eq!(error.response().status(), status);
        }
    }
}
