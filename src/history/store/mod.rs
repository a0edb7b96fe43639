//! The durable store under `--history-dir`: every channel's stream (epoch
//! and last offset) and its messages, in one redb file.
//!
//! Why redb: an embedded, pure-Rust, ACID key-value store in a single file,
//! with no C library and no service to run; its write transactions commit
//! with fsync, which is what "answered 200 only once on disk" needs, and one
//! transaction carries a whole batch (group commit). SQLite would serve too,
//! at the cost of a C build and SQL for what is two sorted maps.
//!
//! Layout: `streams`: channel → (epoch, last offset); `messages`:
//! (channel, offset) → (wall-clock ms, payload). A message of a new epoch
//! replaces the channel's older stream whole. Writes come from one thread
//! (the service's writer); nothing here is called by a worker.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition};

const STREAMS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("streams");
const MESSAGES: TableDefinition<(&str, u64), (u64, &[u8])> = TableDefinition::new("messages");

/// The file under the history directory.
pub const FILE_NAME: &str = "history.redb";

/// Why the store cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be created or the file opened (permissions,
    /// another fanout holding it, not a redb file, corruption).
    #[error("cannot open the history store {path}: {reason}")]
    Open {
        /// The store's file.
        path: PathBuf,
        /// What redb or the system said.
        reason: String,
    },
    /// A read or write failed (a full disk, an I/O error).
    #[error("the history store {path} failed: {reason}")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// What redb or the system said.
        reason: String,
    },
}

/// One message to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The channel (as the history keys it).
    pub channel: String,
    /// Its stream's epoch.
    pub epoch: String,
    /// Its offset.
    pub offset: u64,
    /// When it was published, wall-clock milliseconds since 1970.
    pub wall_ms: u64,
    /// The payload, as the caller encodes it.
    pub payload: Vec<u8>,
}

/// One channel's stream as loaded: its position and the messages kept,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStream {
    /// The channel.
    pub channel: String,
    /// The stream's epoch.
    pub epoch: String,
    /// The last offset given.
    pub top: u64,
    /// (offset, wall-clock ms, payload), oldest first.
    pub messages: Vec<(u64, u64, Vec<u8>)>,
}

/// The open store.
pub struct DurableStore {
    /// `None` after a reopen failed: every use fails until one succeeds.
    db: Option<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore").field("path", &self.path).finish()
    }
}

/// Wall-clock milliseconds now.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl DurableStore {
    /// Opens (or creates) the store in `dir`. A file that is not a sound
    /// store is an error naming it, never a fresh start.
    pub fn open(dir: &Path) -> Result<DurableStore, StoreError> {
        let path = dir.join(FILE_NAME);
        let open = |reason: String| StoreError::Open { path: path.clone(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open(format!("cannot create {}: {e}", dir.display())))?;
        let db = Database::create(&path).map_err(|e| open(e.to_string()))?;
        // Both tables exist from the start, so a reader never meets a
        // missing one.
        let store = DurableStore { db: Some(db), path: path.clone() };
        store.write_batch(&[], &[], None).map_err(|e| open(e.to_string()))?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file again: after a failed write redb refuses every later
    /// one until reopened, so the writer reopens before trying again (a disk
    /// that was full may have room by then).
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        // The old handle holds the file's lock: it goes first.
        self.db = None;
        let db = Database::create(&self.path)
            .map_err(|e| StoreError::Open { path: self.path.clone(), reason: e.to_string() })?;
        self.db = Some(db);
        Ok(())
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| self.io("not open after a failed reopen"))
    }

    fn io(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io { path: self.path.clone(), reason: e.to_string() }
    }

    /// Every stream, with its messages younger than `ttl` (all without one)
    /// and at most the last `size` of them.
    pub fn load(&self, size: Option<usize>, ttl: Option<Duration>) -> Result<Vec<StoredStream>, StoreError> {
        let oldest = ttl.map_or(0, |ttl| wall_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)));
        let txn = self.db()?.begin_read().map_err(|e| self.io(e))?;
        let streams = txn.open_table(STREAMS).map_err(|e| self.io(e))?;
        let messages = txn.open_table(MESSAGES).map_err(|e| self.io(e))?;
        let mut loaded = Vec::new();
        for entry in streams.iter().map_err(|e| self.io(e))? {
            let (channel, position) = entry.map_err(|e| self.io(e))?;
            let (channel, (epoch, top)) = (channel.value().to_owned(), position.value());
            let mut kept: Vec<(u64, u64, Vec<u8>)> = Vec::new();
            for entry in messages.range((channel.as_str(), 0)..=(channel.as_str(), u64::MAX)).map_err(|e| self.io(e))? {
                let (key, value) = entry.map_err(|e| self.io(e))?;
                let (offset, (at, payload)) = (key.value().1, value.value());
                if at >= oldest {
                    kept.push((offset, at, payload.to_vec()));
                }
            }
            if let Some(size) = size {
                let excess = kept.len().saturating_sub(size);
                kept.drain(..excess);
            }
            loaded.push(StoredStream { channel, epoch: epoch.to_owned(), top, messages: kept });
        }
        Ok(loaded)
    }

    /// Writes `records` in one transaction, committed (fsync) before this
    /// returns; then each written channel keeps only its last `size`
    /// messages, if a size is given. A record of another epoch than its
    /// channel's stored one replaces that stream. `forget` lists channels
    /// whose stream is to be dropped first (history lost for them).
    pub fn write_batch(&self, records: &[Record], forget: &[String], size: Option<usize>) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.io(e))?;
        {
            let mut streams = txn.open_table(STREAMS).map_err(|e| self.io(e))?;
            let mut messages = txn.open_table(MESSAGES).map_err(|e| self.io(e))?;
            let drop_stream = |channel: &str,
                               streams: &mut redb::Table<&str, (&str, u64)>,
                               messages: &mut redb::Table<(&str, u64), (u64, &[u8])>|
             -> Result<(), StoreError> {
                streams.remove(channel).map_err(|e| self.io(e))?;
                messages.retain_in((channel, 0)..=(channel, u64::MAX), |_, _| false).map_err(|e| self.io(e))?;
                Ok(())
            };
            for channel in forget {
                drop_stream(channel, &mut streams, &mut messages)?;
            }
            for record in records {
                let stored = streams.get(record.channel.as_str()).map_err(|e| self.io(e))?.map(|v| {
                    let (epoch, top) = v.value();
                    (epoch.to_owned(), top)
                });
                let top = match stored {
                    Some((epoch, top)) if epoch == record.epoch => top.max(record.offset),
                    Some(_) => {
                        drop_stream(&record.channel, &mut streams, &mut messages)?;
                        record.offset
                    }
                    None => record.offset,
                };
                streams.insert(record.channel.as_str(), (record.epoch.as_str(), top)).map_err(|e| self.io(e))?;
                messages
                    .insert((record.channel.as_str(), record.offset), (record.wall_ms, record.payload.as_slice()))
                    .map_err(|e| self.io(e))?;
            }
            if let Some(size) = size {
                let mut written: Vec<&str> = records.iter().map(|r| r.channel.as_str()).collect();
                written.sort_unstable();
                written.dedup();
                for channel in written {
                    let Some(top) = streams.get(channel).map_err(|e| self.io(e))?.map(|v| v.value().1) else {
                        continue;
                    };
                    let keep_from = top.saturating_sub(size as u64).saturating_add(1);
                    messages.retain_in((channel, 0)..(channel, keep_from), |_, _| false).map_err(|e| self.io(e))?;
                }
            }
        }
        txn.commit().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests;
