//! Flags of the `channels` scenario.

use std::time::Duration;

use clap::Args;

use crate::channels::plan::{ChannelsPlan, Via};
use crate::cli::{parse_duration, Common, Output, Window};

/// Flags of `loadtest channels`.
#[derive(Debug, Args, Clone)]
pub struct ChannelsArgs {
    /// Pusher app id: events are published with `POST /apps/{id}/events`.
    #[arg(long)]
    pub app_id: String,
    /// Pusher app key: connections open `/app/{key}?protocol=7&...` (the path of --url and of
    /// --subscriber-url is ignored).
    #[arg(long)]
    pub app_key: String,
    /// Pusher app secret: signs API requests and private-channel subscriptions.
    #[arg(long)]
    pub app_secret: String,
    /// Channels `bench-0 .. bench-{C-1}`; subscriber i joins channel i % C.
    #[arg(long, default_value_t = 10)]
    pub channels: u64,
    /// Bytes of each event's data string, stamp included (minimum 46).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Events per second published over all channels, for --duration after --warmup. Without
    /// it, a saturation search finds the highest rate the server sustains.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How events are published: signed HTTP API requests, or client events (`client-bench` on
    /// `private-bench-*` channels, which subscribers then join too) sent by --publishers
    /// WebSocket connections. Servers rate-limit client events per connection (Pusher: 10/s),
    /// so the rate per publisher, R / P, must stay under that limit.
    #[arg(long, value_enum, default_value_t = Via::Api)]
    pub via: Via,
    /// api: keep-alive HTTP connections (a channel's events spread over them); client-events:
    /// publishing WebSocket connections on top of -c (publisher k sends on channel k % C).
    /// Default: 4 (api), --channels (client-events).
    #[arg(long)]
    pub publishers: Option<u64>,
    /// api: requests in flight per HTTP connection (HTTP/1.1 pipelining; 1: wait for each
    /// answer).
    #[arg(long, default_value_t = 16)]
    pub pipeline: usize,
    /// --via api: where the signed API requests (`POST /apps/{id}/events`) go, http://host:port
    /// or https://host:port (ws:// and wss:// are read as http:// and https://; a path is
    /// ignored). For a cluster: publish on one node, subscribe on others (--subscriber-url).
    /// Default: the host and port of --url, over https for a wss:// --url.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Where the subscribers connect, ws://host:port or wss://host:port (the path is ignored, as
    /// --url's); repeat it to spread them over several servers, a cluster's nodes: subscriber i
    /// connects to the (i mod N)-th of the N given. Subscriber i also joins channel
    /// i mod --channels, so when N and --channels share a factor each channel's subscribers sit
    /// on some of the nodes only. Default: --url. Client-event publishers connect to --url
    /// whatever this says.
    #[arg(long = "subscriber-url", value_name = "URL")]
    pub subscriber_urls: Vec<String>,
    /// Saturation search: the first step's rate, events/s.
    #[arg(long, default_value_t = 100.0, conflicts_with = "rate")]
    pub start_rate: f64,
    /// Saturation search: steps before the final half-load step.
    #[arg(long, default_value_t = 8, conflicts_with = "rate")]
    pub search_steps: usize,
    /// Saturation search: how long each step offers its rate.
    #[arg(long, default_value = "3s", value_parser = parse_duration, conflicts_with = "rate")]
    pub step_duration: Duration,
    /// Saturation search: the longest wait after a step for its deliveries to arrive before it
    /// is judged and the next starts (the next starts as soon as they all have).
    #[arg(long, default_value = "3s", value_parser = parse_duration, conflicts_with = "rate")]
    pub step_gap: Duration,
    /// Measuring window (--duration applies to a fixed --rate).
    #[command(flatten)]
    pub window: Window,
    /// Latency output files (the fixed-rate step, or the search's half-load step).
    #[command(flatten)]
    pub output: Output,
    /// Shared flags; -c is the number of subscribers.
    #[command(flatten)]
    pub common: Common,
}

impl ChannelsArgs {
    /// The scenario's settings (the plan lays out the steps) and the warm-up, measured time and
    /// drain of the plan's timeline.
    pub fn plan(&self) -> (ChannelsPlan, Duration, Duration, Duration) {
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX / 1024)) as u64;
        let step = if self.rate.is_some() { self.window.duration } else { self.step_duration };
        let cp = ChannelsPlan {
            via: self.via,
            app_id: self.app_id.clone(),
            app_key: self.app_key.clone(),
            app_secret: self.app_secret.clone(),
            channels: self.channels,
            subscribers: self.common.connections,
            publishers: self.publishers.unwrap_or(match self.via {
                Via::Api => 4,
                Via::ClientEvents => self.channels,
            }),
            pipeline: self.pipeline,
            size: self.size,
            rate: self.rate,
            start_rate: self.start_rate,
            search_steps: self.search_steps,
            step_ns: ns(step),
            gap_ns: if self.rate.is_some() { 0 } else { ns(self.step_gap) },
            server_pid: self.common.server_pid,
            steps: Vec::new(),
        };
        let measured =
            Duration::from_nanos(if cp.search_steps == 0 || cp.search_steps > 64 { 0 } else { cp.measured_ns() });
        (cp, self.window.warmup, measured, self.window.drain)
    }
}
