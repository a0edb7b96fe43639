//! A Pusher client over tungstenite for the socket-level tests: connect to
//! app 42 (key `app-key`), read events, subscribe, and call the signed HTTP
//! API, with signatures made by fanout's own signing code (the tests with
//! real SDKs are in `pusher_clients.rs`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use fanout::history::HistoryConfig;
use fanout::pusher::{sign_api_request, App, Apps};
use fanout::service::{Service, ServiceConfig};
use serde_json::{json, Value};
use tungstenite::Message as WsMessage;

use super::util;

/// The test app's key.
pub const KEY: &str = "app-key";
/// The test app's secret.
pub const SECRET: &str = "app-secret";

/// The service for `app` alone, with `history` if given (in memory).
pub fn service(app: App, history: Option<HistoryConfig>) -> Service {
    let config = ServiceConfig { apps: Apps::single(app), history, ..ServiceConfig::default() };
    Service::new(config).expect("a service without a history directory")
}

/// The next data message, parsed as JSON.
pub fn event(client: &mut util::Client) -> Value {
    let text = util::next_message(client).into_text().expect("text");
    serde_json::from_str(&text).expect("JSON")
}

/// The `data` of an event, parsed when Pusher sent it as a JSON string.
pub fn data(event: &Value) -> Value {
    match &event["data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        other => other.clone(),
    }
}

/// A connected Pusher client and its socket id.
pub fn connect(addr: SocketAddr) -> (util::Client, String) {
    let mut client = util::connect(addr, &format!("/app/{KEY}?protocol=7&client=js&version=8.4.0"));
    let established = event(&mut client);
    assert_eq!(established["event"], "pusher:connection_established");
    let socket_id = data(&established)["socket_id"].as_str().expect("socket id").to_owned();
    assert!(data(&established)["activity_timeout"].is_number());
    (client, socket_id)
}

pub fn send(client: &mut util::Client, value: Value) {
    client.send(WsMessage::text(value.to_string())).expect("send");
}

pub fn subscribe(client: &mut util::Client, channel: &str, auth: Option<String>, channel_data: Option<&str>) -> Value {
    send(
        client,
        json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": channel_data}}),
    );
    event(client)
}

/// A signed API request; returns the status and the JSON body.
pub fn api(addr: SocketAddr, method: &str, path: &str, params: &[(&str, &str)], body: &str) -> (u16, Value) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let query = sign_api_request(method, path, params, body.as_bytes(), KEY, SECRET, now);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    let request = format!(
        "{method} {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer[9..12].parse().expect("status");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

pub fn trigger(addr: SocketAddr, body: Value) -> (u16, Value) {
    api(addr, "POST", "/apps/42/events", &[], &body.to_string())
}

/// Subscribes to public channel `channel`, with `since` (epoch, offset)
/// when given, and returns the `subscription_succeeded` it must answer.
pub fn join(client: &mut util::Client, channel: &str, since: Option<(&str, u64)>) -> Value {
    let mut data = json!({"channel": channel});
    if let Some((epoch, offset)) = since {
        data["since"] = json!({"epoch": epoch, "offset": offset});
    }
    send(client, json!({"event": "pusher:subscribe", "data": data}));
    let answer = event(client);
    assert_eq!(answer["event"], "pusher_internal:subscription_succeeded", "{answer}");
    answer
}
