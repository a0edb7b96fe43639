use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"a secret of the right length for HS256!!";
const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/tokens/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/tokens/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("../../tests/fixtures/tokens/ec-private.pem");
const EC_PUBLIC: &str = include_str!("../../tests/fixtures/tokens/ec-public.pem");

fn hs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET).unwrap()).unwrap()
}

fn in_secs(delta: i64) -> u64 {
    now_secs().checked_add_signed(delta).unwrap()
}

#[test]
fn a_valid_token_gives_its_user_expiry_and_rooms() {
    let verifier = TokenVerifier::hs256(SECRET).unwrap();
    let token = hs256(json!({"sub": "alice", "exp": in_secs(60), "rooms": ["lobby", "team-*"]}));
    let claims = verifier.verify(&token).unwrap();
    assert_eq!(claims.user_id, "alice");
    assert!(claims.expires_at.is_some_and(|exp| exp > now_secs()));
    assert!(claims.may_join("lobby") && claims.may_join("team-red"));
    assert!(!claims.may_join("lobby2") && !claims.may_join("team"));
    let open = verifier.verify(&hs256(json!({"sub": "bob", "channels": ["x"]}))).unwrap();
    assert_eq!((open.expires_at, open.rooms.as_deref()), (None, Some(&["x".to_owned()][..])));
    assert!(verifier.verify(&hs256(json!({"sub": "carol"}))).unwrap().may_join("anything"));
}

#[test]
fn expired_premature_forged_and_malformed_tokens_are_refused() {
    let verifier = TokenVerifier::hs256(SECRET).unwrap();
    assert_eq!(verifier.verify(&hs256(json!({"sub": "a", "exp": in_secs(-5)}))), Err(TokenError::Expired));
    assert_eq!(verifier.verify(&hs256(json!({"sub": "a", "exp": now_secs()}))), Err(TokenError::Expired));
    assert_eq!(verifier.verify(&hs256(json!({"sub": "a", "nbf": in_secs(60)}))), Err(TokenError::NotYetValid));
    let other_key = EncodingKey::from_secret(b"another secret entirely, also long").unwrap();
    let forged = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &json!({"sub": "a"}), &other_key).unwrap();
    assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
    let hs384 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &json!({"sub": "a"}),
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    assert_eq!(verifier.verify(&hs384), Err(TokenError::BadSignature), "only the key's algorithm");
    for bad in ["", "abc", "a.b.c", &hs256(json!({"exp": in_secs(60)})), &hs256(json!({"sub": 5}))] {
        assert!(matches!(verifier.verify(bad), Err(TokenError::Malformed(_))), "{bad:?}");
    }
    // "alg": "none" with no signature.
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(r#"{"sub":"a"}"#));
    assert!(verifier.verify(&unsigned).is_err());
}

fn b64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn rs256_and_es256_tokens_verify_with_the_public_key() {
    let claims = json!({"sub": "dave", "exp": in_secs(60)});
    let rsa = TokenVerifier::public_key_pem(RSA_PUBLIC.as_bytes()).unwrap();
    let ec = TokenVerifier::public_key_pem(EC_PUBLIC.as_bytes()).unwrap();
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let es256 = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(rsa.verify(&rs256).unwrap().user_id, "dave");
    assert_eq!(ec.verify(&es256).unwrap().user_id, "dave");
    assert_eq!(rsa.verify(&es256), Err(TokenError::BadSignature));
    assert_eq!(ec.verify(&rs256), Err(TokenError::BadSignature));
    // An HS256 token "signed" with the public key's text must not pass (key confusion).
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(rsa.verify(&confused), Err(TokenError::BadSignature));
    assert!(TokenVerifier::public_key_pem(b"not a key").is_err());
    assert!(matches!(TokenVerifier::hs256(b""), Err(TokenKeyError::EmptySecret)));
}

#[test]
fn the_token_is_found_in_the_query_the_header_or_a_subprotocol() {
    let query = Request::new("GET", "/chat/lobby?token=abc.def.ghi");
    assert_eq!(token_in(&query), Some(("abc.def.ghi".into(), TokenCarrier::Query)));
    let header = Request::new("GET", "/chat").with_header("Authorization", "Bearer abc.def.ghi");
    assert_eq!(token_in(&header), Some(("abc.def.ghi".into(), TokenCarrier::Header)));
    let basic = Request::new("GET", "/chat").with_header("Authorization", "Basic Zm9vOmJhcg==");
    assert_eq!(token_in(&basic), None);
    let browser = Request::new("GET", "/chat").with_header("Sec-WebSocket-Protocol", "fanout.token, abc.def.ghi");
    assert_eq!(token_in(&browser), Some(("abc.def.ghi".into(), TokenCarrier::Subprotocol)));
    let no_marker = Request::new("GET", "/chat").with_header("Sec-WebSocket-Protocol", "abc.def.ghi");
    assert_eq!(token_in(&no_marker), None);
}
