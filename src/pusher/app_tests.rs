//! Verifies that apps carry Pusher's defaults, are found by key and id,
//! check origins and webhook filters, and never print their secret.

use super::*;

#[test]
fn defaults_are_pushers() {
    let limits = AppLimits::default();
    assert_eq!(limits.max_connections, None);
    assert_eq!(limits.max_channel_name_length, 164);
    assert_eq!(limits.max_event_payload_bytes, 10240);
    assert_eq!(limits.max_event_channels, 100);
    assert_eq!(limits.max_batch_size, 10);
    assert_eq!(limits.max_presence_members, 100);
    assert_eq!(limits.max_presence_member_bytes, 1024);
    assert_eq!(limits.client_events_per_second, 10);
    assert_eq!(limits.max_event_name_length, 200);
    let app = App::new("1", "key", "secret");
    assert!(app.enabled && !app.client_events && app.user_authentication);
    assert!(app.allowed_origins.is_empty() && app.webhooks.is_empty());
}

#[test]
fn apps_are_found_by_key_and_by_id() {
    let apps = Apps::build(vec![App::new("1", "key-a", "s1"), App::new("2", "key-b", "s2")]).unwrap();
    assert_eq!(apps.by_key("key-b").map(|a| a.id.as_str()), Some("2"));
    assert_eq!(apps.by_id("1").map(|a| a.key.as_str()), Some("key-a"));
    assert!(apps.by_key("1").is_none() && apps.by_id("key-a").is_none());
    assert_eq!(apps.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!((apps.len(), apps.is_empty()), (2, false));

    let single = Apps::single(App::new("9", "k", "s"));
    assert_eq!(single.by_key("k").map(|a| a.id.as_str()), Some("9"));
    assert_eq!(single.by_id("9").map(|a| a.key.as_str()), Some("k"));
    assert_eq!(single.len(), 1);
}

#[test]
fn inconsistent_app_lists_name_the_app_and_the_problem() {
    let build = |apps: Vec<App>| Apps::build(apps).map(|_| ()).unwrap_err();
    assert_eq!(build(vec![App::new("", "k", "s")]), (0, Problem::EmptyId));
    assert_eq!(build(vec![App::new("1", "", "s")]), (0, Problem::EmptyKey));
    assert_eq!(build(vec![App::new("1", "k", "")]), (0, Problem::EmptySecret));
    assert_eq!(build(vec![App::new("1/2", "k", "s")]), (0, Problem::BadIdChars));
    assert_eq!(build(vec![App::new("1", "k?x", "s")]), (0, Problem::BadKeyChars));
    assert_eq!(build(vec![App::new("1", "a", "s"), App::new("1", "b", "s")]), (1, Problem::DuplicateId));
    assert_eq!(
        build(vec![App::new("1", "a", "s"), App::new("2", "b", "s"), App::new("3", "a", "s")]),
        (2, Problem::DuplicateKey)
    );
}

#[test]
fn origins_are_checked_only_when_listed() {
    let mut app = App::new("1", "k", "s");
    assert!(app.origin_allowed("https://anything.example"));
    app.allowed_origins = vec!["https://example.com".into()];
    assert!(app.origin_allowed("https://example.com"));
    assert!(app.origin_allowed("HTTPS://EXAMPLE.COM"));
    assert!(!app.origin_allowed("https://evil.example"));
    assert!(!app.origin_allowed("https://example.com.evil.example"));
    assert!(!app.origin_allowed(""));
    app.allowed_origins.push("*".into());
    assert!(app.origin_allowed("https://evil.example"));
}

#[test]
fn webhook_targets_filter_by_kind_unless_empty() {
    let all = WebhookTarget { url: "http://h/".into(), events: vec![] };
    let some = WebhookTarget { url: "http://h/".into(), events: vec![WebhookKind::MemberAdded] };
    assert!(all.wants(WebhookKind::CacheMiss) && all.wants(WebhookKind::ChannelOccupied));
    assert!(some.wants(WebhookKind::MemberAdded) && !some.wants(WebhookKind::MemberRemoved));
}

#[test]
fn debug_output_hides_the_secret() {
    let app = App::new("1", "public-key", "very-secret-value");
    let shown = format!("{app:?}");
    assert!(shown.contains("public-key") && shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    let apps = Apps::single(app);
    assert!(!format!("{apps:?}").contains("very-secret-value"));
}
