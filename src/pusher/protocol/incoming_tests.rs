//! Verifies that client frames parse into the requests they make, in every
//! form real clients send, and that malformed frames say what is wrong.

use super::*;

fn parse(text: &str) -> Incoming {
    parse_incoming(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn ping_and_pong_need_no_data() {
    assert!(matches!(parse(r#"{"event":"pusher:ping","data":{}}"#), Incoming::Ping));
    assert!(matches!(parse(r#"{"event":"pusher:ping"}"#), Incoming::Ping));
    assert!(matches!(parse(r#"{"event":"pusher:pong","data":"{}"}"#), Incoming::Pong));
}

#[test]
fn subscribe_takes_channel_auth_and_channel_data() {
    let text =
        r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":1}","channel":"presence-a"}}"#;
    let Incoming::Subscribe { channel, auth, channel_data, .. } = parse(text) else { panic!() };
    assert_eq!(channel, "presence-a");
    assert_eq!(auth.as_deref(), Some("k:s"));
    assert_eq!(channel_data.as_deref(), Some(r#"{"user_id":1}"#));

    let Incoming::Subscribe { channel, auth, channel_data, since } =
        parse(r#"{"event":"pusher:subscribe","data":{"channel":"news"}}"#)
    else {
        panic!()
    };
    assert_eq!((channel.as_str(), auth, channel_data, since), ("news", None, None, None));
}

#[test]
fn subscribe_may_ask_to_recover_since_a_position() {
    let text = r#"{"event":"pusher:subscribe","data":{"channel":"news","since":{"epoch":"ab12","offset":42}}}"#;
    let Incoming::Subscribe { since, .. } = parse(text) else { panic!() };
    assert_eq!(since, Some(Since { epoch: "ab12".into(), offset: 42 }));
    for bad in [
        r#"{"event":"pusher:subscribe","data":{"channel":"news","since":{"epoch":"ab12"}}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"news","since":{"epoch":"ab12","offset":-1}}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"news","since":{"epoch":1,"offset":1}}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"news","since":"12"}}"#,
    ] {
        assert!(parse_incoming(bad).is_err(), "{bad}");
    }
}

#[test]
fn data_sent_as_a_json_string_is_accepted_like_an_object() {
    let text = r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-x\",\"auth\":\"k:s\"}"}"#;
    let Incoming::Subscribe { channel, auth, .. } = parse(text) else { panic!() };
    assert_eq!((channel.as_str(), auth.as_deref()), ("private-x", Some("k:s")));
    let Incoming::Unsubscribe { channel } = parse(r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"a\"}"}"#)
    else {
        panic!()
    };
    assert_eq!(channel, "a");
}

#[test]
fn unsubscribe_and_signin_take_their_fields() {
    let Incoming::Unsubscribe { channel } = parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"news"}}"#) else {
        panic!()
    };
    assert_eq!(channel, "news");
    let text = r#"{"event":"pusher:signin","data":{"auth":"k:sig","user_data":"{\"id\":\"1\"}"}}"#;
    let Incoming::Signin { auth, user_data } = parse(text) else { panic!() };
    assert_eq!((auth.as_str(), user_data.as_str()), ("k:sig", r#"{"id":"1"}"#));
}

#[test]
fn client_events_keep_their_data_verbatim() {
    let text = r#"{"event":"client-typing","channel":"private-chat","data":{ "b" : [1, 2.50], "a":"\u00e9" }}"#;
    let Incoming::ClientEvent { event, channel, data } = parse(text) else { panic!() };
    assert_eq!((event.as_str(), channel.as_str()), ("client-typing", "private-chat"));
    assert_eq!(data.get(), r#"{ "b" : [1, 2.50], "a":"\u00e9" }"#);

    let Incoming::ClientEvent { data, .. } = parse(r#"{"event":"client-x","channel":"c","data":"text"}"#) else {
        panic!()
    };
    assert_eq!(data.get(), r#""text""#);
    let Incoming::ClientEvent { data, .. } = parse(r#"{"channel":"c","event":"client-x"}"#) else { panic!() };
    assert_eq!(data.get(), "null");
}

#[test]
fn other_events_are_reported_by_name() {
    for event in ["pusher:unknown", "my-event", "pusher_internal:subscription_succeeded", "client"] {
        let Incoming::Other { event: got } = parse(&format!(r#"{{"event":"{event}","channel":"c","data":{{}}}}"#))
        else {
            panic!("{event}")
        };
        assert_eq!(got, event);
    }
}

#[test]
fn escaped_event_names_are_unescaped() {
    assert!(matches!(parse(r#"{"event":"pusher:p\u0069ng"}"#), Incoming::Ping));
}

#[test]
fn text_that_is_not_json_is_refused_as_such() {
    for text in ["", "ping", "{", r#"{"event":"pusher:ping""#, "{} x", "\u{feff}{}"] {
        assert!(matches!(parse_incoming(text), Err(ProtocolError::NotJson(_))), "{text:?}");
    }
}

#[test]
fn json_of_the_wrong_shape_is_malformed() {
    for text in ["[]", "1", "\"pusher:ping\"", "null", r#"{"event":1}"#, r#"{"event":"client-a","channel":2}"#] {
        assert!(matches!(parse_incoming(text), Err(ProtocolError::Malformed(_))), "{text:?}");
    }
    let duplicate = parse_incoming(r#"{"event":"pusher:ping","event":"pusher:pong"}"#).unwrap_err();
    assert!(duplicate.to_string().contains("duplicate field"), "{duplicate}");
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        ("{}", ProtocolError::NoEvent),
        (r#"{"event":null}"#, ProtocolError::NoEvent),
        (r#"{"event":"pusher:subscribe"}"#, missing("pusher:subscribe", "data")),
        (r#"{"event":"pusher:subscribe","data":null}"#, missing("pusher:subscribe", "data")),
        (r#"{"event":"pusher:subscribe","data":{}}"#, missing("pusher:subscribe", "channel")),
        (r#"{"event":"pusher:unsubscribe","data":{"auth":"x"}}"#, missing("pusher:unsubscribe", "channel")),
        (r#"{"event":"pusher:signin","data":{"auth":"x"}}"#, missing("pusher:signin", "user_data")),
        (r#"{"event":"pusher:signin","data":{"user_data":"{}"}}"#, missing("pusher:signin", "auth")),
        (r#"{"event":"client-x","data":{}}"#, missing("client-x", "channel")),
    ];
    for (text, want) in cases {
        assert_eq!(parse_incoming(text).unwrap_err(), want, "{text}");
    }
    assert_eq!(missing("pusher:subscribe", "channel").to_string(), "pusher:subscribe needs a channel");
}

#[test]
fn data_of_the_wrong_type_is_invalid() {
    for text in [
        r#"{"event":"pusher:subscribe","data":[1]}"#,
        r#"{"event":"pusher:subscribe","data":"not json"}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":5}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"p","channel_data":{"user_id":1}}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"p","auth":false}}"#,
        r#"{"event":"pusher:signin","data":{"auth":"a","user_data":{"id":"1"}}}"#,
    ] {
        let err = parse_incoming(text).unwrap_err();
        assert!(matches!(err, ProtocolError::InvalidData { .. }), "{text}: {err:?}");
    }
}

fn missing(event: &str, field: &'static str) -> ProtocolError {
    ProtocolError::MissingField { event: event.to_string(), field }
}
