//! The application hooks a server calls: swoole's onOpen / onMessage /
//! onClose, plus the upgrade decision and plain HTTP requests.

use crate::channels::ChannelChange;
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::http::{Request, Response};
use crate::message::Message;
use crate::metrics::MetricsOut;

/// An accepted upgrade: the connection's state, and the subprotocol to
/// confirm. Built by [`Handler::on_upgrade`].
#[derive(Debug)]
pub struct Accept<S> {
    pub(crate) state: S,
    pub(crate) protocol: ProtocolChoice,
    pub(crate) broadcasts: bool,
}

/// Which subprotocol an accepted upgrade confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolChoice {
    /// The first one the client offered that the server is configured with.
    Configured,
    /// Exactly this one (or none); one the client did not offer is left out
    /// of the response (RFC 6455 section 4.2.2).
    Exactly(Option<String>),
}

impl<S> Accept<S> {
    /// Accepts the upgrade with `state`, which the connection's hooks then
    /// receive. The subprotocol confirmed is the first one the client
    /// offered that is in `Config::subprotocols`, if any.
    pub fn new(state: S) -> Self {
        Accept { state, protocol: ProtocolChoice::Configured, broadcasts: true }
    }

    /// Keeps the connection out of whole-server broadcasts
    /// ([`ServerHandle::broadcast`] and its variants): it receives only
    /// pushes and what is published to its channels. For clients that
    /// speak another protocol on the same server (a Pusher client, a chat
    /// room member), to which the chat's raw broadcasts mean nothing.
    pub fn without_broadcasts(mut self) -> Self {
        self.broadcasts = false;
        self
    }

    /// Confirms `protocol` instead (or no subprotocol with `None`). A
    /// protocol the client did not offer is never confirmed.
    pub fn with_protocol(mut self, protocol: Option<&str>) -> Self {
        self.protocol = ProtocolChoice::Exactly(protocol.map(str::to_owned));
        self
    }
}

/// A refused upgrade: always a 4xx or 5xx response, with optional headers
/// (`WWW-Authenticate`, `Retry-After`, ...) and body.
#[derive(Debug, Clone)]
pub struct Rejection {
    response: Response,
}

impl Rejection {
    /// A refusal with `status`. Only 400–599 can refuse an upgrade: any
    /// other status is answered as 500 (and logged), never as a success.
    pub fn new(status: u16) -> Self {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            log::error!("an upgrade was rejected with status {status}, which is not 4xx or 5xx: answering 500");
            500
        };
        Rejection { response: Response::new(status) }
    }

    /// 400 Bad Request.
    pub fn bad_request() -> Self {
        Rejection::new(400)
    }

    /// 401 Unauthorized, with the `WWW-Authenticate` challenge HTTP requires.
    pub fn unauthorized(challenge: &str) -> Self {
        Rejection::new(401).header("WWW-Authenticate", challenge)
    }

    /// 403 Forbidden.
    pub fn forbidden() -> Self {
        Rejection::new(403)
    }

    /// 404 Not Found: no WebSocket endpoint at this path.
    pub fn not_found() -> Self {
        Rejection::new(404).body("no WebSocket endpoint at this path\n")
    }

    /// Adds a response header (names that are not HTTP tokens and values
    /// with CR, LF or NUL are left out when the response is written).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.response = self.response.header(name, value);
        self
    }

    /// Sets the response body.
    pub fn body(mut self, body: impl Into<bytes::Bytes>) -> Self {
        self.response = self.response.body(body);
        self
    }

    /// The status sent: always 400–599.
    pub fn status(&self) -> u16 {
        self.response.status()
    }

    /// The response sent back.
    pub(crate) fn into_response(self) -> Response {
        self.response
    }
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
    /// `disconnect`, a panicking hook, or shutdown.
    Server,
    /// The TCP connection was lost (reset, EOF without close, write error).
    Transport,
}

/// Application logic run by every worker. One value is shared by all
/// workers, so hooks take `&self`; a hook runs on the worker that owns the
/// connection and must not block (queue work to another thread instead).
///
/// Each connection carries a [`Handler::State`] created when its upgrade
/// is accepted and owned by its worker: hooks get it by reference, and
/// [`Handler::on_close`] gets it back by value. No shared map from
/// connection id to state is needed.
///
/// Hooks may call any [`ServerHandle`] method, including pushes to the
/// connection being handled: from a hook such calls only queue work and
/// never wait. A hook that panics closes only its own connection (with
/// 1011); the worker and every other connection go on.
pub trait Handler: Send + Sync + 'static {
    /// What the application keeps per connection (`()` for nothing).
    type State: Send + 'static;

    /// Decides an upgrade request before the 101 response is sent:
    /// accept it with the connection's state, or refuse it with a 4xx/5xx.
    /// The request carries the peer's address (and, with
    /// `Config::trust_proxy`, the client's from `X-Forwarded-For`).
    fn on_upgrade(&self, server: &ServerHandle, request: &Request) -> Result<Accept<Self::State>, Rejection>;

    /// Called once when the server starts, before any connection is
    /// accepted (swoole's `onStart`): start here what the application runs
    /// beside the workers. A panic is logged and the server goes on.
    fn on_start(&self, server: &ServerHandle) {
        let _ = server;
    }

    /// Called once the connection is open and counted; pushes made here are
    /// delivered before anything else sent to this connection afterwards.
    fn on_open(&self, server: &ServerHandle, conn: ConnId, state: &mut Self::State) {
        let _ = (server, conn, state);
    }

    /// Called for every complete message (fragments already reassembled).
    fn on_message(&self, server: &ServerHandle, conn: ConnId, state: &mut Self::State, message: Message) {
        let _ = (server, conn, state, message);
    }

    /// Called exactly once for every connection that reached `on_open`,
    /// whatever ended it; the id is already gone from the server.
    fn on_close(&self, server: &ServerHandle, conn: ConnId, state: Self::State, close: &CloseInfo) {
        let _ = (server, conn, state, close);
    }

    /// The close code and reason sent to a connection closed for silence
    /// (`Config::idle_timeout`): 1001 "idle timeout" unless the connection's
    /// protocol names its own (Pusher clients expect 4201, which tells them
    /// to reconnect at once).
    fn idle_close(&self, state: &Self::State) -> (u16, &'static str) {
        let _ = state;
        (crate::ws::close::codes::GOING_AWAY, "idle timeout")
    }

    /// Called when a channel's occupancy changes over the whole server: its
    /// first subscriber joined, or its last one left (unsubscribed or
    /// closed). Runs on the worker where the change happened, once per
    /// change; must not block (a webhook sender queues, never posts here).
    fn on_channel(&self, server: &ServerHandle, channel: &str, change: ChannelChange) {
        let _ = (server, channel, change);
    }

    /// Adds the application's figures to `GET /metrics` (called on the
    /// worker serving the scrape; must not block).
    fn metrics(&self, server: &ServerHandle, out: &mut MetricsOut) {
        let _ = (server, out);
    }

    /// Answers a plain HTTP request (not an upgrade) on the server's port.
    /// `None` leaves it to the server: `/` answers with the server's name,
    /// version and connection count, anything else 404. The server answers
    /// `/metrics`, `/healthz` and `/readyz` itself, before this is called.
    fn on_http(&self, server: &ServerHandle, request: &Request) -> Option<Response> {
        let _ = (server, request);
        None
    }
}
