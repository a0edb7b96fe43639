//! One chunk: the messages of one channel written by one commit, as a
//! single value. A commit then touches one row per channel it writes to,
//! not one per message: under load a batch carries hundreds of messages
//! over a few channels, and redb's copy-on-write pays per row inserted.
//!
//! Layout (little-endian): the newest message's wall-clock ms (u64), then
//! per message its offset (u64), wall-clock ms (u64), payload length (u32)
//! and payload.

/// Bytes before the first message.
const HEADER: usize = 8;
/// Bytes before each message's payload.
const ENTRY_HEADER: usize = 8 + 8 + 4;

/// Encodes `(offset, wall_ms, payload)` messages, in the order given.
pub(super) fn encode<'a>(messages: impl Iterator<Item = (u64, u64, &'a [u8])> + Clone) -> Vec<u8> {
    let (mut len, mut newest) = (HEADER, 0u64);
    for (_, wall, payload) in messages.clone() {
        len += ENTRY_HEADER + payload.len();
        newest = newest.max(wall);
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&newest.to_le_bytes());
    for (offset, wall, payload) in messages {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&wall.to_le_bytes());
        // A payload is bounded by the message size limit, far below 4 GiB.
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// The wall-clock ms of a chunk's newest message; `None` if it is malformed.
pub(super) fn newest(chunk: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(chunk.get(..HEADER)?.try_into().ok()?))
}

/// The chunk's messages as `(offset, wall_ms, payload)`; `None` if it is
/// malformed (cut short or with trailing bytes).
pub(super) fn decode(chunk: &[u8]) -> Option<Vec<(u64, u64, &[u8])>> {
    let mut rest = chunk.get(HEADER..)?;
    let mut messages = Vec::new();
    while !rest.is_empty() {
        let head = rest.get(..ENTRY_HEADER)?;
        let offset = u64::from_le_bytes(head[..8].try_into().ok()?);
        let wall = u64::from_le_bytes(head[8..16].try_into().ok()?);
        let len = u32::from_le_bytes(head[16..20].try_into().ok()?) as usize;
        let payload = rest.get(ENTRY_HEADER..ENTRY_HEADER.checked_add(len)?)?;
        messages.push((offset, wall, payload));
        rest = &rest[ENTRY_HEADER + len..];
    }
    Some(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_the_header_holds_the_newest_time() {
        let messages = [(7u64, 100u64, &b"seven"[..]), (8, 90, b""), (9, 120, b"nine")];
        let chunk = encode(messages.iter().copied());
        assert_eq!(newest(&chunk), Some(120));
        assert_eq!(decode(&chunk).unwrap(), messages);
    }

    #[test]
    fn a_chunk_cut_anywhere_is_malformed_not_misread() {
        let chunk = encode([(1u64, 5u64, &b"abc"[..]), (2, 6, b"de")].into_iter());
        for cut in 1..chunk.len() {
            let decoded = decode(&chunk[..cut]);
            assert!(cut == HEADER || cut == HEADER + ENTRY_HEADER + 3 || decoded.is_none(), "cut at {cut}");
        }
        assert!(newest(&chunk[..7]).is_none());
    }
}
