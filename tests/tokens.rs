//! Login tokens on raw chat connections, through real sockets: a missing,
//! expired, premature, forged or malformed JWT is refused with 401 before
//! the upgrade; a valid one works as `?token=`, as `Authorization: Bearer`
//! and as a subprotocol (confirmed as `fanout.token`, as browsers need);
//! the `rooms` claim is enforced; a connection is closed with 4401 when its
//! token expires; and an API event to `#server-to-user-{sub}` reaches every
//! connection of that user and no other.

mod pusher_client;
mod util;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanout::pusher::{App, Apps};
use fanout::service::{Service, ServiceConfig, TOKEN_EXPIRED};
use fanout::token::{now_secs, TokenVerifier};
use fanout::RunningServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message as WsMessage;

const TOKEN_SECRET: &[u8] = b"the chat's token secret, 32+ bytes long";

fn start() -> RunningServer {
    let config = ServiceConfig {
        apps: Apps::single(App::new("42", pusher_client::KEY, pusher_client::SECRET)),
        tokens: Some(Arc::new(TokenVerifier::hs256(TOKEN_SECRET).unwrap())),
        ..ServiceConfig::default()
    };
    util::start(util::config(2), Service::new(config).unwrap())
}

fn token(claims: Value) -> String {
    let key = EncodingKey::from_secret(TOKEN_SECRET).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

fn in_secs(delta: i64) -> u64 {
    now_secs().checked_add_signed(delta).unwrap()
}

/// An upgrade's refusal: status, `WWW-Authenticate`, body.
type Refusal = (u16, Option<String>, String);

/// Upgrades to `path` with extra headers: the client and the subprotocol
/// confirmed, or the refusal's status, `WWW-Authenticate` and body.
fn upgrade(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(util::Client, Option<String>), Refusal> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tungstenite::client(request, stream) {
        Ok((client, response)) => {
            let protocol = response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_owned());
            Ok((client, protocol))
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let challenge = response.headers().get("WWW-Authenticate").map(|v| v.to_str().unwrap().to_owned());
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            Err((response.status().as_u16(), challenge, body))
        }
        Err(e) => panic!("expected an upgrade or an HTTP refusal, got {e}"),
    }
}

fn open(addr: SocketAddr, path: &str) -> util::Client {
    let (mut client, _) = upgrade(addr, path, &[]).unwrap_or_else(|r| panic!("{path}: refused {r:?}"));
    let welcome = util::next_message(&mut client);
    assert!(welcome.to_text().unwrap().contains("welcome"), "{welcome:?}");
    client
}

#[test]
fn tokens_that_are_missing_expired_premature_forged_or_malformed_get_401_before_the_upgrade() {
    let server = start();
    let addr = server.local_addr();
    let forged = {
        let key = EncodingKey::from_secret(b"somebody else's secret, also long").unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &json!({"sub": "mallory"}), &key).unwrap()
    };
    let cases = [
        ("missing", String::new(), "a token is required"),
        ("expired", token(json!({"sub": "a", "exp": in_secs(-30)})), "expired"),
        ("not yet valid", token(json!({"sub": "a", "nbf": in_secs(300)})), "not valid yet"),
        ("forged", forged, "signature"),
        ("malformed", "not.a.jwt".to_owned(), "malformed"),
        ("no sub", token(json!({"exp": in_secs(60)})), "malformed"),
    ];
    for (what, token, said) in cases {
        let path = if token.is_empty() { "/chat/lobby".to_owned() } else { format!("/chat/lobby?token={token}") };
        let (status, challenge, body) = upgrade(addr, &path, &[]).err().unwrap_or_else(|| panic!("{what} admitted"));
        assert_eq!(status, 401, "{what}");
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{what}: a Bearer challenge");
        assert!(body.contains(said), "{what}: {body:?}");
    }
    assert_eq!(server.handle().connection_count(), 0, "nothing was opened");
    server.shutdown().unwrap();
}

#[test]
fn a_valid_token_works_in_the_query_the_header_and_a_subprotocol_and_the_rooms_claim_holds() {
    let server = start();
    let addr = server.local_addr();
    let alice = token(json!({"sub": "alice", "exp": in_secs(600), "rooms": ["lobby", "team-*"]}));
    let mut by_query = open(addr, &format!("/chat/lobby?token={alice}"));
    let bearer = format!("Bearer {alice}");
    let (mut by_header, _) = upgrade(addr, "/chat/lobby", &[("Authorization", &bearer)]).expect("bearer");
    util::next_message(&mut by_header);
    let offered = format!("fanout.token, {alice}");
    let (mut by_protocol, confirmed) =
        upgrade(addr, "/chat/lobby", &[("Sec-WebSocket-Protocol", &offered)]).expect("subprotocol");
    assert_eq!(confirmed.as_deref(), Some("fanout.token"), "the marker is confirmed, never the token");
    util::next_message(&mut by_protocol);
    by_query.send(WsMessage::text("hello lobby")).unwrap();
    assert_eq!(util::next_message(&mut by_header), WsMessage::text("hello lobby"));
    assert_eq!(util::next_message(&mut by_protocol), WsMessage::text("hello lobby"));

    assert!(upgrade(addr, &format!("/chat/team-red?token={alice}"), &[]).is_ok(), "a prefix pattern");
    for path in ["/chat/kitchen", "/chat"] {
        let refusal = upgrade(addr, &format!("{path}?token={alice}"), &[]).err().map(|r| r.0);
        assert_eq!(refusal, Some(403), "{path} is not in the token's rooms");
    }
    let anywhere = token(json!({"sub": "root", "rooms": ["*"]}));
    open(addr, &format!("/chat?token={anywhere}"));
    server.shutdown().unwrap();
}

#[test]
fn a_connection_is_closed_with_4401_when_its_token_expires() {
    let server = start();
    let addr = server.local_addr();
    let short = token(json!({"sub": "brief", "exp": in_secs(2)}));
    let long = token(json!({"sub": "stays", "exp": in_secs(600)}));
    let started = Instant::now();
    let mut brief = open(addr, &format!("/chat/lobby?token={short}"));
    let mut stays = open(addr, &format!("/chat/lobby?token={long}"));
    assert_eq!(util::expect_close(&mut brief), TOKEN_EXPIRED);
    assert!(started.elapsed() >= Duration::from_millis(900), "closed at its expiry, not before");
    stays.send(WsMessage::text("ping")).unwrap();
    let mut late = open(addr, &format!("/chat/lobby?token={long}"));
    late.send(WsMessage::text("still open")).unwrap();
    assert_eq!(util::next_message(&mut stays), WsMessage::text("still open"));
    server.shutdown().unwrap();
}

#[test]
fn an_api_event_to_a_user_reaches_every_connection_of_that_user_only() {
    let server = start();
    let addr = server.local_addr();
    let alice = token(json!({"sub": "alice"}));
    let bob = token(json!({"sub": "bob"}));
    let mut alice_tab_1 = open(addr, &format!("/chat/lobby?token={alice}"));
    let mut alice_tab_2 = open(addr, &format!("/chat?token={alice}"));
    let mut bob_tab = open(addr, &format!("/chat/lobby?token={bob}"));
    let body = json!({"name": "notice", "channel": "#server-to-user-alice", "data": "for alice"});
    let (status, answer) = pusher_client::trigger(addr, body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(util::next_message(&mut alice_tab_1), WsMessage::text("for alice"));
    assert_eq!(util::next_message(&mut alice_tab_2), WsMessage::text("for alice"));
    // Bob's next message is the room's, not alice's notice.
    alice_tab_1.send(WsMessage::text("room message")).unwrap();
    assert_eq!(util::next_message(&mut bob_tab), WsMessage::text("room message"));
    server.shutdown().unwrap();
}
