//! What a worker's connections run over: plain TCP, or TCP with a TLS
//! session. A worker is built for one of them (the server chooses at start),
//! so a plain server pays nothing for TLS, not even a branch or a byte per
//! connection.

use std::io::{self, Read};
use std::net::SocketAddr;

use mio::net::TcpStream;

use super::connection::Socket;
use crate::handle::Shared;
use crate::tls::stream::TlsStream;

/// A connection's byte stream, as the worker drives it.
pub(crate) trait Transport: Read + Socket + mio::event::Source + Send + 'static {
    /// Takes over an accepted socket; an error drops it.
    fn adopt(tcp: TcpStream, shared: &Shared) -> io::Result<Self>
    where
        Self: Sized;

    /// The peer's address.
    fn peer(&self) -> io::Result<SocketAddr>;

    /// Whether a read shorter than the buffer means the socket is drained
    /// (TCP), which saves the read that would say `WouldBlock`; TLS reads
    /// come a record at a time, so they are read until `WouldBlock`.
    const SHORT_READ_DRAINS: bool = true;

    /// True while a handshake of the transport's own is under way (TLS),
    /// which a worker budgets per turn.
    fn is_handshaking(&self) -> bool {
        false
    }
}

impl Transport for TcpStream {
    fn adopt(tcp: TcpStream, _shared: &Shared) -> io::Result<Self> {
        Ok(tcp)
    }

    fn peer(&self) -> io::Result<SocketAddr> {
        self.peer_addr()
    }
}

impl Socket for TlsStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        TlsStream::shutdown_write(self)
    }

    fn has_pending_output(&self) -> bool {
        TlsStream::has_pending_output(self)
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        TlsStream::flush_pending(self)
    }
}

impl Transport for TlsStream {
    const SHORT_READ_DRAINS: bool = false;

    fn adopt(tcp: TcpStream, shared: &Shared) -> io::Result<Self> {
        let context = shared.tls.as_ref().ok_or_else(|| io::Error::other("TLS worker without TLS settings"))?;
        let session = context.session().map_err(io::Error::other)?;
        Ok(TlsStream::new(tcp, session))
    }

    fn peer(&self) -> io::Result<SocketAddr> {
        self.peer_addr()
    }

    fn is_handshaking(&self) -> bool {
        TlsStream::is_handshaking(self)
    }
}
