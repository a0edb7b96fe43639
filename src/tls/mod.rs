//! TLS on the workers' own loops (`wss://`, `https://`), with rustls.
//!
//! rustls does no I/O of its own: each connection's [`stream::TlsStream`]
//! feeds it the bytes a worker reads and writes the records it produces,
//! so TLS connections live on the same reactors as plain ones. A broadcast
//! is still framed once; only the encryption is per connection.
//!
//! The certificate and key are read at start (a bad, missing, mismatched or
//! unreadable file stops the start with an error naming it) and again on
//! [`TlsContext::reload`] (SIGHUP in the binary): new handshakes use the new
//! pair, established connections keep theirs, and a reload that fails keeps
//! the old pair serving.

pub(crate) mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};

/// Where the server's certificate chain and private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then any intermediates (the chain), in PEM.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1), in PEM.
    pub key: PathBuf,
}

/// Why the certificate or key cannot be used; every variant names a file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read the TLS {what} {path}: {reason}")]
    Unreadable {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file holds no usable PEM item of the kind needed.
    #[error("the TLS {what} {path} is not usable: {reason}")]
    Invalid {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the TLS key {key} does not belong to the certificate {cert}: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// The certificate handed to new handshakes; swapped by a reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// The server's TLS settings: what each accepted socket's session starts from.
pub(crate) struct TlsContext {
    config: Arc<ServerConfig>,
    current: Arc<CurrentCert>,
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext").field("files", &self.files).finish()
    }
}

impl TlsContext {
    /// Loads `files`; any problem is an error naming the file at fault.
    pub(crate) fn load(files: &TlsFiles) -> Result<TlsContext, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(files, &provider)?;
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(key))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid { what: "certificate", path: files.cert.clone(), reason: e.to_string() })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The workers speak HTTP/1.1 (and its WebSocket upgrade) only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsContext { config: Arc::new(config), current, files: files.clone(), provider })
    }

    /// Reads the files again; new handshakes get the new pair. On error the
    /// pair in use stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.files, &self.provider)?;
        *self.current.0.write() = Arc::new(key);
        Ok(())
    }

    /// A session for a newly accepted socket.
    pub(crate) fn session(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.config.clone())
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Unreadable { what, path: path.to_owned(), reason: e.to_string() })
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read("certificate", &files.cert)?;
    let invalid_cert = |reason: String| TlsError::Invalid { what: "certificate", path: files.cert.clone(), reason };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_cert(format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid_cert("no CERTIFICATE block in it".into()));
    }
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Invalid {
        what: "key",
        path: files.key.clone(),
        reason: format!("no private key in it ({e})"),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone(), reason: e.to_string() }
        }
        rustls::Error::InvalidCertificate(_) => invalid_cert(e.to_string()),
        other => TlsError::Invalid { what: "key", path: files.key.clone(), reason: other.to_string() },
    })
}
