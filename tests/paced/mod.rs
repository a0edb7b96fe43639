//! Healthy readers and paced broadcasts, shared by the slow-consumer tests:
//! numbered fixed-size payloads that reveal loss, reordering, tearing and
//! corruption, and a sender that never outruns the healthy readers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fanout::{Message, ServerHandle};
use tungstenite::Message as WsMessage;

use crate::util;

/// Payloads of `frame` bytes, sent no more than `window` ahead of the
/// slowest healthy reader (so healthy clients are never the slow ones).
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub frame: usize,
    pub window: u64,
}

/// A healthy client reading on its own thread until the text "end".
pub struct Reader {
    pub received: Arc<AtomicU64>,
    pub thread: JoinHandle<Vec<u64>>,
}

impl Paced {
    /// The `seq`-th payload: the number at both ends, its low byte between.
    pub fn payload(self, seq: u64) -> Vec<u8> {
        let mut data = vec![seq as u8; self.frame];
        data[..8].copy_from_slice(&seq.to_be_bytes());
        data[self.frame - 8..].copy_from_slice(&seq.to_be_bytes());
        data
    }

    /// The number of a received payload, after checking it arrived whole.
    pub fn seq_of(self, data: &[u8]) -> u64 {
        let frame = self.frame;
        assert_eq!(data.len(), frame, "a broadcast arrived with the wrong length");
        let head = u64::from_be_bytes(data[..8].try_into().unwrap());
        let tail = u64::from_be_bytes(data[frame - 8..].try_into().unwrap());
        assert_eq!(head, tail, "a broadcast arrived torn");
        assert!(data[8..frame - 8].iter().all(|&b| b == head as u8), "a broadcast arrived corrupted");
        head
    }

    /// Reads `client` on a thread, recording payload numbers until "end".
    pub fn spawn_reader(self, mut client: util::Client) -> Reader {
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let thread = thread::spawn(move || {
            let mut seqs = Vec::new();
            loop {
                match util::next_message(&mut client) {
                    WsMessage::Binary(data) => {
                        seqs.push(self.seq_of(&data));
                        count.store(seqs.len() as u64, Ordering::Release);
                    }
                    WsMessage::Text(text) if text.as_str() == "end" => return seqs,
                    other => panic!("unexpected message {other:?}"),
                }
            }
        });
        Reader { received, thread }
    }

    /// Broadcasts the `seq`-th payload once every reader is within the window.
    pub fn broadcast(self, handle: &ServerHandle, readers: &[Reader], seq: u64) {
        let deadline = Instant::now() + util::PATIENCE;
        while readers.iter().any(|r| r.received.load(Ordering::Acquire) + self.window <= seq) {
            assert!(Instant::now() < deadline, "healthy clients stopped receiving at broadcast {seq}");
            thread::sleep(Duration::from_micros(50));
        }
        handle.broadcast(&Message::binary(self.payload(seq)));
    }
}

/// Ends the readers and checks each got payloads 0..sent, all in order.
pub fn assert_readers_got_everything(handle: &ServerHandle, readers: Vec<Reader>, sent: u64) {
    handle.broadcast(&Message::text("end"));
    for reader in readers {
        let seqs = reader.thread.join().expect("healthy reader");
        assert_eq!(seqs.len() as u64, sent, "a healthy client missed broadcasts");
        assert!(seqs.iter().copied().eq(0..sent), "a healthy client got broadcasts out of order");
    }
}
