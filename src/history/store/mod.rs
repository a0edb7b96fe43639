//! The durable store under `--history-dir`: every channel's stream (epoch
//! and last offset) and its messages, in one redb file.
//!
//! Why redb: an embedded, pure-Rust, ACID key-value store in a single file,
//! with no C library and no service to run; its write transactions commit
//! with fsync, which is what "answered 200 only once on disk" needs, and one
//! transaction carries a whole batch (group commit). SQLite would serve too,
//! at the cost of a C build and SQL for what is two sorted maps.
//!
//! Layout: `streams`: channel → (stream id, epoch, last offset); `chunks`:
//! (stream id, last offset in the chunk) → the messages one commit wrote to
//! that channel (see [`chunk`]). Numeric keys of fixed width keep redb's
//! B-tree pages small and cheap to copy on write; keying a chunk by its last
//! offset makes trimming a plain range delete of the chunks wholly below the
//! first offset kept. A message of a new epoch replaces the channel's older
//! stream whole. Writes come from one thread (the service's writer); nothing
//! here is called by a worker.

mod chunk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, Table, TableDefinition};

const STREAMS: TableDefinition<&str, (u64, &str, u64)> = TableDefinition::new("streams");
const CHUNKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("chunks");

/// How much each channel keeps on disk: the same bounds as in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// The most messages kept per channel (a commit may leave a few more,
    /// up to one commit's worth, which loading drops).
    pub size: Option<usize>,
    /// How long a message is kept (a chunk goes once its newest message is
    /// older).
    pub ttl: Option<Duration>,
}

impl Retention {
    fn oldest_ms(&self, now_ms: u64) -> u64 {
        self.ttl.map_or(0, |ttl| now_ms.saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
    }
}

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
    /// The id the next new stream takes.
    next_id: u64,
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
        let mut store = DurableStore { db: Some(db), path: path.clone(), next_id: 1 };
        store.write_batch(&[], &[], Retention::default()).map_err(|e| open(e.to_string()))?;
        store.next_id = store.highest_id().map_err(|e| open(e.to_string()))? + 1;
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

    fn highest_id(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.io(e))?;
        let streams = txn.open_table(STREAMS).map_err(|e| self.io(e))?;
        let mut highest = 0;
        for entry in streams.iter().map_err(|e| self.io(e))? {
            highest = highest.max(entry.map_err(|e| self.io(e))?.1.value().0);
        }
        Ok(highest)
    }

    /// Every stream, with its messages younger than `ttl` (all without one)
    /// and at most the last `size` of them.
    pub fn load(&self, size: Option<usize>, ttl: Option<Duration>) -> Result<Vec<StoredStream>, StoreError> {
        let oldest = Retention { size, ttl }.oldest_ms(wall_ms());
        let txn = self.db()?.begin_read().map_err(|e| self.io(e))?;
        let streams = txn.open_table(STREAMS).map_err(|e| self.io(e))?;
        let chunks = txn.open_table(CHUNKS).map_err(|e| self.io(e))?;
        let mut loaded = Vec::new();
        for entry in streams.iter().map_err(|e| self.io(e))? {
            let (channel, position) = entry.map_err(|e| self.io(e))?;
            let (channel, (id, epoch, top)) = (channel.value().to_owned(), position.value());
            let mut kept: Vec<(u64, u64, Vec<u8>)> = Vec::new();
            for entry in chunks.range((id, 0)..=(id, u64::MAX)).map_err(|e| self.io(e))? {
                let value = entry.map_err(|e| self.io(e))?.1;
                let messages = chunk::decode(value.value())
                    .ok_or_else(|| self.io(format!("a chunk of channel {channel:?} is malformed")))?;
                kept.extend(messages.into_iter().filter(|m| m.1 >= oldest).map(|(o, at, p)| (o, at, p.to_vec())));
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
    /// returns; then each written channel keeps what `retention` allows. A
    /// record of another epoch than its channel's stored one replaces that
    /// stream. `forget` lists channels whose stream is to be dropped first
    /// (history lost for them).
    pub fn write_batch(
        &mut self,
        records: &[Record],
        forget: &[String],
        retention: Retention,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.io(e))?;
        {
            let mut tables = Tables {
                streams: txn.open_table(STREAMS).map_err(|e| self.io(e))?,
                chunks: txn.open_table(CHUNKS).map_err(|e| self.io(e))?,
            };
            for channel in forget {
                tables.drop_stream(channel).map_err(|e| self.io(e))?;
            }
            let oldest = retention.oldest_ms(wall_ms());
            for (channel, run) in by_channel(records) {
                let mut stored = tables.stream(channel).map_err(|e| self.io(e))?;
                // A run of records of one epoch makes one chunk; a batch
                // rarely holds more than one epoch of a channel.
                for epoch_run in run.chunk_by(|a, b| a.epoch == b.epoch) {
                    let mut epoch_run = epoch_run.to_vec();
                    epoch_run.sort_by_key(|r| r.offset);
                    let epoch = epoch_run[0].epoch.as_str();
                    let (id, top) = match &stored {
                        Some((id, stored_epoch, top)) if stored_epoch == epoch => (*id, *top),
                        Some((id, _, _)) => {
                            tables.drop_stream(channel).map_err(|e| self.io(e))?;
                            (*id, 0)
                        }
                        None => {
                            self.next_id += 1;
                            (self.next_id - 1, 0)
                        }
                    };
                    let last = epoch_run.last().map_or(0, |r| r.offset);
                    let bytes = chunk::encode(epoch_run.iter().map(|r| (r.offset, r.wall_ms, r.payload.as_slice())));
                    tables.chunks.insert((id, last), bytes.as_slice()).map_err(|e| self.io(e))?;
                    let top = top.max(last);
                    tables.streams.insert(channel, (id, epoch, top)).map_err(|e| self.io(e))?;
                    stored = Some((id, epoch.to_owned(), top));
                }
                if let Some((id, _, top)) = stored {
                    tables.trim(id, top, retention.size, oldest).map_err(|e| self.io(e))?;
                }
            }
        }
        txn.commit().map_err(|e| self.io(e))
    }
}

/// The records of each channel, in the order the channels first appear.
fn by_channel(records: &[Record]) -> Vec<(&str, Vec<&Record>)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&str, Vec<&Record>)> = Vec::new();
    for record in records {
        let slot = *index.entry(record.channel.as_str()).or_insert_with(|| {
            groups.push((record.channel.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(record);
    }
    groups
}

/// Both tables, open in one write transaction.
struct Tables<'txn> {
    streams: Table<'txn, &'static str, (u64, &'static str, u64)>,
    chunks: Table<'txn, (u64, u64), &'static [u8]>,
}

impl Tables<'_> {
    /// The channel's stream: (id, epoch, last offset).
    fn stream(&self, channel: &str) -> Result<Option<(u64, String, u64)>, redb::StorageError> {
        Ok(self.streams.get(channel)?.map(|v| {
            let (id, epoch, top) = v.value();
            (id, epoch.to_owned(), top)
        }))
    }

    fn drop_stream(&mut self, channel: &str) -> Result<(), redb::StorageError> {
        if let Some(gone) = self.streams.remove(channel)? {
            let id = gone.value().0;
            drop(gone);
            self.chunks.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
        }
        Ok(())
    }

    /// Drops the chunks wholly below the last `size` offsets, and those
    /// whose newest message is older than `oldest_ms`.
    fn trim(&mut self, id: u64, top: u64, size: Option<usize>, oldest_ms: u64) -> Result<(), redb::StorageError> {
        if let Some(size) = size {
            let keep_from = top.saturating_sub(size as u64).saturating_add(1);
            self.chunks.retain_in((id, 0)..(id, keep_from), |_, _| false)?;
        }
        if oldest_ms > 0 {
            let mut expired = Vec::new();
            for entry in self.chunks.range((id, 0)..=(id, u64::MAX))? {
                let (key, value) = entry?;
                if chunk::newest(value.value()).is_some_and(|newest| newest >= oldest_ms) {
                    break;
                }
                expired.push(key.value().1);
            }
            for last in expired {
                self.chunks.remove((id, last))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
