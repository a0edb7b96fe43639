//! The inbound state of an open connection: client bytes in, events out.
//!
//! A whole frame found in the caller's input is unmasked straight from that
//! input into the message's own buffer (one copy). Only a frame cut off at the
//! end of the input is copied aside, and that copy is freed as soon as the
//! frame completes, so an idle connection holds no heap memory at all.

pub use super::close::CloseFrame;
pub use super::violation::Violation;

use super::close::parse_close_payload;
use super::deflate::Inflater;
use super::frame::{header_len_hint, Assembling, Frame};
use super::unmask::{apply_mask, extend_unmasked};
use crate::message::{Message, Text};
use bytes::Bytes;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Something the peer said, decoded from one or more frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A complete data message; text is guaranteed valid UTF-8.
    Message(Message),
    /// A Ping; its payload (at most 125 bytes) should be echoed in a Pong.
    Ping(Bytes),
    /// A Pong; its payload is at most 125 bytes.
    Pong(Bytes),
    /// A Close frame, with its code and reason if it had a payload. The
    /// decoder is finished after this event.
    Close(Option<CloseFrame>),
}

/// Per-connection decoder of client-to-server frames (RFC 6455, and RFC 7692
/// compressed messages when made by [`Decoder::with_deflate`]).
///
/// Guarantees: no panic whatever the peer sends; a new decoder allocates
/// nothing; and [`Decoder::buffered_bytes`] never exceeds
/// `2 * (max_message_size + 139)`: it holds at most the message so far and
/// one incomplete frame (a data frame within the message budget, or a control
/// frame of up to 139 bytes, whatever the budget), each in a `Vec` that grows
/// by doubling and so may have up to twice the capacity it uses.
#[derive(Debug)]
pub struct Decoder {
    /// The start of a frame cut off at the end of an earlier input; empty and
    /// unallocated otherwise. Never holds more than one frame.
    partial: Vec<u8>,
    /// The payload assembled so far of a fragmented data message.
    message: Vec<u8>,
    /// The largest data message accepted, in payload bytes.
    max_message_size: usize,
    /// The kind of fragmented message in progress, if any.
    assembling: Assembling,
    /// Bytes at the end of `message` that start a UTF-8 sequence not yet
    /// complete (0 to 3); everything before them is known valid, which keeps
    /// incremental validation linear.
    utf8_tail: u8,
    /// Set after a Close event or a violation.
    finished: bool,
    /// A frame was completed since [`Decoder::take_progress`] last looked.
    progressed: bool,
    /// permessage-deflate was negotiated: RSV1 may mark compressed messages.
    deflate: bool,
    /// The fragmented message in progress is compressed.
    compressed: bool,
}

impl Decoder {
    /// A decoder accepting data messages of up to `max_message_size` bytes.
    ///
    /// Allocates nothing: an idle connection costs `size_of::<Decoder>()`.
    pub fn new(max_message_size: usize) -> Self {
        Decoder {
            partial: Vec::new(),
            message: Vec::new(),
            max_message_size,
            assembling: Assembling::Nothing,
            utf8_tail: 0,
            finished: false,
            progressed: false,
            deflate: false,
            compressed: false,
        }
    }

    /// A decoder that also takes compressed messages (permessage-deflate
    /// negotiated); feed it with [`Decoder::feed_inflating`].
    pub fn with_deflate(max_message_size: usize) -> Self {
        Decoder { deflate: true, ..Decoder::new(max_message_size) }
    }

    /// Consumes all of `input` (bytes read from the socket, possibly containing
    /// many frames, or a fraction of one), appends complete events to `events`
    /// in order, keeps an incomplete trailing frame internally for the next call.
    ///
    /// On a violation returns `Err`; events pushed before the bad frame stay
    /// valid. After an `Err` or after an [`Event::Close`] the decoder is
    /// finished, has freed its buffers, and ignores all further input
    /// (returns `Ok(())` and pushes nothing).
    pub fn feed(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<(), Violation> {
        self.feed_with(input, events, None)
    }

    /// [`Decoder::feed`] for a decoder made by [`Decoder::with_deflate`]:
    /// compressed messages are inflated with `inflater` (shared by a
    /// worker's connections; no context is kept between messages), their
    /// inflated size held to the message limit as they inflate (1009 past
    /// it, having held at most the limit plus 64 KiB), text checked as UTF-8
    /// once inflated (1007).
    pub fn feed_inflating(
        &mut self,
        input: &[u8],
        events: &mut Vec<Event>,
        inflater: &mut Inflater,
    ) -> Result<(), Violation> {
        self.feed_with(input, events, Some(inflater))
    }

    fn feed_with(
        &mut self,
        input: &[u8],
        events: &mut Vec<Event>,
        inflater: Option<&mut Inflater>,
    ) -> Result<(), Violation> {
        if self.finished {
            return Ok(());
        }
        let result = self.decode(input, events, inflater);
        if result.is_err() {
            self.finish();
        }
        result
    }

    /// Bytes of heap memory currently held for incomplete frames and
    /// fragmented messages (allocated capacity, for memory accounting).
    /// Zero whenever no frame or message is in progress.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.capacity() + self.message.capacity()
    }

    /// True when at least one whole frame (data, continuation or control)
    /// was completed since the last call; clears the mark. A peer trickling
    /// the bytes of one frame makes no progress by this measure, which is
    /// what idle timeouts should judge.
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    /// True once a Close event was produced or a violation returned.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// True when compressed messages are accepted.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    fn decode(
        &mut self,
        mut input: &[u8],
        events: &mut Vec<Event>,
        mut inflater: Option<&mut Inflater>,
    ) -> Result<(), Violation> {
        if !self.partial.is_empty() {
            match self.complete_partial(input)? {
                Some((frame, rest)) => {
                    // Taking the buffer frees it once the frame is handled.
                    let partial = std::mem::take(&mut self.partial);
                    let payload = partial.get(frame.header_len..).unwrap_or_default();
                    self.handle(&frame, payload, events, inflater.as_deref_mut())?;
                    input = rest;
                }
                None => return Ok(()),
            }
        }
        while !input.is_empty() && !self.finished {
            let Some(frame) = self.parse_header(input)? else {
                break;
            };
            let wire_len = frame.wire_len()?;
            let (Some(payload), Some(rest)) = (input.get(frame.header_len..wire_len), input.get(wire_len..)) else {
                break;
            };
            self.handle(&frame, payload, events, inflater.as_deref_mut())?;
            input = rest;
        }
        if !self.finished {
            // Whatever is left is the start of one frame whose header, if
            // complete, already passed its checks.
            self.partial.extend_from_slice(input);
        }
        Ok(())
    }

    /// Moves bytes from `input` into `partial` until it holds one whole frame,
    /// never past it, so the frames after it are decoded straight from
    /// `input`. Returns the frame and the rest of `input`, or `None` when
    /// `input` ran out first (all of it is then in `partial`).
    fn complete_partial<'a>(&mut self, mut input: &'a [u8]) -> Result<Option<(Frame, &'a [u8])>, Violation> {
        let frame = loop {
            if let Some(frame) = self.parse_header(&self.partial)? {
                break frame;
            }
            // At least one byte per turn: the header is incomplete, so the
            // next byte still belongs to it.
            let need = header_len_hint(&self.partial).saturating_sub(self.partial.len()).max(1);
            if input.is_empty() {
                return Ok(None);
            }
            let (head, rest) = input.split_at(need.min(input.len()));
            self.partial.extend_from_slice(head);
            input = rest;
        };
        let need = frame.wire_len()?.saturating_sub(self.partial.len());
        let (head, rest) = input.split_at(need.min(input.len()));
        self.partial.extend_from_slice(head);
        Ok((head.len() == need).then_some((frame, rest)))
    }

    fn parse_header(&self, data: &[u8]) -> Result<Option<Frame>, Violation> {
        let room = self.max_message_size.saturating_sub(self.message.len());
        Frame::parse(data, self.assembling, room, self.deflate)
    }

    /// Turns one complete, checked frame into events; `payload` is still masked.
    fn handle(
        &mut self,
        frame: &Frame,
        payload: &[u8],
        events: &mut Vec<Event>,
        inflater: Option<&mut Inflater>,
    ) -> Result<(), Violation> {
        self.progressed = true;
        let mask = frame.mask;
        match frame.opcode {
            OpCode::Control(Control::Close) => {
                // A control payload is at most 125 bytes: unmask on the stack.
                let mut buf = [0u8; 125];
                let unmasked =
                    buf.get_mut(..payload.len()).ok_or(Violation::protocol("control frame payload over 125 bytes"))?;
                unmasked.copy_from_slice(payload);
                apply_mask(unmasked, mask);
                let close = parse_close_payload(unmasked)?;
                self.finish();
                events.push(Event::Close(close));
            }
            OpCode::Control(Control::Ping) => events.push(Event::Ping(unmask(payload, mask))),
            OpCode::Control(Control::Pong) => events.push(Event::Pong(unmask(payload, mask))),
            OpCode::Data(Data::Text) if frame.fin && frame.compressed => {
                let data = self.inflate(&unmask(payload, mask), inflater)?;
                let text = Text::from_bytes(Bytes::from(data)).map_err(|_| not_utf8())?;
                events.push(Event::Message(Message::Text(text)));
            }
            OpCode::Data(Data::Binary) if frame.fin && frame.compressed => {
                let data = self.inflate(&unmask(payload, mask), inflater)?;
                events.push(Event::Message(Message::Binary(Bytes::from(data))));
            }
            OpCode::Data(Data::Text) if frame.fin => {
                let text = Text::from_bytes(unmask(payload, mask)).map_err(|_| not_utf8())?;
                events.push(Event::Message(Message::Text(text)));
            }
            OpCode::Data(Data::Binary) if frame.fin => {
                events.push(Event::Message(Message::Binary(unmask(payload, mask))));
            }
            OpCode::Data(Data::Text) => {
                self.assembling = Assembling::Text;
                self.compressed = frame.compressed;
                self.append_fragment(false, payload, mask, events, inflater)?;
            }
            OpCode::Data(Data::Binary) => {
                self.assembling = Assembling::Binary;
                self.compressed = frame.compressed;
                self.append_fragment(false, payload, mask, events, inflater)?;
            }
            OpCode::Data(Data::Continue) => self.append_fragment(frame.fin, payload, mask, events, inflater)?,
            // `Frame::parse` refuses reserved opcodes; kept for exhaustiveness.
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(Violation::protocol("reserved opcode"));
            }
        }
        Ok(())
    }

    /// Adds one fragment to the message in progress; on the final one, emits
    /// the message and frees its buffer.
    fn append_fragment(
        &mut self,
        fin: bool,
        payload: &[u8],
        mask: [u8; 4],
        events: &mut Vec<Event>,
        inflater: Option<&mut Inflater>,
    ) -> Result<(), Violation> {
        let unchecked_from = self.message.len().saturating_sub(usize::from(self.utf8_tail));
        extend_unmasked(&mut self.message, payload, mask);
        if self.compressed {
            // Compressed text is checked once inflated, whole.
            if !fin {
                return Ok(());
            }
            let compressed = std::mem::take(&mut self.message);
            let kind = std::mem::replace(&mut self.assembling, Assembling::Nothing);
            self.compressed = false;
            let data = Bytes::from(self.inflate(&compressed, inflater)?);
            let message = match kind {
                Assembling::Text => Message::Text(Text::from_bytes(data).map_err(|_| not_utf8())?),
                Assembling::Binary => Message::Binary(data),
                Assembling::Nothing => return Err(Violation::protocol("continuation without a message")),
            };
            events.push(Event::Message(message));
            return Ok(());
        }
        if self.assembling == Assembling::Text {
            self.check_text_prefix(unchecked_from)?;
            // The last fragment may not end inside a character.
            if fin && self.utf8_tail != 0 {
                return Err(not_utf8());
            }
        }
        if !fin {
            return Ok(());
        }
        let data = Bytes::from(std::mem::take(&mut self.message));
        let kind = std::mem::replace(&mut self.assembling, Assembling::Nothing);
        self.utf8_tail = 0;
        let message = match kind {
            // Every byte was checked fragment by fragment: no second pass.
            Assembling::Text => Message::Text(Text::from_checked(data)),
            Assembling::Binary => Message::Binary(data),
            Assembling::Nothing => return Err(Violation::protocol("continuation without a message")),
        };
        events.push(Event::Message(message));
        Ok(())
    }

    /// Fails fast once the text so far cannot be the start of valid UTF-8,
    /// checking only the bytes from `from` (a char boundary) onwards.
    fn check_text_prefix(&mut self, from: usize) -> Result<(), Violation> {
        let unchecked = self.message.get(from..).unwrap_or_default();
        self.utf8_tail = match std::str::from_utf8(unchecked) {
            Ok(_) => 0,
            // `None` means the bytes end inside a sequence, which is at most
            // 3 bytes long, so the cast cannot truncate.
            Err(error) if error.error_len().is_none() => (unchecked.len() - error.valid_up_to()) as u8,
            Err(_) => return Err(not_utf8()),
        };
        Ok(())
    }

    fn inflate(&self, compressed: &[u8], inflater: Option<&mut Inflater>) -> Result<Vec<u8>, Violation> {
        let inflater = inflater.ok_or(Violation::protocol("a compressed message, but no inflater was given"))?;
        inflater.inflate(compressed, self.max_message_size)
    }

    /// Marks the decoder finished and frees its buffers.
    fn finish(&mut self) {
        self.finished = true;
        self.partial = Vec::new();
        self.message = Vec::new();
        self.assembling = Assembling::Nothing;
        self.utf8_tail = 0;
        self.compressed = false;
    }
}

fn unmask(payload: &[u8], mask: [u8; 4]) -> Bytes {
    let mut data = Vec::with_capacity(payload.len());
    extend_unmasked(&mut data, payload, mask);
    Bytes::from(data)
}

fn not_utf8() -> Violation {
    Violation::invalid_payload("text is not valid UTF-8")
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
