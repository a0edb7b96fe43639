//! Flags of the `socketio` scenario.

use clap::Args;

use crate::cli::{Common, Output, Window};
use crate::socketio::plan::SocketIoPlan;

/// Flags of `loadtest socketio`.
#[derive(Debug, Args, Clone)]
pub struct SocketIoArgs {
    /// How many of the connections also publish (connections 0..P, spread over threads).
    #[arg(long, default_value_t = 1)]
    pub publishers: u64,
    /// Bytes of each event's data string, stamp included (minimum 46).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Events per second sent by all publishers together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Every connection joins this room (`421["join","ROOM"]`, acknowledged before it counts) and
    /// publishers send `42["to","ROOM",data]`. Without it publishers emit `message` to the whole
    /// namespace.
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    /// The namespace every connection connects to.
    #[arg(long, default_value = "/")]
    pub namespace: String,
    /// Measuring window.
    #[command(flatten)]
    pub window: Window,
    /// Latency output files.
    #[command(flatten)]
    pub output: Output,
    /// Shared flags; --url's host and port are used, its path is not (Engine.IO's is
    /// /socket.io/).
    #[command(flatten)]
    pub common: Common,
}

impl SocketIoArgs {
    /// The scenario's settings.
    pub fn plan(&self) -> SocketIoPlan {
        SocketIoPlan {
            publishers: self.publishers,
            size: self.size,
            rate: self.rate,
            namespace: self.namespace.clone(),
            room: self.room.clone(),
        }
    }
}
