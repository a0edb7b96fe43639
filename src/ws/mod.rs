//! The WebSocket protocol layer: bytes in, events and bytes out, no sockets.
//!
//! Everything here is pure: the reactor reads bytes from a socket and hands
//! them to this layer, which answers with parsed requests, decoded events or
//! encoded frames for the reactor to write. Keeping I/O out means every rule
//! of RFC 6455 can be tested with byte strings alone, and nothing a peer sends
//! can panic the server (all peer-controlled lengths and indices are checked).
//!
//! - [`handshake`]: the HTTP/1.1 upgrade request, its validation and the
//!   101 (or refusal) response.
//! - [`decoder`]: the inbound state of an open connection; client frames in,
//!   [`Event`]s out, [`Violation`]s mapped onto close codes.
//! - [`encode`]: server frames (FIN set, unmasked), each one contiguous
//!   [`bytes::Bytes`] so a broadcast is framed once and shared.
//! - [`close`]: close codes and which of them a peer may send.
//! - [`deflate`]: permessage-deflate negotiation and per-message compression.

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encode;
mod frame;
pub mod handshake;
mod unmask;
mod violation;

pub use decoder::{CloseFrame, Decoder, Event, Violation};
