//! Parsing of the `--url` flag: only plain `ws://host:port/path` is supported.

use std::net::{SocketAddr, ToSocketAddrs};

use thiserror::Error;

/// Why a `--url` value cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    /// The scheme is `wss://`: the client has no TLS layer.
    #[error("TLS not supported yet: use a ws:// URL (got {0})")]
    Tls(String),
    /// Anything that is not `ws://` or `wss://`.
    #[error("unsupported URL scheme in {0}: expected ws://host:port/path")]
    Scheme(String),
    /// The host or port part is missing or malformed.
    #[error("bad host or port in {0}")]
    HostPort(String),
    /// The host name did not resolve to an IPv4 address.
    #[error("cannot resolve {0} to an IPv4 address")]
    Resolve(String),
}

/// A parsed `ws://` URL, resolved once at start so the hot path never does DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Host as written, sent in the `Host:` header.
    pub host: String,
    /// TCP port (80 when omitted).
    pub port: u16,
    /// Request target including any query, always starting with `/`.
    pub path: String,
    /// Resolved server address every client connects to.
    pub addr: SocketAddr,
}

impl WsUrl {
    /// Parses and resolves `text`; `wss://` is refused with a clear message.
    pub fn parse(text: &str) -> Result<WsUrl, UrlError> {
        let rest = if let Some(rest) = text.strip_prefix("ws://") {
            rest
        } else if text.starts_with("wss://") {
            return Err(UrlError::Tls(text.to_string()));
        } else {
            return Err(UrlError::Scheme(text.to_string()));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(UrlError::HostPort(text.to_string()));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| UrlError::HostPort(text.into()))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|_| UrlError::Resolve(host.clone()))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| UrlError::Resolve(host.clone()))?;
        Ok(WsUrl { host, port, path, addr })
    }

    /// The value of the `Host:` request header (port omitted when it is 80).
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]`; returns `None` for an empty host or a bad port.
fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => (authority, 80),
    };
    if host.is_empty() || host.contains(['[', ']', ' ']) {
        return None;
    }
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let u = WsUrl::parse("ws://127.0.0.1:9501/chat").unwrap();
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, 9501);
        assert_eq!(u.path, "/chat");
        assert_eq!(u.addr, "127.0.0.1:9501".parse().unwrap());
        assert_eq!(u.host_header(), "127.0.0.1:9501");
    }

    #[test]
    fn defaults_port_and_path() {
        let u = WsUrl::parse("ws://localhost").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(u.host_header(), "localhost");
        let q = WsUrl::parse("ws://127.0.0.1:1?room=a").unwrap();
        assert_eq!(q.path, "/?room=a");
    }

    #[test]
    fn refuses_tls_and_other_schemes() {
        assert!(matches!(WsUrl::parse("wss://x:1/"), Err(UrlError::Tls(_))));
        assert!(WsUrl::parse("wss://x/").unwrap_err().to_string().contains("TLS not supported yet"));
        assert!(matches!(WsUrl::parse("http://x/"), Err(UrlError::Scheme(_))));
        assert!(matches!(WsUrl::parse("127.0.0.1:80"), Err(UrlError::Scheme(_))));
    }

    #[test]
    fn refuses_bad_ports_and_hosts() {
        for bad in ["ws://:80/", "ws://h:0/", "ws://h:99999/", "ws://h:x/", "ws://u@h:1/"] {
            assert!(matches!(WsUrl::parse(bad), Err(UrlError::HostPort(_))), "{bad}");
        }
    }
}
