//! The WebSocket client: frames and handshake as pure byte functions, the permessage-deflate
//! inflater, and `Conn`, which drives one non-blocking socket through connect, upgrade and open.

pub mod cause;
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod inflate;
pub mod reader;

pub use cause::Cause;
pub use conn::{Conn, Handler, Outcome, Sender, State};
pub use inflate::Inflater;
