//! Verifies that server frames have the exact text Pusher's protocol shows,
//! and that whatever they carry is escaped into valid JSON.

use super::*;
use crate::pusher::codes;
use crate::pusher::presence::{parse_channel_data, PresenceSnapshot};
use serde_json::{json, Value};

/// The frame as JSON, with a string `data` parsed the way pusher-js does.
fn decode(frame: &str) -> Value {
    let mut value: Value = serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
    if let Some(Value::String(inner)) = value.get("data") {
        if let Ok(parsed) = serde_json::from_str::<Value>(inner) {
            value["data"] = parsed;
        }
    }
    value
}

#[test]
fn connection_established_double_encodes_its_data() {
    assert_eq!(
        connection_established("123.456", 120),
        r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#
    );
}

#[test]
fn ping_pong_and_errors_carry_object_data() {
    assert_eq!(ping(), r#"{"event":"pusher:ping","data":{}}"#);
    assert_eq!(pong(), r#"{"event":"pusher:pong","data":{}}"#);
    assert_eq!(
        error(Some(codes::APP_DOES_NOT_EXIST), "App key x does not exist"),
        r#"{"event":"pusher:error","data":{"code":4001,"message":"App key x does not exist"}}"#
    );
    assert_eq!(
        error(None, "bad \"frame\"\n"),
        r#"{"event":"pusher:error","data":{"code":null,"message":"bad \"frame\"\n"}}"#
    );
}

#[test]
fn subscription_succeeded_is_empty_except_on_presence_channels() {
    assert_eq!(
        subscription_succeeded("news", None),
        r#"{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}"#
    );
    let members = [
        parse_channel_data(r#"{"user_id":"a","user_info":{"name":"Ann"}}"#, 1024).unwrap(),
        parse_channel_data(r#"{"user_id":7}"#, 1024).unwrap(),
    ];
    let snapshot = PresenceSnapshot::from_members(&members);
    let frame = subscription_succeeded("presence-room", Some(&snapshot));
    assert_eq!(
        frame,
        r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"a\",\"7\"],\"hash\":{\"a\":{\"name\":\"Ann\"},\"7\":null},\"count\":2}}"}"#
    );
    let data = &decode(&frame)["data"]["presence"];
    assert_eq!(data["hash"]["a"], json!({"name": "Ann"}));
    assert_eq!(data["count"], 2);
}

#[test]
fn subscription_error_carries_type_error_and_status() {
    assert_eq!(
        subscription_error("private-x", "AuthError", "Invalid signature", 401),
        r#"{"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"Invalid signature","status":401}}"#
    );
}

#[test]
fn member_events_double_encode_the_member() {
    let info = serde_json::from_str::<&RawValue>(r#"{"name":"Phil"}"#).unwrap();
    assert_eq!(
        member_added("presence-a", "11", Some(info)),
        r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":\"11\",\"user_info\":{\"name\":\"Phil\"}}"}"#
    );
    assert_eq!(decode(&member_added("presence-a", "11", None))["data"], json!({"user_id": "11"}));
    assert_eq!(
        member_removed("presence-a", "11"),
        r#"{"event":"pusher_internal:member_removed","channel":"presence-a","data":"{\"user_id\":\"11\"}"}"#
    );
}

#[test]
fn api_event_data_is_sent_as_a_string() {
    assert_eq!(
        channel_event("my-event", "news", &EventData::Str(r#"{"some":"data"}"#), None),
        r#"{"event":"my-event","channel":"news","data":"{\"some\":\"data\"}"}"#
    );
    assert_eq!(
        channel_event("e", "c", &EventData::Str("plain text"), None),
        r#"{"event":"e","channel":"c","data":"plain text"}"#
    );
}

#[test]
fn client_event_data_is_relayed_verbatim_with_the_sender_on_presence() {
    assert_eq!(
        channel_event("client-typing", "presence-room", &EventData::Raw(r#"{ "on" : true }"#), Some("u1")),
        r#"{"event":"client-typing","channel":"presence-room","data":{ "on" : true },"user_id":"u1"}"#
    );
    assert_eq!(
        channel_event("client-x", "private-c", &EventData::Raw(r#""hi""#), None),
        r#"{"event":"client-x","channel":"private-c","data":"hi"}"#
    );
}

#[test]
fn raw_data_that_is_not_json_is_sent_as_a_string() {
    for bad in ["", "{", "1 2", "}{\"a\":1}", "\"unterminated"] {
        let frame = channel_event("client-x", "c", &EventData::Raw(bad), None);
        assert_eq!(decode(&frame)["event"], "client-x", "{frame}");
        let value: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["data"], Value::String(bad.to_string()), "{frame}");
    }
}

#[test]
fn signin_success_double_encodes_the_user_data() {
    assert_eq!(
        signin_success(r#"{"id":"12345"}"#),
        r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"12345\\\"}\"}"}"#
    );
    // What pusher-js does with it: parse data, then parse data.user_data.
    let user_data = decode(&signin_success(r#"{"id":"12345"}"#))["data"]["user_data"].as_str().unwrap().to_string();
    assert_eq!(serde_json::from_str::<Value>(&user_data).unwrap(), json!({"id": "12345"}));
}

#[test]
fn watchlist_events_list_user_ids_by_event_name() {
    let frame = watchlist_events(&[(WatchlistEvent::Online, vec!["1".into()]), (WatchlistEvent::Offline, vec![])]);
    assert_eq!(
        frame,
        r#"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"1\"]},{\"name\":\"offline\",\"user_ids\":[]}]}"}"#
    );
    assert_eq!(watchlist_events(&[]), r#"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[]}"}"#);
}

#[test]
fn cache_miss_names_only_the_channel() {
    assert_eq!(cache_miss("cache-prices"), r#"{"event":"pusher:cache_miss","channel":"cache-prices"}"#);
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let nasty = "\"}\u{0}\u{1f}\\\n</script>\u{2028}é";
    for frame in [
        error(Some(4009), nasty),
        channel_event(nasty, nasty, &EventData::Str(nasty), Some(nasty)),
        member_removed(nasty, nasty),
        subscription_error(nasty, nasty, nasty, 400),
        signin_success(nasty),
        connection_established(nasty, 1),
    ] {
        let value: Value = serde_json::from_str(&frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
        assert!(value.is_object());
    }
    let value = decode(&member_removed("c", nasty));
    assert_eq!(value["data"]["user_id"], nasty);
}
