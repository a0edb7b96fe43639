//! Parsing of the `--url` flag: `ws://host:port/path`, or `wss://` for WebSocket over TLS; and of
//! the other URL flags (`--publish-url`, `--subscriber-url`, `--api-url`), whose errors name the
//! flag.

use std::net::{SocketAddr, ToSocketAddrs};

use thiserror::Error;

/// Why a `--url` value cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    /// Anything that is not `ws://` or `wss://`.
    #[error("unsupported URL scheme in {0}: expected ws://host:port/path or wss://host:port/path")]
    Scheme(String),
    /// The host or port part is missing or malformed.
    #[error("bad host or port in {0}")]
    HostPort(String),
    /// The host name did not resolve to an IPv4 address.
    #[error("cannot resolve {0} to an IPv4 address")]
    Resolve(String),
}

/// A parsed `ws://` or `wss://` URL, resolved once at start so the hot path never does DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://` (or, for `--api-url`, `https://`): every connection runs TLS over TCP (and
    /// without `--api-url` the channels scenario's HTTP API requests go over https to the same
    /// host and port).
    pub tls: bool,
    /// Host as written, sent in the `Host:` header and, with TLS, as the server name (SNI).
    pub host: String,
    /// TCP port (80 for ws://, 443 for wss:// when omitted).
    pub port: u16,
    /// Request target including any query, always starting with `/`.
    pub path: String,
    /// Resolved server address every client connects to.
    pub addr: SocketAddr,
}

impl WsUrl {
    /// Parses and resolves `text`.
    pub fn parse(text: &str) -> Result<WsUrl, UrlError> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("wss://") {
            (true, rest)
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
        let (host, port) =
            split_host_port(authority, default_port(tls)).ok_or_else(|| UrlError::HostPort(text.into()))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|_| UrlError::Resolve(host.clone()))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| UrlError::Resolve(host.clone()))?;
        Ok(WsUrl { tls, host, port, path, addr })
    }

    /// The value of the `Host:` request header (port omitted when it is the scheme's default).
    pub fn host_header(&self) -> String {
        if self.port == default_port(self.tls) {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL as reports show it: `ws://` or `wss://`, the `Host:` form, and the path.
    pub fn display(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }

    /// The HTTP origin the same host and port serve: `http://` or `https://` and the `Host:` form.
    pub fn http_display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_header())
    }

    /// Parses and resolves the value `text` of `flag`: `ws://` or `wss://`, and with `http` also
    /// `http://` (read as `ws://`) or `https://` (read as `wss://`). The error names the flag and
    /// the value, e.g. `--api-url ftp://x: unsupported URL scheme: expected ...`.
    pub fn parse_flag(flag: &str, text: &str, http: bool) -> Result<WsUrl, String> {
        let mapped = match (text.strip_prefix("http://"), text.strip_prefix("https://")) {
            (Some(rest), _) if http => format!("ws://{rest}"),
            (_, Some(rest)) if http => format!("wss://{rest}"),
            _ => text.to_string(),
        };
        WsUrl::parse(&mapped).map_err(|e| {
            let why = match e {
                UrlError::Scheme(_) if http => {
                    "unsupported URL scheme: expected http://host:port or https://host:port (ws:// and wss:// \
                     mean the same)"
                        .to_string()
                }
                UrlError::Scheme(_) => {
                    "unsupported URL scheme: expected ws://host:port/path or wss://host:port/path".to_string()
                }
                UrlError::HostPort(_) => "bad host or port".to_string(),
                UrlError::Resolve(host) => format!("cannot resolve {host} to an IPv4 address"),
            };
            format!("{flag} {text}: {why}")
        })
    }
}

/// The port a URL without one means: 443 with TLS, as browsers assume.
fn default_port(tls: bool) -> u16 {
    if tls {
        443
    } else {
        80
    }
}

/// Splits `host[:port]` (`default` when the port is omitted); returns `None` for an empty host
/// or a bad port.
fn split_host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => (authority, default),
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
        assert!(!u.tls);
        assert_eq!(u.display(), "ws://127.0.0.1:9501/chat");
    }

    #[test]
    fn parses_wss_with_its_own_default_port() {
        let u = WsUrl::parse("wss://127.0.0.1:9502/chat?room=a").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 9502, "/chat?room=a"));
        assert_eq!(u.addr, "127.0.0.1:9502".parse().unwrap());
        assert_eq!(u.display(), "wss://127.0.0.1:9502/chat?room=a");
        let d = WsUrl::parse("wss://localhost").unwrap();
        assert_eq!((d.port, d.path.as_str(), d.addr.port()), (443, "/", 443));
        assert_eq!(d.host_header(), "localhost", "443 is implied by wss://");
        assert_eq!(WsUrl::parse("wss://localhost:80/").unwrap().host_header(), "localhost:80");
        assert_eq!(WsUrl::parse("ws://localhost:443/").unwrap().host_header(), "localhost:443");
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
    fn refuses_other_schemes() {
        assert!(matches!(WsUrl::parse("http://x/"), Err(UrlError::Scheme(_))));
        assert!(matches!(WsUrl::parse("https://x/"), Err(UrlError::Scheme(_))));
        assert!(matches!(WsUrl::parse("127.0.0.1:80"), Err(UrlError::Scheme(_))));
    }

    #[test]
    fn flag_values_map_http_and_name_the_flag() {
        let api = WsUrl::parse_flag("--api-url", "http://127.0.0.1:8080", true).unwrap();
        assert_eq!((api.tls, api.port, api.http_display()), (false, 8080, "http://127.0.0.1:8080".to_string()));
        let tls = WsUrl::parse_flag("--api-url", "https://localhost", true).unwrap();
        assert_eq!((tls.tls, tls.port, tls.http_display()), (true, 443, "https://localhost".to_string()));
        let ws = WsUrl::parse_flag("--api-url", "wss://127.0.0.1:9/app/k", true).unwrap();
        assert_eq!((ws.tls, ws.http_display()), (true, "https://127.0.0.1:9".to_string()));
        let err = WsUrl::parse_flag("--api-url", "ftp://x", true).unwrap_err();
        assert!(err.starts_with("--api-url ftp://x: unsupported URL scheme: expected http://"), "{err}");
        let err = WsUrl::parse_flag("--publish-url", "http://127.0.0.1:1/chat", false).unwrap_err();
        assert!(err.starts_with("--publish-url http://127.0.0.1:1/chat: unsupported URL scheme: expected ws://"));
        assert_eq!(
            WsUrl::parse_flag("--subscriber-url", "ws://h:0/", false).unwrap_err(),
            "--subscriber-url ws://h:0/: bad host or port"
        );
    }

    #[test]
    fn refuses_bad_ports_and_hosts() {
        for bad in ["ws://:80/", "ws://h:0/", "ws://h:99999/", "ws://h:x/", "ws://u@h:1/", "wss://:1/", "wss://u@h/"] {
            assert!(matches!(WsUrl::parse(bad), Err(UrlError::HostPort(_))), "{bad}");
        }
    }
}
