//! The client side of the Pusher Channels protocol (version 7) as pure functions over strings:
//! the signatures of the HTTP API and of private channels (`sign`), the JSON envelope of what a
//! server sends (`envelope`) and the shape learned from it (`shape`), the messages a client sends (`messages`), and the stamp loadtest
//! puts in every event it publishes (`stamp`). No sockets here, so all of it is unit-tested.

pub mod envelope;
pub mod messages;
pub mod shape;
pub mod sign;
pub mod stamp;
