//! [`TlsClientStream`]: one non-blocking TCP socket and its rustls client session, read and
//! written as one stream by the event loops.
//!
//! The loops rely on two promises of a plain socket, and this type keeps both:
//! - A read that returns less than the buffer means the socket had nothing more (the loops then
//!   wait for the next readable edge instead of trying again). rustls reads at most a few KiB
//!   from the socket at a time, so a read goes on pulling records until the socket would block or
//!   the caller's buffer is full.
//! - A write that takes less than it was given, or `WouldBlock`, means the kernel refused bytes,
//!   so a writable edge will come. Records the kernel did not take wait in rustls and go out
//!   with the next write or `flush`, which the loops call on that edge. The one exception is
//!   before the handshake ends: rustls holds plaintext until the session keys exist, and refuses
//!   more once its buffer is full; the handshake's own reads then let the loops write again.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ClientConnection;

/// A TCP socket with its TLS session.
pub struct TlsClientStream {
    tcp: TcpStream,
    tls: ClientConnection,
}

impl std::fmt::Debug for TlsClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientStream").field("tcp", &self.tcp).finish_non_exhaustive()
    }
}

impl TlsClientStream {
    /// Wraps a socket (connected or still connecting) in `tls`, a new session whose ClientHello
    /// waits to be written.
    pub fn new(tcp: TcpStream, tls: ClientConnection) -> TlsClientStream {
        TlsClientStream { tcp, tls }
    }

    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The socket, mutably (for registration with mio).
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// The socket, without the session.
    pub fn into_tcp(self) -> TcpStream {
        self.tcp
    }

    /// Writes the records that wait; `WouldBlock` when the socket is full.
    fn flush_pending(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsClientStream {
    /// Plaintext into `buf`: `Ok(0)` at the end of the session (close_notify, or the server
    /// closing TCP without one), `WouldBlock` when nothing was decrypted before the socket ran
    /// dry. A TLS failure is an `InvalidData` error holding the `rustls::Error`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                return Ok(filled);
            }
            match self.tls.reader().read(&mut buf[filled..]) {
                // close_notify: no more data will come.
                Ok(0) => return Ok(filled),
                // rustls hands out all it holds (up to the room left), so it is now empty.
                Ok(n) => filled += n,
                // Nothing decrypted yet: read more records.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The server closed TCP without close_notify: an end like any other.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            if filled == buf.len() {
                return Ok(filled);
            }
            match self.tls.read_tls(&mut self.tcp) {
                // EOF: rustls reports it (above) once what it holds was read.
                Ok(0) => return Ok(filled),
                Ok(_) => {}
                // The socket is empty: what was decrypted goes up now.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Send the alert that says why, if the socket takes it.
                let _ = self.flush_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages (and, once it ends, the plaintext written during it) go out now;
            // if the socket is full they wait for the writable edge.
            match self.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsClientStream {
    /// Encrypts as much of `buf` as the socket takes: rustls is fed until the kernel refuses
    /// bytes, not just until rustls's own buffer is full, so a short count means what it means
    /// for TCP. Bytes counted as written may still wait in rustls as records (see `flush`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut taken = 0;
        while taken < buf.len() {
            match self.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => return Ok(taken),
                Err(e) => return Err(e),
            }
            let n = self.tls.writer().write(&buf[taken..])?;
            if n == 0 {
                // Only while handshaking, with rustls's plaintext buffer full.
                break;
            }
            taken += n;
        }
        match self.flush_pending() {
            Ok(()) if taken > 0 => Ok(taken),
            // Taken and encrypted; the records wait for the kernel.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => Ok(taken),
            // Nothing taken: `WouldBlock`, never `Ok(0)`, which callers read as a dead socket.
            Ok(()) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        }
    }

    /// Writes the records that wait; `WouldBlock` when the socket is still full.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::tls::TlsClient;
    use crate::url::WsUrl;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/");

    /// A blocking rustls server on a thread: it answers a 5-byte hello, and then does what
    /// `script` says with its end of the session.
    fn server(
        script: impl FnOnce(&mut rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>) + Send + 'static,
    ) -> TlsClientStream {
        let path = |name: &str| format!("{FIXTURES}{name}");
        let chain = CertificateDer::pem_file_iter(path("server1.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(path("server1-key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(Arc::new(config)).unwrap(), socket);
            let mut hello = [0u8; 5];
            tls.read_exact(&mut hello).unwrap();
            script(&mut tls);
        });
        let url = WsUrl::parse(&format!("wss://{addr}/")).unwrap();
        let ca = std::path::PathBuf::from(format!("{FIXTURES}ca.pem"));
        let client = TlsClient::from_flags(&url, Some(&ca), false).unwrap().unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut stream = TlsClientStream::new(TcpStream::from_std(tcp), client.session().unwrap());
        // Handed to the session during its handshake; sent once the handshake is done.
        assert_eq!(stream.write(b"hello").unwrap(), 5);
        stream
    }

    /// Drives the client's side of the handshake (reads answer it) until it is done.
    fn finish_handshake(stream: &mut TlsClientStream) {
        let mut buf = [0u8; 1024];
        let give_up = Instant::now() + Duration::from_secs(5);
        while stream.tls.is_handshaking() {
            assert!(Instant::now() < give_up, "no handshake");
            match stream.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                other => panic!("nothing to read during the handshake: {other:?}"),
            }
        }
    }

    /// Retries `op` while it would block, for five seconds at most.
    fn until_ready<T>(mut op: impl FnMut() -> io::Result<T>) -> T {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                other => return other.unwrap(),
            }
        }
    }

    #[test]
    fn a_short_read_means_the_socket_is_drained() {
        const TOTAL: usize = 45_000;
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (sent_tx, sent_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut stream = server(move |tls| {
            let _ = go_rx.recv();
            tls.write_all(&vec![7u8; TOTAL]).unwrap();
            tls.flush().unwrap();
            sent_tx.send(()).unwrap();
            let _ = done_rx.recv();
        });
        finish_handshake(&mut stream);
        go_tx.send(()).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        sent_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut got = until_ready(|| stream.read(&mut buf));
        // All of it waits in the kernel: rustls reads 4 KiB a time from the socket, but every
        // read fills the buffer while data is there, and only the last one is short.
        let mut reads = vec![got];
        while got == buf.len() {
            got = stream.read(&mut buf).unwrap();
            reads.push(got);
        }
        assert_eq!(reads.iter().sum::<usize>(), TOTAL, "{reads:?}");
        assert_eq!(reads, [16_384, 16_384, 12_232]);
        assert_eq!(stream.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        done_tx.send(()).unwrap();
    }

    #[test]
    fn records_the_kernel_refused_go_out_on_flush() {
        // Far more than the kernel buffers hold while the server reads nothing (a receive buffer
        // only grows as its reader reads; the send buffer stops at tcp_wmem's 4 MiB maximum).
        const TOTAL: usize = 32 << 20;
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (got_tx, got_rx) = mpsc::channel();
        let mut stream = server(move |tls| {
            // Read nothing until the client's socket is full.
            let _ = go_rx.recv();
            let mut all = vec![0u8; TOTAL];
            tls.read_exact(&mut all).unwrap();
            got_tx.send(all.iter().all(|&b| b == 9)).unwrap();
        });
        // Before it is done, rustls holds plaintext instead of writing it.
        finish_handshake(&mut stream);
        let data = vec![9u8; TOTAL];
        let mut off = 0;
        loop {
            match stream.write(&data[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(off < TOTAL, "the kernel took 32 MiB without the server reading");
        assert!(stream.tls.wants_write(), "the records the kernel refused wait in rustls");
        go_tx.send(()).unwrap();
        while off < TOTAL {
            off += until_ready(|| stream.write(&data[off..]));
        }
        // Everything was taken; what the kernel refused last waits in rustls until flushed.
        until_ready(|| stream.flush());
        assert!(got_rx.recv_timeout(Duration::from_secs(5)).unwrap(), "the server got every byte");
    }
}
