//! One TLS connection driven by a worker's loop: a non-blocking TCP socket
//! and its rustls session, read and written as one stream.
//!
//! Reads decrypt what the socket has (answering handshake messages as they
//! come); writes hand plaintext to rustls, which encrypts it, and push the
//! records to the socket. rustls's buffers are bounded, so a slow reader
//! still backs up into the worker's own send queue (where its bound and
//! slow-consumer policy apply), not into TLS. Records the socket did not
//! take wait in rustls: [`TlsStream::has_pending_output`] tells the worker to
//! flush again once the socket is writable.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Plaintext and records rustls may buffer for sending: a few records.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// What a plain-HTTP client gets on the TLS port (it would otherwise wait
/// for a handshake reply that never makes sense to it).
const PLAIN_HTTP_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 56\r\n\
Connection: close\r\n\r\nThis port speaks TLS: use https:// or wss:// to reach it\n";

/// A TCP socket with its TLS session.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: Box<ServerConnection>,
    /// The first byte has not been looked at yet.
    fresh: bool,
}

impl TlsStream {
    /// Wraps an accepted socket in a new session.
    pub(crate) fn new(tcp: TcpStream, mut tls: ServerConnection) -> TlsStream {
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        TlsStream { tcp, tls: Box::new(tls), fresh: true }
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }

    /// True until the handshake is done.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Records wait for the socket to take them.
    pub(crate) fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes the records that wait; `WouldBlock` when the socket is full.
    pub(crate) fn flush_pending(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// On the first read: a client that speaks plain HTTP gets a plain
    /// answer saying so, and the connection ends.
    fn refuse_plain_http(&mut self) -> io::Result<()> {
        self.fresh = false;
        let mut first = [0u8; 1];
        match self.tcp.peek(&mut first) {
            // 22: a TLS handshake record. Anything that starts like an HTTP
            // method is a plain-HTTP client.
            Ok(1) if first[0].is_ascii_uppercase() => {
                let _ = self.tcp.write(PLAIN_HTTP_REFUSAL);
                let _ = self.tcp.shutdown(std::net::Shutdown::Write);
                Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP on the TLS port"))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.fresh = true;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl Read for TlsStream {
    /// Decrypted bytes. Unlike a TCP read, a short count does not mean the
    /// socket is drained (rustls takes ciphertext a few KiB at a time and
    /// holds at most 16 KiB of plaintext): callers read until `WouldBlock`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fresh {
            self.refuse_plain_http()?;
        }
        let mut eof = false;
        let mut drained = false;
        // Pull ciphertext until there is plaintext enough for `buf`, the
        // socket is drained, or rustls's plaintext buffer is full.
        loop {
            let state = self.tls.process_new_packets().map_err(|e| {
                // Send the alert that says why, if the socket takes it.
                let _ = self.flush_pending();
                io::Error::new(io::ErrorKind::InvalidData, e)
            })?;
            // Handshake replies go out now; if the socket is full they wait
            // for the next writable event.
            match self.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if state.plaintext_bytes_to_read() >= buf.len() || state.peer_has_closed() || !self.tls.wants_read() {
                break;
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match self.tls.reader().read(buf) {
            Ok(0) => Ok(0),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !drained => {
                // Nothing decrypted yet but the socket may hold more: say so
                // as an interrupted read, which callers retry.
                Err(io::ErrorKind::Interrupted.into())
            }
            // The peer closed without close_notify: an end like any other.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // A short count must mean what it means for TCP, that the kernel is
        // full (a writable edge will come): so feed rustls until the kernel
        // refuses, not just until rustls's own buffer is full.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut rest: Vec<IoSlice<'_>> = bufs.to_vec();
        let mut slices = &mut rest[..];
        let mut taken = 0;
        while taken < total {
            match self.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => break,
                Err(e) => return Err(e),
            }
            let n = self.tls.writer().write_vectored(slices)?;
            if n == 0 {
                break;
            }
            taken += n;
            IoSlice::advance_slices(&mut slices, n);
        }
        match self.flush_pending() {
            Ok(()) => Ok(taken),
            // Taken and encrypted; the records wait for the kernel.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()
    }
}

impl TlsStream {
    /// Ends the TLS session (close_notify, if the socket takes it) and sends FIN.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        self.tls.send_close_notify();
        let _ = self.flush_pending();
        self.tcp.shutdown(std::net::Shutdown::Write)
    }
}

impl mio::event::Source for TlsStream {
    fn register(&mut self, registry: &mio::Registry, token: mio::Token, interests: mio::Interest) -> io::Result<()> {
        self.tcp.register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &mio::Registry, token: mio::Token, interests: mio::Interest) -> io::Result<()> {
        self.tcp.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}
