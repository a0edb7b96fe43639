//! Verifies that responses encode to exactly one well-framed HTTP/1.1
//! response, whatever headers the handler set.

use super::*;

fn encoded(response: &Response, head_only: bool, keep_alive: bool) -> String {
    String::from_utf8(response.encode(head_only, keep_alive).to_vec()).unwrap()
}

#[test]
fn text_response_has_status_type_length_connection_and_body() {
    let response = Response::text(404, "no such app");
    assert_eq!(
        encoded(&response, false, true),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\
         Connection: keep-alive\r\n\r\nno such app"
    );
    assert!(encoded(&response, false, false).contains("\r\nConnection: close\r\n"));
}

#[test]
fn a_body_without_a_type_gets_the_default_type_and_an_empty_one_none() {
    let with_body = encoded(&Response::new(200).body("ok"), false, true);
    assert!(with_body.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{with_body}");
    let json = encoded(&Response::new(200).header("content-type", "application/json").body("{}"), false, true);
    assert_eq!(json.matches("ontent-").count(), 2, "one type and one length: {json}");
    let empty = encoded(&Response::new(200), false, true);
    assert_eq!(empty, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

#[test]
fn a_content_length_set_by_hand_is_replaced_by_the_computed_one() {
    let response = Response::new(200).header("Content-Length", "999").header("content-length", "1").body("four");
    let text = encoded(&response, false, true);
    assert_eq!(text.to_ascii_lowercase().matches("content-length").count(), 1, "{text}");
    assert!(text.contains("\r\nContent-Length: 4\r\n"));
    assert!(text.ends_with("\r\n\r\nfour"));
}

#[test]
fn transfer_encoding_and_connection_set_by_hand_are_dropped() {
    let response = Response::new(200).header("Transfer-Encoding", "chunked").header("Connection", "keep-alive");
    let text = encoded(&response, false, false);
    assert!(!text.contains("Transfer-Encoding"));
    assert!(!text.contains("keep-alive"), "the server said close: {text}");
    assert!(text.contains("\r\nConnection: close\r\n"));
}

#[test]
fn connection_close_set_by_hand_wins_over_keep_alive() {
    let response = Response::text(503, "busy").header("Connection", "Close");
    assert!(response.closes_connection());
    let text = encoded(&response, false, true);
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(!text.contains("keep-alive"));
    assert!(!Response::new(200).closes_connection());
}

#[test]
fn head_only_keeps_the_length_of_the_get_and_omits_the_body() {
    let response = Response::text(200, "hello world");
    let text = encoded(&response, true, true);
    assert!(text.contains("\r\nContent-Length: 11\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

#[test]
fn no_body_or_length_for_204_and_304_and_nothing_added_to_1xx() {
    for status in [204, 304] {
        let text = encoded(&Response::new(status).body("ignored"), false, true);
        assert!(!text.contains("Content-Length") && !text.contains("ignored"), "{text}");
        assert!(text.ends_with("\r\nConnection: keep-alive\r\n\r\n"), "{text}");
    }
    let upgrade = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        .body("ignored");
    assert_eq!(
        encoded(&upgrade, false, true),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn header_injection_attempts_are_dropped() {
    let response = Response::new(302)
        .header("Location", "/next\r\nSet-Cookie: session=stolen")
        .header("X-Lf", "a\nb")
        .header("X-Cr", "a\rb")
        .header("X-Nul", "a\0b")
        .header("X-Del", "a\x7fb")
        .header("Bad Name", "v")
        .header("Bad:Name", "v")
        .header("Bad\r\nName", "v")
        .header("", "v")
        .header("X-Ok", "fine\tvalue é");
    let text = encoded(&response, false, true);
    assert_eq!(
        text,
        "HTTP/1.1 302 Found\r\nX-Ok: fine\tvalue é\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn a_status_that_is_not_three_digits_is_encoded_as_500() {
    for status in [0, 99, 1000, u16::MAX] {
        assert!(encoded(&Response::new(status), false, true).starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    }
    assert!(encoded(&Response::new(599), false, true).starts_with("HTTP/1.1 599 Server Error\r\n"));
}

#[test]
fn accessors_return_what_was_built() {
    let response = Response::text(201, "made").body(Bytes::from_static(b"replaced"));
    assert_eq!(response.status(), 201);
    assert_eq!(response.body_bytes().as_ref(), b"replaced");
}
