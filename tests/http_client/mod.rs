//! A plain HTTP/1.1 client on one raw TCP stream, for the tests of HTTP on
//! the WebSocket port: write requests (pipelined or not), read the answers
//! one by one, framed by their `Content-Length`, and check the server's EOF.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::util;

/// One response as read from the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The status line and header fields, without the empty line.
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is UTF-8")
    }
}

/// A client connection; reads are buffered, so answers must be read through it.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `addr`; every read gives up after `util::PATIENCE`.
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::over(TcpStream::connect(addr).expect("tcp connect"))
    }

    /// Wraps a stream connected by the caller.
    pub fn over(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn { reader: BufReader::with_capacity(64 * 1024, stream) }
    }

    /// The stream, for a second handle (`try_clone`) or socket options.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Writes `bytes` in one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write a request");
    }

    /// Reads the next answer, body included.
    pub fn answer(&mut self) -> Answer {
        self.read_answer(false)
    }

    /// Reads the next answer to a HEAD request: its head only, whatever
    /// its `Content-Length` says.
    pub fn head_answer(&mut self) -> Answer {
        self.read_answer(true)
    }

    fn read_answer(&mut self, head_only: bool) -> Answer {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("the server closed before a complete answer: {head:?}"),
                Ok(_) => {}
                Err(e) => panic!("no complete answer ({e}): {head:?}"),
            }
            if line == "\r\n" {
                break;
            }
            assert!(line.ends_with("\r\n"), "a head line without CRLF: {line:?}");
            head.push_str(&line);
        }
        let head = head.trim_end().to_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP/1.1 status line in {head:?}"));
        let mut answer = Answer { status, head, body: Vec::new() };
        if !head_only {
            let length = answer.header("content-length").map_or(0, |v| v.parse().expect("a numeric Content-Length"));
            answer.body = vec![0; length];
            self.reader.read_exact(&mut answer.body).expect("the whole body");
        }
        answer
    }

    /// Sends `request` and reads its answer.
    pub fn exchange(&mut self, request: &[u8]) -> Answer {
        self.send(request);
        self.answer()
    }

    /// Checks that the server closes the connection with nothing more to
    /// say; fails if it is still open after `util::PATIENCE`.
    pub fn expect_eof(mut self) {
        let mut rest = Vec::new();
        if let Err(e) = self.reader.read_to_end(&mut rest) {
            panic!("the server kept the connection open ({e}) after {:?}", String::from_utf8_lossy(&rest));
        }
        assert!(rest.is_empty(), "bytes after the last answer: {:?}", String::from_utf8_lossy(&rest));
    }
}

/// A request with no body: `method target HTTP/1.1`, a Host, and `extra`
/// header lines (each ending in CRLF).
pub fn request(method: &str, target: &str, extra: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")
}

/// A request with `body`, framed by `Content-Length`.
pub fn request_with_body(method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = request(method, target, &format!("Content-Length: {}\r\n", body.len())).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `request` on a fresh connection, reads one answer and checks that
/// the server then closes the connection.
pub fn exchange_and_close(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut conn = Conn::open(addr);
    let answer = conn.exchange(request);
    conn.expect_eof();
    answer
}
