//! `SocketIoPlan`: the validated settings of a `socketio` run.

use crate::pusher::stamp::STAMP_LEN;

/// Where an Engine.IO v4 client opens its WebSocket (Socket.IO's default `path`).
pub const ENGINE_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// What the connections of a `socketio` run do.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketIoPlan {
    /// Connections `0..publishers` also send.
    pub publishers: u64,
    /// Bytes of each event's data string, stamp included.
    pub size: usize,
    /// Events per second over all publishers.
    pub rate: f64,
    /// The namespace every connection connects to (`/`: the main one).
    pub namespace: String,
    /// `--room`: everyone joins it and publishers send to it; `None`: to the whole namespace.
    pub room: Option<String>,
}

impl SocketIoPlan {
    /// Checks what clap's types cannot; the error names the flag.
    pub fn check(&self, connections: u64) -> Result<(), String> {
        if self.publishers == 0 || self.publishers > connections {
            return Err(format!("--publishers must be between 1 and --connections ({connections})"));
        }
        if self.size < STAMP_LEN || self.size > 16 << 20 {
            return Err(format!("--size must be between {STAMP_LEN} bytes (the stamp) and 16 MiB"));
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err("--rate must be a positive number of events per second".into());
        }
        // A comma ends the namespace in every packet; `?` would start its query.
        let ns = &self.namespace;
        if !ns.starts_with('/') || ns.contains([',', '?']) || ns.chars().any(char::is_control) {
            return Err(format!("--namespace {ns:?}: must start with / and hold no comma or ?"));
        }
        if self.room.as_deref().is_some_and(str::is_empty) {
            return Err("--room must not be empty".into());
        }
        Ok(())
    }
}
