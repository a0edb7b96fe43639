//! Engine.IO v4 and Socket.IO v5 packets as a client sees them, parsed in place from the text of
//! one WebSocket message, and the few packets the `socketio` scenario sends.
//!
//! An Engine.IO packet is its type digit and a body: `0{json}` open, `1` close, `2` ping, `3` pong,
//! `4...` message, `5` upgrade, `6` noop. A message carries a Socket.IO packet: its type digit,
//! for binary types an attachment count and `-`, then the namespace when it is not `/` (`/name,`),
//! then an ack id (decimal digits) and the JSON payload.

/// The Engine.IO packet in one WebSocket text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine<'a> {
    /// `0{...}`: the session's open packet with its JSON (sid, pingInterval, ...).
    Open(&'a [u8]),
    /// `1`: the server closes the session.
    Close,
    /// `2`: a heartbeat the client must answer with `3` (Engine.IO v4: the server pings).
    Ping,
    /// `3`: an answer to a ping.
    Pong,
    /// `4...`: a Socket.IO packet.
    Message(Packet<'a>),
    /// `5` upgrade, `6` noop: nothing for a WebSocket-only client to do.
    Noop,
}

/// The kinds of Socket.IO v5 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: CONNECT (client to server) and its answer with the socket id.
    Connect,
    /// `1`: DISCONNECT from a namespace.
    Disconnect,
    /// `2`: EVENT, a JSON array `[name, args...]`.
    Event,
    /// `3`: ACK of the event that carried the same id.
    Ack,
    /// `4`: CONNECT_ERROR, `{"message": ...}`.
    ConnectError,
    /// `5`: BINARY_EVENT (its attachments follow as binary messages).
    BinaryEvent,
    /// `6`: BINARY_ACK.
    BinaryAck,
}

/// One Socket.IO packet, borrowed from the message it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// What it is.
    pub kind: Kind,
    /// Its namespace, `/` when the packet names none.
    pub namespace: &'a str,
    /// The ack id it carries, if any.
    pub id: Option<u64>,
    /// The JSON payload, as sent (possibly empty).
    pub data: &'a [u8],
}

/// Parses one WebSocket text message; `None` for anything that is no Engine.IO v4 packet (an
/// unknown type, a Socket.IO packet that breaks the grammar). Never panics.
pub fn parse(text: &[u8]) -> Option<Engine<'_>> {
    let (&kind, rest) = text.split_first()?;
    Some(match kind {
        b'0' => Engine::Open(rest),
        b'1' => Engine::Close,
        b'2' => Engine::Ping,
        b'3' => Engine::Pong,
        b'4' => Engine::Message(parse_socket(rest)?),
        b'5' | b'6' => Engine::Noop,
        _ => return None,
    })
}

/// Parses the Socket.IO packet inside an Engine.IO message.
fn parse_socket(text: &[u8]) -> Option<Packet<'_>> {
    let (&kind, mut rest) = text.split_first()?;
    let kind = match kind {
        b'0' => Kind::Connect,
        b'1' => Kind::Disconnect,
        b'2' => Kind::Event,
        b'3' => Kind::Ack,
        b'4' => Kind::ConnectError,
        b'5' => Kind::BinaryEvent,
        b'6' => Kind::BinaryAck,
        _ => return None,
    };
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let dash = rest.iter().position(|&b| b == b'-')?;
        if dash == 0 || !rest[..dash].iter().all(u8::is_ascii_digit) {
            return None;
        }
        rest = &rest[dash + 1..];
    }
    let mut namespace = "/";
    if rest.first() == Some(&b'/') {
        let comma = rest.iter().position(|&b| b == b',');
        let end = comma.unwrap_or(rest.len());
        namespace = std::str::from_utf8(&rest[..end]).ok()?;
        rest = &rest[(end + 1).min(rest.len())..];
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = match digits {
        0 => None,
        // Socket.IO's ids are JavaScript numbers; 19 digits always fit a u64.
        1..=19 => Some(std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?),
        _ => return None,
    };
    Some(Packet { kind, namespace, id, data: &rest[digits..] })
}

/// The prefix a Socket.IO EVENT of `namespace` starts with: `42` and, outside the main
/// namespace, `/name,`.
pub fn event_prefix(namespace: &str) -> String {
    if namespace == "/" {
        "42".to_owned()
    } else {
        format!("42{namespace},")
    }
}

/// The CONNECT packet a client sends to join `namespace`: `40`, or `40/name,`.
pub fn connect(namespace: &str) -> String {
    if namespace == "/" {
        "40".to_owned()
    } else {
        format!("40{namespace},")
    }
}

/// An EVENT of `namespace` asking for an ack with `id`, whose arguments are `args` (already JSON,
/// comma-separated): `42/ns,7["join","lobby"]`.
pub fn event_with_ack(namespace: &str, id: u64, name: &str, args: &str) -> String {
    format!("{}{id}[{},{args}]", event_prefix(namespace), json_string(name))
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// What an ACK's arguments say: `[]` or anything without an `error` is taken, an argument that
/// is an object with an `error` refuses (fanout's convention, which the Node peer follows).
/// Returns the refusal's reason, `None` when taken.
pub fn ack_refusal(data: &[u8]) -> Option<String> {
    let args: Vec<serde_json::Value> = serde_json::from_slice(data).unwrap_or_default();
    args.iter().find_map(|a| a.get("error")).map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
}

/// The `message` of a CONNECT_ERROR's payload (`{"message":"Invalid namespace"}`), or the payload
/// itself when it has none.
pub fn connect_error_message(data: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    match value.as_ref().and_then(|v| v.get("message")).and_then(|m| m.as_str()) {
        Some(m) => m.to_owned(),
        None => String::from_utf8_lossy(data).chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Packet<'_> {
        match parse(text.as_bytes()) {
            Some(Engine::Message(p)) => p,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn engine_packets_are_told_apart_by_their_first_digit() {
        let open = br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(parse(open), Some(Engine::Open(&open[1..])));
        assert_eq!(parse(b"1"), Some(Engine::Close));
        assert_eq!(parse(b"2"), Some(Engine::Ping));
        assert_eq!(parse(b"3"), Some(Engine::Pong));
        assert_eq!(parse(b"6"), Some(Engine::Noop));
        for bad in [&b""[..], b"7", b"x", b"4", b"49", b"4x"] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn connect_answers_carry_the_namespace_and_the_sid() {
        let main = message(r#"40{"sid":"AwAAAAAAI8i7_omPmF0u"}"#);
        assert_eq!((main.kind, main.namespace, main.id), (Kind::Connect, "/", None));
        assert_eq!(main.data, br#"{"sid":"AwAAAAAAI8i7_omPmF0u"}"#);
        let admin = message(r#"40/admin,{"sid":"x"}"#);
        assert_eq!((admin.kind, admin.namespace, admin.data), (Kind::Connect, "/admin", &br#"{"sid":"x"}"#[..]));
        let refused = message(r#"44/x,{"message":"Invalid namespace"}"#);
        assert_eq!((refused.kind, refused.namespace), (Kind::ConnectError, "/x"));
        assert_eq!(connect_error_message(refused.data), "Invalid namespace");
        assert_eq!(connect_error_message(b"\"nope\""), "\"nope\"");
        // A DISCONNECT of a custom namespace may end at the namespace, without a comma.
        let gone = message("41/admin");
        assert_eq!((gone.kind, gone.namespace, gone.data), (Kind::Disconnect, "/admin", &b""[..]));
    }

    #[test]
    fn events_and_acks_carry_their_ids_and_json() {
        let event = message(r#"42["message","lt1:00"]"#);
        assert_eq!((event.kind, event.namespace, event.id), (Kind::Event, "/", None));
        assert_eq!(event.data, br#"["message","lt1:00"]"#);
        let asked = message(r#"42/chat,17["join","lobby"]"#);
        assert_eq!((asked.namespace, asked.id, asked.data), ("/chat", Some(17), &br#"["join","lobby"]"#[..]));
        let ack = message("431[]");
        assert_eq!((ack.kind, ack.id, ack.data), (Kind::Ack, Some(1), &b"[]"[..]));
        let binary = message(r#"451-/ns,3["up",{"_placeholder":true,"num":0}]"#);
        assert_eq!((binary.kind, binary.namespace, binary.id), (Kind::BinaryEvent, "/ns", Some(3)));
        assert_eq!(parse(b"45-[]"), None, "an attachment count is needed");
        assert_eq!(parse(b"4512345678901234567890[]"), None, "no ack id beyond 19 digits");
    }

    #[test]
    fn acks_refuse_only_with_an_error_object() {
        assert_eq!(ack_refusal(b"[]"), None);
        assert_eq!(ack_refusal(br#"[{"ok":true}]"#), None);
        assert_eq!(ack_refusal(b"not json"), None);
        assert_eq!(ack_refusal(br#"[{"error":"too many rooms"}]"#).as_deref(), Some("too many rooms"));
        assert_eq!(ack_refusal(br#"[{"error":5}]"#).as_deref(), Some("5"));
    }

    #[test]
    fn what_the_client_sends_is_the_wire_form() {
        assert_eq!(connect("/"), "40");
        assert_eq!(connect("/admin"), "40/admin,");
        assert_eq!(event_prefix("/"), "42");
        assert_eq!(event_prefix("/admin"), "42/admin,");
        assert_eq!(event_with_ack("/", 1, "join", "\"lobby\""), r#"421["join","lobby"]"#);
        assert_eq!(event_with_ack("/a", 9, "join", &json_string("r\"1")), r#"42/a,9["join","r\"1"]"#);
        // What the client sends parses back as what it means.
        let sent = event_with_ack("/a", 9, "join", "\"x\"");
        let back = message(&sent);
        assert_eq!(
            (back.kind, back.namespace, back.id, back.data),
            (Kind::Event, "/a", Some(9), &br#"["join","x"]"#[..])
        );
    }
}
