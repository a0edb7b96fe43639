//! A connection's bounded queue of outgoing wire bytes.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Frames waiting for the socket, as shared chunks.
///
/// Chunks are `Bytes` handles into frames that may be shared with every
/// other recipient; a partially written chunk is advanced in place, so no
/// separate offset is kept. An empty queue holds no allocation.
#[derive(Default)]
pub(crate) struct SendQueue {
    chunks: VecDeque<Bytes>,
    /// Bytes queued, and in the top bit [`HEAD_STARTED`]: the first chunk
    /// was partly written and must be finished before anything else (even a
    /// close frame) may follow it. One word for both keeps the connection
    /// record, which holds this queue, from growing by padding.
    state: usize,
}

/// The flag bit of `SendQueue::state`; no queue comes near 2^63 bytes.
const HEAD_STARTED: usize = 1 << (usize::BITS - 1);

/// Chunk capacity above which an emptied queue gives its memory back.
const SHRINK_ABOVE: usize = 32;

/// What one queued chunk costs beyond its bytes: its 32-byte `Bytes`
/// handle, twice over for the slack of a ring buffer that grows by
/// doubling, and, for a frame no other connection holds any more, its
/// allocation's own overhead (the allocator's header and rounding, and the
/// shared-buffer record `Bytes` keeps once a frame is cloned). Measured
/// with 3-byte frames queued for a client that never reads.
pub(crate) const CHUNK_OVERHEAD: usize = 128;

impl SendQueue {
    /// Bytes waiting to be written.
    pub(crate) fn bytes(&self) -> usize {
        self.state & !HEAD_STARTED
    }

    fn head_started(&self) -> bool {
        self.state & HEAD_STARTED != 0
    }

    fn set_head_started(&mut self, started: bool) {
        self.state = if started { self.state | HEAD_STARTED } else { self.state & !HEAD_STARTED };
    }

    /// The memory the queue accounts for: its bytes plus
    /// [`CHUNK_OVERHEAD`] per chunk. This is what `max_backpressure` bounds,
    /// so a flood of tiny frames is bounded as honestly as a few large ones.
    pub(crate) fn cost(&self) -> usize {
        self.bytes() + self.chunks.len() * CHUNK_OVERHEAD
    }

    /// What queueing a frame of `len` bytes would add to [`SendQueue::cost`].
    pub(crate) fn cost_of(len: usize) -> usize {
        len + CHUNK_OVERHEAD
    }

    /// Number of chunks waiting.
    pub(crate) fn len(&self) -> usize {
        self.chunks.len()
    }

    /// True when nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Appends a chunk (empty chunks are ignored).
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.state += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Appends the unwritten tail of a chunk whose head already reached the
    /// socket; it must go out before anything queued later.
    pub(crate) fn push_started(&mut self, tail: Bytes) {
        if self.chunks.is_empty() && !tail.is_empty() {
            self.set_head_started(true);
        }
        self.push(tail);
    }

    /// Drops every chunk except a partly written head, so that a close
    /// frame can follow without corrupting the stream.
    pub(crate) fn discard_unstarted(&mut self) {
        let keep = usize::from(self.head_started() && !self.chunks.is_empty());
        self.chunks.truncate(keep);
        let bytes: usize = self.chunks.iter().map(Bytes::len).sum();
        self.state = bytes | (self.state & HEAD_STARTED);
        self.release_if_empty();
    }

    /// Fills `iov` with the queued chunks, oldest first; returns how many
    /// slots it used.
    pub(crate) fn fill<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        let mut used = 0;
        for (slot, chunk) in iov.iter_mut().zip(self.chunks.iter()) {
            *slot = IoSlice::new(chunk);
            used += 1;
        }
        used
    }

    /// Removes `written` bytes from the front; returns how many of them the
    /// queue held (the rest belong to whatever followed it in the write).
    pub(crate) fn consume(&mut self, mut written: usize) -> usize {
        let mut consumed = 0;
        while written > 0 {
            let Some(head) = self.chunks.front_mut() else { break };
            if written >= head.len() {
                written -= head.len();
                consumed += head.len();
                self.chunks.pop_front();
                self.set_head_started(false);
            } else {
                head.advance(written);
                consumed += written;
                self.set_head_started(true);
                written = 0;
            }
        }
        self.state -= consumed;
        self.release_if_empty();
        consumed
    }

    fn release_if_empty(&mut self) {
        if self.chunks.is_empty() {
            self.set_head_started(false);
            if self.chunks.capacity() > SHRINK_ABOVE {
                self.chunks = VecDeque::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(chunks: &[&'static [u8]]) -> SendQueue {
        let mut q = SendQueue::default();
        for c in chunks {
            q.push(Bytes::from_static(c));
        }
        q
    }

    #[test]
    fn consume_advances_partly_written_chunks() {
        let mut q = queue(&[b"abc", b"defg"]);
        assert_eq!(q.consume(4), 4);
        assert_eq!(q.bytes(), 3);
        let mut iov = [IoSlice::new(&[]); 4];
        assert_eq!(q.fill(&mut iov), 1);
        assert_eq!(&*iov[0], b"efg");
    }

    #[test]
    fn consume_reports_only_what_the_queue_held() {
        let mut q = queue(&[b"ab"]);
        assert_eq!(q.consume(10), 2);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn discard_keeps_a_started_head_only() {
        let mut q = queue(&[b"abc", b"def", b"ghi"]);
        q.consume(1);
        q.discard_unstarted();
        assert_eq!(q.bytes(), 2);
        let mut q = queue(&[b"abc", b"def"]);
        q.discard_unstarted();
        assert!(q.is_empty());
    }

    #[test]
    fn cost_counts_each_chunk_handle() {
        let q = queue(&[b"abc", b"d"]);
        assert_eq!(q.cost(), 4 + 2 * CHUNK_OVERHEAD);
        assert_eq!(SendQueue::cost_of(3), 3 + CHUNK_OVERHEAD);
        assert_eq!(SendQueue::default().cost(), 0);
    }

    #[test]
    fn an_emptied_queue_releases_a_large_allocation() {
        let mut q = SendQueue::default();
        for _ in 0..100 {
            q.push(Bytes::from_static(b"x"));
        }
        q.consume(100);
        assert_eq!(q.chunks.capacity(), 0);
    }
}
