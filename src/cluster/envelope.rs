//! What crosses Redis: a publication's frames (or a broadcast's frame) and
//! the node that sent it, in a small binary envelope.
//!
//! Frames travel as they go on the wire (server frames are unmasked, so the
//! bytes one node made serve every recipient of every node): a receiving
//! node slices them out of the message and hands them to its workers
//! without parsing or encoding anything. The channel's name is the Redis
//! channel's, so it is not repeated here.
//!
//! Layout: `b'F'`, version `1`, kind (`1` publication, `2` broadcast, `3`
//! stored event), the origin node id (8 bytes, little-endian); then a
//! publication has a byte with one bit per dialect present and, for each in
//! order, a 4-byte length and the frame; a broadcast has its frame alone.
//!
//! A stored event (a channel that keeps history) is not framed by its
//! origin: its offset is only known once Redis appended it, inside the
//! script that publishes it, and every node frames it at that offset. After
//! the header: the connection the origin leaves out (8 bytes, 0 for none),
//! the epoch's length (1 byte) and the epoch, the offset in decimal and
//! `:`, then the event's bytes (the script writes the part after the
//! connection, see `streams`).

use bytes::{BufMut, Bytes};

use crate::channels::{Dialect, Publication, DIALECTS};

const MAGIC: u8 = b'F';
const VERSION: u8 = 1;
const PUBLICATION: u8 = 1;
const BROADCAST: u8 = 2;
const STORED: u8 = 3;
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
    /// An event of a channel with history, as Redis appended it.
    Stored(Stored),
}

/// An event of a channel that keeps history, at the place Redis gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The connection its origin leaves out (`ConnId` bits), if any.
    pub(crate) except: Option<u64>,
    /// The epoch of the channel's stream.
    pub(crate) epoch: String,
    /// Its offset in that stream.
    pub(crate) offset: u64,
    /// The event as the application packed it.
    pub(crate) event: Bytes,
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

/// The part of a stored event's envelope its origin writes: the header
/// and the connection to leave out. The publishing script appends the
/// epoch, the offset and the event.
pub(crate) fn stored_head(origin: u64, except: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 8);
    header(&mut out, STORED, origin);
    out.put_u64_le(except.unwrap_or(0));
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
        STORED => Body::Stored(stored(&bytes)?),
        _ => return Err(EnvelopeError::Foreign),
    };
    Ok(Envelope { origin, body })
}

fn stored(bytes: &Bytes) -> Result<Stored, EnvelopeError> {
    let except = bytes.get(HEADER..HEADER + 8).ok_or(EnvelopeError::Truncated)?;
    let except = u64::from_le_bytes(except.try_into().map_err(|_| EnvelopeError::Truncated)?);
    let epoch_len = usize::from(*bytes.get(HEADER + 8).ok_or(EnvelopeError::Truncated)?);
    let at = HEADER + 9;
    let epoch = bytes.get(at..at + epoch_len).ok_or(EnvelopeError::Truncated)?;
    let epoch = std::str::from_utf8(epoch).map_err(|_| EnvelopeError::Foreign)?.to_owned();
    let rest = bytes.get(at + epoch_len..).ok_or(EnvelopeError::Truncated)?;
    let colon = rest.iter().take(21).position(|&b| b == b':').ok_or(EnvelopeError::Truncated)?;
    let offset = std::str::from_utf8(&rest[..colon]).ok().and_then(|d| d.parse::<u64>().ok());
    let offset = offset.filter(|&o| o > 0).ok_or(EnvelopeError::Foreign)?;
    let event = bytes.slice(at + epoch_len + colon + 1..);
    Ok(Stored { except: (except != 0).then_some(except), epoch, offset, event })
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

    /// What the publishing script appends to the head (see `streams`).
    fn as_script_sends(head: Vec<u8>, epoch: &str, offset: u64, event: &[u8]) -> Bytes {
        let mut out = head;
        out.push(epoch.len() as u8);
        out.extend_from_slice(epoch.as_bytes());
        out.extend_from_slice(format!("{offset}:").as_bytes());
        out.extend_from_slice(event);
        Bytes::from(out)
    }

    #[test]
    fn a_stored_event_crosses_with_its_place_and_who_it_leaves_out() {
        let sent = as_script_sends(stored_head(9, Some(42)), "e1f2", 1234, b"\x00ev:ent");
        let envelope = decode(sent).expect("an envelope");
        assert_eq!(envelope.origin, 9);
        let Body::Stored(stored) = envelope.body else { panic!("a stored event") };
        assert_eq!(
            stored,
            Stored { except: Some(42), epoch: "e1f2".into(), offset: 1234, event: Bytes::from_static(b"\x00ev:ent") }
        );
        let none = decode(as_script_sends(stored_head(9, None), "e", 1, b"")).expect("an envelope");
        assert!(matches!(none.body, Body::Stored(Stored { except: None, offset: 1, .. })));
        for bad in [&b"F\x01\x03"[..], &as_script_sends(stored_head(9, None), "e", 0, b"x")[..]] {
            assert!(decode(Bytes::copy_from_slice(bad)).is_err());
        }
        let mut no_colon = stored_head(9, None);
        no_colon.extend_from_slice(b"\x01e123");
        assert_eq!(decode(Bytes::from(no_colon)).err(), Some(EnvelopeError::Truncated));
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
