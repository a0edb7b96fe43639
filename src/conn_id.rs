//! Connection identifiers.

use std::fmt;

/// Bits of a [`ConnId`] that name the worker owning the connection.
const SHARD_BITS: u32 = 16;

/// Identifies one WebSocket connection for the life of the process.
///
/// Ids are never reused while the process lives: each worker hands out a
/// strictly increasing sequence number, and the worker's index is part of the
/// id. A stale id can therefore never reach a newer connection (unlike
/// swoole's file descriptors, which the kernel recycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// Builds the id of the `seq`-th connection of worker `shard`.
    pub(crate) fn new(shard: usize, seq: u64) -> Self {
        debug_assert!(shard < (1 << SHARD_BITS));
        ConnId((seq << SHARD_BITS) | shard as u64)
    }

    /// The index of the worker that owns this connection.
    pub fn worker(self) -> usize {
        (self.0 & ((1 << SHARD_BITS) - 1)) as usize
    }

    /// The raw value, stable for the life of the process.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`ConnId::as_u64`]; ids that never existed are
    /// simply reported as closed by the server handle.
    pub fn from_u64(raw: u64) -> Self {
        ConnId(raw)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_index_round_trips() {
        let id = ConnId::new(3, 77);
        assert_eq!(id.worker(), 3);
        assert_eq!(ConnId::from_u64(id.as_u64()), id);
        assert_ne!(ConnId::new(3, 78), id);
    }
}
