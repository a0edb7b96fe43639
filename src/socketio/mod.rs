//! Socket.IO without sockets: Engine.IO and Socket.IO packets, text and
//! bytes in, packets out, and back.
//!
//! Socket.IO is two protocols stacked:
//! - **Engine.IO** ([`engine`]) is the session: a handshake giving a
//!   session id and heartbeat timings, heartbeats, and message packets,
//!   carried over HTTP long-polling (several packets per request body) or a
//!   WebSocket (one packet per frame), with an upgrade from the first to the
//!   second mid-session.
//! - **Socket.IO** ([`packet`]) rides in Engine.IO messages: connecting to
//!   namespaces, events with JSON arguments, acknowledgements, and binary
//!   arguments sent as attachments after the packet that names them.
//!
//! Two generations of clients are in use, and a client's `EIO` query
//! parameter says which one it is ([`Version`]):
//! - Engine.IO v3 (`EIO=3`) carrying Socket.IO protocol v4: Socket.IO 2.x
//!   clients.
//! - Engine.IO v4 (`EIO=4`) carrying Socket.IO protocol v5: Socket.IO 3.x
//!   and 4.x clients.
//!
//! Nothing here does I/O or keeps time; heartbeats, sessions and the
//! polling transport belong to the server that uses these types. Every
//! decoder is total and bounded: anything a peer sends gives a packet or a
//! typed error. The encodings follow the reference parsers
//! (`engine.io-parser` 2.2 and 5.2, `socket.io-parser` 3.3 and 4.2), whose
//! output the tests hold as literals.

pub mod engine;
pub mod packet;

pub use engine::{EngineError, Handshake, Version};
pub use packet::{Decoder, Event, PacketError};
