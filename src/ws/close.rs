//! Close codes (RFC 6455 section 7.4) and the payload of a received Close frame.

use super::violation::Violation;
use tungstenite::protocol::frame::coding::CloseCode;

/// Close status codes used by the server, as plain `u16`s.
pub mod codes {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: the peer sent a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// 1007: the payload was inconsistent with its type (text not UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: the message violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: the message is too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// 1013: try again later; the server cannot take this connection's
    /// input for now (IANA registry).
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// The content of a Close frame received from the peer.
///
/// `code` always satisfies [`is_valid_received_code`] and `reason` is valid
/// UTF-8 of at most 123 bytes (it came from a control frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code the peer gave.
    pub code: u16,
    /// The peer's reason text; may be empty.
    pub reason: String,
}

/// Returns true when a peer may legally put `code` in a close frame.
///
/// Accepted: the registered codes tungstenite allows (1000-1003, 1007-1013)
/// and the application ranges 3000-4999. Refused: anything below 1000, 1004,
/// the codes that must never be sent (1005, 1006, 1015), the unassigned
/// 1014 and 1016-2999, and 5000 and above.
pub fn is_valid_received_code(code: u16) -> bool {
    // tungstenite's `is_allowed` accepts all of 1016-2999 only as `Reserved`
    // (refused) and 3000-4999 as `Iana`/`Library` (accepted); we state the
    // ranges here too so the rule reads without opening tungstenite.
    match code {
        3000..=4999 => true,
        1000..=1999 => CloseCode::from(code).is_allowed(),
        _ => false,
    }
}

/// Parses the (already unmasked) payload of a received Close frame.
///
/// Empty means "no status" (`Ok(None)`). A one-byte payload or a code the
/// peer may not send is a protocol error (1002); a reason that is not UTF-8 is
/// invalid payload (1007).
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, Violation> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
        [_] => return Err(Violation::protocol("close payload of one byte")),
    };
    if !is_valid_received_code(code) {
        return Err(Violation::protocol("invalid close code"));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| Violation::invalid_payload("close reason is not UTF-8"))?;
    Ok(Some(CloseFrame { code, reason: reason.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_and_application_codes_are_accepted() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013] {
            assert!(is_valid_received_code(code), "{code}");
        }
        for code in [3000, 3999, 4000, 4999] {
            assert!(is_valid_received_code(code), "{code}");
        }
    }

    #[test]
    fn reserved_and_local_only_codes_are_refused() {
        for code in [0, 1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!is_valid_received_code(code), "{code}");
        }
    }

    #[test]
    fn empty_close_payload_means_no_status() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
    }

    #[test]
    fn one_byte_close_payload_is_a_protocol_error() {
        assert_eq!(parse_close_payload(&[3]).map_err(|v| v.code), Err(1002));
    }

    #[test]
    fn close_payload_with_bad_code_is_a_protocol_error() {
        assert_eq!(parse_close_payload(&[0x03, 0xEE]).map_err(|v| v.code), Err(1002));
    }

    #[test]
    fn close_reason_not_utf8_is_invalid_payload() {
        assert_eq!(parse_close_payload(&[0x03, 0xE8, 0xFF]).map_err(|v| v.code), Err(1007));
    }

    #[test]
    fn close_payload_with_code_and_reason_is_parsed() {
        let frame = parse_close_payload(b"\x03\xe8bye").unwrap();
        assert_eq!(frame, Some(CloseFrame { code: 1000, reason: "bye".into() }));
    }
}
