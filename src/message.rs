//! Application messages: what a hook receives and what a push sends.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// A complete WebSocket data message.
///
/// The opcode is kept end to end: a text message is delivered as text and a
/// binary message as binary. Text payloads are guaranteed to be valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1); always valid UTF-8.
    Text(Text),
    /// A binary message (opcode 0x2).
    Binary(Bytes),
}

/// Valid UTF-8 in a shared, reference-counted buffer: cloning it copies no
/// text.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Bytes);

impl Text {
    /// Checks that `bytes` are UTF-8 and wraps them without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Text, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Text(bytes))
    }

    /// Wraps bytes the caller has already checked (the decoder validates
    /// text as it arrives, fragment by fragment).
    pub(crate) fn from_checked(bytes: Bytes) -> Text {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Text(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks (or, for `from_checked`, is given
        // bytes already checked) that the buffer is valid UTF-8, and the
        // buffer is immutable.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(Bytes::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&String> for Text {
    fn from(text: &String) -> Text {
        Text::from(text.as_str())
    }
}

impl Message {
    /// Builds a text message from anything string-like.
    pub fn text(text: impl Into<Text>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_checked_and_shared() {
        assert!(Text::from_bytes(Bytes::from_static(b"\xff")).is_err());
        let text = Text::from_bytes(Bytes::from_static("héllo".as_bytes())).expect("utf-8");
        assert_eq!(&*text, "héllo");
        let copy = text.clone();
        assert_eq!(copy.as_bytes().as_ptr(), text.as_bytes().as_ptr());
        assert_eq!(Message::text("x").as_text(), Some("x"));
        assert_eq!(format!("{text:?}"), "\"héllo\"");
    }
}
