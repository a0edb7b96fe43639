use super::*;

const APP: &str = "1";

fn session() -> SioSession {
    SioSession::new(Version::Eio4, None)
}

/// Feeds one text frame; returns its effects and outcome.
fn feed(session: &mut SioSession, text: &str) -> (Vec<Effect>, Result<(), SessionError>) {
    let mut out = Vec::new();
    let result = session.handle_frame(&Message::text(text), APP, &mut out);
    (out, result)
}

fn effects(session: &mut SioSession, text: &str) -> Vec<Effect> {
    let (out, result) = feed(session, text);
    assert_eq!(result, Ok(()), "{text}");
    out
}

fn sent(effect: &Effect) -> &str {
    match effect {
        Effect::Send(text) => text,
        other => panic!("expected a message to the client, got {other:?}"),
    }
}

fn connected(session: &mut SioSession, nsp: &str) -> String {
    let packet = if nsp == "/" { "40".to_owned() } else { format!("40{nsp},") };
    let out = effects(session, &packet);
    let sid = session.namespace(nsp).expect("connected").sid().to_owned();
    let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
    assert_eq!(sent(&out[0]), format!("40{prefix}{{\"sid\":\"{sid}\"}}"));
    sid
}

#[test]
fn connecting_answers_with_a_socket_id_then_joins_the_namespace_and_the_socket_s_room() {
    let mut s = session();
    let out = effects(&mut s, "40");
    let sid = s.namespace("/").expect("connected").sid().to_owned();
    assert_eq!(
        out,
        vec![
            Effect::Send(format!("40{{\"sid\":\"{sid}\"}}")),
            Effect::Join("socket.io /".to_owned()),
            Effect::Join(format!("{APP}:{sid}")),
        ]
    );
    assert_ne!(sid, s.engine_sid(), "a socket's id is not its session's");
    assert_eq!(effects(&mut s, "40"), vec![Effect::Send(format!("40{{\"sid\":\"{sid}\"}}"))], "idempotent");
}

#[test]
fn a_custom_namespace_keeps_the_auth_payload_as_the_handshake() {
    let mut s = session();
    let out = effects(&mut s, r#"40/admin,{"token":"abc","n":1}"#);
    let sid = s.namespace("/admin").expect("connected").sid().to_owned();
    assert_eq!(sent(&out[0]), format!("40/admin,{{\"sid\":\"{sid}\"}}"));
    assert_eq!(out[1], Effect::Join("socket.io /admin".to_owned()));
    assert_eq!(out[2], Effect::Join(format!("socket.io /admin {sid}")));
    let auth = auth_of(&s, "/admin").expect("auth kept").get();
    assert_eq!(serde_json::from_str::<Value>(auth).expect("json"), json!({"token": "abc", "n": 1}));
    assert!(auth_of(&s, "/").is_none());
}

#[test]
fn namespaces_the_app_does_not_serve_or_too_many_get_connect_error() {
    let mut s = session();
    assert_eq!(effects(&mut s, "40/a b,"), vec![Effect::Send(r#"44/a b,{"message":"Invalid namespace"}"#.into())]);
    for n in 0..MAX_NAMESPACES {
        connected(&mut s, &format!("/n{n}"));
    }
    let out = effects(&mut s, "40/one-more,");
    assert_eq!(sent(&out[0]), r#"44/one-more,{"message":"too many namespaces on one connection"}"#);
    let big = format!(r#"40{{"pad":"{}"}}"#, "x".repeat(MAX_AUTH_BYTES));
    let out = effects(&mut session(), &big);
    assert_eq!(sent(&out[0]), r#"44{"message":"the auth payload is over 4096 bytes"}"#);
}

#[test]
fn events_go_to_the_namespace_s_other_sockets_and_acks_follow() {
    let mut s = session();
    connected(&mut s, "/");
    connected(&mut s, "/admin");
    let relay = |text: &str, key: &str, ack: Option<Ack>| Effect::Relay { key: key.into(), text: text.into(), ack };
    assert_eq!(effects(&mut s, r#"42["message","hi"]"#), vec![relay(r#"42["message","hi"]"#, "socket.io /", None)]);
    assert_eq!(
        effects(&mut s, r#"42/admin,7["chat message",{"a":1},2]"#),
        vec![relay(r#"42/admin,["chat message",{"a":1},2]"#, "socket.io /admin", Some(Ack::new("/admin", 7)))]
    );
}

#[test]
fn join_and_leave_change_rooms_and_are_acknowledged() {
    let mut s = session();
    connected(&mut s, "/");
    assert_eq!(
        effects(&mut s, r#"421["join","lobby"]"#),
        vec![Effect::Join("1:lobby".into()), Effect::Send("431[]".into())]
    );
    assert_eq!(effects(&mut s, r#"422["join","lobby"]"#), vec![Effect::Send("432[]".into())], "joined already");
    assert_eq!(effects(&mut s, r#"42["leave","lobby"]"#), vec![Effect::Leave("1:lobby".into())]);
    assert_eq!(effects(&mut s, r#"423["leave","lobby"]"#), vec![Effect::Send("433[]".into())]);
    let out = effects(&mut s, r#"424["join","private-orders"]"#);
    assert!(sent(&out[0]).starts_with(r#"434[{"error":"private-"#), "{out:?}");
    let out = effects(&mut s, r#"42["join",5]"#);
    assert_eq!(sent(&out[0]), r#"42["error",{"message":"the first argument must be a room name"}]"#);
}

#[test]
fn rooms_per_connection_are_bounded() {
    let mut s = session();
    connected(&mut s, "/");
    for n in 0..MAX_ROOMS {
        assert_eq!(effects(&mut s, &format!(r#"42["join","r{n}"]"#)).len(), 1);
    }
    let out = effects(&mut s, r#"429["join","one-more"]"#);
    assert_eq!(out, vec![Effect::Send(r#"439[{"error":"at most 64 rooms per connection"}]"#.into())]);
}

#[test]
fn to_sends_a_message_to_a_room_the_socket_joined() {
    let mut s = session();
    connected(&mut s, "/");
    connected(&mut s, "/admin");
    let out = effects(&mut s, r#"421["to","lobby","hi"]"#);
    assert_eq!(out, vec![Effect::Send(r#"431[{"error":"join the room first"}]"#.into())]);
    effects(&mut s, r#"42["join","lobby"]"#);
    effects(&mut s, r#"42/admin,["join","lobby"]"#);
    let room_message = Effect::RoomMessage {
        room: "lobby".into(),
        key: "1:lobby".into(),
        data: r#"{"text":"hi"}"#.into(),
        ack: Some(Ack::new("/", 2)),
    };
    assert_eq!(effects(&mut s, r#"422["to","lobby",{"text":"hi"}]"#), vec![room_message]);
    let relay =
        Effect::Relay { key: "socket.io /admin lobby".into(), text: r#"42/admin,["message","hi"]"#.into(), ack: None };
    assert_eq!(effects(&mut s, r#"42/admin,["to","lobby","hi"]"#), vec![relay]);
}

#[test]
fn disconnecting_leaves_every_channel_of_the_namespace() {
    let mut s = session();
    let sid = connected(&mut s, "/");
    effects(&mut s, r#"42["join","lobby"]"#);
    let out = effects(&mut s, "41");
    assert_eq!(
        out,
        vec![Effect::Leave("socket.io /".into()), Effect::Leave(format!("1:{sid}")), Effect::Leave("1:lobby".into())]
    );
    assert!(s.namespace("/").is_none());
    assert_eq!(effects(&mut s, "41"), vec![], "not connected: nothing to leave");
}

#[test]
fn engine_io_heartbeats_and_close() {
    let mut s = session();
    assert_eq!(effects(&mut s, "3"), vec![], "a pong only counts as activity");
    assert_eq!(effects(&mut s, "2probe"), vec![Effect::Send("3probe".into())]);
    assert_eq!(effects(&mut s, "6"), vec![]);
    assert_eq!(feed(&mut s, "1").1, Err(SessionError::Closed));
}

#[test]
fn bad_input_ends_the_session_with_a_typed_error() {
    type Expected = fn(&SessionError) -> bool;
    let cases: [(&str, Expected); 8] = [
        ("", |e| matches!(e, SessionError::Engine(_))),
        ("9", |e| matches!(e, SessionError::Engine(_))),
        ("0{}", |e| matches!(e, SessionError::ServerPacket(_))),
        ("49", |e| matches!(e, SessionError::Packet(_))),
        ("42[\"message\"", |e| matches!(e, SessionError::Packet(_))),
        (r#"42["message","before CONNECT"]"#, |e| matches!(e, SessionError::NotConnected(_))),
        (r#"44{"message":"x"}"#, |e| matches!(e, SessionError::ServerPacket(_))),
        (r#"451-["message",{"_placeholder":true,"num":0}]"#, |e| *e == SessionError::Binary),
    ];
    for (text, expected) in cases {
        let mut s = session();
        if text.starts_with("44") || text.starts_with("45") {
            connected(&mut s, "/");
        }
        let (_, result) = feed(&mut s, text);
        let error = result.expect_err(text);
        assert!(expected(&error), "{text}: {error:?}");
    }
    let mut out = Vec::new();
    let binary = session().handle_frame(&Message::binary(vec![1, 2]), APP, &mut out);
    assert_eq!(binary, Err(SessionError::Binary));
}

#[test]
fn acks_from_the_client_are_ignored() {
    let mut s = session();
    connected(&mut s, "/");
    assert_eq!(effects(&mut s, "431[]"), vec![]);
}
