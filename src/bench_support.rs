//! Entry points for the criterion benches in `benches/`: the real fan-out
//! and bus code on in-memory sockets. Not part of the supported API.

use bytes::Bytes;
use crossbeam_channel::Receiver;
use mio::{Poll, Token, Waker};

use crate::bus::{Bus, Command};
pub use crate::shard::rig::{FanoutRig, Sink};

/// One worker's inbox, for timing a hop across the bus.
pub struct BusRig {
    bus: Bus,
    inbox: Receiver<Command>,
    _poll: Poll,
}

impl BusRig {
    /// A bus with one worker inbox.
    pub fn new() -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Token(0))?;
        let (bus, mut inboxes) = Bus::new(vec![waker]);
        let inbox = inboxes.pop().ok_or_else(|| std::io::Error::other("no inbox"))?;
        Ok(BusRig { bus, inbox, _poll: poll })
    }

    /// Sends one broadcast across the bus and takes it out of the inbox;
    /// returns the frame's length as the worker sees it.
    pub fn hop(&self, frame: &Bytes) -> usize {
        self.bus.send(0, Command::Broadcast { frame: frame.clone(), except: None });
        match self.inbox.try_recv() {
            Ok(Command::Broadcast { frame, .. }) => frame.len(),
            _ => 0,
        }
    }
}
