//! Subscription and sign-in signatures: HMAC-SHA256 with the app's secret,
//! hex-encoded, checked in constant time.
//!
//! An auth string is `key:signature`. The string signed is
//! `socket_id:channel` for private channels, `socket_id:channel:channel_data`
//! for presence channels (the `channel_data` exactly as the client sent it)
//! and `socket_id::user::user_data` for `pusher:signin`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The lowercase hex HMAC-SHA256 of `string_to_sign` under `secret`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    mac(secret, string_to_sign.as_bytes()).map(hex::encode).unwrap_or_default()
}

/// Whether `signature` (hex, either case) is the HMAC-SHA256 of `message`
/// under `secret`. The comparison takes the same time wherever the first
/// wrong byte is, so a client cannot find a valid signature byte by byte.
pub fn verify_signature(secret: &str, message: &[u8], signature: &str) -> bool {
    match (mac(secret, message), hex::decode(signature)) {
        (Some(expected), Ok(given)) => expected.ct_eq(&given).into(),
        _ => false,
    }
}

/// The `auth` a client must send to subscribe socket `socket_id` to
/// `channel`: `key:hexsig`, signing `channel_data` too when given (presence).
pub fn channel_auth_string(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    format!("{key}:{}", sign(secret, &channel_string(socket_id, channel, channel_data)))
}

/// Whether `auth` authorizes socket `socket_id` on `channel`: it must be
/// `key:hexsig` with this app's key and the signature over
/// `socket_id:channel` (plus `:channel_data` when given).
pub fn verify_channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    verify_auth(key, secret, &channel_string(socket_id, channel, channel_data), auth)
}

/// The `auth` a client must send with `pusher:signin` for `user_data`.
pub fn user_auth_string(key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    format!("{key}:{}", sign(secret, &user_string(socket_id, user_data)))
}

/// Whether `auth` signs socket `socket_id` in with `user_data`: `key:hexsig`
/// with this app's key, over `socket_id::user::user_data`.
pub fn verify_user_auth(key: &str, secret: &str, socket_id: &str, user_data: &str, auth: &str) -> bool {
    verify_auth(key, secret, &user_string(socket_id, user_data), auth)
}

fn verify_auth(key: &str, secret: &str, string_to_sign: &str, auth: &str) -> bool {
    // The key is public (it is in every client's URL), so comparing it
    // directly leaks nothing; only the signature needs constant time.
    match auth.split_once(':') {
        Some((given_key, signature)) if given_key == key => {
            verify_signature(secret, string_to_sign.as_bytes(), signature)
        }
        _ => false,
    }
}

fn channel_string(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

fn user_string(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// The 32-byte MAC. HMAC takes keys of any length, so this is never `None`;
/// the `Option` keeps the code free of panics, and a verification fails
/// rather than compare against nothing.
fn mac(secret: &str, message: &[u8]) -> Option<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    //! Verifies that signatures match the worked examples in Pusher's
    //! "auth signatures" documentation and that anything else is refused.

    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const SOCKET: &str = "1234.1234";
    const PRIVATE_AUTH: &str = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";

    #[test]
    fn private_channel_signature_matches_the_documented_example() {
        assert_eq!(channel_auth_string(KEY, SECRET, SOCKET, "private-foobar", None), PRIVATE_AUTH);
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, PRIVATE_AUTH));
    }

    #[test]
    fn presence_channel_signatures_match_the_documented_examples() {
        // The docs' example prints this signature, which is over the
        // "Mr. Pusher" data of older versions of the same page...
        let pusher = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
        let auth = "278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c";
        assert_eq!(channel_auth_string(KEY, SECRET, SOCKET, "presence-foobar", Some(pusher)), auth);
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", Some(pusher), auth));
        // ...while the page now shows "Mr. Channels", whose signature other
        // implementations (and a plain HMAC) agree on.
        let channels = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let auth = "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", Some(channels), auth));
    }

    #[test]
    fn user_signature_matches_the_documented_example() {
        let auth = "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
        assert_eq!(user_auth_string(KEY, SECRET, SOCKET, r#"{"id":"12345"}"#), auth);
        assert!(verify_user_auth(KEY, SECRET, SOCKET, r#"{"id":"12345"}"#, auth));
        assert!(!verify_user_auth(KEY, SECRET, SOCKET, r#"{"id":"12346"}"#, auth));
        // A channel signature is no sign-in signature, and the reverse.
        assert!(!verify_user_auth(KEY, SECRET, SOCKET, "private-foobar", PRIVATE_AUTH));
    }

    #[test]
    fn a_signature_for_anything_else_is_refused() {
        let verify = |key, socket, channel, data, auth| verify_channel_auth(key, SECRET, socket, channel, data, auth);
        assert!(!verify(KEY, "1234.1235", "private-foobar", None, PRIVATE_AUTH));
        assert!(!verify(KEY, SOCKET, "private-foobaz", None, PRIVATE_AUTH));
        assert!(!verify(KEY, SOCKET, "private-foobar", Some("{}"), PRIVATE_AUTH));
        assert!(!verify("other-key", SOCKET, "private-foobar", None, PRIVATE_AUTH));
        assert!(!verify_channel_auth(KEY, "other-secret", SOCKET, "private-foobar", None, PRIVATE_AUTH));
    }

    #[test]
    fn malformed_auth_strings_are_refused() {
        let sig = &PRIVATE_AUTH[KEY.len() + 1..];
        for auth in [
            "",
            ":",
            KEY,
            sig,
            &format!("{KEY}:"),
            &format!("{KEY}:{}", &sig[..63]),
            &format!("{KEY}:{sig}00"),
            &format!("{KEY}:{}", sig.replace('a', "g")),
            &format!("{KEY}::{sig}"),
            &format!(":{sig}"),
            &format!("{KEY} :{sig}"),
        ] {
            assert!(!verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, auth), "{auth:?}");
        }
        // Hex digits are accepted in either case: it is the same signature.
        let upper = format!("{KEY}:{}", sig.to_uppercase());
        assert!(verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", None, &upper));
    }

    #[test]
    fn sign_is_lowercase_hex_of_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_signature(
            "Jefe",
            b"what do ya want for nothing?",
            &sign("Jefe", "what do ya want for nothing?")
        ));
        assert!(!verify_signature("Jefe", b"what do ya want for nothing?", "zz"));
    }
}
