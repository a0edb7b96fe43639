//! The application hooks a server calls: swoole's onOpen / onMessage / onClose.

use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::message::Message;
use crate::ws::handshake::Request;

/// The answer to an upgrade request, decided by [`Handler::on_upgrade`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// Complete the upgrade; `protocol` is echoed as `Sec-WebSocket-Protocol`.
    Accept {
        /// The subprotocol to confirm, if any; one the client did not offer is
        /// left out of the response (RFC 6455 4.2.2).
        protocol: Option<String>,
    },
    /// Refuse with an HTTP status (404 for an unknown path, 403, ...).
    Reject {
        /// The HTTP status code sent back.
        status: u16,
    },
}

/// Why and how a connection ended, as passed to [`Handler::on_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code sent or received (1006 when the TCP connection simply
    /// went away without a close frame).
    pub code: u16,
    /// The reason text, possibly empty.
    pub reason: String,
    /// Who ended the connection.
    pub initiator: CloseInitiator,
}

/// Which side started the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseInitiator {
    /// The client sent a close frame.
    Client,
    /// The server closed it: protocol error, timeout, slow consumer,
    /// `disconnect`, or shutdown.
    Server,
    /// The TCP connection was lost (reset, EOF without close, write error).
    Transport,
}

/// Application logic run by every worker. One value is shared by all
/// workers, so hooks take `&self`; a hook runs on the worker that owns the
/// connection and must not block (queue work to another thread instead).
///
/// Hooks may call any [`ServerHandle`] method, including pushes to the
/// connection being handled: such calls only queue work and never wait.
pub trait Handler: Send + Sync + 'static {
    /// True when `path` is a WebSocket endpoint of this application. Upgrades
    /// to other paths get HTTP 404, and so do plain GETs (except `/`, which
    /// answers with the server's name, version and connection count).
    fn accepts_path(&self, path: &str) -> bool {
        let _ = path;
        true
    }

    /// Decides an upgrade before the 101 response is sent. The default
    /// accepts every path and echoes the first offered subprotocol that the
    /// server is configured with.
    fn on_upgrade(&self, request: &Request, configured_protocol: Option<&str>) -> Upgrade {
        let _ = request;
        Upgrade::Accept { protocol: configured_protocol.map(str::to_owned) }
    }

    /// Called once the connection is open and counted; pushes made here are
    /// delivered before anything else sent to this connection afterwards.
    fn on_open(&self, server: &ServerHandle, conn: ConnId, request: &Request) {
        let _ = (server, conn, request);
    }

    /// Called for every complete message (fragments already reassembled).
    fn on_message(&self, server: &ServerHandle, conn: ConnId, message: Message) {
        let _ = (server, conn, message);
    }

    /// Called exactly once for every connection that reached `on_open`,
    /// whatever ended it; the id is already gone from the server.
    fn on_close(&self, server: &ServerHandle, conn: ConnId, close: &CloseInfo) {
        let _ = (server, conn, close);
    }
}
