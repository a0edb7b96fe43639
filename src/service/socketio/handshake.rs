//! The Engine.IO handshake on `/socket.io/`: which requests open a
//! session, Engine.IO's refusals (HTTP 400 with its JSON error shape), and
//! the open packet with the session's heartbeat timings.
//!
//! This version serves Engine.IO v4 over HTTP long-polling, over a
//! WebSocket opened directly (`transports: ['websocket']`) and over the
//! upgrade from one to the other (a WebSocket naming a polling session's
//! `sid`); `EIO=3` is refused with the code the reference server gives for
//! a version it does not serve, so a client reports a clear error instead
//! of hanging.

use std::time::Duration;

use crate::config::Config;
use crate::handler::Rejection;
use crate::http::{Request, Response};
use crate::socketio::engine::{Handshake, Version};

use super::frames;

/// The path Socket.IO clients use unless told otherwise (`path` option).
const PATH: &str = "/socket.io/";

/// Engine.IO's heartbeat when the server sends no pings of its own
/// (`--ping-interval off`): the reference server's 25 s.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);

/// What the client is told to wait for a ping beyond the interval when the
/// server has no idle timeout to derive it from: the reference's 20 s.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// True for requests to Socket.IO's endpoint (with or without the final
/// slash, as the `path` option may be written).
pub(crate) fn is_endpoint(path: &str) -> bool {
    path == PATH || path == &PATH[..PATH.len() - 1]
}

/// Why a request to the endpoint opens no session: Engine.IO's error
/// codes, whose messages are the reference server's (clients match on the
/// code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// A transport this server does not serve (`polling`, for now) or none.
    #[error("Transport unknown")]
    TransportUnknown,
    /// A `sid`: the session it names does not exist (no polling sessions
    /// exist to upgrade from yet).
    #[error("Session ID unknown")]
    SessionUnknown,
    /// A plain request for the WebSocket transport, which needs an upgrade.
    #[error("Bad request")]
    BadRequest,
    /// `EIO` other than 4 (v3, Socket.IO 2.x, is not served yet), or none.
    #[error("Unsupported protocol version")]
    UnsupportedVersion,
}

impl Refusal {
    /// Engine.IO's number for the error.
    pub(crate) fn code(self) -> u8 {
        match self {
            Refusal::TransportUnknown => 0,
            Refusal::SessionUnknown => 1,
            Refusal::BadRequest => 3,
            Refusal::UnsupportedVersion => 5,
        }
    }

    /// `{"code":N,"message":"..."}`, as the reference server answers.
    pub(crate) fn body(self) -> String {
        serde_json::json!({ "code": self.code(), "message": self.to_string() }).to_string()
    }

    /// The refusal of an upgrade request.
    pub(crate) fn rejection(self) -> Rejection {
        Rejection::bad_request().header("Content-Type", "application/json").body(self.body())
    }

    /// The answer to a plain request.
    pub(crate) fn response(self) -> Response {
        Response::new(400).header("Content-Type", "application/json").body(self.body())
    }
}

/// What an upgrade request to the endpoint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SocketTarget {
    /// A new session over this WebSocket.
    New(Version),
    /// The upgrade of polling session `sid` to this WebSocket.
    Upgrade(String),
}

/// Checks an upgrade request to the endpoint: an Engine.IO v4 WebSocket,
/// new or upgrading a polling session, else the refusal the reference
/// server gives.
pub(crate) fn check_upgrade(request: &Request) -> Result<SocketTarget, Refusal> {
    check_version(request)?;
    match (request.query_param("transport").as_deref(), request.query_param("sid")) {
        (Some("websocket"), None) => Ok(SocketTarget::New(Version::Eio4)),
        (Some("websocket"), Some(sid)) => Ok(SocketTarget::Upgrade(sid.into_owned())),
        _ => Err(Refusal::TransportUnknown),
    }
}

/// What a plain (not upgrade) request to the endpoint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PollTarget {
    /// A new polling session (`GET` without `sid`).
    Open,
    /// A long poll of session `sid`.
    Poll(String),
    /// Packets for session `sid`.
    Post(String),
}

/// Checks a plain request to the endpoint: a v4 polling request, else the
/// refusal the reference server gives.
pub(crate) fn check_plain(request: &Request) -> Result<PollTarget, Refusal> {
    check_version(request)?;
    let sid = request.query_param("sid").map(|sid| sid.into_owned());
    match (request.query_param("transport").as_deref(), request.method(), sid) {
        // The WebSocket transport asked for without the upgrade.
        (Some("websocket"), _, _) => Err(Refusal::BadRequest),
        (Some("polling"), "GET", None) => Ok(PollTarget::Open),
        (Some("polling"), "GET", Some(sid)) => Ok(PollTarget::Poll(sid)),
        (Some("polling"), "POST", Some(sid)) => Ok(PollTarget::Post(sid)),
        (Some("polling"), _, _) => Err(Refusal::BadRequest),
        _ => Err(Refusal::TransportUnknown),
    }
}

fn check_version(request: &Request) -> Result<(), Refusal> {
    match request.query_param("EIO").and_then(|eio| Version::from_eio(&eio)) {
        Some(Version::Eio4) => Ok(()),
        _ => Err(Refusal::UnsupportedVersion),
    }
}

/// A session's heartbeat, derived from the server's own `--ping-interval`
/// and `--idle-timeout`: the server pings every `ping_interval`, and a
/// session silent for the idle timeout (a ping unanswered for
/// `ping_timeout` after its interval) is closed by the server's idle sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Between two pings.
    pub(crate) ping_interval: Duration,
    /// How long a ping may wait for its answer, as told to the client (it
    /// gives up on a server whose next ping is this late).
    pub(crate) ping_timeout: Duration,
}

impl Timing {
    /// The timings for a server running with `config`.
    pub(crate) fn of(config: &Config) -> Timing {
        let ping_interval = config.ping_interval.unwrap_or(DEFAULT_PING_INTERVAL);
        let ping_timeout = match config.idle_timeout {
            Some(idle) if idle > ping_interval => idle - ping_interval,
            _ => DEFAULT_PING_TIMEOUT,
        };
        Timing { ping_interval, ping_timeout }
    }
}

/// The open packet of session `sid`: the transports it may upgrade to
/// (`websocket` from polling, none from a WebSocket), the timings in
/// milliseconds, and `maxPayload`, the largest message or polling body
/// taken (past which a WebSocket is closed with 1009, a post refused 413).
pub(crate) fn open_packet(sid: &str, timing: Timing, max_payload: usize, upgrades: &[&str]) -> String {
    let handshake = Handshake {
        sid: sid.to_owned(),
        upgrades: upgrades.iter().map(|&u| u.to_owned()).collect(),
        ping_interval: millis(timing.ping_interval),
        ping_timeout: millis(timing.ping_timeout),
        max_payload: Some(max_payload as u64),
    };
    frames::engine_text(&handshake.to_packet(), Version::Eio4).unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    #[test]
    fn only_eio4_websockets_open_or_upgrade_a_session() {
        assert_eq!(check_upgrade(&get("/socket.io/?EIO=4&transport=websocket")), Ok(SocketTarget::New(Version::Eio4)));
        assert_eq!(
            check_upgrade(&get("/socket.io/?EIO=4&transport=websocket&sid=abc")),
            Ok(SocketTarget::Upgrade("abc".into()))
        );
        let refused = [
            ("/socket.io/?EIO=3&transport=websocket", Refusal::UnsupportedVersion),
            ("/socket.io/?transport=websocket", Refusal::UnsupportedVersion),
            ("/socket.io/?EIO=5&transport=websocket", Refusal::UnsupportedVersion),
            ("/socket.io/?EIO=4&transport=polling", Refusal::TransportUnknown),
            ("/socket.io/?EIO=4", Refusal::TransportUnknown),
        ];
        for (target, refusal) in refused {
            assert_eq!(check_upgrade(&get(target)), Err(refusal), "{target}");
        }
    }

    #[test]
    fn plain_requests_are_polls_or_get_engine_io_s_json_errors() {
        assert_eq!(check_plain(&get("/socket.io/?EIO=4&transport=polling&t=x")), Ok(PollTarget::Open));
        assert_eq!(check_plain(&get("/socket.io/?EIO=4&transport=polling&sid=s")), Ok(PollTarget::Poll("s".into())));
        let post = Request::new("POST", "/socket.io/?EIO=4&transport=polling&sid=s");
        assert_eq!(check_plain(&post), Ok(PollTarget::Post("s".into())));
        let answers = [
            ("/socket.io/?EIO=4&transport=xhr", r#"{"code":0,"message":"Transport unknown"}"#),
            ("/socket.io/?EIO=4&transport=websocket", r#"{"code":3,"message":"Bad request"}"#),
            ("/socket.io/?EIO=3&transport=polling", r#"{"code":5,"message":"Unsupported protocol version"}"#),
        ];
        for (target, body) in answers {
            let response = check_plain(&get(target)).expect_err(target).response();
            assert_eq!((response.status(), &response.body_bytes()[..]), (400, body.as_bytes()), "{target}");
        }
    }

    #[test]
    fn the_endpoint_is_socket_io_with_or_without_its_slash() {
        assert!(is_endpoint("/socket.io/") && is_endpoint("/socket.io"));
        assert!(!is_endpoint("/socket.io/x") && !is_endpoint("/"));
    }

    #[test]
    fn timings_follow_the_ping_interval_and_idle_timeout() {
        let mut config = Config {
            ping_interval: Some(Duration::from_millis(200)),
            idle_timeout: Some(Duration::from_millis(1000)),
            ..Config::default()
        };
        let timing = Timing::of(&config);
        assert_eq!(
            (timing.ping_interval, timing.ping_timeout),
            (config.ping_interval.unwrap(), Duration::from_millis(800))
        );
        config.ping_interval = None;
        config.idle_timeout = None;
        assert_eq!(
            Timing::of(&config),
            Timing { ping_interval: DEFAULT_PING_INTERVAL, ping_timeout: DEFAULT_PING_TIMEOUT }
        );
        let open = open_packet("abc", Timing::of(&config), 1000, &[]);
        assert_eq!(open, r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#);
        let open = open_packet("abc", Timing::of(&config), 1000, &["websocket"]);
        assert!(open.contains(r#""upgrades":["websocket"]"#), "{open}");
    }
}
