//! TLS on the client side: `wss://` connections, and `https://` for the channels scenario's API
//! publisher when its `--url` is `wss://`. rustls with its ring provider.
//!
//! rustls does no I/O of its own: [`stream::TlsClientStream`] feeds it what a non-blocking socket
//! reads and writes the records it makes, so TLS connections live on the same mio loops as plain
//! ones, and [`crate::stream::Stream`] lets those loops drive both alike. The settings are built
//! once per process and shared by every connection.
//!
//! Files, one job each:
//! - `config.rs`: [`config::TlsClient`], the trust (`--ca-file` or `--insecure`) and server name.
//! - `insecure.rs`: the certificate verifier behind `--insecure`.
//! - `stream.rs`: one session over one socket, as `Read` + `Write`.
//! - `probe.rs`: one blocking handshake before the run, so a trust problem is one clear line.

pub mod config;
pub mod insecure;
pub mod probe;
pub mod stream;

pub use config::{TlsClient, TlsSetupError};

/// A rustls error in words, with what to do about the usual mistakes: an untrusted certificate
/// (pass the right `--ca-file`, or `--insecure`) or a port that does not speak TLS.
pub fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => {
            format!("{e} (pass --ca-file with the CA that signed the server's certificate, or --insecure)")
        }
        rustls::Error::InvalidMessage(_) => format!("{e} (does the server speak TLS on this port?)"),
        _ => e.to_string(),
    }
}

/// The rustls error inside an I/O error from a TLS stream, if that is what it is.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}
