//! What crosses Redis: a publication's frames (or a broadcast's frame) and
//! the node that sent it, in a small binary envelope.
//!
//! Frames travel as they go on the wire (server frames are unmasked, so the
//! bytes one node made serve every recipient of every node): a receiving
//! node slices them out of the message and hands them to its workers
//! without parsing or encoding anything. The channel's name is the Redis
//! channel's, so it is not repeated here.
//!
//! Layout: `b'F'`, version `1`, kind (`1` publication, `2` broadcast), the
//! origin node id (8 bytes, little-endian); then a publication has a byte
//! with one bit per dialect present and, for each in order, a 4-byte length
//! and the frame; a broadcast has its frame alone.

use bytes::{BufMut, Bytes};

use crate::channels::{Dialect, Publication, DIALECTS};

const MAGIC: u8 = b'F';
const VERSION: u8 = 1;
const PUBLICATION: u8 = 1;
const BROADCAST: u8 = 2;
const HEADER: usize = 3 + 8;

/// A decoded envelope: where it came from and what it carries.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The node that published it.
    pub(crate) origin: u64,
    /// What to deliver.
    pub(crate) body: Body,
}

/// What an envelope carries.
#[derive(Debug)]
pub(crate) enum Body {
    /// A channel publication, a frame per dialect.
    Publication(Publication),
    /// One frame for every connection of the node.
    Broadcast(Bytes),
}

/// Why bytes read from Redis are not an envelope (something else publishes
/// on fanout's channels, or another version of fanout does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// Too short, or a length runs past the end.
    #[error("truncated")]
    Truncated,
    /// Not fanout's magic byte, or a version or kind this node does not know.
    #[error("not a fanout envelope of version 1")]
    Foreign,
}

/// The envelope of `publication` from node `origin`.
pub(crate) fn publication(origin: u64, publication: &Publication) -> Vec<u8> {
    let frames: Vec<(usize, &Bytes)> = (0..DIALECTS)
        .filter_map(|n| Dialect::new(n as u8).and_then(|d| publication.frame(d)).map(|f| (n, f)))
        .collect();
    let size = HEADER + 1 + frames.iter().map(|(_, f)| 4 + f.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    header(&mut out, PUBLICATION, origin);
    out.push(frames.iter().fold(0u8, |mask, (n, _)| mask | (1 << n)));
    for (_, frame) in frames {
        // A frame is bounded by the message size limit, far below 4 GiB.
        out.put_u32_le(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(frame);
    }
    out
}

/// The envelope of a broadcast of `frame` from node `origin`.
pub(crate) fn broadcast(origin: u64, frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + frame.len());
    header(&mut out, BROADCAST, origin);
    out.extend_from_slice(frame);
    out
}

fn header(out: &mut Vec<u8>, kind: u8, origin: u64) {
    out.extend_from_slice(&[MAGIC, VERSION, kind]);
    out.put_u64_le(origin);
}

/// Reads an envelope; its frames are slices of `bytes`, not copies.
pub(crate) fn decode(bytes: Bytes) -> Result<Envelope, EnvelopeError> {
    if bytes.len() < HEADER {
        return Err(EnvelopeError::Truncated);
    }
    if bytes[0] != MAGIC || bytes[1] != VERSION {
        return Err(EnvelopeError::Foreign);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[3..HEADER]);
    let origin = u64::from_le_bytes(id);
    let body = match bytes[2] {
        BROADCAST => Body::Broadcast(bytes.slice(HEADER..)),
        PUBLICATION => Body::Publication(frames(&bytes)?),
        _ => return Err(EnvelopeError::Foreign),
    };
    Ok(Envelope { origin, body })
}

fn frames(bytes: &Bytes) -> Result<Publication, EnvelopeError> {
    let mask = *bytes.get(HEADER).ok_or(EnvelopeError::Truncated)?;
    if usize::from(mask) >> DIALECTS != 0 {
        return Err(EnvelopeError::Foreign);
    }
    let mut at = HEADER + 1;
    let mut publication = Publication::new();
    for n in 0..DIALECTS {
        if mask & (1 << n) == 0 {
            continue;
        }
        let length = bytes.get(at..at + 4).ok_or(EnvelopeError::Truncated)?;
        let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let end = (at + 4).checked_add(length).filter(|&end| end <= bytes.len()).ok_or(EnvelopeError::Truncated)?;
        let dialect = Dialect::new(n as u8).ok_or(EnvelopeError::Foreign)?;
        publication = publication.with_frame(dialect, bytes.slice(at + 4..end));
        at = end;
    }
    if at != bytes.len() {
        return Err(EnvelopeError::Truncated);
    }
    Ok(publication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Prepared;
    use crate::Message;

    fn dialect(n: u8) -> Dialect {
        Dialect::new(n).expect("a dialect")
    }

    #[test]
    fn a_publication_crosses_with_every_frame_and_its_origin() {
        let raw = Prepared::new(&Message::text("hi"));
        let pusher = Prepared::new(&Message::text(r#"{"event":"m","channel":"c","data":"hi"}"#));
        let sent = Publication::single(&raw).with(dialect(1), &pusher);
        let envelope = decode(Bytes::from(publication(0xfeed_beef_0000_0001, &sent))).expect("an envelope");
        assert_eq!(envelope.origin, 0xfeed_beef_0000_0001);
        let Body::Publication(got) = envelope.body else { panic!("a publication") };
        assert_eq!(got.frame(dialect(0)).map(|f| &f[..]), Some(raw.wire_bytes()));
        assert_eq!(got.frame(dialect(1)).map(|f| &f[..]), Some(pusher.wire_bytes()));
        assert!(got.frame(dialect(2)).is_none());
    }

    #[test]
    fn a_broadcast_crosses_as_its_frame() {
        let frame = Prepared::new(&Message::binary(vec![0u8, 1, 2, 255]));
        let envelope = decode(Bytes::from(broadcast(7, frame.wire_bytes()))).expect("an envelope");
        assert_eq!(envelope.origin, 7);
        assert!(matches!(envelope.body, Body::Broadcast(f) if &f[..] == frame.wire_bytes()));
    }

    #[test]
    fn what_is_not_an_envelope_is_refused_not_misread() {
        assert_eq!(decode(Bytes::from_static(b"hello")).err(), Some(EnvelopeError::Truncated));
        assert_eq!(decode(Bytes::from_static(b"hello, redis")).err(), Some(EnvelopeError::Foreign));
        let good = publication(1, &Publication::single(&Prepared::new(&Message::text("x"))));
        let cut = Bytes::copy_from_slice(&good[..good.len() - 1]);
        assert_eq!(decode(cut).err(), Some(EnvelopeError::Truncated));
        let longer = Bytes::from([&good[..], b"?"].concat());
        assert_eq!(decode(longer).err(), Some(EnvelopeError::Truncated));
        let mut other_version = good.clone();
        other_version[1] = 2;
        assert_eq!(decode(Bytes::from(other_version)).err(), Some(EnvelopeError::Foreign));
        let mut unknown_dialects = good;
        unknown_dialects[HEADER] = 0x30;
        assert_eq!(decode(Bytes::from(unknown_dialects)).err(), Some(EnvelopeError::Foreign));
        let mut huge_length = publication(1, &Publication::single(&Prepared::new(&Message::text("x"))));
        huge_length[HEADER + 1..HEADER + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(Bytes::from(huge_length)).err(), Some(EnvelopeError::Truncated));
    }
}
