//! Verifies that bodies are framed by Content-Length or chunked coding as
//! RFC 9112 says, and that every framing a proxy could read differently is
//! refused.

use super::super::{Limits, Request, RequestReader};
use super::*;

const LIMITS: Limits = Limits { max_head: 1024, max_body: 100, max_headers: 64 };

fn read(input: &[u8]) -> (Vec<Request>, Option<HttpError>) {
    let mut reader = RequestReader::new();
    reader.feed(input);
    let mut requests = Vec::new();
    loop {
        match reader.next_request(&LIMITS) {
            Ok(Some(request)) => requests.push(request),
            Ok(None) => return (requests, None),
            Err(error) => return (requests, Some(error)),
        }
    }
}

fn post(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /events HTTP/1.1\r\n{fields}\r\n{body}").into_bytes()
}

/// The body of the one request `input` holds.
fn body_of(input: &[u8]) -> Vec<u8> {
    let (requests, error) = read(input);
    assert_eq!((requests.len(), error), (1, None), "{:?}", String::from_utf8_lossy(input));
    requests[0].body().to_vec()
}

fn refusal(input: &[u8]) -> HttpError {
    read(input).1.unwrap_or_else(|| panic!("expected a refusal of {:?}", String::from_utf8_lossy(input)))
}

#[test]
fn a_request_without_length_or_coding_has_an_empty_body() {
    let (requests, error) = read(b"POST /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n");
    assert_eq!(error, None);
    assert!(requests.iter().all(|request| request.body().is_empty()));
    assert_eq!(requests[1].method(), "HEAD");
    assert_eq!(body_of(&post("Content-Length: 0\r\n", "")), b"");
}

#[test]
fn a_content_length_body_is_read_whole_and_no_further() {
    let (requests, error) = read(&post("Content-Length: 5\r\n", "helloGET / HTTP/1.1\r\n\r\n"));
    assert_eq!(error, None);
    assert_eq!(requests[0].body().as_ref(), b"hello");
    assert_eq!(requests[1].method(), "GET");
}

#[test]
fn identical_content_lengths_are_accepted_and_conflicting_ones_refused() {
    assert_eq!(body_of(&post("Content-Length: 5\r\ncontent-length: 5\r\n", "hello")), b"hello");
    assert_eq!(body_of(&post("Content-Length: 5, 5\r\n", "hello")), b"hello");
    assert_eq!(
        refusal(&post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!")),
        HttpError::ConflictingContentLength
    );
    assert_eq!(refusal(&post("Content-Length: 5, 6\r\n", "hello!")), HttpError::ConflictingContentLength);
}

#[test]
fn a_content_length_must_be_digits() {
    for value in ["+5", "-5", "0x5", "5.0", "5 5", "", "5,", "five"] {
        let error = refusal(&post(&format!("Content-Length: {value}\r\n"), "hello"));
        assert_eq!((error, error.status()), (HttpError::InvalidContentLength, 400), "{value:?}");
    }
}

#[test]
fn a_body_over_max_body_is_refused_as_soon_as_the_head_is_in() {
    let too_large = HttpError::BodyTooLarge { limit: 100 };
    assert_eq!(refusal(&post("Content-Length: 101\r\n", "")), too_large);
    assert_eq!(refusal(&post("Content-Length: 99999999999999999999999999\r\n", "")), too_large);
    assert_eq!(body_of(&post("Content-Length: 100\r\n", &"x".repeat(100))).len(), 100);
    assert_eq!(too_large.status(), 413);
}

#[test]
fn a_chunked_body_is_decoded_and_the_next_request_follows() {
    let input =
        post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\nA\r\n, chunked!\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let (requests, error) = read(&input);
    assert_eq!(error, None);
    assert_eq!(requests[0].body().as_ref(), b"hello, chunked!");
    assert_eq!(requests[1].method(), "GET");
    assert_eq!(body_of(&post("Transfer-Encoding: Chunked\r\n", "0\r\n\r\n")), b"");
}

#[test]
fn chunk_extensions_and_trailers_are_tolerated() {
    let body = "5 ;ext=1;quoted=\"a b\"\r\nhello\r\n000\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n";
    assert_eq!(body_of(&post("Transfer-Encoding: chunked\r\n", body)), b"hello");
}

#[test]
fn a_chunked_body_over_max_body_is_refused() {
    let too_large = Some(HttpError::BodyTooLarge { limit: 100 });
    assert_eq!(read(&post("Transfer-Encoding: chunked\r\n", "65\r\n")).1, too_large, "one chunk of 101");
    let two = format!("32\r\n{}\r\n33\r\n", "x".repeat(50));
    assert_eq!(read(&post("Transfer-Encoding: chunked\r\n", &two)).1, too_large, "50 then 51");
    assert_eq!(read(&post("Transfer-Encoding: chunked\r\n", "fffffffffffffffffffffffff\r\n")).1, too_large);
}

#[test]
fn malformed_chunked_framing_is_refused_with_400() {
    for body in [
        "zz\r\n",
        "\r\n",
        ";ext\r\n",
        "-1\r\n",
        " 5\r\nhello\r\n",
        "5\nhello\r\n",
        "5\r\nhelloX\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5;ext\nhello\r\n",
        "5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
        "5\r\nhello\r\n0\r\n\rX",
        "0\r\n\n",
    ] {
        let error = refusal(&post("Transfer-Encoding: chunked\r\n", body));
        assert!(matches!(error, HttpError::MalformedChunk(_)), "{error:?} for {body:?}");
        assert_eq!(error.status(), 400);
    }
    let long_extension = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(5000));
    assert!(matches!(refusal(&post("Transfer-Encoding: chunked\r\n", &long_extension)), HttpError::MalformedChunk(_)));
}

#[test]
fn a_trailer_section_over_max_head_is_refused_with_431() {
    let trailers = format!("0\r\nX-Big: {}\r\n\r\n", "t".repeat(1100));
    let error = refusal(&post("Transfer-Encoding: chunked\r\n", &trailers));
    assert_eq!((error, error.status()), (HttpError::HeadTooLarge { limit: 1024 }, 431));
}

#[test]
fn transfer_codings_other_than_chunked_are_refused_with_501() {
    for value in ["gzip", "gzip, chunked", "chunked, gzip", "identity", "chunked;q=1"] {
        let error = refusal(&post(&format!("Transfer-Encoding: {value}\r\n"), "0\r\n\r\n"));
        assert_eq!((error, error.status()), (HttpError::UnsupportedTransferCoding, 501), "{value}");
    }
}

#[test]
fn chunked_repeated_empty_or_in_http_1_0_is_refused_with_400() {
    let refused = HttpError::InvalidTransferEncoding;
    assert_eq!(refusal(&post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n")), refused);
    assert_eq!(refusal(&post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "")), refused);
    assert_eq!(refusal(&post("Transfer-Encoding: ,\r\n", "")), refused);
    assert_eq!(refusal(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), refused);
}

#[test]
fn content_length_with_transfer_encoding_is_refused_with_400() {
    let error = refusal(&post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"));
    assert_eq!((error, error.status()), (HttpError::AmbiguousLength, 400));
    let reversed = post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n");
    assert_eq!(refusal(&reversed), HttpError::AmbiguousLength);
}

#[test]
fn the_body_buffer_never_outgrows_the_declared_length() {
    let mut reader = BodyReader::for_request(&Request::new("POST", "/").with_header("Content-Length", "70"), &LIMITS)
        .unwrap()
        .unwrap();
    for _ in 0..69 {
        assert_eq!(reader.consume(b"x", &LIMITS), Ok((1, false)));
    }
    assert_eq!(reader.consume(b"xy", &LIMITS), Ok((1, true)), "the byte after the body is not taken");
    assert!(reader.heap_size() <= 70, "{}", reader.heap_size());
    assert_eq!(reader.finish().len(), 70);
}
