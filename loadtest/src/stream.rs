//! [`Stream`]: a client socket, plain TCP or TLS over TCP, as the event loops drive it. Plain
//! sockets stay bare `mio::net::TcpStream`s: what `ws://` costs on top of before is the
//! match on the variant. The TLS session is boxed so a plain connection's record stays small.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::tls::stream::TlsClientStream;
use crate::tls::TlsClient;

/// A plain or TLS client socket.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://`.
    Tls(Box<TlsClientStream>),
}

impl Stream {
    /// Wraps a socket whose connect was started: plain without `tls`, else in a new session
    /// (which fails only when rustls refuses the settings: an `InvalidData` error holding it).
    pub fn new(tcp: TcpStream, tls: Option<&TlsClient>) -> io::Result<Stream> {
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => {
                let session = tls.session().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok(Stream::Tls(Box::new(TlsClientStream::new(tcp, session))))
            }
        }
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.tcp(),
        }
    }

    /// The TCP socket underneath, without any session.
    pub fn into_tcp(self) -> TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.into_tcp(),
        }
    }

    /// Registers the socket with `registry`.
    pub fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        registry.register(self.tcp_mut(), token, interests)
    }

    /// Removes the socket from `registry`.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(self.tcp_mut())
    }

    fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.tcp_mut(),
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    /// Writes what a TLS session encrypted but the socket did not take yet (`WouldBlock` while
    /// it still does not); nothing for a plain socket, which keeps no bytes of its own.
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(s) => s.flush(),
        }
    }
}
