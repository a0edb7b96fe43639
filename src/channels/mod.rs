//! Channels: named audiences a connection joins and leaves, and what a
//! publish to one of them carries. Knows no protocol: a Pusher channel, a
//! raw chat room and (later) a Socket.IO room are all channels here.
//!
//! - [`Publication`]: a message framed once per [`Dialect`] (the wire form a
//!   member asked for when it subscribed), shared by every recipient.
//! - `index`: one worker's channel → local members map, exact under join,
//!   leave and close; an empty channel is removed.
//! - `directory`: the process-wide count of subscriptions per channel and
//!   per worker, so a publish crosses only to the workers with members and
//!   the HTTP API can answer occupancy without asking the workers.
//! - `sink`: members that are queues, not sockets (long-polling sessions).

mod directory;
mod handle;
mod index;
mod publication;
mod sink;

pub(crate) use directory::ChannelDirectory;
pub use handle::ChannelInfo;
pub(crate) use index::{ChannelIndex, Joined};
pub(crate) use publication::DIALECTS;
pub use publication::{Dialect, Publication};
pub(crate) use sink::{frame_payload, SharedSink, Sink, SINK_BASE};

/// What changed about a channel across the whole server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChange {
    /// Its first subscriber joined (it was empty on every worker).
    Occupied,
    /// Its last subscriber left, unsubscribed or closed.
    Vacated,
}
