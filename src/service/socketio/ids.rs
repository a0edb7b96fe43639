//! Engine.IO session ids and Socket.IO socket ids: unguessable, never
//! reused while the process lives, and recognizable by this process without
//! a table.
//!
//! An id is 15 bytes in URL-safe base64 (20 characters, the length the
//! reference server's ids have): a 6-byte counter, then the first 9 bytes
//! of an HMAC-SHA256 of it under a key drawn at start. The counter makes
//! ids unique; the tag makes them unguessable (a client that knows its own
//! id learns nothing about the next one) and lets [`is_socket_id`] tell a
//! socket's own room from a channel some app named, so per-socket rooms
//! stay out of channel lists and occupancy webhooks. The alphabet is a
//! subset of channel names' characters, so the HTTP API can name a
//! socket's room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Characters in an id.
pub(crate) const ID_LEN: usize = 20;

const COUNTER_BYTES: usize = 6;
const TAG_BYTES: usize = 9;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// URL-safe base64, which channel names and query strings take as is.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The process's key, drawn once. Should the kernel refuse randomness, ids
/// stay unique and recognizable but become guessable: said once in the log.
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        if let Err(e) = crate::sys::random_bytes(&mut key) {
            log::error!("no randomness for Socket.IO ids ({e}): they are unique but guessable");
            let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            key[..16].copy_from_slice(&seed.as_nanos().to_le_bytes());
            key[16..20].copy_from_slice(&std::process::id().to_le_bytes());
        }
        key
    })
}

fn tag(counter: &[u8]) -> [u8; TAG_BYTES] {
    // HMAC takes keys of any length: creating one cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(counter);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&full[..TAG_BYTES]);
    tag
}

/// A new id, never handed out before by this process.
pub(crate) fn fresh_id() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; COUNTER_BYTES + TAG_BYTES];
    bytes[..COUNTER_BYTES].copy_from_slice(&n.to_le_bytes()[..COUNTER_BYTES]);
    let tag = tag(&bytes[..COUNTER_BYTES]);
    bytes[COUNTER_BYTES..].copy_from_slice(&tag);
    let mut id = String::with_capacity(ID_LEN);
    for chunk in bytes.chunks(3) {
        let group = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            id.push(char::from(ALPHABET[(group >> shift & 63) as usize]));
        }
    }
    id
}

/// True when `name` is an id [`fresh_id`] made in this process (a socket's
/// own room, or a session id).
pub(crate) fn is_socket_id(name: &str) -> bool {
    if name.len() != ID_LEN {
        return false;
    }
    let mut bytes = [0u8; COUNTER_BYTES + TAG_BYTES];
    for (group, chunk) in name.as_bytes().chunks(4).enumerate() {
        let mut value = 0u32;
        for &c in chunk {
            let Some(sextet) = ALPHABET.iter().position(|&a| a == c) else { return false };
            value = value << 6 | sextet as u32;
        }
        bytes[group * 3..group * 3 + 3].copy_from_slice(&value.to_be_bytes()[1..]);
    }
    tag(&bytes[..COUNTER_BYTES]) == bytes[COUNTER_BYTES..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_channel_names_this_process_recognizes() {
        let (a, b) = (fresh_id(), fresh_id());
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), ID_LEN);
            assert!(crate::chat::is_room_name(id), "{id} is a valid channel and room name");
            assert!(is_socket_id(id));
        }
    }

    #[test]
    fn names_it_did_not_make_are_not_ids() {
        let id = fresh_id();
        let mut forged = id.clone().into_bytes();
        forged[ID_LEN - 1] = if forged[ID_LEN - 1] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ASCII");
        for name in [&forged, "lobby", "AAAAAAAAAAAAAAAAAAAA", "é".repeat(10).as_str(), &id[1..]] {
            assert!(!is_socket_id(name), "{name}");
        }
    }
}
