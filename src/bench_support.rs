//! Entry points for the criterion benches in `benches/`: the real fan-out
//! and bus code on in-memory sockets. Not part of the supported API.

use bytes::Bytes;
use mio::{Poll, Token, Waker};

use crate::bus::{Broadcast, Bus, Command, InboxBounds, InboxReceiver, Wait};
use crate::config::INBOX_COMMANDS;
pub use crate::shard::rig::{FanoutRig, Sink};

/// One worker's inbox, for timing a hop across the bus.
pub struct BusRig {
    bus: Bus,
    inbox: InboxReceiver,
    _poll: Poll,
}

impl BusRig {
    /// A bus with one worker inbox.
    pub fn new() -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Token(0))?;
        let bounds = InboxBounds { commands: INBOX_COMMANDS, bytes: 16 << 20 };
        let (bus, mut inboxes) = Bus::new(vec![waker], bounds);
        let inbox = inboxes.pop().ok_or_else(|| std::io::Error::other("no inbox"))?;
        Ok(BusRig { bus, inbox, _poll: poll })
    }

    /// Sends one broadcast across the bus and takes it out of the inbox;
    /// returns the frame's length as the worker sees it.
    pub fn hop(&self, frame: &Bytes) -> usize {
        let broadcast = Broadcast { frame: frame.clone(), except: None, sent_at: None, deflated: Default::default() };
        if self.bus.broadcast(broadcast, Wait::No).is_err() {
            return 0;
        }
        match self.bus.take_data(0, &self.inbox) {
            Some((Command::Broadcast(broadcast), _)) => broadcast.frame.len(),
            _ => 0,
        }
    }
}

/// The HTTP request reader, for the fuzz targets: feed bytes, take out
/// requests until one is incomplete, fails or upgrades.
#[derive(Debug, Default)]
pub struct ReaderRig {
    reader: crate::http::RequestReader,
}

/// What the reader made of the bytes fed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderOutcome {
    /// A complete request.
    Request(crate::http::Request),
    /// A refusal.
    Refused(crate::http::HttpError),
}

impl ReaderRig {
    /// Feeds `data` and takes out every request now complete, in order;
    /// stops after a refusal or an upgrade request (whose following bytes
    /// are then taken as the rest).
    pub fn feed(&mut self, data: &[u8], limits: &crate::http::Limits) -> Vec<ReaderOutcome> {
        self.reader.feed(data);
        let mut outcomes = Vec::new();
        loop {
            match self.reader.next_request(limits) {
                Ok(None) => return outcomes,
                Ok(Some(request)) => {
                    let upgrade = request.is_upgrade();
                    outcomes.push(ReaderOutcome::Request(request));
                    if upgrade {
                        let _ = self.reader.take_rest();
                        return outcomes;
                    }
                }
                Err(error) => {
                    outcomes.push(ReaderOutcome::Refused(error));
                    return outcomes;
                }
            }
        }
    }

    /// Heap bytes the reader holds.
    pub fn buffered_bytes(&self) -> usize {
        self.reader.buffered_bytes()
    }
}
