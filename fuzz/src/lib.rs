//! The invariants each fuzz target checks, one module per target.
//!
//! Each module's `check` takes the raw fuzz input and panics when an invariant
//! fails. The targets in `fuzz_targets/` only call these, and
//! `tests/fuzz_regressions.rs` includes this file to replay the committed
//! corpus through the same checks on stable Rust, without cargo-fuzz.
//!
//! - [`handshake`]: the HTTP request reader and `validate_upgrade` on arbitrary bytes.
//! - [`decoder`]: the frame decoder on arbitrary bytes, fed whole and in pieces.
//! - [`decoder_roundtrip`]: messages framed by `encode`, masked as a client
//!   would, must decode to the same messages.

pub mod decoder;
pub mod decoder_roundtrip;
pub mod handshake;
