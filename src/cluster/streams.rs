//! Channel history in Redis: each channel that keeps history has a stream
//! of its recent events and a hash with its epoch and newest offset, and
//! every node reads and extends the same ones, so a client recovers what
//! it missed whichever node it comes back to.
//!
//! An event is appended and published by one script (Centrifugo's way):
//! the offset it takes, its place in the stream and its publication cannot
//! disagree, and every node, the origin included, frames it at that offset
//! when it arrives on the channel's Redis channel. The stream is bounded by
//! the history size (`MAXLEN`) and, with a history TTL, both keys expire
//! once the channel is quiet that long; a stream whose hash is gone starts
//! again under a new epoch, so old offsets are never taken for new ones.
//!
//! Reads (a join with `since`, recent history, a cache channel's last
//! event, the history API) run on a thread of their own, in pipelines, one
//! script each so the position and the events are read at one instant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::names::{self, Names};
use super::{Link, Shard};
use crate::handle::ServerHandle;

/// Appends an event and publishes it. KEYS: the hash, the stream, the Redis
/// channel. ARGV: the envelope's head, the event, the most entries (`0`: no
/// bound), the TTL in ms (`0`: none), the epoch for a new stream, the wall
/// clock in ms, the publishing command (`PUBLISH`, or `SPUBLISH` on a Redis
/// Cluster, where the channel shares the keys' slot). A stream without its
/// hash is dropped first: its offsets belonged to an epoch that is gone.
pub(crate) const PUBLISH_SCRIPT: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local top = redis.call('HINCRBY', KEYS[1], 't', 1)
if ARGV[3] ~= '0' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. top, 'w', ARGV[6], 'd', ARGV[2])
else
  redis.call('XADD', KEYS[2], '0-' .. top, 'w', ARGV[6], 'd', ARGV[2])
end
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call(ARGV[7], KEYS[3], ARGV[1] .. string.char(#epoch) .. epoch .. top .. ':' .. ARGV[2])
return top
";

/// Reads a stream's position and events. KEYS: the hash, the stream. ARGV:
/// the first offset wanted (`0`: none), how many of the newest (`0`: none),
/// the newest id to consider for those (`+` or `0-N`), the most events
/// from the first offset. Answers `{}` when there is no stream, else
/// `{epoch, top, events from, newest events (newest first)}`.
const READ_SCRIPT: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then return {} end
local top = redis.call('HGET', KEYS[1], 't') or '0'
local from = {}
if ARGV[1] ~= '0' then from = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[1], '+', 'COUNT', ARGV[4]) end
local newest = {}
if ARGV[2] ~= '0' then newest = redis.call('XREVRANGE', KEYS[2], ARGV[3], '-', 'COUNT', ARGV[2]) end
return {epoch, top, from, newest}
";

/// The most events one read returns from a given offset; a client that
/// missed more is told it cannot recover (and its reconnect cannot make a
/// node read without bound).
pub(crate) const READ_MOST: usize = 10_000;

/// Jobs read in one pipeline at most.
const BATCH: usize = 256;

/// How long a channel's stream keeps its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    /// The most events per channel.
    pub(crate) size: Option<usize>,
    /// How long after a channel's last event its stream is kept.
    pub(crate) ttl: Option<Duration>,
}

/// What to read of a channel's stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReadSpec {
    /// The events from this offset on, oldest first (at most [`READ_MOST`]).
    pub(crate) from: Option<u64>,
    /// This many of the newest events.
    pub(crate) newest: usize,
    /// Only events older than this offset count as the newest.
    pub(crate) before: Option<u64>,
}

/// One event read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    /// Its offset.
    pub(crate) offset: u64,
    /// The publishing node's wall clock when it was published (ms).
    pub(crate) wall_ms: u64,
    /// The event as the application packed it.
    pub(crate) event: Vec<u8>,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamRead {
    /// The stream's epoch and newest offset; `None`: the channel has none.
    pub(crate) top: Option<(String, u64)>,
    /// The events from `ReadSpec::from` on, oldest first.
    pub(crate) from: Vec<StreamEntry>,
    /// The newest events asked for, oldest first.
    pub(crate) newest: Vec<StreamEntry>,
}

/// Why a read has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError {
    /// Redis cannot be reached, or failed the read.
    #[error("redis: {0}")]
    Redis(String),
    /// The reader's queue is full (or the server is stopping).
    #[error("too many history reads are waiting")]
    Busy,
    /// Redis answered something that is not what the script returns.
    #[error("redis answered a history read with something else")]
    Malformed,
}

/// What is done with a read's answer (on the reader's thread: keep it short).
pub(crate) type ReadThen = Box<dyn FnOnce(Result<StreamRead, ReadError>) + Send>;

/// A read waiting for the reader thread.
pub(crate) struct ReadJob {
    pub(crate) channel: String,
    pub(crate) spec: ReadSpec,
    pub(crate) then: ReadThen,
}

/// The thread that reads streams, for every Redis instance.
pub(super) struct StreamReader {
    pub(super) shards: Box<[Arc<Shard>]>,
    pub(super) names: Names,
    pub(super) jobs: Receiver<ReadJob>,
    pub(super) server: ServerHandle,
}

impl StreamReader {
    /// Answers reads until the server shuts down; a connection that fails
    /// fails the reads it carried and is made again for the next ones.
    pub(super) fn run(self) {
        let mut connections: Vec<Slot> = self.shards.iter().map(|_| Slot::default()).collect();
        loop {
            let first = match self.jobs.recv_timeout(Duration::from_millis(250)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) if !self.server.is_shutting_down() => continue,
                Err(_) => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                let Ok(next) = self.jobs.try_recv() else { break };
                batch.push(next);
            }
            let mut per_shard: Vec<Vec<ReadJob>> = self.shards.iter().map(|_| Vec::new()).collect();
            for job in batch {
                per_shard[names::shard_of(&job.channel, self.shards.len())].push(job);
            }
            for (index, jobs) in per_shard.into_iter().enumerate() {
                if !jobs.is_empty() {
                    self.read(&mut connections[index], &self.shards[index], jobs);
                }
            }
        }
    }

    fn read(&self, slot: &mut Slot, shard: &Shard, jobs: Vec<ReadJob>) {
        if slot.link.is_none() {
            // While Redis is away, reads fail at once rather than each
            // waiting for a connection that will not come.
            if slot.retry_at.is_some_and(|at| Instant::now() < at) {
                let why = format!("{} is unreachable", shard.shown);
                return jobs.into_iter().for_each(|job| (job.then)(Err(ReadError::Redis(why.clone()))));
            }
            match connect(shard) {
                Ok(made) => {
                    slot.link = Some(made);
                    slot.failures = 0;
                }
                Err(e) => {
                    slot.retry_at = Some(Instant::now() + super::backoff(slot.failures));
                    slot.failures = slot.failures.saturating_add(1);
                    return fail(jobs, &e);
                }
            }
        }
        let Some((link, sha)) = slot.link.as_mut() else { return };
        let mut commands = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let spec = job.spec;
            let before = match spec.before {
                None => "+".to_owned(),
                Some(before) => format!("0-{}", before.saturating_sub(1)),
            };
            let mut command = redis::cmd("EVALSHA");
            command
                .arg(sha.as_str())
                .arg(2)
                .arg(self.names.stream_top(&job.channel))
                .arg(self.names.stream(&job.channel))
                .arg(spec.from.unwrap_or(0))
                .arg(spec.newest)
                .arg(before)
                .arg(READ_MOST);
            commands.push(command);
        }
        match link.pipeline(commands, false) {
            Ok(answers) if answers.len() == jobs.len() => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    (job.then)(parse_read(answer).ok_or(ReadError::Malformed));
                }
            }
            Ok(_) => jobs.into_iter().for_each(|job| (job.then)(Err(ReadError::Malformed))),
            Err(e) => {
                slot.link = None;
                fail(jobs, &e);
            }
        }
    }
}

/// The reader's connection to one Redis instance, with the read script's
/// SHA1, and when to try again after failing to make it.
#[derive(Default)]
struct Slot {
    link: Option<(Link, String)>,
    failures: u32,
    retry_at: Option<Instant>,
}

fn connect(shard: &Shard) -> redis::RedisResult<(Link, String)> {
    let mut link = shard.target.connect(Duration::from_secs(2))?;
    let sha = load(link.as_dyn(), READ_SCRIPT)?;
    Ok((link, sha))
}

/// Loads `script` into Redis (once per connection: a Redis that restarted
/// lost it, and the connection with it) and gives its SHA1.
pub(super) fn load(connection: &mut dyn redis::ConnectionLike, script: &str) -> redis::RedisResult<String> {
    redis::cmd("SCRIPT").arg("LOAD").arg(script).query(connection)
}

fn fail(jobs: Vec<ReadJob>, e: &redis::RedisError) {
    jobs.into_iter().for_each(|job| (job.then)(Err(ReadError::Redis(e.to_string()))));
}

/// The read script's answer; `None` when it is not one.
fn parse_read(value: redis::Value) -> Option<StreamRead> {
    let redis::Value::Array(parts) = value else { return None };
    if parts.is_empty() {
        return Some(StreamRead::default());
    }
    let mut parts = parts.into_iter();
    let epoch = text(parts.next()?)?;
    let top = text(parts.next()?)?.parse().ok()?;
    let from = entries(parts.next()?)?;
    let mut newest = entries(parts.next()?)?;
    newest.reverse();
    Some(StreamRead { top: Some((epoch, top)), from, newest })
}

fn text(value: redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::SimpleString(text) => Some(text),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Stream entries `[[id, [field, value, ...]], ...]` whose ids are `0-N`.
fn entries(value: redis::Value) -> Option<Vec<StreamEntry>> {
    let redis::Value::Array(items) = value else { return None };
    items
        .into_iter()
        .map(|item| {
            let redis::Value::Array(pair) = item else { return None };
            let mut pair = pair.into_iter();
            let id = text(pair.next()?)?;
            let offset = id.strip_prefix("0-")?.parse().ok()?;
            let redis::Value::Array(fields) = pair.next()? else { return None };
            let (mut wall_ms, mut event) = (0, None);
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                match (text(name)?.as_str(), value) {
                    ("w", value) => wall_ms = text(value)?.parse().ok()?,
                    ("d", redis::Value::BulkString(bytes)) => event = Some(bytes),
                    _ => {}
                }
            }
            Some(StreamEntry { offset, wall_ms, event: event? })
        })
        .collect()
}

/// An epoch for a stream that begins now: random, so a stream that Redis
/// lost and that begins again is never taken for the old one.
pub(super) fn new_epoch() -> String {
    format!("{:012x}", names::new_node_id() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value::{Array, BulkString, Int};

    fn bulk(text: &str) -> redis::Value {
        BulkString(text.as_bytes().to_vec())
    }

    fn entry(offset: u64, wall: u64, event: &str) -> redis::Value {
        Array(vec![
            bulk(&format!("0-{offset}")),
            Array(vec![bulk("w"), bulk(&wall.to_string()), bulk("d"), bulk(event)]),
        ])
    }

    #[test]
    fn a_read_gives_the_position_and_events_oldest_first() {
        let answer = Array(vec![
            bulk("ab12"),
            bulk("7"),
            Array(vec![entry(6, 100, "six"), entry(7, 101, "seven")]),
            Array(vec![entry(7, 101, "seven"), entry(6, 100, "six")]),
        ]);
        let read = parse_read(answer).expect("a read");
        assert_eq!(read.top, Some(("ab12".to_owned(), 7)));
        let offsets = |entries: &[StreamEntry]| entries.iter().map(|e| e.offset).collect::<Vec<_>>();
        assert_eq!(offsets(&read.from), [6, 7]);
        assert_eq!(offsets(&read.newest), [6, 7], "newest come back oldest first");
        assert_eq!(read.from[1], StreamEntry { offset: 7, wall_ms: 101, event: b"seven".to_vec() });
    }

    #[test]
    fn no_stream_and_foreign_answers_are_told_apart() {
        assert_eq!(parse_read(Array(vec![])), Some(StreamRead::default()));
        assert_eq!(parse_read(Int(3)), None);
        let bad_id =
            Array(vec![bulk("e"), bulk("1"), Array(vec![Array(vec![bulk("17-1"), Array(vec![])])]), Array(vec![])]);
        assert_eq!(parse_read(bad_id), None);
    }

    #[test]
    fn epochs_differ() {
        assert_ne!(new_epoch(), new_epoch());
        assert_eq!(new_epoch().len(), 12);
    }
}
