//! [`SocketId`]: the `"123.456"` name a Pusher client knows its connection by.

use std::fmt;

/// A connection's Pusher socket id: two decimal numbers joined by a dot.
///
/// It is a bijection of the server's `u64` connection id: the part before
/// the dot is the id's high 32 bits, the part after its low 32 bits, both
/// without leading zeros. So [`SocketId::parse`] gives back the connection
/// id, and a client can only name connections by their canonical spelling.
/// The ids are not secret: a signature binds a subscription to one socket
/// id, so knowing another socket's id grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(u64);

impl SocketId {
    /// The socket id of connection `id`.
    pub fn from_conn_u64(id: u64) -> Self {
        SocketId(id)
    }

    /// The connection id this socket id was made from.
    pub fn conn_u64(self) -> u64 {
        self.0
    }

    /// The connection id `text` names, if `text` is the canonical spelling of
    /// a socket id made by [`SocketId::from_conn_u64`]; `None` for anything
    /// else (leading zeros, signs, spaces, parts over 32 bits).
    pub fn parse(text: &str) -> Option<u64> {
        let (high, low) = text.split_once('.')?;
        Some((part(high)? << 32) | part(low)?)
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// Whether `text` has the form Pusher requires of a `socket_id` in API calls
/// and auth requests: `\A\d+\.\d+\z`. It need not be one this server issued.
pub fn is_valid_socket_id(text: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    text.split_once('.').is_some_and(|(high, low)| digits(high) && digits(low))
}

/// One half of a socket id: decimal digits without a leading zero, under 2^32.
fn part(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse::<u32>().ok()).flatten().map(u64::from)
}

#[cfg(test)]
mod tests {
    //! Verifies that socket ids round-trip to connection ids, parse only in
    //! their canonical form, and are checked the way Pusher checks them.

    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        for id in [0, 1, 0xffff_ffff, 1 << 32, (7 << 32) | 9, (42 << 16) | 3, u64::MAX] {
            let text = SocketId::from_conn_u64(id).to_string();
            assert!(is_valid_socket_id(&text), "{text}");
            assert_eq!(SocketId::parse(&text), Some(id), "{text}");
        }
        assert_eq!(SocketId::from_conn_u64((7 << 32) | 9).to_string(), "7.9");
        assert_eq!(SocketId::from_conn_u64(u64::MAX).to_string(), "4294967295.4294967295");
        assert_eq!(SocketId::from_conn_u64(5).conn_u64(), 5);
    }

    #[test]
    fn only_canonical_spellings_parse() {
        for text in [
            "",
            ".",
            "1",
            "1.",
            ".1",
            "01.1",
            "1.01",
            "+1.1",
            "1.-1",
            " 1.1",
            "1.1 ",
            "1.1.1",
            "4294967296.0",
            "0.4294967296",
            "a.b",
            "１.１",
        ] {
            assert_eq!(SocketId::parse(text), None, "{text:?}");
        }
        assert_eq!(SocketId::parse("0.0"), Some(0));
    }

    #[test]
    fn pusher_format_check_accepts_any_digits_dot_digits() {
        for text in ["1234.1234", "0.0", "01.1", "99999999999999999999.1"] {
            assert!(is_valid_socket_id(text), "{text}");
        }
        for text in ["", "1234", "1234.", ".1234", "1.2.3", "1,2", "1.2\n", "a.1", "1.2x", "-1.2", "١.١"] {
            assert!(!is_valid_socket_id(text), "{text:?}");
        }
    }
}
