//! [`TlsClient`]: what every TLS connection of this process starts from, built once from the
//! command line. One `Arc<ClientConfig>` is shared by all connections of all threads (a session
//! only takes a reference to it), and the server name (SNI, and the name the certificate must
//! carry) is the host of the URL a connection goes to (`--url`, or `--publish-url`,
//! `--subscriber-url`, `--api-url`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use thiserror::Error;

use super::insecure::AcceptAnyServerCert;
use crate::url::WsUrl;

/// Why the TLS settings cannot be built; reported before anything connects.
#[derive(Debug, Error)]
pub enum TlsSetupError {
    /// A `wss://` URL without `--ca-file` or `--insecure`: no certificate could be trusted.
    #[error(
        "wss:// needs --ca-file PATH (the CA certificate, in PEM, that signed the server's certificate) \
         or --insecure (no certificate check, for self-signed benchmark servers): loadtest has no \
         built-in root certificates"
    )]
    NoTrust,
    /// `--ca-file` or `--insecure` with a plain `ws://` URL, where they would do nothing.
    #[error(
        "--ca-file and --insecure only apply to a wss:// --url (or a wss:// --publish-url or --subscriber-url, \
         an https:// --api-url)"
    )]
    NotTls,
    /// `--ca-file` could not be read.
    #[error("cannot read --ca-file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// `--ca-file` holds no usable certificate.
    #[error("--ca-file {path} is not usable: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's host cannot be a TLS server name.
    #[error("{0} cannot be used as a TLS server name")]
    ServerName(String),
    /// rustls refused the configuration itself.
    #[error("cannot set up TLS: {0}")]
    Config(rustls::Error),
}

/// The shared client settings and the server name.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// `None` for a `ws://` URL. For `wss://`: trust the certificates in `ca_file`, or, with
    /// `insecure`, any certificate (handshake signatures are still checked).
    pub fn from_flags(url: &WsUrl, ca_file: Option<&Path>, insecure: bool) -> Result<Option<TlsClient>, TlsSetupError> {
        if !url.tls {
            return if ca_file.is_some() || insecure { Err(TlsSetupError::NotTls) } else { Ok(None) };
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Config)?;
        let mut config = match (ca_file, insecure) {
            (_, true) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(&provider)))
                .with_no_client_auth(),
            (Some(path), false) => builder.with_root_certificates(roots(path)?).with_no_client_auth(),
            (None, false) => return Err(TlsSetupError::NoTrust),
        };
        // Both the upgrade and the API requests are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // An IP address becomes `ServerName::IpAddress`: no SNI is sent and the certificate must
        // list the address.
        let name = ServerName::try_from(url.host.clone()).map_err(|_| TlsSetupError::ServerName(url.host.clone()))?;
        Ok(Some(TlsClient { config: Arc::new(config), name }))
    }

    /// The same settings for the server `url` names (its host becomes the server name), for a
    /// process whose connections go to several servers (`--publish-url`, `--subscriber-url`,
    /// `--api-url`): the configuration is shared, not built again.
    pub fn for_url(&self, url: &WsUrl) -> Result<TlsClient, TlsSetupError> {
        let name = ServerName::try_from(url.host.clone()).map_err(|_| TlsSetupError::ServerName(url.host.clone()))?;
        Ok(TlsClient { config: Arc::clone(&self.config), name })
    }

    /// A new session for one connection; its ClientHello is queued at once.
    pub fn session(&self) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(Arc::clone(&self.config), self.name.clone())
    }
}

/// The certificates in the PEM file `path`, as trust anchors.
fn roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let pem =
        std::fs::read(path).map_err(|e| TlsSetupError::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
    let invalid = |reason: String| TlsSetupError::Invalid { path: path.to_owned(), reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("bad PEM: {e}")))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CERTIFICATE block in it".into()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/ca.pem");
    const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/server1-key.pem");

    fn url(text: &str) -> WsUrl {
        WsUrl::parse(text).unwrap()
    }

    #[test]
    fn plain_urls_need_no_tls_and_refuse_its_flags() {
        assert!(TlsClient::from_flags(&url("ws://127.0.0.1:1/"), None, false).unwrap().is_none());
        let err = TlsClient::from_flags(&url("ws://127.0.0.1:1/"), None, true).unwrap_err();
        assert!(matches!(err, TlsSetupError::NotTls));
        assert!(TlsClient::from_flags(&url("ws://127.0.0.1:1/"), Some(Path::new(CA)), false).is_err());
    }

    #[test]
    fn wss_needs_a_ca_file_or_insecure() {
        let err = TlsClient::from_flags(&url("wss://127.0.0.1:1/"), None, false).unwrap_err();
        assert!(err.to_string().contains("--ca-file") && err.to_string().contains("--insecure"), "{err}");
        let with_ca = TlsClient::from_flags(&url("wss://127.0.0.1:1/"), Some(Path::new(CA)), false).unwrap();
        let tls = with_ca.expect("a wss URL gets TLS settings");
        assert_eq!(tls.name, ServerName::try_from("127.0.0.1").unwrap());
        assert!(tls.session().is_ok());
        let insecure = TlsClient::from_flags(&url("wss://localhost:1/"), None, true).unwrap().unwrap();
        assert_eq!(insecure.name, ServerName::try_from("localhost").unwrap());
    }

    #[test]
    fn bad_ca_files_are_named_in_the_error() {
        let u = url("wss://127.0.0.1:1/");
        let missing = TlsClient::from_flags(&u, Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(matches!(missing, TlsSetupError::Unreadable { .. }), "{missing}");
        assert!(missing.to_string().contains("/nonexistent/ca.pem"));
        // A key file holds no CERTIFICATE block.
        let key = TlsClient::from_flags(&u, Some(Path::new(KEY)), false).unwrap_err();
        assert!(key.to_string().contains("no CERTIFICATE"), "{key}");
    }
}
