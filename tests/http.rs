//! Verifies that plain HTTP on the WebSocket port keeps connections alive, answers pipelined requests in order without buffering an unread backlog, frames bodies, routes through the embedder's `on_http`, and refuses bad requests with the right status.

mod http_client;
mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use fanout::{Accept, ChatHandler, Config, Handler, Rejection, Request, Response, ServerHandle};
use http_client::{exchange_and_close, request, request_with_body, Conn};
use socket2::{Domain, Socket, Type};

/// Body bytes a request may carry in these tests (413 beyond).
const MAX_BODY: usize = 1024;

/// The size of `/big`'s answer: far more than the kernel buffers between
/// the server and a client that does not read (see `unread_client`).
const BIG: usize = 8 << 20;

/// One worker, a request timeout far beyond any wait here (so a connection
/// that closes was closed by its answer), and a small body limit.
fn config() -> Config {
    util::with_config(util::config(1), |c| {
        c.handshake_timeout = Duration::from_secs(60);
        c.max_http_body = MAX_BODY;
    })
}

/// An embedder with routes of its own: `/` replaced, `/custom` with a
/// status, headers and body of its choosing, `/echo` returning the body it
/// got, `/seq?N` returning N, `/big` an 8 MiB answer, `/panic` panicking.
/// Every other path is declined.
struct Routes;

impl Handler for Routes {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Err(Rejection::not_found())
    }

    fn on_http(&self, _server: &ServerHandle, request: &Request) -> Option<Response> {
        let response = match request.path() {
            "/" => Response::text(200, "the embedder's own root\n"),
            "/custom" => Response::new(201)
                .header("Content-Type", "application/json")
                .header("X-Custom", "chosen by the handler")
                .body(r#"{"made":"by the handler"}"#),
            "/echo" => Response::new(200)
                .header("Content-Type", "application/octet-stream")
                .header("X-Method", request.method())
                .header("X-Body-Length", request.body().len().to_string())
                .body(request.body().clone()),
            "/seq" => Response::text(200, request.query().unwrap_or_default()),
            "/big" => Response::new(200).body(vec![b'x'; BIG]),
            "/panic" => panic!("on_http panics on purpose"),
            _ => return None,
        };
        Some(response)
    }
}

fn routes_server() -> fanout::RunningServer {
    util::start(config(), Routes)
}

#[test]
fn requests_on_a_kept_alive_connection_are_each_answered_on_it() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    for round in 0..3 {
        let answer = conn.exchange(request("GET", &format!("/seq?{round}"), "").as_bytes());
        assert_eq!((answer.status, answer.text()), (200, round.to_string().as_str()), "{}", answer.head);
        assert_eq!(answer.header("connection"), Some("keep-alive"));
    }
    let stats = server.handle().stats();
    assert_eq!((stats.accepted, stats.http_requests), (1, 3), "one TCP connection carried every request");
}

#[test]
fn connection_close_closes_the_connection_after_the_answer() {
    let server = routes_server();
    let answer = exchange_and_close(server.local_addr(), request("GET", "/custom", "Connection: close\r\n").as_bytes());
    assert_eq!(answer.status, 201, "{}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
}

#[test]
fn http_1_0_without_keep_alive_closes_after_the_answer() {
    let server = routes_server();
    let answer = exchange_and_close(server.local_addr(), b"GET /seq?old HTTP/1.0\r\n\r\n");
    assert_eq!((answer.status, answer.text()), (200, "old"), "{}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
}

#[test]
fn http_1_0_with_keep_alive_stays_open() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    for round in 0..2 {
        let answer = conn.exchange(format!("GET /seq?{round} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        assert_eq!((answer.status, answer.text()), (200, round.to_string().as_str()), "{}", answer.head);
        assert_eq!(answer.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    let mut burst = request("GET", "/seq?1", "").into_bytes();
    burst.extend(request_with_body("POST", "/echo", b"two"));
    burst.extend(request("GET", "/seq?3", "").bytes());
    burst.extend(request("POST", "/echo", "Transfer-Encoding: chunked\r\n").bytes());
    burst.extend(b"2\r\nfo\r\n2\r\nur\r\n0\r\n\r\n");
    burst.extend(request("HEAD", "/seq?5", "").bytes());
    burst.extend(request("GET", "/seq?6", "Connection: close\r\n").bytes());
    conn.send(&burst);
    assert_eq!(conn.answer().text(), "1");
    assert_eq!(conn.answer().text(), "two");
    assert_eq!(conn.answer().text(), "3");
    assert_eq!(conn.answer().text(), "four");
    assert_eq!(conn.head_answer().header("content-length"), Some("1"));
    let last = conn.answer();
    assert_eq!((last.text(), last.header("connection")), ("6", Some("close")));
    conn.expect_eof();
}

/// A client whose receive buffer is fixed at 64 KiB (the kernel does not
/// grow it), so that an answer of `BIG` bytes cannot drain while it does
/// not read.
fn unread_client(addr: SocketAddr) -> Conn {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("tcp connect");
    Conn::over(TcpStream::from(socket))
}

/// The value of every sample of `name` in a `/metrics` scrape, summed.
fn scraped(addr: SocketAddr, name: &str) -> u64 {
    let scrape = exchange_and_close(addr, request("GET", "/metrics", "Connection: close\r\n").as_bytes());
    scrape
        .text()
        .lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .map(|line| line.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).expect("an integer sample"))
        .sum()
}

#[test]
fn a_pipelining_client_that_does_not_read_is_held_while_others_are_served() {
    const REQUESTS: usize = 8000;
    let config = util::with_config(config(), |c| c.max_backpressure = 4096);
    let server = util::start(config, Routes);
    let (addr, handle) = (server.local_addr(), server.handle());
    let mut pipelined = unread_client(addr);
    // First an answer too large to leave the server, then many small ones:
    // about 340 KB of requests, more than the 4 reads of 64 KiB a turn may
    // make, so a server that went on reading would hold more than checked below.
    let mut burst = request("GET", "/big", "").into_bytes();
    for i in 1..REQUESTS {
        burst.extend(request("GET", &format!("/seq?{i}"), "").bytes());
    }
    let mut writer = pipelined.stream().try_clone().expect("clone the stream");
    let writing = thread::spawn(move || writer.write_all(&burst));

    util::wait_until("the first pipelined request to be answered", || handle.stats().http_requests >= 1);
    let other = exchange_and_close(addr, request("GET", "/custom", "Connection: close\r\n").as_bytes());
    assert_eq!(other.status, 201, "another client is served while the first one does not read");
    assert_eq!(
        handle.stats().http_requests,
        2,
        "the requests pipelined behind an unread answer wait unparsed, their answers not queued"
    );
    // At most the read or two that brought the first request in.
    let held = scraped(addr, "fanout_partial_input_bytes");
    assert!(held <= 128 * 1024, "the server stopped reading the client ({held} bytes held)");

    let first = pipelined.answer();
    assert_eq!((first.status, first.body.len()), (200, BIG));
    for i in 1..REQUESTS {
        let answer = pipelined.answer();
        assert_eq!((answer.status, answer.text()), (200, i.to_string().as_str()), "answer {i} of {REQUESTS}");
    }
    writing.join().expect("the writer thread").expect("every request written");
    let last = pipelined.exchange(request("GET", "/seq?end", "").as_bytes());
    assert_eq!(last.text(), "end", "the connection is still in step");
    // With the other client, the scrape and the last request.
    assert_eq!(handle.stats().http_requests, REQUESTS as u64 + 3);
}

#[test]
fn a_body_framed_by_content_length_reaches_on_http_intact() {
    let server = routes_server();
    let body: Vec<u8> = (0..=255u8).cycle().take(MAX_BODY).collect();
    let answer = Conn::open(server.local_addr()).exchange(&request_with_body("POST", "/echo", &body));
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.header("x-method"), Some("POST"));
    assert_eq!(answer.header("x-body-length"), Some(MAX_BODY.to_string().as_str()));
    assert_eq!(answer.body, body);
}

#[test]
fn a_chunked_body_reaches_on_http_decoded() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    conn.send(request("PUT", "/echo", "Transfer-Encoding: chunked\r\n").as_bytes());
    conn.send(b"6\r\nhello \r\n");
    conn.send(b"1b;ext=ignored\r\nsent in more than one chunk\r\n0\r\nX-Trailer: dropped\r\n\r\n");
    let answer = conn.answer();
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.header("x-method"), Some("PUT"));
    assert_eq!(answer.text(), "hello sent in more than one chunk");
}

#[test]
fn a_body_over_max_http_body_gets_413_and_the_connection_closes() {
    let server = routes_server();
    let addr = server.local_addr();
    let too_long = vec![b'b'; MAX_BODY + 1];
    let declared = exchange_and_close(addr, &request_with_body("POST", "/echo", &too_long));
    assert_eq!((declared.status, declared.header("connection")), (413, Some("close")), "{}", declared.head);
    let mut chunked = request("POST", "/echo", "Transfer-Encoding: chunked\r\n").into_bytes();
    chunked.extend(format!("{:x}\r\n", too_long.len()).bytes());
    chunked.extend(&too_long);
    chunked.extend(b"\r\n0\r\n\r\n");
    let chunked = exchange_and_close(addr, &chunked);
    assert_eq!((chunked.status, chunked.header("connection")), (413, Some("close")), "{}", chunked.head);
    assert_eq!(server.handle().stats().http_requests, 0, "neither reached the handler");
}

#[test]
fn expect_100_continue_gets_100_continue_before_the_body_is_sent() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    conn.send(request("POST", "/echo", "Content-Length: 11\r\nExpect: 100-continue\r\n").as_bytes());
    let interim = conn.answer();
    assert_eq!(interim.head, "HTTP/1.1 100 Continue");
    conn.send(b"hello world");
    let answer = conn.answer();
    assert_eq!((answer.status, answer.text()), (200, "hello world"), "{}", answer.head);
}

#[test]
fn on_http_answers_with_the_status_headers_and_body_it_chose() {
    let server = routes_server();
    let answer = Conn::open(server.local_addr()).exchange(request("GET", "/custom?x=1", "").as_bytes());
    assert_eq!(answer.status, 201, "{}", answer.head);
    assert!(answer.head.starts_with("HTTP/1.1 201 Created\r\n"), "{}", answer.head);
    assert_eq!(answer.header("x-custom"), Some("chosen by the handler"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.text(), r#"{"made":"by the handler"}"#);
}

#[test]
fn on_http_can_replace_the_root_page() {
    let server = routes_server();
    let answer = Conn::open(server.local_addr()).exchange(request("GET", "/", "").as_bytes());
    assert_eq!((answer.status, answer.text()), (200, "the embedder's own root\n"), "{}", answer.head);
}

#[test]
fn a_path_on_http_declines_answers_404() {
    let server = routes_server();
    let answer = Conn::open(server.local_addr()).exchange(request("GET", "/declined", "").as_bytes());
    assert_eq!(answer.status, 404, "{}", answer.head);
}

#[test]
fn head_gets_the_headers_and_content_length_of_get_without_the_body() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    // Pipelined: the GET's status line must follow the HEAD's head at once.
    conn.send(format!("{}{}", request("HEAD", "/custom", ""), request("GET", "/custom", "")).as_bytes());
    let head = conn.head_answer();
    let get = conn.answer();
    assert_eq!((head.status, get.status), (201, 201));
    assert_eq!(head.header("x-custom"), Some("chosen by the handler"));
    assert_eq!(head.header("content-length"), Some(get.body.len().to_string().as_str()));
    assert_eq!(head.header("content-length"), get.header("content-length"));
}

#[test]
fn healthz_and_readyz_answer_200_while_running() {
    let server = routes_server();
    let mut conn = Conn::open(server.local_addr());
    let health = conn.exchange(request("GET", "/healthz", "").as_bytes());
    assert_eq!((health.status, health.text()), (200, "ok\n"));
    let ready = conn.exchange(request("GET", "/readyz", "").as_bytes());
    assert_eq!((ready.status, ready.text()), (200, "ready\n"));
}

/// Holds its worker inside `on_http` for `/gate` until the test lets it go.
struct Gate {
    entered: mpsc::Sender<()>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Handler for Gate {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Err(Rejection::not_found())
    }

    fn on_http(&self, _server: &ServerHandle, request: &Request) -> Option<Response> {
        (request.path() == "/gate").then(|| {
            self.entered.send(()).expect("the test waits at the gate");
            let release = self.release.lock().expect("one request at the gate");
            release.recv_timeout(util::PATIENCE).expect("the test opens the gate");
            Response::text(200, "through the gate\n")
        })
    }
}

/// A shutdown stops the acceptor and drops idle HTTP connections at once,
/// so the only request that can still see `/readyz` after it began is one
/// the worker reads before it takes the shutdown in: here, one pipelined
/// behind a request its worker is busy with while the shutdown starts.
#[test]
fn readyz_answers_503_once_shutdown_has_begun() {
    let (entered, at_gate) = mpsc::channel();
    let (open_gate, release) = mpsc::channel();
    let server = util::start(config(), Gate { entered, release: Mutex::new(release) });
    let mut conn = Conn::open(server.local_addr());
    assert_eq!(conn.exchange(request("GET", "/readyz", "").as_bytes()).status, 200);
    conn.send(format!("{}{}", request("GET", "/gate", ""), request("GET", "/readyz", "")).as_bytes());
    at_gate.recv_timeout(util::PATIENCE).expect("the worker reached the gate");
    server.handle().shutdown();
    open_gate.send(()).expect("the worker waits at the gate");
    assert_eq!(conn.answer().text(), "through the gate\n");
    let ready = conn.answer();
    assert_eq!((ready.status, ready.text()), (503, "draining\n"), "{}", ready.head);
    conn.expect_eof();
    server.wait().expect("a clean stop");
}

#[test]
fn during_the_shutdown_grace_readyz_answers_503_to_new_connections_while_everything_else_is_served() {
    let config = util::with_config(config(), |c| c.shutdown_grace = Duration::from_millis(400));
    let server = util::start(config, fanout::EchoHandler);
    let (addr, handle) = (server.local_addr(), server.handle());
    handle.shutdown();
    let ready = Conn::open(addr).exchange(request("GET", "/readyz", "").as_bytes());
    assert_eq!((ready.status, ready.text()), (503, "draining\n"), "{}", ready.head);
    assert_eq!(Conn::open(addr).exchange(request("GET", "/healthz", "").as_bytes()).status, 200);
    // A load balancer that has not noticed yet still gets its clients served.
    let mut late = util::connect(addr, "/");
    util::wait_until("the late client", || handle.connection_count() == 1);
    assert_eq!(util::expect_close(&mut late), 1001, "after the grace, clients are drained as usual");
    server.wait().expect("a clean stop");
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener closes after the grace");
}

#[test]
fn methods_other_than_get_and_head_on_server_endpoints_get_405_with_allow() {
    let server = routes_server();
    for path in ["/metrics", "/healthz", "/readyz"] {
        let answer = Conn::open(server.local_addr()).exchange(&request_with_body("POST", path, b"x"));
        assert_eq!(answer.status, 405, "POST {path}: {}", answer.head);
        assert_eq!(answer.header("allow"), Some("GET, HEAD"), "POST {path}");
    }
}

#[test]
fn each_bad_request_gets_its_status_and_the_connection_closes() {
    let server = routes_server();
    let long_head = request("GET", "/", &format!("X-Long: {}\r\n", "a".repeat(9 * 1024)));
    let cases: [(&str, &[u8], u16); 4] = [
        ("a header line without a colon", b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n", 400),
        ("a head over max_handshake_size", long_head.as_bytes(), 431),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
        ("a gzip transfer coding", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ];
    for (what, bytes, status) in cases {
        let answer = exchange_and_close(server.local_addr(), bytes);
        assert_eq!(answer.status, status, "{what}: {}", answer.head);
        assert_eq!(answer.header("connection"), Some("close"), "{what}");
    }
    let stats = server.handle().stats();
    assert_eq!((stats.refused_handshakes, stats.http_requests), (4, 0));
}

#[test]
fn a_panicking_on_http_answers_500_and_the_server_goes_on() {
    let server = routes_server();
    let panicked = Conn::open(server.local_addr()).exchange(request("GET", "/panic", "").as_bytes());
    assert_eq!(panicked.status, 500, "{}", panicked.head);
    let next = Conn::open(server.local_addr()).exchange(request("GET", "/custom", "").as_bytes());
    assert_eq!(next.status, 201, "a new connection is served after the panic");
    assert_eq!(server.handle().stats().handler_panics, 1);
}

#[test]
fn the_chat_endpoint_answers_a_plain_get_with_426_and_upgrade_websocket() {
    let server = util::start(config(), ChatHandler::default());
    let answer = Conn::open(server.local_addr()).exchange(request("GET", "/chat", "").as_bytes());
    assert_eq!(answer.status, 426, "{}", answer.head);
    assert_eq!(answer.header("upgrade"), Some("websocket"));
}
