//! Application messages: what a hook receives and what a push sends.

use bytes::Bytes;
use tungstenite::protocol::frame::Utf8Bytes;

/// A complete WebSocket data message.
///
/// The opcode is kept end to end: a text message is delivered as text and a
/// binary message as binary. Text payloads are guaranteed to be valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1); always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message (opcode 0x2).
    Binary(Bytes),
}

impl Message {
    /// Builds a text message from anything string-like.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// Builds a binary message from anything byte-like.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// The payload bytes, whatever the opcode.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }

    /// The payload as text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for text messages.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}
