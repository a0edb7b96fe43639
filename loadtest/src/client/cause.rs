//! Why a connection failed or ended, in words a person running the test can act on.

use std::io;

/// The reason a client connection did not open, or ended before the test did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The server's port refused the TCP connection.
    Refused,
    /// No TCP connection or no handshake answer within `--connect-timeout`.
    Timeout,
    /// The server answered the upgrade with this HTTP status instead of 101.
    Http(u16),
    /// Any other handshake problem (bad accept key, malformed response).
    Handshake(String),
    /// The TLS session failed (untrusted certificate, alert from the server, corrupt record),
    /// in words that say what to do about the usual cases.
    Tls(String),
    /// The server reset the TCP connection.
    Reset,
    /// The server closed the TCP connection without a close frame.
    Eof,
    /// The server sent a close frame (with this status code, if any).
    ServerClose(Option<u16>),
    /// The server broke the WebSocket framing rules.
    Protocol(String),
    /// The client hit its own open-file limit: not the server's fault.
    ClientFdLimit,
    /// The client ran out of local ports (often TIME_WAIT sockets from a previous run).
    ClientNoPorts,
    /// Anything else, with the OS message.
    Other(String),
}

impl Cause {
    /// Maps an I/O error from socket/connect/read/write onto a cause.
    pub fn from_io(e: &io::Error) -> Cause {
        if let Some(tls) = crate::tls::rustls_error(e) {
            return Cause::Tls(crate::tls::describe(tls));
        }
        match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => Cause::Refused,
            Some(libc::ECONNRESET) | Some(libc::EPIPE) | Some(libc::ECONNABORTED) => Cause::Reset,
            Some(libc::ETIMEDOUT) => Cause::Timeout,
            Some(libc::EMFILE) | Some(libc::ENFILE) => Cause::ClientFdLimit,
            Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => Cause::ClientNoPorts,
            _ => Cause::Other(e.to_string()),
        }
    }

    /// A short stable key used in reports and JSON.
    pub fn key(&self) -> String {
        match self {
            Cause::Refused => "refused".into(),
            Cause::Timeout => "timeout".into(),
            Cause::Http(code) => format!("http {code}"),
            Cause::Handshake(m) => format!("handshake: {m}"),
            Cause::Tls(m) => format!("tls: {m}"),
            Cause::Reset => "reset".into(),
            Cause::Eof => "closed by server (no close frame)".into(),
            Cause::ServerClose(Some(code)) => format!("closed by server (code {code})"),
            Cause::ServerClose(None) => "closed by server".into(),
            Cause::Protocol(m) => format!("protocol error: {m}"),
            Cause::ClientFdLimit => "client open-file limit (EMFILE)".into(),
            Cause::ClientNoPorts => "client out of local ports (EADDRNOTAVAIL)".into(),
            Cause::Other(m) => m.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_actionable_causes() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(Cause::from_io(&e(libc::ECONNREFUSED)), Cause::Refused);
        assert_eq!(Cause::from_io(&e(libc::EPIPE)), Cause::Reset);
        assert_eq!(Cause::from_io(&e(libc::EMFILE)), Cause::ClientFdLimit);
        assert_eq!(Cause::from_io(&e(libc::EADDRNOTAVAIL)), Cause::ClientNoPorts);
        assert_eq!(Cause::Http(404).key(), "http 404");
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let cause = Cause::from_io(&io::Error::new(io::ErrorKind::InvalidData, untrusted));
        assert!(matches!(cause, Cause::Tls(_)), "{cause:?}");
        assert!(cause.key().starts_with("tls: invalid peer certificate") && cause.key().contains("--ca-file"));
    }
}
