//! Verifies that a worker that dies despite the hook guards stops the whole server with `WorkerPanicked`: the other workers close their clients with 1001, pushes to the dead worker's connections answer `Closed`, and the port closes.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use fanout::{
    Accept, ConnId, Handler, Message, PushOutcome, Rejection, Request, RunningServer, ServerError, ServerHandle,
};

/// The one piece of user code the server runs outside a guard: a state's
/// `Drop`, when the server drops an upgrade `on_upgrade` accepted but the
/// connection budget refuses. This one panics when its upgrade asked for it.
struct Doomed {
    doom: bool,
}

impl Drop for Doomed {
    fn drop(&mut self) {
        if self.doom && !std::thread::panicking() {
            panic!("a connection state's Drop panicked");
        }
    }
}

/// Accepts every upgrade (`?doom` makes its state panic on drop) and
/// records the id of each connection it opens.
#[derive(Default)]
struct DoomHandler {
    opened: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for DoomHandler {
    type State = Doomed;

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<Doomed>, Rejection> {
        Ok(Accept::new(Doomed { doom: request.query_param("doom").is_some() }))
    }

    fn on_open(&self, _server: &ServerHandle, conn: ConnId, _state: &mut Doomed) {
        self.opened.lock().unwrap().push(conn);
    }
}

/// A server of `workers` workers whose connection budget is `budget`.
fn start(workers: usize, budget: usize) -> (RunningServer, Arc<Mutex<Vec<ConnId>>>) {
    let handler = DoomHandler::default();
    let opened = handler.opened.clone();
    let config = util::with_config(util::config(workers), |c| {
        c.max_connections = budget;
    });
    (util::start(config, handler), opened)
}

/// Opens a raw connection, checks that a push reaches it, and returns it
/// with the id the server gave it.
fn open(server: &RunningServer, opened: &Mutex<Vec<ConnId>>) -> (TcpStream, ConnId) {
    let mut stream = util::raw_upgrade(server.local_addr(), "/");
    let mut id = None;
    util::wait_until("on_open", || {
        id = opened.lock().unwrap().pop();
        id.is_some()
    });
    let id = id.expect("an id");
    assert_eq!(server.handle().push(id, &Message::text("alive")), PushOutcome::Queued);
    assert_eq!(util::read_frame(&mut stream).expect("the push").payload, b"alive");
    (stream, id)
}

/// Sends an upgrade whose accepted state panics on drop once the full
/// budget refuses it, and checks that it was not upgraded.
fn doom(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    stream.write_all(util::upgrade_request("/?doom").as_bytes()).expect("write request");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the doomed upgrade got neither an answer nor an end: {e}"),
    }
    assert!(!answer.starts_with(b"HTTP/1.1 101"), "{:?}", String::from_utf8_lossy(&answer));
}

/// Waits for the server on another thread; panics if it does not stop in time.
fn wait_for_stop(server: RunningServer) -> Result<(), ServerError> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(server.wait()));
    rx.recv_timeout(util::PATIENCE).expect("the server stopped after its worker died")
}

/// The index of the worker a `WorkerPanicked` error names.
fn dead_worker(error: &ServerError) -> usize {
    match error {
        ServerError::WorkerPanicked { index, message } => {
            assert!(message.contains("Drop panicked"), "{error}");
            *index
        }
        other => panic!("expected WorkerPanicked, got {other}"),
    }
}

/// What a raw client sees at the end: the code of the close frame it got
/// (after any data frames), or `None` when its socket simply ended.
fn ending(stream: &mut TcpStream) -> Option<u16> {
    let mut first = [0u8; 1];
    loop {
        match stream.peek(&mut first) {
            Ok(0) => return None,
            Ok(_) => match util::read_frame(stream).expect("a frame") {
                frame if frame.opcode == 0x8 => return Some(frame.close_code()),
                _ => continue,
            },
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("the connection neither closed nor ended: {e}"),
        }
    }
}

#[test]
fn a_dead_worker_stops_the_server_with_an_error_while_the_other_closes_its_clients_with_1001() {
    let (server, opened) = start(2, 2);
    let (addr, handle) = (server.local_addr(), server.handle());
    let first = open(&server, &opened);
    let second = open(&server, &opened);
    assert_ne!(first.1.worker(), second.1.worker(), "one connection per worker");

    // The budget is full: the third upgrade is accepted by on_upgrade, then
    // refused, and dropping its state kills whichever worker it landed on.
    doom(addr);
    util::wait_until("the server to stop itself", || handle.is_shutting_down());
    let (first_outcome, second_outcome) =
        (handle.push(first.1, &Message::text("late")), handle.push(second.1, &Message::text("late")));

    let error = wait_for_stop(server).expect_err("a dead worker is an error");
    let dead = dead_worker(&error);
    let ((mut on_dead, dead_id, dead_outcome), (mut on_live, _, _)) = if first.1.worker() == dead {
        ((first.0, first.1, first_outcome), (second.0, second.1, second_outcome))
    } else {
        ((second.0, second.1, second_outcome), (first.0, first.1, first_outcome))
    };
    // Pushed as soon as the server began to stop, and again once it had stopped.
    assert_eq!(dead_outcome, PushOutcome::Closed);
    assert_eq!(handle.push(dead_id, &Message::text("into the void")), PushOutcome::Closed);
    // The live worker stopped gracefully; the dead one's sockets just ended.
    assert_eq!(ending(&mut on_live), Some(1001));
    assert_eq!(ending(&mut on_dead), None);
    assert_eq!(TcpStream::connect(addr).map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionRefused));
}

#[test]
fn when_the_only_worker_dies_wait_returns_the_error_and_the_port_closes() {
    let (server, opened) = start(1, 1);
    let (addr, handle) = (server.local_addr(), server.handle());
    let (mut client, id) = open(&server, &opened);
    doom(addr);
    util::wait_until("the server to stop itself", || handle.is_shutting_down());
    assert_eq!(handle.push(id, &Message::text("into the void")), PushOutcome::Closed);
    let error = wait_for_stop(server).expect_err("a dead worker is an error");
    assert_eq!(dead_worker(&error), 0);
    assert_eq!(ending(&mut client), None);
    assert_eq!(TcpStream::connect(addr).map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionRefused));
    // Its connections died with it: no handle reports them any more.
    assert!(!handle.exists(id));
    assert_eq!((handle.connection_count(), handle.connections()), (0, vec![]));
}
