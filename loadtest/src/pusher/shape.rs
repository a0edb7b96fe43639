//! The bytes a server wraps around an event's data, learned from one event that was fully
//! parsed and matched against later ones: a server encodes every event of a channel the same
//! way, so for most deliveries the JSON scan of [`Envelope::parse`](super::envelope::Envelope)
//! becomes two comparisons and a search for quotes. Whatever a server sends, a message that does
//! not match byte for byte is left to the full parse, so the answer is always the parser's.

/// What surrounds the data string of one channel's events: everything before its first byte and
/// everything after its last, quotes included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventShape {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl EventShape {
    /// The shape of `payload`, whose data string (without escapes) is `data`, a slice of it.
    /// `None` when `data` does not lie inside `payload`.
    pub fn learn(payload: &[u8], data: &[u8]) -> Option<EventShape> {
        let start = (data.as_ptr() as usize).checked_sub(payload.as_ptr() as usize)?;
        let end = start.checked_add(data.len()).filter(|&end| end <= payload.len())?;
        Some(EventShape { prefix: payload[..start].to_vec(), suffix: payload[end..].to_vec() })
    }

    /// The data string of `payload` when it is this shape around data with no quote or
    /// backslash (so the full parse would find the same event, channel and data).
    pub fn data_of<'p>(&self, payload: &'p [u8]) -> Option<&'p [u8]> {
        let end = payload.len().checked_sub(self.suffix.len())?;
        if end < self.prefix.len() || !payload.starts_with(&self.prefix) || !payload.ends_with(&self.suffix) {
            return None;
        }
        let data = &payload[self.prefix.len()..end];
        memchr::memchr2(b'"', b'\\', data).is_none().then_some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pusher::envelope::Envelope;

    fn shape_of(payload: &[u8]) -> EventShape {
        let env = Envelope::parse(payload).expect("an envelope");
        let data = env.data_str().and_then(|d| d.plain()).expect("plain data");
        EventShape::learn(payload, data).expect("data inside the payload")
    }

    #[test]
    fn events_of_the_learned_shape_yield_their_data() {
        let shape = shape_of(br#"{"event":"bench","channel":"bench-0","data":"lt1:aaaa...."}"#);
        assert_eq!(
            shape.data_of(br#"{"event":"bench","channel":"bench-0","data":"lt1:bbbb"}"#),
            Some(&b"lt1:bbbb"[..])
        );
        assert_eq!(shape.data_of(br#"{"event":"bench","channel":"bench-0","data":""}"#), Some(&b""[..]));
        // Data first, as another server may write it.
        let shape = shape_of(br#"{"data":"x","channel":"c","event":"bench"}"#);
        assert_eq!(shape.data_of(br#"{"data":"yz","channel":"c","event":"bench"}"#), Some(&b"yz"[..]));
    }

    #[test]
    fn anything_else_is_left_to_the_full_parse() {
        let shape = shape_of(br#"{"event":"bench","channel":"bench-0","data":"lt1"}"#);
        for other in [
            &br#"{"event":"bench","channel":"bench-1","data":"lt1"}"#[..],
            br#"{"event":"bench","channel":"bench-0","data":"lt1","user_id":"1"}"#,
            br#"{"event":"bench","channel":"bench-0","data":"a","x":"b"}"#,
            br#"{"event":"bench","channel":"bench-0","data":"a\"b"}"#,
            br#"{"event":"bench","channel":"bench-0","data":"a\\b"}"#,
            br#"{"event":"bench","channel":"bench-0","data":"}"#,
            b"",
        ] {
            assert_eq!(shape.data_of(other), None, "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(EventShape::learn(b"abc", b"elsewhere"), None);
    }
}
