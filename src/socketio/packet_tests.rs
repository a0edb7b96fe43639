//! Verifies that Socket.IO packets encode to exactly what the reference
//! parsers write in both protocol revisions, that binary packets come apart
//! into a header and attachments and back together, and that malformed
//! packets give typed errors.
//!
//! Every literal marked "reference" was printed by the npm packages
//! `socket.io-parser@4.2.7` (protocol v5, Engine.IO v4 clients) and
//! `socket.io-parser@3.3.6` (protocol v4, Engine.IO v3 clients), under
//! Node 20.

use serde_json::json;

use super::*;

const V3: Version = Version::Eio3;
const V4: Version = Version::Eio4;

fn decode(text: &str, version: Version) -> Result<Option<Packet>, PacketError> {
    Decoder::new(version, DEFAULT_MAX_ATTACHMENTS).handle_text(text)
}

fn decoded(text: &str, version: Version) -> Packet {
    match decode(text, version) {
        Ok(Some(packet)) => packet,
        other => panic!("{text}: {other:?}"),
    }
}

fn event(nsp: &str, id: Option<u64>, data: Value) -> Packet {
    let Value::Array(data) = data else { panic!("test data must be an array") };
    Packet::Event { nsp: nsp.into(), id, data, attachments: Vec::new() }
}

fn ack(nsp: &str, id: u64, data: Value) -> Packet {
    let Value::Array(data) = data else { panic!("test data must be an array") };
    Packet::Ack { nsp: nsp.into(), id, data, attachments: Vec::new() }
}

fn connect(nsp: &str, data: Option<Value>) -> Packet {
    Packet::Connect { nsp: nsp.into(), data }
}

#[test]
fn packets_encode_as_the_reference_writes_them_and_decode_back() {
    // Reference: socket.io-parser 4.2.7 Encoder; 3.3.6 writes the same
    // text for the packets both have.
    let cases = [
        (connect("/", None), "0"),
        (connect("/", Some(json!({"token": "abc"}))), "0{\"token\":\"abc\"}"),
        (connect("/admin", Some(json!({"token": "abc"}))), "0/admin,{\"token\":\"abc\"}"),
        (Packet::Disconnect { nsp: "/".into() }, "1"),
        (Packet::Disconnect { nsp: "/admin".into() }, "1/admin,"),
        (
            event("/", None, json!(["message", "héllo €😀", 1, {"a": [true, null]}])),
            "2[\"message\",\"héllo €😀\",1,{\"a\":[true,null]}]",
        ),
        (event("/", Some(12), json!(["hello", 1])), "212[\"hello\",1]"),
        (event("/chat", Some(7), json!(["join", "room1"])), "2/chat,7[\"join\",\"room1\"]"),
        (ack("/", 12, json!(["ok"])), "312[\"ok\"]"),
        (ack("/chat", 7, json!([])), "3/chat,7[]"),
        (
            Packet::ConnectError { nsp: "/".into(), data: json!({"message": "Not authorized"}) },
            "4{\"message\":\"Not authorized\"}",
        ),
    ];
    for (packet, wire) in cases {
        assert_eq!(packet.encode(), wire);
        assert_eq!(decoded(wire, V4), packet);
        assert_eq!(decoded(wire, V3), packet);
    }
    assert_eq!(Packet::event("/", "message", [json!("héllo €😀")]).encode(), "2[\"message\",\"héllo €😀\"]");
}

#[test]
fn the_server_answers_connect_with_its_sid_in_v5_and_bare_in_v4() {
    // Reference: 4.2.7 for v5, 3.3.6 for v4.
    assert_eq!(Packet::connected("/", "oSO0OpakMV_3jnilAAAA", V4).encode(), "0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    assert_eq!(
        Packet::connected("/admin", "oSO0OpakMV_3jnilAAAA", V4).encode(),
        "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"
    );
    assert_eq!(Packet::connected("/", "x", V3).encode(), "0");
    assert_eq!(Packet::connected("/chat", "x", V3).encode(), "0/chat,");
}

#[test]
fn connect_errors_are_objects_in_v5_and_strings_in_v4() {
    // Reference: 4.2.7 for v5, 3.3.6 (its ERROR packet) for v4.
    assert_eq!(Packet::connect_error("/", "Not authorized", V4).encode(), "4{\"message\":\"Not authorized\"}");
    assert_eq!(
        Packet::connect_error("/admin", "Invalid namespace", V4).encode(),
        "4/admin,{\"message\":\"Invalid namespace\"}"
    );
    assert_eq!(Packet::connect_error("/", "Not authorized", V3).encode(), "4\"Not authorized\"");
    assert_eq!(Packet::connect_error("/admin", "Invalid namespace", V3).encode(), "4/admin,\"Invalid namespace\"");
    for version in [V3, V4] {
        assert_eq!(decoded("4\"x\"", version), Packet::ConnectError { nsp: "/".into(), data: json!("x") });
    }
}

#[test]
fn a_v4_namespace_connect_carries_its_query_in_the_namespace() {
    // Reference: 3.3.6 encodes a 2.x client's `io('/chat?token=abc')`
    // connect as this, and decodes it to nsp "/chat?token=abc".
    let packet = decoded("0/chat?token=abc,", V3);
    assert_eq!(packet, connect("/chat?token=abc", None));
    assert_eq!(split_query(packet.nsp()), ("/chat", Some("token=abc")));
    assert_eq!(split_query("/chat"), ("/chat", None));
    assert_eq!(packet.encode(), "0/chat?token=abc,");
}

#[test]
fn a_namespace_runs_to_the_comma_or_to_the_end() {
    // Reference: 4.2.7 decodes each of these the same way.
    assert_eq!(decoded("0/admin", V4), connect("/admin", None));
    assert_eq!(decoded("0/admin,", V4), connect("/admin", None));
    assert_eq!(decoded("0/a,{\"token\":\"é\"}", V4), connect("/a", Some(json!({"token": "é"}))));
    assert_eq!(decoded("2/chat,7[\"a\",1]", V4), event("/chat", Some(7), json!(["a", 1])));
    assert_eq!(decoded("2[\"a\"] ", V4), event("/", None, json!(["a"])));
    assert_eq!(decoded("2[1]", V4), event("/", None, json!([1])));
}

#[test]
fn binary_events_are_a_header_with_placeholders_then_their_attachments() {
    let (one, two) = (Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[0, 255, 128, 10]));
    let mut attachments = Vec::new();
    let data = vec![
        json!("upload"),
        placeholder(&mut attachments, one.clone()),
        json!({"file": placeholder(&mut attachments, two.clone()), "name": "x"}),
    ];
    let packet = Packet::Event { nsp: "/".into(), id: None, data, attachments };
    // Reference: 4.2.7 and 3.3.6 both encode ["upload", <010203>,
    // {file: <00ff800a>, name: "x"}] as this header, then the two buffers.
    let header =
        "52-[\"upload\",{\"_placeholder\":true,\"num\":0},{\"file\":{\"_placeholder\":true,\"num\":1},\"name\":\"x\"}]";
    assert_eq!(packet.encode(), header);
    assert_eq!(packet.attachments(), [one.clone(), two.clone()]);

    for version in [V3, V4] {
        let mut decoder = Decoder::new(version, DEFAULT_MAX_ATTACHMENTS);
        assert_eq!(decoder.handle_text(header), Ok(None));
        assert!(decoder.is_awaiting_attachments());
        assert_eq!(decoder.handle_binary(one.clone()), Ok(None));
        let whole = decoder.handle_binary(two.clone()).expect("decodes").expect("complete");
        assert!(!decoder.is_awaiting_attachments());
        assert_eq!(whole, packet);
        let Packet::Event { data, .. } = &whole else { panic!() };
        assert_eq!(whole.attachment(&data[1]), Some(&one));
        assert_eq!(whole.attachment(&data[2]["file"]), Some(&two));
        assert_eq!(whole.attachment(&data[2]["name"]), None);
    }
}

#[test]
fn binary_packets_keep_their_namespace_and_id_and_acks_can_be_binary() {
    let bytes = Bytes::from_static(&[1, 2, 3]);
    // Reference: 4.2.7 encodes these (3.3.6 the same for its types 5 and 6).
    for (wire, version) in [
        ("51-/files,3[\"upload\",{\"_placeholder\":true,\"num\":0}]", V4),
        ("61-9[{\"_placeholder\":true,\"num\":0}]", V4),
        ("61-/chat,4[{\"_placeholder\":true,\"num\":0}]", V3),
    ] {
        let mut decoder = Decoder::new(version, DEFAULT_MAX_ATTACHMENTS);
        assert_eq!(decoder.handle_text(wire), Ok(None));
        let packet = decoder.handle_binary(bytes.clone()).expect("decodes").expect("complete");
        assert_eq!(packet.attachments(), std::slice::from_ref(&bytes));
        assert_eq!(packet.encode(), wire, "a relay re-encodes it unchanged");
    }
}

#[test]
fn attachments_are_checked_against_their_count_and_the_limit() {
    // Reference: 4.2.7 refuses each of these headers.
    for (header, error) in [
        ("50-[\"a\"]", PacketError::Attachments),
        ("5-[\"a\"]", PacketError::Attachments),
        ("5[\"a\"]", PacketError::Attachments),
        ("5x-[\"a\"]", PacketError::Attachments),
        ("511-[\"a\"]", PacketError::TooManyAttachments { count: 11, max: 10 }),
        ("51-[\"a\",{\"_placeholder\":true,\"num\":1}]", PacketError::Placeholder),
        ("51-[\"a\",{\"_placeholder\":true}]", PacketError::Placeholder),
        ("51-[\"a\",{\"_placeholder\":true,\"num\":-1}]", PacketError::Placeholder),
        ("599999999999999999999999-[\"a\"]", PacketError::Attachments),
    ] {
        assert_eq!(decode(header, V4), Err(error), "{header}");
    }
    // Outside a binary packet a placeholder is plain JSON, as in the
    // reference.
    let packet = decoded("2[\"a\",{\"_placeholder\":true,\"num\":5}]", V4);
    let Packet::Event { data, .. } = &packet else { panic!() };
    assert_eq!(packet.attachment(&data[1]), None);
}

#[test]
fn the_decoder_refuses_binary_out_of_turn_and_text_mid_packet() {
    let mut decoder = Decoder::new(V4, 2);
    assert_eq!(decoder.handle_binary(Bytes::from_static(b"x")), Err(PacketError::UnexpectedBinary));
    assert_eq!(decoder.handle_text("52-[\"a\"]"), Ok(None));
    assert_eq!(decoder.handle_text("2[\"a\"]"), Err(PacketError::UnexpectedText));
    assert!(!decoder.is_awaiting_attachments(), "starts afresh after an error");
    assert_eq!(decoder.handle_text("2[\"a\"]"), Ok(Some(event("/", None, json!(["a"])))));
}

#[test]
fn payloads_of_the_wrong_shape_are_refused() {
    // Reference: 4.2.7 throws on each of these.
    for (wire, error) in [
        ("", PacketError::Empty),
        ("7", PacketError::UnknownType(b'7')),
        ("x", PacketError::UnknownType(b'x')),
        ("é", PacketError::UnknownType(0xc3)),
        ("1{}", invalid("DISCONNECT", "absent")),
        ("2[]", invalid("EVENT", "an array starting with an event name")),
        ("2{}", invalid("EVENT", "an array starting with an event name")),
        ("2[null]", invalid("EVENT", "an array starting with an event name")),
        ("2[\"connect\"]", invalid("EVENT", "an event name that is not reserved")),
        ("4[1]", invalid("CONNECT_ERROR", "a string or an object")),
        ("0[]", invalid("CONNECT", "a JSON object")),
        ("0\"x\"", invalid("CONNECT", "a JSON object")),
        ("312{}", invalid("ACK", "an array")),
        ("299999999999999999999[\"a\"]", PacketError::Id),
    ] {
        assert_eq!(decode(wire, V4), Err(error), "{wire:?}");
    }
    assert!(matches!(decode("2[\"a\"]x", V4), Err(PacketError::Json(_))));
    // Stricter than the reference, which passes these on for the server to
    // ignore: an event without data, an ack without an id, and
    // CONNECT_ERROR (which no client sends) without a payload.
    assert_eq!(decode("2", V4), Err(invalid("EVENT", "an array starting with an event name")));
    assert_eq!(decode("3[]", V4), Err(PacketError::MissingAckId));
    assert_eq!(decode("4", V4), Err(invalid("CONNECT_ERROR", "a string or an object")));
    // An ack may leave out its arguments.
    assert_eq!(decoded("37", V4), ack("/", 7, json!([])));
}

#[test]
fn v4_accepts_what_its_older_decoder_accepted() {
    // Reference: 3.3.6 decodes each of these without error.
    assert_eq!(decoded("2[\"connect\"]", V3), event("/", None, json!(["connect"])));
    assert_eq!(decoded("0[]", V3), connect("/", Some(json!([]))));
    assert_eq!(decoded("4null", V3), Packet::ConnectError { nsp: "/".into(), data: Value::Null });
    assert_eq!(decode("2[]", V3), Err(invalid("EVENT", "an array starting with an event name")));
}

#[test]
fn an_event_is_its_name_and_the_arguments_after_it() {
    let data = [json!("message"), json!("hi"), json!({"to": "room1"})];
    let event = Event::from_data(&data).expect("an event");
    assert_eq!(event.name, "message");
    assert_eq!(event.args, &data[1..]);
    let numbered = [json!(42)];
    assert_eq!(Event::from_data(&numbered).map(|e| e.name.into_owned()), Ok("42".to_owned()));
    for bad in [&[][..], &[json!(null)], &[json!(["nested"])]] {
        assert!(Event::from_data(bad).is_err(), "{bad:?}");
    }
    let packet = Packet::event("/chat", "message", [json!("hi")]);
    let Packet::Event { data, .. } = &packet else { panic!() };
    assert_eq!(
        Event::from_data(data).map(|e| (e.name.into_owned(), e.args.to_vec())),
        Ok(("message".into(), vec![json!("hi")]))
    );
}

#[test]
fn decoding_never_panics_on_arbitrary_text() {
    // A fixed-seed xorshift over characters that matter to the grammar.
    const PIECES: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "5",
        "6",
        "9",
        "-",
        "/",
        ",",
        "?",
        "[",
        "]",
        "{",
        "}",
        "\"",
        ":",
        "é",
        "😀",
        "_placeholder",
        "true",
        "num",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..(state % 16) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
        }
        for version in [V3, V4] {
            let mut decoder = Decoder::new(version, 3);
            if let Ok(None) = decoder.handle_text(&text) {
                let _ = decoder.handle_binary(Bytes::new());
            }
        }
    }
}
