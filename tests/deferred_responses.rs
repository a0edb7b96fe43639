//! Verifies deferred HTTP responses through real sockets: `on_http` answers
//! later from another thread while the worker serves other connections,
//! pipelined requests wait their turn, an answer given before the worker saw
//! the placeholder still arrives, a dropped responder answers 500, a late
//! one 504, and a connection that leaves first costs nothing.

mod http_client;
mod util;

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use fanout::{Accept, Handler, Rejection, Request, Responder, Response, ServerHandle};
use http_client::{request, Conn};

/// `/later?MS`: answered by a thread after MS milliseconds; `/parked`:
/// its responder is handed to the test; `/dropped`: its responder dropped
/// at once; `/early`: answered before `on_http` returns; `/now`: at once.
struct Deferring {
    parked: Mutex<mpsc::Sender<Responder>>,
}

impl Handler for Deferring {
    type State = ();

    fn on_upgrade(&self, _server: &ServerHandle, _request: &Request) -> Result<Accept<()>, Rejection> {
        Err(Rejection::not_found())
    }

    fn on_http(&self, server: &ServerHandle, request: &Request) -> Option<Response> {
        if request.path() == "/now" {
            return Some(Response::text(200, "now"));
        }
        let (placeholder, responder) = server.defer_response();
        match request.path() {
            "/later" => {
                let ms: u64 = request.query().and_then(|q| q.parse().ok()).unwrap_or(0);
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(ms));
                    responder.send(Response::text(200, format!("after {ms} ms")));
                });
            }
            "/parked" => self.parked.lock().unwrap().send(responder).unwrap(),
            "/early" => responder.send(Response::text(202, "before the worker looked")),
            _ => drop(responder), // `/dropped`
        }
        Some(placeholder)
    }
}

fn start(handshake_timeout: Duration) -> (fanout::RunningServer, mpsc::Receiver<Responder>) {
    let (tx, rx) = mpsc::channel();
    let config = util::with_config(util::config(1), |c| c.handshake_timeout = handshake_timeout);
    (util::start(config, Deferring { parked: Mutex::new(tx) }), rx)
}

#[test]
fn a_deferred_answer_arrives_and_pipelined_requests_wait_for_it_while_others_are_served() {
    let (server, _) = start(Duration::from_secs(10));
    let addr = server.local_addr();
    let mut slow = Conn::open(addr);
    let mut burst = request("GET", "/later?300", "").into_bytes();
    burst.extend(request("GET", "/now", "").bytes());
    slow.send(&burst);
    // The worker is free meanwhile: another connection is answered at once.
    let started = Instant::now();
    let answer = Conn::open(addr).exchange(request("GET", "/now", "").as_bytes());
    assert_eq!(answer.text(), "now");
    assert!(started.elapsed() < Duration::from_millis(250), "the worker waited for the deferred answer");
    let first = slow.answer();
    assert_eq!((first.status, first.text()), (200, "after 300 ms"));
    assert_eq!(slow.answer().text(), "now", "the pipelined request comes after, in order");
    server.shutdown().unwrap();
}

#[test]
fn an_answer_given_before_the_worker_saw_the_placeholder_arrives() {
    let (server, _) = start(Duration::from_secs(10));
    let answer = Conn::open(server.local_addr()).exchange(request("GET", "/early", "").as_bytes());
    assert_eq!((answer.status, answer.text()), (202, "before the worker looked"));
    server.shutdown().unwrap();
}

#[test]
fn a_dropped_responder_answers_500_and_the_connection_goes_on() {
    let (server, _) = start(Duration::from_secs(10));
    let mut conn = Conn::open(server.local_addr());
    assert_eq!(conn.exchange(request("GET", "/dropped", "").as_bytes()).status, 500);
    assert_eq!(conn.exchange(request("GET", "/now", "").as_bytes()).text(), "now");
    server.shutdown().unwrap();
}

#[test]
fn an_answer_not_given_within_the_handshake_timeout_is_504_and_a_later_one_goes_nowhere() {
    let (server, parked) = start(Duration::from_millis(300));
    let mut conn = Conn::open(server.local_addr());
    let started = Instant::now();
    let answer = conn.exchange(request("GET", "/parked", "").as_bytes());
    assert_eq!(answer.status, 504, "{}", answer.head);
    assert!(started.elapsed() >= Duration::from_millis(250), "answered 504 after {:?}", started.elapsed());
    conn.expect_eof();
    let responder = parked.recv().expect("the parked responder");
    responder.send(Response::text(200, "too late"));
    // The server still serves.
    assert_eq!(Conn::open(server.local_addr()).exchange(request("GET", "/now", "").as_bytes()).text(), "now");
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_leaves_before_its_answer_costs_nothing() {
    let (server, parked) = start(Duration::from_secs(10));
    let mut conn = Conn::open(server.local_addr());
    conn.send(request("GET", "/parked", "").as_bytes());
    let responder = parked.recv().expect("the parked responder");
    drop(conn);
    thread::sleep(Duration::from_millis(100));
    responder.send(Response::text(200, "nobody is there"));
    assert_eq!(Conn::open(server.local_addr()).exchange(request("GET", "/now", "").as_bytes()).text(), "now");
    server.shutdown().unwrap();
}
