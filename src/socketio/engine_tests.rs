//! Verifies that Engine.IO packets encode to exactly what the reference
//! parsers write, decode back, and that malformed input of any kind gives a
//! typed error.
//!
//! Every string and byte literal marked "reference" was printed by the npm
//! packages `engine.io-parser@5.2.3` (v4) and `engine.io-parser@2.2.1` (v3),
//! under Node 20.

use super::*;

const V3: Version = Version::Eio3;
const V4: Version = Version::Eio4;
const MAX: usize = 1 << 20;

fn text(s: &str) -> Packet {
    Packet::Message(Data::Text(s.to_owned()))
}

fn binary(bytes: &[u8]) -> Packet {
    Packet::Message(Data::Binary(Bytes::copy_from_slice(bytes)))
}

fn handshake(max_payload: Option<u64>, ping_timeout: u64) -> Handshake {
    Handshake {
        sid: "lv_VI97HAXpY6yYWAAAC".into(),
        upgrades: vec!["websocket".into()],
        ping_interval: 25000,
        ping_timeout,
        max_payload,
    }
}

/// Reference: the open packets of engine.io-parser 5.2.3 and 2.2.1.
const OPEN_V4: &str = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
const OPEN_V3: &str =
    "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000}";

#[test]
fn the_eio_query_parameter_names_the_version() {
    assert_eq!(Version::from_eio("3"), Some(V3));
    assert_eq!(Version::from_eio("4"), Some(V4));
    for other in ["", "2", "5", "04", "4 "] {
        assert_eq!(Version::from_eio(other), None, "{other:?}");
    }
    assert_eq!((V3.socketio_protocol(), V4.socketio_protocol()), (4, 5));
}

#[test]
fn the_open_packet_carries_the_handshake_as_the_reference_writes_it() {
    let v4 = handshake(Some(1_000_000), 20000);
    assert_eq!(encode_frame(&v4.to_packet(), V4), Message::text(OPEN_V4));
    let v3 = handshake(None, 5000);
    assert_eq!(encode_frame(&v3.to_packet(), V3), Message::text(OPEN_V3));
    let Ok(Packet::Open(json)) = decode_frame(&Message::text(OPEN_V3), V3) else { panic!() };
    assert_eq!(serde_json::from_str::<Handshake>(&json).ok(), Some(v3));
}

#[test]
fn every_packet_type_is_one_digit_and_its_data_in_a_text_frame() {
    // Reference: engine.io-parser 5.2.3 encodePacket; v3 writes the same.
    let cases = [
        (Packet::Close, "1"),
        (Packet::Ping(String::new()), "2"),
        (Packet::Ping("probe".into()), "2probe"),
        (Packet::Pong("probe".into()), "3probe"),
        (text("hello"), "4hello"),
        (text("héllo €😀"), "4héllo €😀"),
        (Packet::Upgrade, "5"),
        (Packet::Noop, "6"),
    ];
    for version in [V3, V4] {
        for (packet, wire) in &cases {
            assert_eq!(encode_frame(packet, version), Message::text(*wire));
            assert_eq!(decode_frame(&Message::text(*wire), version).as_ref(), Ok(packet));
        }
    }
}

#[test]
fn binary_frames_are_the_bytes_in_v4_and_a_type_byte_then_the_bytes_in_v3() {
    let packet = binary(&[1, 2, 3]);
    // Reference: 010203 (5.2.3) and 04010203 (2.2.1), supportsBinary on.
    assert_eq!(encode_frame(&packet, V4), Message::binary(vec![1, 2, 3]));
    assert_eq!(encode_frame(&packet, V3), Message::binary(vec![4, 1, 2, 3]));
    assert_eq!(decode_frame(&Message::binary(vec![1, 2, 3]), V4), Ok(packet.clone()));
    assert_eq!(decode_frame(&Message::binary(vec![4, 1, 2, 3]), V3), Ok(packet));
    assert_eq!(decode_frame(&Message::binary(vec![]), V4), Ok(binary(&[])));
    assert_eq!(decode_frame(&Message::binary(vec![]), V3), Err(EngineError::Empty));
    assert_eq!(decode_frame(&Message::binary(vec![2, 1]), V3), Err(EngineError::BinaryNotMessage));
    assert_eq!(decode_frame(&Message::binary(vec![9, 1]), V3), Err(EngineError::UnknownType(9)));
}

#[test]
fn binary_inside_text_is_base64_after_b_in_v4_and_b4_in_v3() {
    // Reference: encodePacket with supportsBinary off.
    for (bytes, v4, v3) in [(&[1u8, 2, 3][..], "bAQID", "b4AQID"), (&[0, 255, 128, 10][..], "bAP+ACg==", "b4AP+ACg==")]
    {
        assert_eq!(encode_payload(&[binary(bytes)], V4), v4);
        assert_eq!(decode_frame(&Message::text(v4), V4), Ok(binary(bytes)));
        assert_eq!(decode_frame(&Message::text(v3), V3), Ok(binary(bytes)));
    }
    assert_eq!(decode_frame(&Message::text("b"), V4), Ok(binary(&[])));
    assert_eq!(decode_frame(&Message::text("bAP+ACg"), V4), Ok(binary(&[0, 255, 128, 10])), "unpadded");
    for bad in ["b!!", "bA", "bAQID=A", "b-_-_"] {
        assert_eq!(decode_frame(&Message::text(bad), V4), Err(EngineError::Base64), "{bad}");
    }
    assert_eq!(decode_frame(&Message::text("b2AQID"), V3), Err(EngineError::BinaryNotMessage));
    assert_eq!(decode_frame(&Message::text("b"), V3), Err(EngineError::Empty));
}

#[test]
fn base64_round_trips_every_length_and_byte() {
    let all: Vec<u8> = (0..=255).collect();
    for len in 0..=all.len() {
        let mut encoded = String::new();
        base64_encode(&all[..len], &mut encoded);
        assert_eq!(encoded.len() % 4, 0);
        assert_eq!(base64_decode(&encoded).as_deref(), Ok(&all[..len]), "{len}");
    }
}

#[test]
fn v4_polling_joins_packets_with_the_record_separator() {
    // Reference: engine.io-parser 5.2.3 encodePayload. The first is a v5
    // server's first poll response: open, then the Socket.IO CONNECT.
    let cases = [
        (
            vec![handshake(Some(1_000_000), 20000).to_packet(), text("0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}")],
            format!("{OPEN_V4}\u{1e}40{{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}}"),
        ),
        (
            vec![text("2[\"hi\",\"é😀\"]"), binary(&[1, 2, 3]), Packet::Ping(String::new()), Packet::Noop],
            "42[\"hi\",\"é😀\"]\u{1e}bAQID\u{1e}2\u{1e}6".to_owned(),
        ),
        (
            vec![text("451-[\"up\",{\"_placeholder\":true,\"num\":0}]"), binary(&[0, 255, 128, 10])],
            "4451-[\"up\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAP+ACg==".to_owned(),
        ),
    ];
    for (packets, wire) in cases {
        assert_eq!(encode_payload(&packets, V4), wire);
        assert_eq!(decode_payload(wire.as_bytes(), V4, MAX), Ok(packets));
    }
}

#[test]
fn v4_polling_bodies_with_any_bad_packet_are_refused() {
    // The reference decodes each of these to a parser error.
    for (body, error) in [
        ("", EngineError::Empty),
        ("7", EngineError::UnknownType(b'7')),
        ("x", EngineError::UnknownType(b'x')),
        ("4a\u{1e}\u{1e}4b", EngineError::Empty),
        ("é", EngineError::UnknownType(0xc3)),
    ] {
        assert_eq!(decode_payload(body.as_bytes(), V4, MAX), Err(error), "{body:?}");
    }
    assert_eq!(decode_payload(b"4\xff", V4, MAX), Err(EngineError::NotUtf8));
    assert_eq!(decode_payload(b"4hello", V4, 5), Err(EngineError::TooLarge { len: 6, max: 5 }));
    assert_eq!(decode_payload(b"4hello", V4, 6), Ok(vec![text("hello")]));
}

#[test]
fn v3_polling_prefixes_each_packet_with_its_length_in_utf16_units() {
    // Reference: engine.io-parser 2.2.1 encodePayload, supportsBinary off.
    // The second is a 2.x server's first poll response: open, then the
    // Socket.IO CONNECT of `/`. `é😀` is 2 characters, 3 UTF-16 units and 6 UTF-8 bytes: 14 counts
    // units.
    let cases = [
        (vec![], "0:".to_owned()),
        (vec![handshake(None, 5000).to_packet(), text("0")], format!("96:{OPEN_V3}2:40")),
        (
            vec![text("2[\"hi\",\"é😀\"]"), binary(&[1, 2, 3]), Packet::Ping("probe".into()), Packet::Noop],
            "14:42[\"hi\",\"é😀\"]6:b4AQID6:2probe1:6".to_owned(),
        ),
        (vec![text("é😀"), Packet::Pong(String::new())], "4:4é😀1:3".to_owned()),
    ];
    for (packets, wire) in cases {
        assert_eq!(encode_payload(&packets, V3), wire);
        assert_eq!(decode_payload(wire.as_bytes(), V3, MAX), Ok(packets));
    }
    // Leading zeros are digits still, as in the reference.
    assert_eq!(decode_payload(b"01:2", V3, MAX), Ok(vec![Packet::Ping(String::new())]));
    assert_eq!(decode_payload(b"3:4ab", V3, MAX), Ok(vec![text("ab")]));
}

#[test]
fn v3_polling_lengths_that_do_not_match_the_text_are_refused() {
    // Each is a parser error in the reference (some after yielding the
    // packets before the error; here the whole body is refused).
    for body in ["", "5:4héllo", "4:4😀", "2:4😀", "x:4", "2:4a2", "1:", "5:b4AQID", "-1:4", "4", ":4"] {
        assert!(decode_payload(body.as_bytes(), V3, MAX).is_err(), "{body:?}");
    }
    assert_eq!(decode_payload(b"1:7", V3, MAX), Err(EngineError::UnknownType(b'7')));
    assert_eq!(decode_payload(b"99999999999999999999999:4", V3, MAX).ok(), None);
}

#[test]
fn v3_binary_polling_bodies_decode_text_as_utf8_and_binary_after_its_type_byte() {
    // Reference: engine.io-parser 2.2.1 encodePayload with supportsBinary
    // on (which writes this form only when a packet holds binary data), and
    // encodePayloadAsBinary.
    let cases = [
        ("0009ff34325b22e282ac225d0104ff04010203".to_owned(), vec![text("2[\"€\"]"), binary(&[1, 2, 3])]),
        ("0007ff34c3a9f09f98800001ff33".to_owned(), vec![text("é😀"), Packet::Pong(String::new())]),
        (
            format!("00010201ff34{}0105ff0400ff800a", "78".repeat(120)),
            vec![text(&"x".repeat(120)), binary(&[0, 255, 128, 10])],
        ),
    ];
    for (hex_body, packets) in cases {
        let body = hex::decode(hex_body).expect("test hex");
        assert_eq!(decode_binary_payload(&body, MAX), Ok(packets));
    }
}

#[test]
fn v3_binary_polling_bodies_with_broken_framing_are_refused() {
    for (body, error) in [
        (&[][..], EngineError::Empty),
        (&[0, 1], EngineError::Framing("a length has no end marker")),
        (&[0, 255, b'4'], EngineError::Framing("a length is not decimal digits")),
        (&[0, 10, 255, b'4'], EngineError::Framing("a length is not decimal digits")),
        (&[0, 3, 255, b'4'], EngineError::Framing("a packet runs past the end of the payload")),
        (&[2, 1, 255, b'4'], EngineError::Framing("a packet is neither text (0) nor binary (1)")),
        (&[0, 2, 255, b'4', 0xff], EngineError::NotUtf8),
        (&[1, 0, 255], EngineError::Empty),
        (&[1, 2, 255, 2, 9], EngineError::BinaryNotMessage),
        (&[1, 2, 255, 7, 9], EngineError::UnknownType(7)),
    ] {
        assert_eq!(decode_binary_payload(body, MAX), Err(error), "{body:?}");
    }
    let digits = [0u8].iter().chain(&[9; 40]).chain(&[255]).copied().collect::<Vec<_>>();
    assert!(decode_binary_payload(&digits, MAX).is_err(), "a length past usize");
    assert_eq!(decode_binary_payload(&[0, 1, 255, b'6'], 3), Err(EngineError::TooLarge { len: 4, max: 3 }));
}

#[test]
fn decoding_never_panics_on_arbitrary_input() {
    // A fixed-seed xorshift over bytes that matter to the grammars.
    const ALPHABET: &[u8] = b"0123456789:b4\x1e\xff\x00\x01=+/A-_,[]{}\"";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let mut input = Vec::new();
        for _ in 0..(state % 24) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            input.push(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
        }
        for version in [V3, V4] {
            let _ = decode_payload(&input, version, MAX);
            let _ = decode_frame(&Message::binary(input.clone()), version);
            if let Ok(text) = std::str::from_utf8(&input) {
                let _ = decode_frame(&Message::text(text), version);
            }
        }
        let _ = decode_binary_payload(&input, MAX);
    }
    // Multi-byte characters where v3 lengths count.
    for body in ["1:😀", "2:😀", "3:4😀😀", "1:é", "2:4é"] {
        let _ = decode_payload(body.as_bytes(), V3, MAX);
    }
}
