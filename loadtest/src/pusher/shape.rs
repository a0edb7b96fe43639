//! The bytes a server wraps around an event's data, learned from one event that was fully
//! parsed and matched against later ones: a server encodes every event of a channel the same
//! way, so for most deliveries the JSON scan of [`Envelope::parse`](super::envelope::Envelope)
//! becomes two comparisons and a search for quotes. One number after the data may change from
//! event to event (fanout's `"offset"` on channels with history). Whatever a server sends, a
//! message that does not match is left to the full parse, so the answer is always the parser's.

/// What surrounds the data string of one channel's events: everything before its first byte and
/// everything after its last, quotes included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventShape {
    prefix: Vec<u8>,
    /// After the data: `suffix`, or `suffix`, a run of digits and `tail` when the learned event
    /// had a number there (the last one).
    suffix: Vec<u8>,
    tail: Option<Vec<u8>>,
}

/// Longest number taken as the variable one (u64::MAX has 20 digits).
const MAX_DIGITS: usize = 20;

impl EventShape {
    /// The shape of `payload`, whose data string (without escapes) is `data`, a slice of it.
    /// `None` when `data` does not lie inside `payload`.
    pub fn learn(payload: &[u8], data: &[u8]) -> Option<EventShape> {
        let start = (data.as_ptr() as usize).checked_sub(payload.as_ptr() as usize)?;
        let end = start.checked_add(data.len()).filter(|&end| end <= payload.len())?;
        let after = &payload[end..];
        let last_digit = after.iter().rposition(u8::is_ascii_digit);
        let (suffix, tail) = match last_digit {
            Some(last) => {
                let first = after[..=last].iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |i| i + 1);
                (after[..first].to_vec(), Some(after[last + 1..].to_vec()))
            }
            None => (after.to_vec(), None),
        };
        Some(EventShape { prefix: payload[..start].to_vec(), suffix, tail })
    }

    /// The data string of `payload` when it is this shape around data with no quote or
    /// backslash (so the full parse would find the same event, channel and data).
    pub fn data_of<'p>(&self, payload: &'p [u8]) -> Option<&'p [u8]> {
        let mut rest = payload.strip_prefix(self.prefix.as_slice())?;
        if let Some(tail) = &self.tail {
            rest = rest.strip_suffix(tail.as_slice())?;
            let digits = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || digits > MAX_DIGITS {
                return None;
            }
            rest = &rest[..rest.len() - digits];
        }
        let data = rest.strip_suffix(self.suffix.as_slice())?;
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
    fn a_number_after_the_data_may_change() {
        let shape = shape_of(br#"{"event":"bench","channel":"c","data":"lt1:a","offset":7}"#);
        assert_eq!(
            shape.data_of(br#"{"event":"bench","channel":"c","data":"lt1:b","offset":12345}"#),
            Some(&b"lt1:b"[..])
        );
        assert_eq!(shape.data_of(br#"{"event":"bench","channel":"c","data":"lt1:b","offset":}"#), None);
        assert_eq!(shape.data_of(br#"{"event":"bench","channel":"c","data":"lt1:b","offset":1,"epoch":"e"}"#), None);
        assert_eq!(shape.data_of(br#"{"event":"bench","channel":"c","data":"lt1:b","offset":"1"}"#), None);
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
