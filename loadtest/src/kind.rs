//! `Kind`: what a run's connections do once open, with each scenario's settings.

use crate::channels::plan::ChannelsPlan;
use crate::header::Payload;
use crate::overload_plan::OverloadPlan;
use crate::socketio::plan::SocketIoPlan;

/// What the connections do once open.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Nothing: hold the connection.
    Connect,
    /// Publish/receive relayed messages.
    Broadcast {
        /// Connections `0..publishers` also send.
        publishers: u64,
        /// Message size in bytes.
        size: usize,
        /// What fills each message after its header.
        payload: Payload,
        /// Total messages per second over all publishers.
        rate: f64,
        /// The server sends a message back to its publisher too.
        expect_echo: bool,
        /// `--publish-url` given: the publishers only send (what reaches them is not a
        /// delivery), and every measured message is owed to each other connection.
        separate_publishers: bool,
    },
    /// Request/echo.
    Echo {
        /// Message size in bytes.
        size: usize,
        /// Closed loop: messages outstanding per connection.
        in_flight: u32,
        /// Open loop: messages per second over all connections (`None`: closed loop).
        rate: Option<f64>,
    },
    /// Stepped offered load around the server's capacity.
    Overload(OverloadPlan),
    /// Pusher channels: subscribers, and publishers through the API or client events.
    Channels(ChannelsPlan),
    /// Socket.IO clients: publish and receive stamped events over Engine.IO's WebSocket.
    SocketIo(SocketIoPlan),
}
