//! Channel history in memory: the last messages of each channel, each with
//! a gapless per-channel offset, and the epoch of the channel's stream, so a
//! client that lost its connection can ask for exactly what it missed
//! (Centrifugo's model: offsets, an epoch that changes when history is lost,
//! `recovered: true|false`).
//!
//! No sockets and no clock here: callers pass the time, so every rule is
//! unit-tested. One lock guards the store; it is taken once per publish and
//! once per recovery, never per recipient.
//!
//! Bounds: per channel the last `size` messages and those younger than
//! `ttl` (applied whenever the channel is appended to or read); over the
//! whole store `max_bytes`, enforced on every append by evicting the oldest
//! message of any channel first. A channel whose last
//! message leaves loses its stream: its next message starts a new epoch, so
//! a client holding the old one learns that history was lost instead of
//! receiving offsets that no longer mean what they meant.

mod epoch;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use epoch::EpochSource;

/// Bytes counted for each stored message on top of its payload's size: its
/// entry in the channel's log and in the store's eviction order, and the
/// allocator's share of its payload (measured on x86-64: about 117 bytes
/// more than the payload per message, so `max_bytes` bounds real memory).
pub const ENTRY_OVERHEAD: usize = 128;
/// Bytes counted for each channel that holds history, on top of its name.
pub const CHANNEL_OVERHEAD: usize = 128;

/// What history keeps. At least one of `size` and `ttl` must be set for a
/// channel to keep anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The most messages kept per channel.
    pub size: Option<usize>,
    /// How long a message is kept.
    pub ttl: Option<Duration>,
    /// Bytes the whole store may hold (payloads plus the overheads above).
    pub max_bytes: usize,
}

/// Where a channel's stream stands: the offset of a message (or of the last
/// one) and the epoch that gives offsets their meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The message's offset: 1 for a stream's first message, then +1 each.
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: Arc<str>,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// Its offset in the channel's stream.
    pub offset: u64,
    /// When it was appended (the caller's clock, milliseconds).
    pub at_ms: u64,
    /// The payload's size as the caller counted it.
    pub size: usize,
    /// What the caller stored.
    pub payload: T,
}

/// The answer to a recovery request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery<T> {
    /// Every message after the client's offset is here.
    Recovered {
        /// The messages after the client's offset, in order (possibly none).
        missed: Vec<Entry<T>>,
        /// Where the stream stands.
        top: Position,
    },
    /// Some of what the client missed is gone (evicted, expired, or a new
    /// epoch): it gets nothing partial.
    Lost {
        /// Where the stream stands now, if it exists.
        top: Option<Position>,
    },
}

/// Totals for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Channels holding at least one message.
    pub channels: usize,
    /// Messages held.
    pub messages: usize,
    /// Bytes counted against `max_bytes`.
    pub bytes: usize,
    /// Messages dropped to stay within `max_bytes`.
    pub evicted: u64,
    /// Messages dropped for age or the per-channel size.
    pub trimmed: u64,
}

/// The history of every channel, shared by all workers; `T` is what a
/// message keeps (the caller counts its size).
#[derive(Debug)]
pub struct History<T> {
    config: HistoryConfig,
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    epochs: EpochSource,
    channels: HashMap<Arc<str>, ChannelLog<T>>,
    /// Every message appended, oldest first, as (channel, stream, offset):
    /// what the byte bound evicts. Holds stale records of messages already
    /// trimmed, skipped when met and compacted when they outnumber the live
    /// ones.
    order: VecDeque<(Arc<str>, u64, u64)>,
    /// The id of the next stream created (a channel's log, until it empties).
    next_stream: u64,
    messages: usize,
    bytes: usize,
    evicted: u64,
    trimmed: u64,
}

#[derive(Debug)]
struct ChannelLog<T> {
    name: Arc<str>,
    /// Tells this stream's eviction records from those of an earlier stream
    /// of the same channel.
    stream: u64,
    epoch: Arc<str>,
    /// The offset of the last message appended.
    top: u64,
    entries: VecDeque<Entry<T>>,
}

impl<T: Clone> History<T> {
    /// An empty store whose epochs come from `epochs`.
    pub fn new(config: HistoryConfig, epochs: EpochSource) -> History<T> {
        let inner = Inner {
            epochs,
            channels: HashMap::new(),
            order: VecDeque::new(),
            next_stream: 0,
            messages: 0,
            bytes: 0,
            evicted: 0,
            trimmed: 0,
        };
        History { config, inner: Mutex::new(inner) }
    }

    /// The settings.
    pub fn config(&self) -> HistoryConfig {
        self.config
    }

    /// Appends `payload`, counted as `size` bytes, to `channel` at `now_ms`
    /// and returns its position.
    /// The message may leave at once (a `size` of 0, a store too small for
    /// it); if that empties the channel, its stream ends with it and the next
    /// message opens a new one, under a new epoch.
    pub fn append(&self, channel: &str, payload: T, size: usize, now_ms: u64) -> Position {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if !inner.channels.contains_key(channel) {
            let name: Arc<str> = Arc::from(channel);
            let stream = inner.next_stream;
            inner.next_stream += 1;
            let log = ChannelLog {
                name: Arc::clone(&name),
                stream,
                epoch: inner.epochs.next_epoch(),
                top: 0,
                entries: VecDeque::new(),
            };
            inner.bytes += CHANNEL_OVERHEAD + channel.len();
            inner.channels.insert(name, log);
        }
        let Some(log) = inner.channels.get_mut(channel) else { unreachable!("inserted above") };
        log.top += 1;
        let position = Position { offset: log.top, epoch: Arc::clone(&log.epoch) };
        log.entries.push_back(Entry { offset: log.top, at_ms: now_ms, size, payload });
        inner.order.push_back((Arc::clone(&log.name), log.stream, position.offset));
        inner.bytes += size + ENTRY_OVERHEAD;
        inner.messages += 1;
        inner.trim(channel, &self.config, now_ms);
        inner.evict(self.config.max_bytes);
        inner.compact_order();
        position
    }

    /// The position the next message appended to `channel` at `now_ms` will
    /// have, provided nothing else is appended in between (callers that
    /// frame a message before appending it serialize their appends).
    pub fn next_position(&self, channel: &str, now_ms: u64) -> Position {
        let mut inner = self.inner.lock();
        inner.trim(channel, &self.config, now_ms);
        match inner.channels.get(channel) {
            Some(log) => Position { offset: log.top + 1, epoch: Arc::clone(&log.epoch) },
            None => Position { offset: 1, epoch: inner.epochs.peek() },
        }
    }

    /// Puts back a stream read from a durable store: `channel` at `top`
    /// under `epoch`, with `messages` as (offset, time on this store's
    /// clock, payload, size), oldest first. Bounds apply as on append; a
    /// channel already present is left alone.
    pub fn restore(&self, channel: &str, epoch: &str, top: u64, messages: Vec<(u64, u64, T, usize)>, now_ms: u64) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if inner.channels.contains_key(channel) {
            return;
        }
        let name: Arc<str> = Arc::from(channel);
        let stream = inner.next_stream;
        inner.next_stream += 1;
        let mut log =
            ChannelLog { name: Arc::clone(&name), stream, epoch: Arc::from(epoch), top, entries: VecDeque::new() };
        inner.bytes += CHANNEL_OVERHEAD + channel.len();
        for (offset, at_ms, payload, size) in messages {
            inner.order.push_back((Arc::clone(&name), stream, offset));
            inner.bytes += size + ENTRY_OVERHEAD;
            inner.messages += 1;
            log.entries.push_back(Entry { offset, at_ms, size, payload });
        }
        inner.channels.insert(name, log);
        inner.trim(channel, &self.config, now_ms);
        inner.evict(self.config.max_bytes);
    }

    /// Drops `channel`'s stream if it is still the one of `epoch` (its
    /// history was lost elsewhere, say a failed disk write): the next
    /// message opens a new stream, so clients holding the old epoch are told
    /// `recovered: false` rather than given a history with a hole.
    pub fn lose(&self, channel: &str, epoch: &str) {
        let mut inner = self.inner.lock();
        let Some(log) = inner.channels.get(channel).filter(|log| &*log.epoch == epoch) else { return };
        let (count, gone) = (log.entries.len(), log.entries.iter().map(|e| e.size + ENTRY_OVERHEAD).sum::<usize>());
        inner.bytes -= gone;
        inner.messages -= count;
        inner.drop_channel(channel);
    }

    /// What a client that last saw `since` on `channel` missed, if all of it
    /// is still here.
    pub fn recover(&self, channel: &str, since: &Position, now_ms: u64) -> Recovery<T> {
        let mut inner = self.inner.lock();
        inner.trim(channel, &self.config, now_ms);
        let Some(log) = inner.channels.get(channel) else { return Recovery::Lost { top: None } };
        let top = Position { offset: log.top, epoch: Arc::clone(&log.epoch) };
        if since.epoch != log.epoch || since.offset > log.top {
            return Recovery::Lost { top: Some(top) };
        }
        let first_kept = log.entries.front().map_or(log.top + 1, |e| e.offset);
        if since.offset + 1 < first_kept {
            return Recovery::Lost { top: Some(top) };
        }
        let missed = log.entries.iter().filter(|e| e.offset > since.offset).cloned().collect();
        Recovery::Recovered { missed, top }
    }

    /// Up to `limit` of the newest messages of `channel` older than offset
    /// `before` (all, without it), oldest first, and where the stream stands.
    pub fn latest(
        &self,
        channel: &str,
        limit: usize,
        before: Option<u64>,
        now_ms: u64,
    ) -> (Option<Position>, Vec<Entry<T>>) {
        let mut inner = self.inner.lock();
        inner.trim(channel, &self.config, now_ms);
        let Some(log) = inner.channels.get(channel) else { return (None, Vec::new()) };
        let top = Position { offset: log.top, epoch: Arc::clone(&log.epoch) };
        let before = before.unwrap_or(u64::MAX);
        let mut newest: Vec<Entry<T>> =
            log.entries.iter().rev().filter(|e| e.offset < before).take(limit).cloned().collect();
        newest.reverse();
        (Some(top), newest)
    }

    /// The totals now.
    pub fn stats(&self) -> HistoryStats {
        let inner = self.inner.lock();
        HistoryStats {
            channels: inner.channels.len(),
            messages: inner.messages,
            bytes: inner.bytes,
            evicted: inner.evicted,
            trimmed: inner.trimmed,
        }
    }
}

impl<T> Inner<T> {
    /// Drops `channel`'s messages beyond its size or older than the ttl, and
    /// the channel itself once it holds none.
    fn trim(&mut self, channel: &str, config: &HistoryConfig, now_ms: u64) {
        let Some(log) = self.channels.get_mut(channel) else { return };
        let size = config.size.unwrap_or(usize::MAX);
        let ttl_ms = config.ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        let keep_nothing = config.size.is_none() && config.ttl.is_none();
        while let Some(front) = log.entries.front() {
            let expired = ttl_ms.is_some_and(|ttl| now_ms.saturating_sub(front.at_ms) >= ttl);
            if !(keep_nothing || log.entries.len() > size || expired) {
                break;
            }
            if let Some(gone) = log.entries.pop_front() {
                self.bytes -= gone.size + ENTRY_OVERHEAD;
                self.messages -= 1;
                self.trimmed += 1;
            }
        }
        if log.entries.is_empty() {
            self.drop_channel(channel);
        }
    }

    /// Evicts the oldest messages of any channel until the store fits `max_bytes`.
    fn evict(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((channel, stream, offset)) = self.order.pop_front() else { break };
            let Some(log) = self.channels.get_mut(&channel) else { continue };
            if log.stream != stream || log.entries.front().is_none_or(|e| e.offset != offset) {
                continue; // trimmed already
            }
            if let Some(gone) = log.entries.pop_front() {
                self.bytes -= gone.size + ENTRY_OVERHEAD;
                self.messages -= 1;
                self.evicted += 1;
            }
            if log.entries.is_empty() {
                self.drop_channel(&channel);
            }
        }
    }

    fn drop_channel(&mut self, channel: &str) {
        if self.channels.remove(channel).is_some() {
            self.bytes -= CHANNEL_OVERHEAD + channel.len();
        }
    }

    /// Removes the eviction records of messages no longer held once they are
    /// the majority, so the order stays within twice the messages held.
    fn compact_order(&mut self) {
        if self.order.len() <= 2 * self.messages + 16 {
            return;
        }
        let channels = &self.channels;
        self.order.retain(|(channel, stream, offset)| {
            channels.get(channel).is_some_and(|log| {
                log.stream == *stream && log.entries.front().is_some_and(|first| first.offset <= *offset)
            })
        });
    }
}

#[cfg(test)]
mod tests;
