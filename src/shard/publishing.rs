//! Channels on the worker: memberships, and this turn's publishes moved
//! into their members' queues.
//!
//! Publishes are collected during the turn and delivered together, per
//! channel: a channel with many publishes in one turn is joined into one
//! buffer per dialect, so each member's queue (and `writev`) gets one
//! chunk, as broadcasts do. Anything that must come after them for some
//! connection (a push, a disconnect, a broadcast, a change of membership)
//! delivers the collected ones first, so per-sender order holds.

use std::mem;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::coalesce::JOIN_FROM;
use super::connection::Flag;
use super::flush_one::{catch_up, Enqueued};
use super::transport::Transport;
use super::writing::sync_backlog;
use super::Worker;
use crate::bus::Publish;
use crate::channels::{ChannelChange, Dialect, DIALECTS, SINK_BASE};
use crate::conn_id::ConnId;
use crate::guard;
use crate::handler::Handler;
use crate::stats::WorkerCounters;
use crate::ws::deflate::Deflater;

impl<H: Handler, T: Transport> Worker<H, T> {
    /// Makes `conn` a member of `channel`.
    pub(super) fn apply_subscribe(&mut self, conn: ConnId, channel: &str, dialect: Dialect) {
        self.deliver_publishes();
        let Some(&key) = self.ids.get(&conn) else { return };
        let (name, joined) = self.channels.join(key, channel, dialect);
        if matches!(joined, crate::channels::Joined::New { .. }) {
            if let Some(change) = self.handle.shared.channels.add(&name, self.index) {
                self.channel_changed(&name, change);
            }
        }
    }

    /// Ends `conn`'s membership of `channel`.
    pub(super) fn apply_unsubscribe(&mut self, conn: ConnId, channel: &str) {
        self.deliver_publishes();
        let Some(&key) = self.ids.get(&conn) else { return };
        if let Some((name, _)) = self.channels.leave(key, channel) {
            if let Some(change) = self.handle.shared.channels.remove(&name, self.index) {
                self.channel_changed(&name, change);
            }
        }
    }

    /// Takes connection `key` out of every channel: it is no longer open.
    pub(super) fn leave_channels(&mut self, key: usize) {
        for (name, _) in self.channels.leave_all(key) {
            if let Some(change) = self.handle.shared.channels.remove(&name, self.index) {
                self.channel_changed(&name, change);
            }
        }
    }

    fn channel_changed(&mut self, channel: &Arc<str>, change: ChannelChange) {
        if let Some(cluster) = &self.handle.shared.cluster {
            cluster.membership_changed(channel);
        }
        let (handler, handle) = (&self.handler, &self.handle);
        if let Err(panic) = guard::call(|| handler.on_channel(handle, channel, change)) {
            self.hook_panicked("on_channel", &format!("channel {channel}"), &panic, "the server goes on");
        }
    }

    /// Collects a publish for this turn's delivery (dropped when the
    /// channel has no member here any more, or the worker is draining).
    pub(super) fn queue_publish(&mut self, publish: Publish) {
        if self.draining_until.is_none() && !self.channels.members(&publish.channel).is_empty() {
            self.publishes.push(publish);
        }
    }

    /// Moves every collected publish into its members' queues, after the
    /// turn's broadcasts they have not been given yet.
    pub(super) fn deliver_publishes(&mut self) {
        if self.publishes.is_empty() {
            return;
        }
        let mut publishes = mem::take(&mut self.publishes);
        // Stable: one channel's publishes keep their order.
        publishes.sort_by(|a, b| a.channel.cmp(&b.channel));
        let limit = self.limit();
        let shared = self.handle.shared.clone();
        let counters = &shared.counters[self.index];
        let mut slow = Vec::new();
        let mut backlogged = Vec::new();
        let mut delivered = 0u64;
        let mut full_sinks = Vec::new();
        for run in publishes.chunk_by(|a, b| a.channel == b.channel) {
            let mut frames = RunFrames::new(run);
            for member in self.channels.members(&run[0].channel) {
                let key = member.key as usize;
                if key >= SINK_BASE {
                    let Some((id, sink)) = self.sinks.get(key - SINK_BASE) else { continue };
                    for (i, publish) in run.iter().enumerate() {
                        if publish.except == Some(*id) {
                            continue;
                        }
                        match frames.frame_for(i, member.dialect, None) {
                            Some(frame) if !sink.deliver(&frame) => {
                                full_sinks.push(*id);
                                break;
                            }
                            Some(_) => delivered += 1,
                            None => {}
                        }
                    }
                    continue;
                }
                let Some(conn) = self.conns.get_mut(key) else { continue };
                if !conn.is_open() {
                    continue;
                }
                let id = conn.id;
                let compressing = conn.flags.is(Flag::Deflate);
                let mut outcome = catch_up(conn, &self.batch, limit, counters);
                let mut dropped = outcome == Enqueued::Dropped;
                if outcome != Enqueued::SlowConsumer {
                    let mut enqueue = |frame: Bytes, count: u64| match limit.enqueue(conn, frame, counters) {
                        Enqueued::Queued => delivered += count,
                        Enqueued::Dropped => dropped = true,
                        Enqueued::SlowConsumer => outcome = Enqueued::SlowConsumer,
                    };
                    let mut deflater = compressing.then_some(&mut self.deflater);
                    match frames.joined_for(id, member.dialect, deflater.as_deref_mut()) {
                        Some((joined, count)) => enqueue(joined, count),
                        None => {
                            for (i, publish) in run.iter().enumerate() {
                                if publish.except == Some(id) {
                                    continue;
                                }
                                if let Some(frame) = frames.frame_for(i, member.dialect, deflater.as_deref_mut()) {
                                    enqueue(frame, 1);
                                }
                            }
                        }
                    }
                }
                if sync_backlog(conn, dropped, limit, &shared.registry) {
                    backlogged.push(id);
                }
                if outcome == Enqueued::SlowConsumer {
                    slow.push((key, id));
                } else if !conn.flags.is(Flag::Dirty) {
                    conn.flags.set(Flag::Dirty, true);
                    self.dirty.push(key);
                }
            }
        }
        WorkerCounters::add(&counters.frames_out, delivered);
        counters.observe_sent(publishes.iter().filter_map(|p| p.sent_at));
        publishes.clear();
        if self.publishes.is_empty() {
            self.publishes = publishes;
        }
        for id in backlogged {
            self.log_backlogged(id);
        }
        for (key, id) in slow {
            self.close_slow_consumer(key, id);
        }
        for id in full_sinks {
            self.sink_dropped(id);
        }
    }
}

/// One channel's publishes of a turn, joined per dialect on first use when
/// there are enough of them to be worth it; each frame compressed once, by
/// the first worker with a compressing member (see
/// [`crate::channels::Publication`]).
struct RunFrames<'a> {
    run: &'a [Publish],
    /// Sorted ids excluded from some publish of the run.
    excepted: Vec<ConnId>,
    joined: [Option<(Bytes, u64)>; DIALECTS],
    joined_deflated: [Option<(Bytes, u64)>; DIALECTS],
}

impl<'a> RunFrames<'a> {
    fn new(run: &'a [Publish]) -> Self {
        let mut excepted: Vec<ConnId> = run.iter().filter_map(|p| p.except).collect();
        excepted.sort_unstable();
        excepted.dedup();
        RunFrames { run, excepted, joined: Default::default(), joined_deflated: Default::default() }
    }

    /// Publish `i`'s frame for a member of `dialect`: compressed (when that
    /// pays) for a member given `deflater`, plain otherwise.
    fn frame_for(&mut self, i: usize, dialect: Dialect, deflater: Option<&mut Deflater>) -> Option<Bytes> {
        let publication = &self.run.get(i)?.publication;
        match deflater {
            Some(deflater) => publication.deflated_frame(dialect, |frame| deflater.deflate_frame(frame, 15)),
            None => publication.frame(dialect).cloned(),
        }
    }

    /// The run as one buffer for a member of `dialect` (compressed frames
    /// for a member given `deflater`), with the number of frames in it;
    /// `None` when the run is short or `conn` must skip part of it (it then
    /// gets the frames one by one).
    fn joined_for(&mut self, conn: ConnId, dialect: Dialect, deflater: Option<&mut Deflater>) -> Option<(Bytes, u64)> {
        if self.run.len() < JOIN_FROM || self.excepted.binary_search(&conn).is_ok() {
            return None;
        }
        let compressing = deflater.is_some();
        let cached = match compressing {
            true => &self.joined_deflated[dialect.index()],
            false => &self.joined[dialect.index()],
        };
        if let Some(joined) = cached {
            return Some(joined.clone());
        }
        let mut deflater = deflater;
        let frames: Vec<Bytes> =
            (0..self.run.len()).filter_map(|i| self.frame_for(i, dialect, deflater.as_deref_mut())).collect();
        let mut buffer = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
        for frame in &frames {
            buffer.extend_from_slice(frame);
        }
        let joined = (buffer.freeze(), frames.len() as u64);
        let slot = match compressing {
            true => &mut self.joined_deflated[dialect.index()],
            false => &mut self.joined[dialect.index()],
        };
        *slot = Some(joined.clone());
        Some(joined)
    }
}
