//! One blocking TLS handshake before the run. A server whose certificate is not trusted, or a
//! port that does not speak TLS, is then reported at once and in one line, with what to do,
//! rather than as thousands of failed connections.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{describe, rustls_error, TlsClient};

/// Completes a handshake with `addr`, each step within `timeout`; the error says what went
/// wrong.
pub fn handshake(addr: SocketAddr, tls: &TlsClient, timeout: Duration) -> Result<(), String> {
    let fail = |why: String| format!("TLS handshake with {addr} failed: {why}");
    let mut session = tls.session().map_err(|e| fail(describe(&e)))?;
    let mut socket = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(e.to_string()))?;
    socket
        .set_read_timeout(Some(timeout))
        .and_then(|()| socket.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e.to_string()))?;
    // Reads and writes until the handshake is done (the socket blocks).
    match session.complete_io(&mut socket) {
        Ok(_) if !session.is_handshaking() => {}
        Ok(_) => return Err(fail("the server stopped answering".into())),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            // A plain HTTP server waits for the end of a request head that never comes.
            return Err(fail(format!("no answer within {timeout:?} (does the server speak TLS on this port?)")));
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(fail("the server closed the connection (does it speak TLS on this port?)".into()))
        }
        Err(e) => return Err(fail(rustls_error(&e).map_or_else(|| e.to_string(), describe))),
    }
    // Say goodbye properly; the server's answer does not matter.
    session.send_close_notify();
    let _ = session.complete_io(&mut socket);
    Ok(())
}
