//! Verifies that API requests signed the way Pusher's SDKs sign them are
//! accepted, starting with the worked example of Pusher's HTTP API
//! reference, and that each broken part is refused with its reason.

use super::*;

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
const BODY: &[u8] = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
const TIMESTAMP: u64 = 1353088179;
const BODY_MD5: &str = "ec365a775a4cd0599faeb73354201b6f";
const SIGNATURE: &str = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

/// The worked example's query, decoded, with `changes` applied: a pair
/// whose value is `None` is removed, others are set or added.
fn example(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("auth_key", KEY),
        ("auth_timestamp", "1353088179"),
        ("auth_version", "1.0"),
        ("body_md5", BODY_MD5),
        ("auth_signature", SIGNATURE),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        if let Some(value) = value {
            params.push((name.to_string(), value.to_string()));
        }
    }
    params
}

fn verify(params: &[(String, String)], body: &[u8], now: u64) -> Result<(), ApiAuthError> {
    verify_api_request("POST", "/apps/3/events", params, body, KEY, SECRET, now)
}

/// `query` split and percent-decoded the simple way tests need.
fn decode_query(query: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                out.push(u8::from_str_radix(&s[at + 1..at + 3], 16).unwrap());
                at += 3;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    query.split('&').map(|pair| pair.split_once('=').unwrap()).map(|(k, v)| (unescape(k), unescape(v))).collect()
}

#[test]
fn the_documented_worked_example_verifies() {
    assert_eq!(body_md5(BODY), BODY_MD5);
    assert_eq!(verify(&example(&[]), BODY, TIMESTAMP), Ok(()));
    assert_eq!(verify(&example(&[]), BODY, TIMESTAMP + 600), Ok(()));
    assert_eq!(verify(&example(&[]), BODY, TIMESTAMP - 600), Ok(()));
    // The method's case does not matter: it is uppercased before signing.
    assert_eq!(verify_api_request("post", "/apps/3/events", &example(&[]), BODY, KEY, SECRET, TIMESTAMP), Ok(()));
}

#[test]
fn signing_reproduces_the_documented_query() {
    let no_params: [(&str, &str); 0] = [];
    let query = sign_api_request("POST", "/apps/3/events", &no_params, BODY, KEY, SECRET, TIMESTAMP);
    assert_eq!(
        query,
        format!(
            "auth_key={KEY}&auth_timestamp=1353088179&auth_version=1.0&body_md5={BODY_MD5}&auth_signature={SIGNATURE}"
        )
    );
}

#[test]
fn signed_get_requests_with_parameters_round_trip() {
    let params =
        [("filter_by_prefix", "presence-"), ("info", "user_count,subscription_count"), ("Odd Key", "a b&c=d/é")];
    let query = sign_api_request("GET", "/apps/3/channels", &params, b"", KEY, SECRET, 1_700_000_000);
    assert!(!query.contains("body_md5"), "{query}");
    assert!(query.contains("odd%20key=a%20b%26c%3Dd%2F%C3%A9"), "{query}");
    let decoded = decode_query(&query);
    assert_eq!(verify_api_request("GET", "/apps/3/channels", &decoded, b"", KEY, SECRET, 1_700_000_000), Ok(()));
    // Any order of parameters verifies: they are sorted before checking.
    let reversed: Vec<_> = decoded.iter().rev().cloned().collect();
    assert_eq!(verify_api_request("GET", "/apps/3/channels", &reversed, b"", KEY, SECRET, 1_700_000_000), Ok(()));
    // A different path or method is a different request.
    assert_eq!(
        verify_api_request("GET", "/apps/3/channel", &decoded, b"", KEY, SECRET, 1_700_000_000),
        Err(ApiAuthError::BadSignature)
    );
    assert_eq!(
        verify_api_request("POST", "/apps/3/channels", &decoded, b"", KEY, SECRET, 1_700_000_000),
        Err(ApiAuthError::BadSignature)
    );
}

#[test]
fn parameter_keys_are_lowercased_for_signing() {
    // Signed as `name=...` although sent as `Name=...`.
    let params = [("Name", "Something else")];
    let query = sign_api_request("GET", "/apps/3/channels", &params, b"", KEY, SECRET, TIMESTAMP);
    let mut sent = decode_query(&query);
    for (k, _) in sent.iter_mut() {
        if k == "name" {
            *k = "Name".to_string();
        }
    }
    assert_eq!(verify_api_request("GET", "/apps/3/channels", &sent, b"", KEY, SECRET, TIMESTAMP), Ok(()));
}

#[test]
fn an_empty_body_may_omit_body_md5_or_send_the_md5_of_nothing() {
    let empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
    assert_eq!(body_md5(b""), empty_md5);
    for body_md5_param in [None, Some(empty_md5)] {
        let mut params =
            vec![("auth_key", KEY.to_string()), ("auth_timestamp", "100".into()), ("auth_version", "1.0".into())];
        if let Some(md5) = body_md5_param {
            params.push(("body_md5", md5.into()));
        }
        let to_sign = string_to_sign("GET", "/apps/3/channels", params.iter().map(|(k, v)| (*k, v.as_str())));
        params.push(("auth_signature", auth::sign(SECRET, &to_sign)));
        assert_eq!(
            verify_api_request("GET", "/apps/3/channels", &params, b"", KEY, SECRET, 100),
            Ok(()),
            "{body_md5_param:?}"
        );
    }
}

#[test]
fn each_missing_parameter_is_named() {
    for name in ["auth_key", "auth_timestamp", "body_md5", "auth_signature"] {
        assert_eq!(verify(&example(&[(name, None)]), BODY, TIMESTAMP), Err(ApiAuthError::MissingParam(name)), "{name}");
    }
    // auth_version is optional; without it the signature no longer matches.
    assert_eq!(verify(&example(&[("auth_version", None)]), BODY, TIMESTAMP), Err(ApiAuthError::BadSignature));
}

#[test]
fn wrong_key_version_and_timestamps_are_refused() {
    assert_eq!(verify(&example(&[("auth_key", Some("other"))]), BODY, TIMESTAMP), Err(ApiAuthError::WrongKey));
    assert_eq!(verify(&example(&[("auth_version", Some("2.0"))]), BODY, TIMESTAMP), Err(ApiAuthError::BadVersion));
    for bad in ["", "soon", "1.5", "99999999999999999999"] {
        assert_eq!(
            verify(&example(&[("auth_timestamp", Some(bad))]), BODY, TIMESTAMP),
            Err(ApiAuthError::BadTimestamp),
            "{bad}"
        );
    }
    assert_eq!(verify(&example(&[]), BODY, TIMESTAMP + 601), Err(ApiAuthError::StaleTimestamp { skew_secs: -601 }));
    assert_eq!(verify(&example(&[]), BODY, TIMESTAMP - 601), Err(ApiAuthError::StaleTimestamp { skew_secs: 601 }));
    assert_eq!(
        verify(&example(&[]), BODY, u64::MAX),
        Err(ApiAuthError::StaleTimestamp { skew_secs: TIMESTAMP as i64 - i64::MAX })
    );
    let message = ApiAuthError::StaleTimestamp { skew_secs: -601 }.to_string();
    assert!(message.contains("-601 s") && message.contains("600 s"), "{message}");
}

#[test]
fn a_body_that_does_not_match_body_md5_is_refused() {
    let tampered = br#"{"name":"foo","channels":["project-4"],"data":"{\"some\":\"data\"}"}"#;
    assert_eq!(verify(&example(&[]), tampered, TIMESTAMP), Err(ApiAuthError::BodyMd5Mismatch));
    assert_eq!(verify(&example(&[]), b"", TIMESTAMP), Err(ApiAuthError::BodyMd5Mismatch));
    // An uppercase body_md5 passes the MD5 check, but it is not what was signed.
    let upper = BODY_MD5.to_uppercase();
    assert_eq!(verify(&example(&[("body_md5", Some(&upper))]), BODY, TIMESTAMP), Err(ApiAuthError::BadSignature));
}

#[test]
fn tampered_or_malformed_signatures_are_refused() {
    let flipped = format!("{}0", &SIGNATURE[..63]);
    for bad in [flipped.as_str(), "", "zz", &SIGNATURE[..62], &format!("{SIGNATURE}00")] {
        assert_eq!(
            verify(&example(&[("auth_signature", Some(bad))]), BODY, TIMESTAMP),
            Err(ApiAuthError::BadSignature),
            "{bad}"
        );
    }
    // An extra parameter the signer did not sign breaks the signature.
    let mut extra = example(&[]);
    extra.push(("channel".into(), "x".into()));
    assert_eq!(verify(&extra, BODY, TIMESTAMP), Err(ApiAuthError::BadSignature));
    assert_eq!(
        verify_api_request("POST", "/apps/3/events", &example(&[]), BODY, KEY, "wrong-secret", TIMESTAMP),
        Err(ApiAuthError::BadSignature)
    );
}

#[test]
fn repeated_authentication_parameters_are_refused() {
    let mut twice = example(&[]);
    twice.push(("auth_key".into(), KEY.into()));
    assert_eq!(verify(&twice, BODY, TIMESTAMP), Err(ApiAuthError::DuplicateParam("auth_key")));
    let mut twice = example(&[]);
    twice.push(("auth_signature".into(), SIGNATURE.into()));
    assert_eq!(verify(&twice, BODY, TIMESTAMP), Err(ApiAuthError::DuplicateParam("auth_signature")));
    assert_eq!(ApiAuthError::DuplicateParam("auth_key").status(), 401);
}
