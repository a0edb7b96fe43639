//! Verifies that API bodies become the events they ask for, as Pusher's
//! SDKs send them, and that each limit is enforced with the right status.

use super::*;

fn limits() -> AppLimits {
    AppLimits::default()
}

fn trigger(body: &str) -> Result<TriggerRequest, ApiBodyError> {
    parse_trigger_event(body.as_bytes(), &limits())
}

fn batch(body: &str) -> Result<Vec<TriggerRequest>, ApiBodyError> {
    parse_batch_events(body.as_bytes(), &limits())
}

#[test]
fn the_documented_example_body_parses() {
    let request = trigger(r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#).unwrap();
    assert_eq!(
        request,
        TriggerRequest {
            name: "foo".into(),
            data: r#"{"some":"data"}"#.into(),
            channels: vec!["project-3".into()],
            socket_id: None,
            info: None,
        }
    );
}

#[test]
fn a_single_channel_socket_id_and_info_are_taken() {
    let request =
        trigger(r#"{"name":"e","channel":"presence-a","data":"x","socket_id":"123.456","info":"user_count"}"#).unwrap();
    assert_eq!(request.channels, ["presence-a"]);
    assert_eq!(request.socket_id.as_deref(), Some("123.456"));
    assert_eq!(request.info.as_deref(), Some("user_count"));
    // Null optional fields are absent fields; unknown fields are ignored.
    let request = trigger(r#"{"name":"e","channel":"a","data":"x","socket_id":null,"info":null,"extra":[1]}"#).unwrap();
    assert_eq!((request.socket_id, request.info), (None, None));
}

#[test]
fn data_that_is_not_a_string_is_taken_as_its_json_text() {
    assert_eq!(trigger(r#"{"name":"e","channel":"a","data":{"some": "data"}}"#).unwrap().data, r#"{"some": "data"}"#);
    assert_eq!(trigger(r#"{"name":"e","channel":"a","data":42}"#).unwrap().data, "42");
    assert_eq!(trigger(r#"{"name":"e","channel":"a","data":"caf\u00e9 \"q\""}"#).unwrap().data, "café \"q\"");
}

#[test]
fn server_to_user_channels_may_be_published_to() {
    let request = trigger(r##"{"name":"e","channel":"#server-to-user-42","data":"x"}"##).unwrap();
    assert_eq!(request.channels, ["#server-to-user-42"]);
}

#[test]
fn duplicate_channels_are_published_to_once() {
    let request = trigger(r#"{"name":"e","channels":["a","b","a","b","c"],"data":"x"}"#).unwrap();
    assert_eq!(request.channels, ["a", "b", "c"]);
}

#[test]
fn missing_fields_are_named() {
    assert_eq!(trigger(r#"{"channel":"a","data":"x"}"#), Err(ApiBodyError::MissingField("name")));
    assert_eq!(trigger(r#"{"name":"e","channel":"a"}"#), Err(ApiBodyError::MissingField("data")));
    assert_eq!(trigger(r#"{"name":"e","channel":"a","data":null}"#), Err(ApiBodyError::MissingField("data")));
    assert_eq!(trigger(r#"{"name":"e","data":"x"}"#), Err(ApiBodyError::MissingField("channels")));
    assert_eq!(
        trigger(r#"{"name":"e","channel":"a","channels":["b"],"data":"x"}"#),
        Err(ApiBodyError::ChannelAndChannels)
    );
    assert_eq!(trigger(r#"{"name":"e","channels":[],"data":"x"}"#), Err(ApiBodyError::NoChannels));
}

#[test]
fn malformed_bodies_are_refused_with_400() {
    for body in [
        "",
        "x",
        "[]",
        r#"["e"]"#,
        "null",
        r#"{"name":1,"channel":"a","data":"x"}"#,
        r#"{"name":"e","channels":"a","data":"x"}"#,
        r#"{"name":"e","channel":"a","data":"x","info":["user_count"]}"#,
        r#"{"name":"e","channel":"a","data":"x"} trailing"#,
    ] {
        let err = trigger(body).unwrap_err();
        assert!(matches!(err, ApiBodyError::Malformed(_)), "{body:?}: {err:?}");
        assert_eq!(err.status(), 400);
    }
    let err = parse_trigger_event(b"{\"name\":\"\xff\"}", &limits()).unwrap_err();
    assert_eq!(err, ApiBodyError::Malformed("body is not UTF-8".into()));
}

#[test]
fn channel_limits_are_enforced() {
    let names: Vec<String> = (0..101).map(|i| format!("\"c{i}\"")).collect();
    let body = format!(r#"{{"name":"e","data":"x","channels":[{}]}}"#, names.join(","));
    assert_eq!(trigger(&body), Err(ApiBodyError::TooManyChannels { count: 101, max: 100 }));
    let body = format!(r#"{{"name":"e","data":"x","channels":[{}]}}"#, names[..100].join(","));
    assert_eq!(trigger(&body).unwrap().channels.len(), 100);

    let err = trigger(r#"{"name":"e","channels":["ok","bad name"],"data":"x"}"#).unwrap_err();
    assert_eq!(
        err,
        ApiBodyError::BadChannel { channel: "bad name".into(), reason: NameError::InvalidChar { ch: ' ', at: 3 } }
    );
    assert_eq!(err.status(), 400);
    let long = "a".repeat(165);
    let err = trigger(&format!(r#"{{"name":"e","channel":"{long}","data":"x"}}"#)).unwrap_err();
    assert!(
        matches!(err, ApiBodyError::BadChannel { reason: NameError::TooLong { len: 165, max: 164 }, .. }),
        "{err:?}"
    );
}

#[test]
fn event_names_are_bounded() {
    assert_eq!(trigger(r#"{"name":"","channel":"a","data":"x"}"#), Err(ApiBodyError::EmptyName));
    let ok = format!(r#"{{"name":"{}","channel":"a","data":"x"}}"#, "é".repeat(200));
    assert!(trigger(&ok).is_ok());
    let long = format!(r#"{{"name":"{}","channel":"a","data":"x"}}"#, "é".repeat(201));
    assert_eq!(trigger(&long), Err(ApiBodyError::NameTooLong { len: 201, max: 200 }));
}

#[test]
fn data_over_the_payload_limit_answers_413() {
    let at_limit = format!(r#"{{"name":"e","channel":"a","data":"{}"}}"#, "x".repeat(10 * 1024));
    assert_eq!(trigger(&at_limit).unwrap().data.len(), 10240);
    let over = format!(r#"{{"name":"e","channel":"a","data":"{}"}}"#, "x".repeat(10 * 1024 + 1));
    let err = trigger(&over).unwrap_err();
    assert_eq!(err, ApiBodyError::DataTooLarge { len: 10241, max: 10240 });
    assert_eq!(err.status(), 413);
    // The limit is on the data as delivered, after JSON unescaping.
    let small = AppLimits { max_event_payload_bytes: 2, ..AppLimits::default() };
    assert!(parse_trigger_event(br#"{"name":"e","channel":"a","data":"\u00e9"}"#, &small).is_ok());
    assert!(parse_trigger_event(br#"{"name":"e","channel":"a","data":"abc"}"#, &small).is_err());
}

#[test]
fn socket_ids_must_look_like_socket_ids() {
    for bad in ["", "123", "1.2.3", "a.b", " 1.2"] {
        let body = format!(r#"{{"name":"e","channel":"a","data":"x","socket_id":"{bad}"}}"#);
        assert_eq!(trigger(&body), Err(ApiBodyError::BadSocketId(bad.into())), "{bad:?}");
    }
}

#[test]
fn batches_parse_each_event_with_its_channel() {
    let events = batch(
        r#"{"batch":[{"name":"a","channel":"c1","data":"1"},{"name":"b","channel":"presence-x","data":{"k":1},"socket_id":"1.2","info":"user_count"}]}"#,
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].name.as_str(), events[0].channels.as_slice(), events[0].data.as_str()),
        ("a", &["c1".to_string()][..], "1")
    );
    assert_eq!(events[1].data, r#"{"k":1}"#);
    assert_eq!(events[1].socket_id.as_deref(), Some("1.2"));
    assert_eq!(batch(r#"{"batch":[]}"#).unwrap(), []);
}

#[test]
fn batch_limits_and_errors_name_the_event_at_fault() {
    let item = r#"{"name":"e","channel":"c","data":"x"}"#;
    let ten = [item; 10].join(",");
    assert_eq!(batch(&format!(r#"{{"batch":[{ten}]}}"#)).unwrap().len(), 10);
    let eleven = [item; 11].join(",");
    assert_eq!(batch(&format!(r#"{{"batch":[{eleven}]}}"#)), Err(ApiBodyError::BatchTooLarge { count: 11, max: 10 }));

    let err = batch(r#"{"batch":[{"name":"e","channel":"c","data":"x"},{"name":"e","data":"x"}]}"#).unwrap_err();
    assert_eq!(err, ApiBodyError::InBatch { index: 1, source: Box::new(ApiBodyError::MissingField("channel")) });
    assert_eq!(err.to_string(), "batch[1]: missing channel");

    let err = batch(r#"{"batch":[{"name":"e","channels":["c"],"data":"x"}]}"#).unwrap_err();
    assert!(
        matches!(&err, ApiBodyError::InBatch { index: 0, source } if matches!(**source, ApiBodyError::Malformed(_))),
        "{err:?}"
    );

    let big = format!(r#"{{"batch":[{{"name":"e","channel":"c","data":"{}"}}]}}"#, "x".repeat(10241));
    assert_eq!(batch(&big).unwrap_err().status(), 413);

    assert_eq!(batch("{}"), Err(ApiBodyError::MissingField("batch")));
    assert!(matches!(batch(r#"{"batch":{}}"#), Err(ApiBodyError::Malformed(_))));
    assert!(matches!(batch(r#"{"batch":[1]}"#), Err(ApiBodyError::InBatch { index: 0, .. })));
}

#[test]
fn batch_size_follows_the_apps_limit() {
    let one = AppLimits { max_batch_size: 1, ..AppLimits::default() };
    let body = br#"{"batch":[{"name":"e","channel":"c","data":"x"},{"name":"e","channel":"c","data":"x"}]}"#;
    assert_eq!(parse_batch_events(body, &one), Err(ApiBodyError::BatchTooLarge { count: 2, max: 1 }));
}
