//! Verifies that the reader turns bytes, however split, into the same
//! requests in order, with linear work and bounded memory, and refuses heads
//! that break the limits or are not HTTP/1.x.

use super::super::head::PARSES;
use super::*;

const LIMITS: Limits = Limits { max_head: 8 * 1024, max_body: 64 * 1024, max_headers: 64 };

/// Feeds `chunks` one after the other, pulling requests after each feed as
/// the server does; stops at the first error.
fn read_split(chunks: &[&[u8]], limits: &Limits) -> (Vec<Request>, Option<HttpError>) {
    let mut reader = RequestReader::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        reader.feed(chunk);
        loop {
            match reader.next_request(limits) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => break,
                Err(error) => return (requests, Some(error)),
            }
        }
    }
    (requests, None)
}

fn read_all(input: &[u8]) -> (Vec<Request>, Option<HttpError>) {
    read_split(&[input], &LIMITS)
}

/// The error a fresh reader answers `input` with.
fn refusal(input: &[u8]) -> HttpError {
    read_all(input).1.unwrap_or_else(|| panic!("expected a refusal of {:?}", String::from_utf8_lossy(input)))
}

fn counter(key: &'static std::thread::LocalKey<std::cell::Cell<usize>>) -> usize {
    key.with(std::cell::Cell::get)
}

#[test]
fn reader_is_small_and_allocates_nothing_when_new() {
    assert!(std::mem::size_of::<RequestReader>() <= 64, "{}", std::mem::size_of::<RequestReader>());
    let reader = RequestReader::new();
    assert_eq!(reader.buffered_bytes(), 0);
    assert!(reader.is_idle());
}

#[test]
fn a_get_is_returned_as_soon_as_its_head_ends() {
    let mut reader = RequestReader::new();
    reader.feed(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
    assert!(!reader.is_idle());
    reader.feed(b"\r\n");
    let request = reader.next_request(&LIMITS).unwrap().unwrap();
    assert_eq!((request.method(), request.path(), request.version()), ("GET", "/healthz", 1));
    assert_eq!(request.header("host"), Some("a"));
    assert!(request.body().is_empty());
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
}

#[test]
fn three_pipelined_requests_come_out_in_order() {
    let input =
        b"GET /one HTTP/1.1\r\n\r\nPOST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.0\r\n\r\n";
    let (requests, error) = read_all(input);
    assert_eq!(error, None);
    let summary: Vec<_> = requests.iter().map(|r| (r.path(), r.body().to_vec(), r.version())).collect();
    assert_eq!(summary, [("/one", vec![], 1), ("/two", b"abc".to_vec(), 1), ("/three", vec![], 0)]);
}

#[test]
fn a_request_split_at_every_point_parses_identically() {
    let input: &[u8] = b"\r\nPOST /apps/1/events?auth_key=k HTTP/1.1\r\nHost: example.com\r\n\
        Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n\
        GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    let (whole, error) = read_all(input);
    assert_eq!(error, None);
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].body().as_ref(), b"hello, world");
    for i in 0..=input.len() {
        assert_eq!(read_split(&[&input[..i], &input[i..]], &LIMITS), (whole.clone(), None), "split at {i}");
        for j in i..=input.len() {
            let three = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(read_split(&three, &LIMITS), (whole.clone(), None), "split at {i} and {j}");
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(read_split(&bytes, &LIMITS), (whole, None));
}

#[test]
fn an_8k_head_fed_one_byte_at_a_time_is_searched_once_and_parsed_once() {
    let mut head = String::from("GET /app/key?protocol=7 HTTP/1.1\r\n");
    for i in 0..60 {
        head.push_str(&format!("X-Header-{i:02}: {}\r\n", "v".repeat(116)));
    }
    head.push_str("\r\n");
    assert!(head.len() > 7 * 1024 && head.len() <= LIMITS.max_head, "{}", head.len());
    let (parses, work) = (counter(&PARSES), counter(&WORK));
    let bytes: Vec<&[u8]> = head.as_bytes().chunks(1).collect();
    let (requests, error) = read_split(&bytes, &LIMITS);
    assert_eq!((requests.len(), error), (1, None));
    assert_eq!(requests[0].header_count("x-header-59"), 1);
    assert_eq!(counter(&PARSES) - parses, 1, "each head is parsed once");
    assert_eq!(counter(&WORK) - work, head.len(), "each byte is searched once");
}

#[test]
fn many_pipelined_requests_in_one_feed_take_linear_work() {
    let input = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2000);
    let (parses, work) = (counter(&PARSES), counter(&WORK));
    let (requests, error) = read_all(input.as_bytes());
    assert_eq!((requests.len(), error), (2000, None));
    assert_eq!(counter(&PARSES) - parses, 2000);
    assert!(counter(&WORK) - work <= 2 * input.len(), "{} for {}", counter(&WORK) - work, input.len());
}

#[test]
fn a_head_without_end_is_refused_once_it_passes_max_head() {
    let limits = Limits { max_head: 100, ..LIMITS };
    let mut reader = RequestReader::new();
    reader.feed(b"GET / HTTP/1.1\r\nX: ");
    reader.feed(&[b'a'; 100 - 19]);
    assert_eq!(reader.next_request(&limits), Ok(None), "exactly max_head bytes may still end");
    reader.feed(b"a");
    assert_eq!(reader.next_request(&limits), Err(HttpError::HeadTooLarge { limit: 100 }));
    assert_eq!(reader.buffered_bytes(), 0);
    let work = counter(&WORK);
    let (_, error) = read_split(&[&vec![b'a'; 1 << 20]], &limits);
    assert_eq!(error, Some(HttpError::HeadTooLarge { limit: 100 }));
    assert!(counter(&WORK) - work <= 100, "a megabyte is refused after searching max_head bytes");
}

#[test]
fn a_complete_head_over_max_head_is_refused_however_it_arrives() {
    let head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
    let fits = Limits { max_head: head.len(), ..LIMITS };
    assert_eq!(read_split(&[head.as_bytes()], &fits).1, None);
    let short = Limits { max_head: head.len() - 1, ..LIMITS };
    let refused = Some(HttpError::HeadTooLarge { limit: head.len() - 1 });
    assert_eq!(read_split(&[head.as_bytes()], &short).1, refused);
    let (start, end) = head.as_bytes().split_at(head.len() - 2);
    assert_eq!(read_split(&[start, end], &short).1, refused);
}

#[test]
fn more_than_max_headers_fields_are_refused_with_431() {
    let head = |fields: usize| {
        let lines: String = (0..fields).map(|i| format!("X-{i}: v\r\n")).collect();
        format!("GET / HTTP/1.1\r\n{lines}\r\n")
    };
    assert_eq!(read_all(head(64).as_bytes()).1, None);
    let error = refusal(head(65).as_bytes());
    assert_eq!((error, error.status()), (HttpError::TooManyHeaders { limit: 64 }, 431));
}

#[test]
fn http_1_0_and_1_1_are_served_and_other_versions_refused_with_505() {
    assert_eq!(read_all(b"GET / HTTP/1.0\r\n\r\n").0[0].version(), 0);
    assert_eq!(read_all(b"GET / HTTP/1.1\n\n").0[0].version(), 1);
    for head in [
        &b"GET / HTTP/2.0\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.2\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/3\r\n\r\n",
    ] {
        assert_eq!(refusal(head), HttpError::UnsupportedVersion, "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn heads_that_are_not_http_are_refused_with_400() {
    for head in [
        &b"GET / HTTX/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\n: no name\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"\rGET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
    ] {
        let error = refusal(head);
        assert_eq!(error.status(), 400, "{error} for {:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn empty_lines_before_a_request_are_skipped() {
    let (requests, error) = read_split(&[b"\r", b"\n\n\r", b"\nGET / HTTP/1.1\r\n\r\n\r\n"], &LIMITS);
    assert_eq!((requests.len(), error), (1, None));
}

#[test]
fn an_upgrade_is_returned_at_the_end_of_its_head_and_the_rest_kept() {
    let frames = [0x81, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let mut input =
        b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\n".to_vec();
    input.extend_from_slice(&frames);
    let mut reader = RequestReader::new();
    reader.feed(&input);
    let request = reader.next_request(&LIMITS).unwrap().unwrap();
    assert!(request.is_upgrade() && request.body().is_empty());
    assert_eq!(reader.next_request(&LIMITS), Ok(None), "what follows is not HTTP");
    reader.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
    let mut rest = frames.to_vec();
    rest.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(reader.take_rest(), rest);
    assert_eq!(reader.buffered_bytes(), 0);
}

#[test]
fn an_idle_reader_holds_no_memory() {
    let mut reader = RequestReader::new();
    reader.feed(b"POST /events HTTP/1.1\r\nContent-Length: 10000\r\n\r\n");
    reader.feed(&[b'x'; 6000]);
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
    assert!(!reader.is_idle());
    assert!(reader.buffered_bytes() >= 6000, "{}", reader.buffered_bytes());
    reader.feed(&[b'y'; 4000]);
    let request = reader.next_request(&LIMITS).unwrap().unwrap();
    assert_eq!(request.body().len(), 10000);
    assert!(reader.is_idle());
    assert_eq!(reader.buffered_bytes(), 0);
}

#[test]
fn an_error_finishes_the_reader() {
    let mut reader = RequestReader::new();
    reader.feed(b"GET / HTTP/2.0\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(reader.next_request(&LIMITS), Err(HttpError::UnsupportedVersion));
    reader.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
    assert_eq!((reader.buffered_bytes(), reader.is_idle()), (0, true));
}

#[test]
fn expect_continue_is_signalled_once_before_the_body() {
    let mut reader = RequestReader::new();
    reader.feed(b"POST /events HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(reader.next_request(&LIMITS), Ok(None));
    assert!(reader.take_expect_continue());
    assert!(!reader.take_expect_continue());
    reader.feed(b"{}");
    assert_eq!(reader.next_request(&LIMITS).unwrap().unwrap().body().as_ref(), b"{}");
    let mut eager = RequestReader::new();
    eager.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{");
    assert_eq!(eager.next_request(&LIMITS), Ok(None));
    assert!(!eager.take_expect_continue(), "the body is already coming");
}

#[test]
fn header_values_that_are_not_utf8_are_decoded_lossily() {
    let (requests, _) = read_all(b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n");
    assert_eq!(requests[0].header("x-name"), Some("caf\u{FFFD}"));
}

/// xorshift64: deterministic, dependency-free randomness for the fuzz test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One of `choices`, at random.
fn pick<'a>(seed: &mut u64, choices: &[&'a [u8]]) -> &'a [u8] {
    choices[next(seed) as usize % choices.len()]
}

/// A few pipelined requests assembled from plausible parts, framings that
/// may not match their headers, and some random bytes.
fn random_requests(seed: &mut u64) -> Vec<u8> {
    const LINES: &[&[u8]] = &[b"GET / HTTP/1.1\r\n", b"POST /e HTTP/1.1\r\n", b"GET / HTTP/1.0\r\n", b"\r\n"];
    const FIELDS: &[&[u8]] = &[
        b"Content-Length: 7\r\n",
        b"Content-Length: 400\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Upgrade: websocket\r\n",
        b"Expect: 100-continue\r\n",
        b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        b"Host: example.com\r\n",
    ];
    const BODIES: &[&[u8]] = &[b"", b"abcdefg", b"7\r\nchunked\r\n0\r\n\r\n", b"ff\r\n", b"0\r\nT: t\r\n\r\n"];
    let mut input = Vec::new();
    for _ in 0..1 + next(seed) % 5 {
        input.extend_from_slice(pick(seed, LINES));
        for _ in 0..next(seed) % 5 {
            input.extend_from_slice(pick(seed, FIELDS));
        }
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(pick(seed, BODIES));
        if next(seed).is_multiple_of(4) {
            input.extend((0..next(seed) % 8).map(|_| next(seed) as u8));
        }
    }
    if next(seed).is_multiple_of(3) && !input.is_empty() {
        let at = next(seed) as usize % input.len();
        input[at] = next(seed) as u8;
    }
    input
}

#[test]
fn random_input_never_panics_and_memory_stays_bounded() {
    let limits = Limits { max_head: 256, max_body: 512, max_headers: 8 };
    let max_feed = 64;
    let bound = 2 * (limits.max_head + max_feed)
        + limits.max_body
        + 6 * limits.max_head
        + 24 * limits.max_headers
        + std::mem::size_of::<Pending>();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let (mut bodies, mut refusals) = (0, 0);
    for _ in 0..3000 {
        let input = random_requests(&mut seed);
        let mut reader = RequestReader::new();
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at((1 + next(&mut seed) as usize % max_feed).min(rest.len()));
            rest = tail;
            reader.feed(chunk);
            loop {
                match reader.next_request(&limits) {
                    Ok(Some(request)) if request.is_upgrade() => drop(reader.take_rest()),
                    Ok(Some(request)) => bodies += usize::from(!request.body().is_empty()),
                    Ok(None) => break,
                    Err(_) => refusals += 1,
                }
            }
            assert!(reader.buffered_bytes() <= bound, "{} > {bound}", reader.buffered_bytes());
        }
    }
    assert!(bodies > 100 && refusals > 100, "the input reaches bodies ({bodies}) and refusals ({refusals})");
}
