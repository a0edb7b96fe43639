//! The header of one client frame, checked against the rules of RFC 6455
//! before any of its payload is read or buffered.

use super::violation::Violation;
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub(crate) const MAX_HEADER_LEN: usize = 14;

/// What the decoder knows about the data message it is assembling, which
/// decides whether a continuation or a new data frame is legal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assembling {
    /// No fragmented message is in progress.
    Nothing,
    /// A fragmented text message is in progress.
    Text,
    /// A fragmented binary message is in progress.
    Binary,
}

/// A client frame header that passed every check.
///
/// Guarantees: the frame is masked, has no RSV bit but RSV1 on the first
/// frame of a compressed message (when negotiated), a known opcode, and a
/// payload length that fits the limits (125 for control frames, the message
/// budget for data frames), so `payload_len` is safe to allocate for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// The FIN bit: last frame of its message.
    pub fin: bool,
    /// The frame's opcode; never a reserved one.
    pub opcode: OpCode,
    /// The client's masking key.
    pub mask: [u8; 4],
    /// Header bytes on the wire (6 to 14).
    pub header_len: usize,
    /// Payload bytes on the wire.
    pub payload_len: usize,
    /// RSV1: the message this frame starts is compressed (permessage-deflate).
    pub compressed: bool,
}

impl Frame {
    /// Parses and checks the header at the start of `data`.
    ///
    /// Returns `Ok(None)` when `data` does not yet hold the whole header.
    /// `assembling` is the message in progress and `room` the number of
    /// payload bytes the message may still grow by; both decide whether the
    /// frame is legal. Nothing is allocated, whatever length is announced.
    pub(crate) fn parse(
        data: &[u8],
        assembling: Assembling,
        room: usize,
        deflate: bool,
    ) -> Result<Option<Frame>, Violation> {
        let mut cursor = Cursor::new(data);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            // Reading from a slice cannot fail, so the only error is a reserved opcode.
            Err(_) => return Err(Violation::protocol("reserved opcode")),
        };
        if header.rsv2 || header.rsv3 {
            return Err(Violation::protocol("reserved bit set without an extension"));
        }
        // RSV1 marks a compressed message (RFC 7692): only when negotiated,
        // and only on a message's first frame.
        let compressed = header.rsv1;
        if compressed && !(deflate && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary))) {
            return Err(Violation::protocol("RSV1 set where no compressed message may start"));
        }
        let Some(mask) = header.mask else {
            return Err(Violation::protocol("client frame is not masked"));
        };
        if len > i64::MAX as u64 {
            return Err(Violation::protocol("64-bit length with the top bit set"));
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(Violation::protocol("reserved opcode"));
            }
            OpCode::Control(_) if len > MAX_CONTROL_PAYLOAD => {
                return Err(Violation::protocol("control frame payload over 125 bytes"));
            }
            OpCode::Control(_) if !header.is_final => {
                return Err(Violation::protocol("fragmented control frame"));
            }
            OpCode::Control(_) => {}
            OpCode::Data(Data::Continue) if assembling == Assembling::Nothing => {
                return Err(Violation::protocol("continuation without a message"));
            }
            OpCode::Data(Data::Text | Data::Binary) if assembling != Assembling::Nothing => {
                return Err(Violation::protocol("new message inside a fragmented one"));
            }
            // The size check comes before any payload is buffered, so an
            // oversized frame costs us nothing but its header.
            OpCode::Data(_) if len > room as u64 => return Err(Violation::too_big()),
            OpCode::Data(_) => {}
        }
        // Both limits above keep `len` within `usize`; the fallback is unreachable.
        let payload_len = usize::try_from(len).map_err(|_| Violation::too_big())?;
        // The cursor moved over at most MAX_HEADER_LEN bytes.
        let header_len = usize::try_from(cursor.position()).unwrap_or(MAX_HEADER_LEN);
        Ok(Some(Frame { fin: header.is_final, opcode: header.opcode, mask, header_len, payload_len, compressed }))
    }

    /// Header plus payload bytes on the wire.
    pub(crate) fn wire_len(&self) -> Result<usize, Violation> {
        self.header_len.checked_add(self.payload_len).ok_or(Violation::too_big())
    }
}

/// How many header bytes the frame starting with `data` needs, judged from
/// its first two bytes (a lower bound of 2 when fewer are known).
pub(crate) fn header_len_hint(data: &[u8]) -> usize {
    match data.get(1) {
        None => 2,
        Some(second) => {
            let extended = match second & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if second & 0x80 != 0 { 4 } else { 0 };
            2 + extended + mask
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8]) -> Result<Option<Frame>, Violation> {
        Frame::parse(data, Assembling::Nothing, 1000, false)
    }

    #[test]
    fn header_missing_bytes_is_incomplete() {
        assert!(matches!(parse(&[0x81]), Ok(None)));
        assert!(matches!(parse(&[0x81, 0x85, 1, 2]), Ok(None)));
        assert!(matches!(parse(&[0x82, 0xFE, 0]), Ok(None)));
    }

    #[test]
    fn complete_header_reports_its_lengths() {
        let frame = parse(&[0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!((frame.header_len, frame.payload_len, frame.fin), (8, 256, true));
        assert_eq!(frame.mask, [1, 2, 3, 4]);
    }

    #[test]
    fn header_len_hint_counts_extended_length_and_mask() {
        assert_eq!(header_len_hint(&[0x81]), 2);
        assert_eq!(header_len_hint(&[0x81, 0x85]), 6);
        assert_eq!(header_len_hint(&[0x81, 0xFE]), 8);
        assert_eq!(header_len_hint(&[0x81, 0xFF]), 14);
        assert_eq!(header_len_hint(&[0x81, 0x7F]), 10);
    }

    #[test]
    fn data_frame_over_the_room_left_is_too_big_before_its_payload() {
        let header = [0x82, 0xFE, 0x03, 0xE9, 1, 2, 3, 4]; // 1001 bytes announced
        assert_eq!(parse(&header).unwrap_err().code, 1009);
    }

    #[test]
    fn control_frame_is_not_limited_by_the_message_budget() {
        let frame = Frame::parse(&[0x89, 0x85, 1, 2, 3, 4], Assembling::Nothing, 0, false).unwrap();
        assert_eq!(frame.map(|f| f.payload_len), Some(5));
    }
}
