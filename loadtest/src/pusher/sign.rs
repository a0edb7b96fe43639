//! Pusher signatures: the signed query of an HTTP API request (`auth_signature` over the method,
//! the path and the sorted query) and the `auth` token of a private channel subscription
//! (`key:HMAC-SHA256(secret, socket_id:channel)`), both hex-encoded as Pusher documents them.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// The `auth_version` Pusher's HTTP API expects.
pub const AUTH_VERSION: &str = "1.0";

/// Lower-case hex MD5 of a request body: the `body_md5` query parameter.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Lower-case hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The complete query string of a signed API request with a body (`POST /apps/{id}/events`):
/// `auth_key`, `auth_timestamp` (Unix seconds), `auth_version` and `body_md5`, in the sorted
/// order the signature covers, then `auth_signature` = hex HMAC-SHA256(secret,
/// "METHOD\nPATH\nsorted query").
pub fn signed_query(key: &str, secret: &str, method: &str, path: &str, body: &[u8], timestamp: u64) -> String {
    let md5 = body_md5(body);
    let query = format!("auth_key={key}&auth_timestamp={timestamp}&auth_version={AUTH_VERSION}&body_md5={md5}");
    let signature = hmac_hex(secret, format!("{method}\n{path}\n{query}").as_bytes());
    format!("{query}&auth_signature={signature}")
}

/// The `auth` field of a private channel subscription: `key:hex(HMAC-SHA256(secret,
/// "socket_id:channel"))`.
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    format!("{key}:{}", hmac_hex(secret, format!("{socket_id}:{channel}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of Pusher's documented worked examples.
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn api_signature_matches_the_pusher_worked_example() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body), "ec365a775a4cd0599faeb73354201b6f");
        let query = signed_query(KEY, SECRET, "POST", "/apps/3/events", body, 1353088179);
        assert_eq!(
            query,
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn private_channel_auth_matches_the_pusher_worked_example() {
        assert_eq!(
            channel_auth(KEY, SECRET, "1234.1234", "private-foobar"),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }
}
