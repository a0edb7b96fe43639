//! TLS on the workers' loops, through real sockets and a real TLS client
//! (rustls, trusting only the test CA in `tests/fixtures/tls`, whose
//! certificates are for `localhost` and 127.0.0.1 and valid until 2126):
//! wss:// chat, https:// requests, a plain-HTTP client on the TLS port
//! refused in plain words, unusable certificate and key files named at
//! start, a certificate reloaded without dropping the connections on the
//! old one (by the library call and by SIGHUP to the binary), a large
//! broadcast reaching every TLS client whole, and Python's `websockets`
//! chatting over wss:// with an `ssl` context.

mod child;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fanout::tls::TlsFiles;
use fanout::{ChatHandler, RunningServer, Server, ServerError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::protocol::WebSocket;
use tungstenite::Message as WsMessage;

type TlsClient = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

fn files(n: u8) -> TlsFiles {
    TlsFiles { cert: fixture(&format!("server{n}.pem")), key: fixture(&format!("server{n}-key.pem")) }
}

fn start_tls(files: TlsFiles) -> RunningServer {
    util::start(util::with_config(util::config(2), |c| c.tls = Some(files)), ChatHandler::default())
}

fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS stream to the server, handshake done; the server's certificate.
fn tls_connect(addr: SocketAddr) -> (StreamOwned<ClientConnection, TcpStream>, CertificateDer<'static>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = StreamOwned::new(ClientConnection::new(client_config(), name).unwrap(), tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).expect("TLS handshake");
    }
    let cert = stream.conn.peer_certificates().unwrap()[0].clone().into_owned();
    (stream, cert)
}

fn wss_chat(addr: SocketAddr) -> TlsClient {
    let (stream, _) = tls_connect(addr);
    let (mut client, response) = tungstenite::client(format!("wss://localhost:{}/chat", addr.port()), stream)
        .unwrap_or_else(|e| panic!("wss upgrade: {e}"));
    assert_eq!(response.status(), 101);
    let welcome = client.read().unwrap();
    assert!(welcome.to_text().unwrap().contains("welcome"), "{welcome:?}");
    client
}

#[test]
fn wss_clients_chat_and_https_requests_are_answered() {
    let server = start_tls(files(1));
    let addr = server.local_addr();
    let mut a = wss_chat(addr);
    let mut b = wss_chat(addr);
    a.send(WsMessage::text("over TLS")).unwrap();
    assert_eq!(b.read().unwrap(), WsMessage::text("over TLS"));

    let (mut stream, _) = tls_connect(addr);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{answer:?}");
    server.shutdown().unwrap();
}

#[test]
fn a_large_broadcast_reaches_every_tls_client_whole() {
    let config = util::with_config(util::config(2), |c| {
        c.tls = Some(files(1));
        c.max_backpressure = 16 << 20;
    });
    let server = util::start(config, ChatHandler::default());
    let addr = server.local_addr();
    let mut clients: Vec<TlsClient> = (0..8).map(|_| wss_chat(addr)).collect();
    // Bigger than rustls's buffers and a socket's: the records must wait
    // for the kernel and go out on the writable edges.
    let big: String = (0..2_000_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    for n in 0..3 {
        server.handle().broadcast(&fanout::Message::text(format!("{n}{big}")));
    }
    for client in &mut clients {
        for n in 0..3 {
            let got = client.read().unwrap();
            let text = got.to_text().unwrap();
            assert_eq!(text.len(), big.len() + 1);
            assert!(text.starts_with(&n.to_string()) && text.ends_with(&big[big.len() - 10..]));
        }
    }
    server.shutdown().unwrap();
}

#[test]
fn a_plain_http_client_on_the_tls_port_is_told_so_not_left_hanging() {
    let server = start_tls(files(1));
    let answer = util::raw_exchange(server.local_addr(), util::upgrade_request("/chat").as_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("use https:// or wss://"), "{answer:?}");
    let mut a = wss_chat(server.local_addr());
    let mut b = wss_chat(server.local_addr());
    a.send(WsMessage::text("still serving")).unwrap();
    assert_eq!(b.read().unwrap(), WsMessage::text("still serving"));
    server.shutdown().unwrap();
}

#[test]
fn unusable_certificate_and_key_files_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("fanout-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not-pem.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (TlsFiles { cert: missing.clone(), key: files(1).key }, missing.clone(), "cannot read"),
        (TlsFiles { cert: not_pem.clone(), key: files(1).key }, not_pem.clone(), "no CERTIFICATE"),
        (TlsFiles { cert: files(1).cert, key: not_pem.clone() }, not_pem.clone(), "no private key"),
        (TlsFiles { cert: files(1).cert, key: files(2).key }, files(2).key, "does not belong"),
    ];
    for (files, named, said) in cases {
        let config = util::with_config(util::config(1), |c| c.tls = Some(files));
        let error = match Server::bind(config, ChatHandler::default()) {
            Err(error @ ServerError::Tls(_)) => error.to_string(),
            Err(other) => panic!("expected a TLS error, got {other}"),
            Ok(_) => panic!("{} was accepted", named.display()),
        };
        assert!(error.contains(&named.display().to_string()) && error.contains(said), "{error}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_serves_the_new_certificate_to_new_clients_and_keeps_the_old_connections() {
    let dir = std::env::temp_dir().join(format!("fanout-tls-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let live = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    std::fs::copy(files(1).cert, &live.cert).unwrap();
    std::fs::copy(files(1).key, &live.key).unwrap();
    let server = start_tls(live.clone());
    let addr = server.local_addr();
    let first = CertificateDer::from_pem_file(files(1).cert).unwrap();
    let second = CertificateDer::from_pem_file(files(2).cert).unwrap();
    assert_eq!(tls_connect(addr).1, first);
    let mut old = wss_chat(addr);

    // A half-written pair is refused and the old one keeps serving.
    std::fs::write(&live.key, "truncated").unwrap();
    assert!(server.handle().reload_tls().is_err());
    assert_eq!(tls_connect(addr).1, first);

    std::fs::copy(files(2).cert, &live.cert).unwrap();
    std::fs::copy(files(2).key, &live.key).unwrap();
    assert!(server.handle().reload_tls().unwrap());
    assert_eq!(tls_connect(addr).1, second, "new handshakes get the new certificate");
    let mut new = wss_chat(addr);
    new.send(WsMessage::text("after the reload")).unwrap();
    assert_eq!(old.read().unwrap(), WsMessage::text("after the reload"), "the old connection lives on");
    server.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_makes_the_binary_serve_the_new_certificate() {
    let dir = std::env::temp_dir().join(format!("fanout-tls-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(files(1).cert, &cert).unwrap();
    std::fs::copy(files(1).key, &key).unwrap();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let args = ["--bind", "127.0.0.1:0", "--workers", "1", "--tls-cert", &cert_arg, "--tls-key", &key_arg];
    let server = child::Fanout::spawn(&args, None);
    assert!(server.lines_so_far().iter().any(|l| l.contains("with TLS")), "{:?}", server.lines_so_far());
    let mut old = wss_chat(server.addr);
    assert_eq!(tls_connect(server.addr).1, CertificateDer::from_pem_file(files(1).cert).unwrap());
    std::fs::copy(files(2).cert, &cert).unwrap();
    std::fs::copy(files(2).key, &key).unwrap();
    server.signal(libc::SIGHUP);
    let second = CertificateDer::from_pem_file(files(2).cert).unwrap();
    util::wait_until("the new certificate after SIGHUP", || tls_connect(server.addr).1 == second);
    let mut new = wss_chat(server.addr);
    new.send(WsMessage::text("after SIGHUP")).unwrap();
    assert_eq!(old.read().unwrap(), WsMessage::text("after SIGHUP"), "SIGHUP dropped no connection");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn python_websockets_chats_over_wss_with_an_ssl_context() {
    let python = std::env::var("FANOUT_PYTHON").unwrap_or_else(|_| "python3".into());
    let ready = std::process::Command::new(&python)
        .args(["-c", "import websockets"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(std::env::var_os("CI").is_none(), "{python} lacks the websockets package (.ci/run installs it)");
        eprintln!(
            "note: skipping the Python wss test: {python} lacks websockets (set FANOUT_PYTHON to a venv with it)"
        );
        return;
    }
    let server = start_tls(files(1));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/tls_chat.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(server.local_addr().port().to_string())
        .arg(fixture("ca.pem"))
        .output()
        .expect("run python");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.contains("tls_chat.py: ok"), "{said}");
    server.shutdown().unwrap();
}

#[test]
fn large_client_messages_over_tls_arrive_whole_without_waiting_for_more_input() {
    let server = start_tls(files(1));
    let addr = server.local_addr();
    let mut sender = wss_chat(addr);
    let mut receiver = wss_chat(addr);
    // Many TLS records in one go: the server must read them all on one edge,
    // not wait for the next bytes to arrive.
    for size in [40_000usize, 300_000, 1_000_000] {
        let text: String = (0..size).map(|i| char::from(b'A' + (i % 23) as u8)).collect();
        sender.send(WsMessage::text(text.clone())).unwrap();
        assert_eq!(receiver.read().unwrap(), WsMessage::text(text), "{size} bytes");
    }
    server.shutdown().unwrap();
}
