//! The `socketio` scenario's parts besides its event-loop driver (`scenario::socketio`): the
//! client side of Engine.IO v4 and Socket.IO v5 as pure functions over the text of WebSocket
//! messages (`packet`, `event_frames`), the flags and settings (`args`, `plan`), the counts
//! (`stats`) and the report section (`report`). No sockets here, so all of it is unit-tested.
//!
//! What a run does: `-c N` connections open `ws://HOST:PORT/socket.io/?EIO=4&transport=websocket`
//! (`wss://` when `--url` is; the path of `--url` is not used), read the open packet `0{...}`,
//! connect to `--namespace` (`40`), wait for the answer `40{"sid":...}` and, with `--room`, join
//! it with an acknowledged event (`421["join","ROOM"]`, answered `431[]`). A connection is
//! *ready* then; only connections ready before measuring begins count, as receivers and as
//! publishers. Every server ping (`2`) is answered (`3`), so a server's heartbeat never closes a
//! connection during a run.
//!
//! Publishing: the first `--publishers` connections send `42["message","<stamp>"]` (or, with
//! `--room`, `42["to","ROOM","<stamp>"]`) at `--rate` per second in total, on the fixed schedule
//! of `loadtest broadcast` (coordinated omission corrected). The app relays each to every *other*
//! socket of the namespace (or room) as `42["message","<stamp>"]`: fanout's default app does,
//! and so does the Node reference server of `bench/peers/socketio`. The stamp (publisher,
//! sequence number, intended send time) gives loss, duplicates, reordering and latency.

pub mod args;
pub mod event_frames;
pub mod packet;
pub mod plan;
pub mod report;
pub mod stats;
