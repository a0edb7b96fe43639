//! Verifies that apps files parse into apps with defaults filled in, and
//! that every mistake is reported with the line (and column) it is on.

use super::*;
use crate::pusher::webhook::WebhookKind;

const EXAMPLE: &str = r#"
[[app]]
id = "1"
key = "app-key"
secret = "app-secret"
client_events = true
allowed_origins = ["https://example.com"]
history_channels = ["chat-", "private-chat-"]
[app.limits]
max_connections = 10000
[[app.webhook]]
url = "http://127.0.0.1:8000/pusher/webhooks"
events = ["channel_occupied", "member_added"]

[[app]]
id = "2"
key = "other-key"
secret = "other-secret"
enabled = false
user_authentication = false
"#;

/// The error `text` gives, as text.
fn error(text: &str) -> String {
    Apps::from_toml_str(text).map(|_| ()).unwrap_err().to_string()
}

fn app(fields: &str) -> String {
    format!("[[app]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n{fields}")
}

#[test]
fn the_documented_example_parses_with_defaults_filled_in() {
    let apps = Apps::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(apps.len(), 2);
    let first = apps.by_key("app-key").unwrap();
    assert_eq!((first.id.as_str(), first.secret.as_str()), ("1", "app-secret"));
    assert!(first.enabled && first.client_events && first.user_authentication);
    assert_eq!(first.allowed_origins, ["https://example.com"]);
    assert_eq!(first.limits, AppLimits { max_connections: Some(10000), ..AppLimits::default() });
    assert_eq!(
        first.webhooks,
        [WebhookTarget {
            url: "http://127.0.0.1:8000/pusher/webhooks".into(),
            events: vec![WebhookKind::ChannelOccupied, WebhookKind::MemberAdded],
        }]
    );
    assert!(first.keeps_history("chat-lobby") && first.keeps_history("private-chat-x"));
    assert!(!first.keeps_history("presence-room") && !first.keeps_history("news"));
    let second = apps.by_id("2").unwrap();
    assert!(!second.enabled && !second.client_events && !second.user_authentication);
    assert!(second.keeps_history("anything"), "no history_channels: every channel");
    assert_eq!(second.limits, AppLimits::default());
}

#[test]
fn every_limit_can_be_set() {
    let text =
        app("[app.limits]\nmax_channel_name_length = 50\nmax_event_payload_bytes = 100\nmax_event_channels = 2\n\
         max_batch_size = 3\nmax_presence_members = 4\nmax_presence_member_bytes = 5\n\
         client_events_per_second = 6\nmax_event_name_length = 7\n");
    let limits = Apps::from_toml_str(&text).unwrap().by_id("1").unwrap().limits.clone();
    let want = AppLimits {
        max_connections: None,
        max_channel_name_length: 50,
        max_event_payload_bytes: 100,
        max_event_channels: 2,
        max_batch_size: 3,
        max_presence_members: 4,
        max_presence_member_bytes: 5,
        client_events_per_second: 6,
        max_event_name_length: 7,
    };
    assert_eq!(limits, want);
}

#[test]
fn unknown_fields_are_named_with_their_line() {
    let text = "[[app]]\nid = \"1\"\nkey = \"k\"\nsecrt = \"s\"\n";
    let message = error(text);
    assert!(message.starts_with("line 4, column 1: unknown field `secrt`, expected one of"), "{message}");
    assert!(message.contains("`secret`"), "{message}");
    let message = error(&app("[app.limits]\nmax_conections = 5\n"));
    assert!(message.starts_with("line 6") && message.contains("max_conections"), "{message}");
    let message = error(&app("[[app.webhook]]\nurl = \"http://h/\"\nevent = []\n"));
    assert!(message.starts_with("line 7") && message.contains("`event`"), "{message}");
    let message = error("[[apps]]\nid = \"1\"\n");
    assert!(message.starts_with("line 1") && message.contains("apps"), "{message}");
}

#[test]
fn syntax_errors_and_wrong_types_name_their_line() {
    let message = error("[[app]]\nid = \"1\nkey = \"k\"\n");
    assert!(message.starts_with("line 2"), "{message}");
    let message = error(&app("client_events = \"yes\"\n"));
    assert!(message.starts_with("line 5") && message.contains("bool"), "{message}");
    let message = error("[[app]]\nid = 1\nkey = \"k\"\nsecret = \"s\"\n");
    assert!(message.starts_with("line 2") && message.contains("string"), "{message}");
}

#[test]
fn missing_required_fields_are_named() {
    let message = error("\n[[app]]\nid = \"1\"\nkey = \"k\"\n");
    assert!(message.contains("missing field `secret`"), "{message}");
    assert!(message.starts_with("line 2"), "{message}");
}

#[test]
fn invalid_limits_webhooks_and_kinds_name_their_line() {
    let message = error(&app("[app.limits]\nmax_batch_size = 0\n"));
    assert!(message.starts_with("line 6") && message.contains("at least 1"), "{message}");
    let message = error(&app("[app.limits]\nmax_connections = 0\n"));
    assert!(message.starts_with("line 6") && message.contains("at least 1"), "{message}");
    let message = error(&app("[app.limits]\nmax_event_channels = -1\n"));
    assert!(message.starts_with("line 6"), "{message}");
    for url in ["https://h/hook", "ftp://h", "http://", "http:///path", "h/hook", "http://h/a b"] {
        let message = error(&app(&format!("[[app.webhook]]\nurl = \"{url}\"\n")));
        assert!(message.starts_with("line 6") && message.contains("http://"), "{url}: {message}");
    }
    let message =
        error(&app("[[app.webhook]]\nurl = \"http://h/\"\nevents = [\"channel_occupied\", \"channel_ocupied\"]\n"));
    assert!(message.starts_with("line 7") && message.contains("channel_ocupied"), "{message}");
}

#[test]
fn duplicate_ids_and_keys_point_at_the_second_one() {
    let text = "[[app]]\nid = \"1\"\nkey = \"a\"\nsecret = \"s\"\n\n[[app]]\nid = \"1\"\nkey = \"b\"\nsecret = \"s\"\n";
    assert_eq!(error(text), "line 7, column 6: another app already has this id");
    let text = "[[app]]\nid = \"1\"\nkey = \"a\"\nsecret = \"s\"\n[[app]]\nid = \"2\"\nkey = \"a\"\nsecret = \"s\"\n";
    assert_eq!(error(text), "line 7, column 7: another app already has this key");
}

#[test]
fn empty_or_unsafe_credentials_point_at_their_line() {
    assert_eq!(error("[[app]]\nid = \"1\"\nkey = \"k\"\nsecret = \"\"\n"), "line 4, column 10: secret is empty");
    assert_eq!(error("[[app]]\nid = \"\"\nkey = \"k\"\nsecret = \"s\"\n"), "line 2, column 6: id is empty");
    assert!(error("[[app]]\nid = \"1\"\nkey = \"a/b\"\nsecret = \"s\"\n").starts_with("line 3, column 7: key may only"));
}

#[test]
fn a_file_without_apps_is_refused() {
    assert!(matches!(Apps::from_toml_str(""), Err(AppConfigError::NoApps)));
    assert!(matches!(Apps::from_toml_str("# nothing\n"), Err(AppConfigError::NoApps)));
}

#[test]
fn apps_built_in_code_are_checked_too() {
    assert!(Apps::new(vec![App::new("1", "a", "s"), App::new("2", "b", "s")]).is_ok());
    let err = Apps::new(vec![App::new("1", "a", "s"), App::new("2", "a", "s")]).unwrap_err();
    assert_eq!(err.to_string(), "app 2: another app already has this key");
    assert!(matches!(Apps::new(vec![]), Err(AppConfigError::NoApps)));
}

#[test]
fn files_are_read_and_their_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("fanout-apps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("apps.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(Apps::from_file(&good).unwrap().len(), 2);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[app]]\nid = \"1\"\nkey = \"k\"\nsecrt = \"s\"\n").unwrap();
    let message = Apps::from_file(&bad).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{}: line 4", bad.display())), "{message}");

    let missing = dir.join("missing.toml");
    let err = Apps::from_file(&missing).unwrap_err();
    assert!(matches!(err, AppConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&missing.display().to_string()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_origin_pattern_that_cannot_match_is_refused_at_its_line() {
    let text = "[[app]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\nallowed_origins = [\"https://a.org/path\"]\n";
    let error = Apps::from_toml_str(text).expect_err("a path in an origin").to_string();
    assert!(error.starts_with("line 5") && error.contains("https://a.org/path"), "{error}");
    let text = text.replace("https://a.org/path", "*.a.org");
    assert!(Apps::from_toml_str(&text).is_ok());
}
