//! Plain HTTP/1.1 without sockets: bytes in, requests out, responses built.
//!
//! The server uses this layer on the same port as WebSockets: for the upgrade
//! request, and for plain requests (metrics, health checks, the HTTP API)
//! with keep-alive and pipelining. Like [`crate::ws`], it does no I/O: the
//! worker feeds a `RequestReader` the bytes it reads and pulls out complete
//! [`Request`]s; handlers answer with a [`Response`], which the worker encodes
//! and writes.
//!
//! What it guarantees:
//! - Nothing a peer sends can panic it; every refusal is an [`HttpError`]
//!   that maps onto a status (400, 413, 431, 501, 505) and a response.
//! - Work is linear in the input, however it is split across reads: a head's
//!   end is searched for only in newly arrived bytes, each head is parsed
//!   once (by httparse), bodies are copied once.
//! - Memory is bounded by the [`Limits`], and an idle connection's reader
//!   holds none.
//! - Body framing follows RFC 9112 strictly where lenience lets a proxy in
//!   front and this server disagree on where a request ends (request
//!   smuggling): `Content-Length` with `Transfer-Encoding`, conflicting
//!   lengths and bare LFs in chunked framing are all refused.
//! - An encoded [`Response`] is one well-framed response: exact length, and
//!   no header that could split it.
//!
//! Files: [`Request`] (`request.rs`, with query decoding in `query.rs`),
//! `RequestReader` and [`Limits`] (`reader.rs`), which finds heads and
//! hands them to `head.rs` and bodies to `body.rs` and `chunked.rs`;
//! [`Response`] (`response.rs`) with [`reason_phrase`] (`status.rs`);
//! [`HttpError`] (`error.rs`).

mod body;
mod chunked;
mod error;
mod head;
mod query;
mod reader;
mod request;
mod response;
mod status;

pub use error::HttpError;
pub(crate) use query::decode_path_segment;
pub use reader::Limits;
pub(crate) use reader::RequestReader;
pub use request::Request;
pub use response::Response;
pub use status::reason_phrase;
