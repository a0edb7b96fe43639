//! What a Pusher client sends, and the two protocol payloads it must read: the socket id of
//! `pusher:connection_established` and the code of `pusher:error`.

use serde::Deserialize;

use super::envelope::Value;

/// `pusher:subscribe` for `channel`, with the `auth` token a private channel needs.
pub fn subscribe(channel: &str, auth: Option<&str>) -> String {
    match auth {
        Some(auth) => format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}","auth":"{auth}"}}}}"#),
        None => format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#),
    }
}

/// The answer to a server's `pusher:ping`.
pub const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// A client event `event` on `channel` whose data is the string `data` (which must need no JSON
/// escaping, as stamps do not), appended to `out`.
pub fn client_event(out: &mut Vec<u8>, event: &str, channel: &str, data: &[u8]) {
    event_json(out, "event", event, channel, data);
}

/// The body of an HTTP API `POST /apps/{id}/events` publishing `event` on one channel, written
/// into `out`; `data` must need no JSON escaping.
pub fn api_event(out: &mut Vec<u8>, event: &str, channel: &str, data: &[u8]) {
    event_json(out, "name", event, channel, data);
}

/// `{"KEY":"event","channel":"channel","data":"data"}` into `out`: the two forms differ only in
/// the key naming the event.
fn event_json(out: &mut Vec<u8>, key: &str, event: &str, channel: &str, data: &[u8]) {
    out.clear();
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":\"");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(br#"","channel":""#);
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(br#"","data":""#);
    out.extend_from_slice(data);
    out.extend_from_slice(br#""}"#);
}

#[derive(Deserialize)]
struct Established {
    socket_id: String,
}

/// The socket id in the (decoded) data of `pusher:connection_established`, a JSON object such as
/// `{"socket_id":"123.456","activity_timeout":120}`.
pub fn socket_id(data: &str) -> Option<String> {
    serde_json::from_str::<Established>(data).ok().map(|e| e.socket_id)
}

#[derive(Deserialize)]
struct ErrorData {
    code: Option<u32>,
}

/// A short key for a `pusher:error`: its code when it has one ("4301"), else "no code".
pub fn error_key(data: Option<Value<'_>>) -> String {
    let text = match data {
        Some(Value::Other(raw)) => String::from_utf8_lossy(raw).into_owned(),
        Some(Value::Str(s)) => s.decode().map(|d| d.into_owned()).unwrap_or_default(),
        None => String::new(),
    };
    match serde_json::from_str::<ErrorData>(&text).ok().and_then(|e| e.code) {
        Some(code) => code.to_string(),
        None => "no code".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::envelope::Envelope;
    use super::*;

    #[test]
    fn outgoing_messages_are_the_documented_json() {
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            parse(&subscribe("bench-3", None)),
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"bench-3"}}"#)
        );
        let private = parse(&subscribe("private-bench-1", Some("k:abc")));
        assert_eq!(private["data"]["auth"], "k:abc");
        let mut out = Vec::new();
        client_event(&mut out, "client-bench", "private-bench-1", b"lt1:x");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["channel"].as_str(), v["data"].as_str()),
            (Some("client-bench"), Some("private-bench-1"), Some("lt1:x"))
        );
        api_event(&mut out, "bench", "bench-3", b"d");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            parse(r#"{"name":"bench","channel":"bench-3","data":"d"}"#)
        );
    }

    #[test]
    fn protocol_payloads_are_read() {
        let wire = br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#;
        let e = Envelope::parse(wire).unwrap();
        assert_eq!(socket_id(&e.data_str().unwrap().decode().unwrap()).as_deref(), Some("123.456"));
        assert_eq!(socket_id("{}"), None);
        let e = Envelope::parse(br#"{"event":"pusher:error","data":{"code":4301,"message":"slow down"}}"#).unwrap();
        assert_eq!(error_key(e.data), "4301");
        let e = Envelope::parse(br#"{"event":"pusher:error","data":"{\"code\":4009}"}"#).unwrap();
        assert_eq!(error_key(e.data), "4009");
        assert_eq!(error_key(None), "no code");
    }
}
