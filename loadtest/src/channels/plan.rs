//! `ChannelsPlan`: the `channels` scenario's settings and its timeline of steps. Like the rest of
//! the plan it is arithmetic on the shared clock: who subscribes where, which channel a stream
//! publishes on, and when each event of each stream is due. Only the rate of a saturation
//! search's later steps is decided while running (see `search`).

use serde::Serialize;

const NS: f64 = 1e9;

/// How events reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Signed `POST /apps/{id}/events` requests on keep-alive HTTP/1.1 connections.
    Api,
    /// `client-bench` events sent by WebSocket connections subscribed to private channels.
    ClientEvents,
}

/// The bounds of one step (CLOCK_MONOTONIC ns). A fixed-rate step runs exactly so. A search
/// step after the first starts as soon as the step before has drained, so for it these are the
/// earliest it may start and the latest it may end; where it really ran is its [`Pace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimes {
    /// Publishing begins (before `measure_start` only for the first step's warm-up).
    pub send_start: u64,
    /// Events intended from here on count.
    pub measure_start: u64,
    /// No event of the step is intended at or after this.
    pub end: u64,
}

/// When a step started sending and at what rate (events/s over all channels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// The instant event 0 of stream 0 is intended.
    pub start: u64,
    /// Events per second.
    pub rate: f64,
}

/// Settings and schedule of a `channels` run.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelsPlan {
    /// How events are published.
    pub via: Via,
    /// Pusher app id, key and secret.
    pub app_id: String,
    /// The key: the WebSocket path is `/app/{key}`.
    pub app_key: String,
    /// The secret signing API requests and private-channel subscriptions.
    pub app_secret: String,
    /// Channels `bench-0 .. bench-{C-1}`.
    pub channels: u64,
    /// Subscriber connections.
    pub subscribers: u64,
    /// HTTP connections (api) or publishing WebSocket connections (client events).
    pub publishers: u64,
    /// API requests in flight per HTTP connection.
    pub pipeline: usize,
    /// Bytes of each event's data string.
    pub size: usize,
    /// Fixed rate (events/s over all channels); `None`: saturation search.
    pub rate: Option<f64>,
    /// Saturation search: the first step's rate.
    pub start_rate: f64,
    /// Saturation search: steps before the half-load step.
    pub search_steps: usize,
    /// Length of each step's measured part.
    pub step_ns: u64,
    /// Saturation search: the longest wait after a step for its deliveries before the next.
    pub gap_ns: u64,
    /// The server's pid (`--server-pid`), for memory samples taken by the search.
    pub server_pid: Option<u32>,
    /// The steps, laid out by [`ChannelsPlan::lay_out`].
    pub steps: Vec<StepTimes>,
}

impl ChannelsPlan {
    /// True for a saturation search (no `--rate`).
    pub fn saturation(&self) -> bool {
        self.rate.is_none()
    }

    /// Steps in the run: one at a fixed rate; the search steps and a half-load step otherwise.
    pub fn step_count(&self) -> usize {
        if self.saturation() {
            self.search_steps + 1
        } else {
            1
        }
    }

    /// Length of the measured part of the run, from the first step's measuring to the last end.
    pub fn measured_ns(&self) -> u64 {
        let n = self.step_count() as u64;
        n * self.step_ns + (n - 1) * self.gap_ns
    }

    /// Places the steps: the first sends from `traffic_start` (the warm-up) and counts from
    /// `measure_start`; each later one starts at the latest a gap after the one before.
    pub fn lay_out(&mut self, traffic_start: u64, measure_start: u64) {
        self.steps = (0..self.step_count() as u64)
            .map(|i| {
                let start = measure_start + i * (self.step_ns + self.gap_ns);
                // A later step starts once the one before drained: after the first step's end
                // at the earliest, a gap after the step before at the latest.
                let earliest = measure_start + self.step_ns;
                StepTimes {
                    send_start: if i == 0 { traffic_start } else { earliest },
                    measure_start: if i == 0 { start } else { earliest },
                    end: start + self.step_ns,
                }
            })
            .collect();
    }

    /// Connections over the run: subscribers, plus the publishers when they are WebSocket
    /// connections (global indices `0..P` publish, the rest subscribe).
    pub fn total_connections(&self) -> u64 {
        self.subscribers + self.ws_publishers()
    }

    /// Publishing WebSocket connections (0 with the HTTP API).
    pub fn ws_publishers(&self) -> u64 {
        if self.via == Via::ClientEvents {
            self.publishers
        } else {
            0
        }
    }

    /// The WebSocket path every connection opens.
    pub fn ws_path(&self) -> String {
        format!("/app/{}?protocol=7&client=loadtest&version=1.0", self.app_key)
    }

    /// The name of channel `c`.
    pub fn channel_name(&self, c: u64) -> String {
        match self.via {
            Via::Api => format!("bench-{c}"),
            Via::ClientEvents => format!("private-bench-{c}"),
        }
    }

    /// The event name publishers use.
    pub fn event_name(&self) -> &'static str {
        match self.via {
            Via::Api => "bench",
            Via::ClientEvents => "client-bench",
        }
    }

    /// True when global connection `index` publishes client events.
    pub fn is_publisher(&self, index: u64) -> bool {
        index < self.ws_publishers()
    }

    /// The channel connection `index` subscribes to.
    pub fn channel_of_connection(&self, index: u64) -> u64 {
        if self.is_publisher(index) {
            index % self.channels
        } else {
            (index - self.ws_publishers()) % self.channels
        }
    }

    /// Streams of numbered events. Client events: one per publisher. API: one per channel, or
    /// as many per channel as it takes for every HTTP connection to carry one (stream `s` goes
    /// through connection `s % P`), so that a few busy channels still use every connection.
    pub fn streams(&self) -> u64 {
        match self.via {
            Via::Api => self.channels * self.publishers.div_ceil(self.channels).max(1),
            Via::ClientEvents => self.publishers,
        }
    }

    /// HTTP connections the API publisher opens: one per stream, at most `--publishers`.
    pub fn api_connections(&self) -> u64 {
        self.publishers.min(self.streams())
    }

    /// The channel stream `s` publishes on.
    pub fn channel_of_stream(&self, s: u64) -> u64 {
        s % self.channels
    }

    /// The index of stream `s` among the streams of its channel.
    pub fn rank_in_channel(&self, s: u64) -> usize {
        (s / self.channels) as usize
    }

    /// The latest `step` may start.
    pub fn latest_start(&self, step: usize) -> u64 {
        self.steps[step].end - self.step_ns
    }

    /// The first step's pace, known before the run.
    pub fn first_pace(&self) -> Pace {
        Pace { start: self.steps[0].send_start, rate: self.rate.unwrap_or(self.start_rate) }
    }

    /// The measured part of `step` run at `pace`: events intended in `[from, to)` count.
    pub fn window(&self, step: usize, pace: Pace) -> (u64, u64) {
        if step == 0 {
            (self.steps[0].measure_start, self.steps[0].end)
        } else {
            (pace.start, pace.start + self.step_ns)
        }
    }

    /// Intended send time of event `k` of stream `s` at `pace`: streams interleave so that all
    /// events together are evenly spaced at the rate.
    pub fn intended(&self, pace: Pace, s: u64, k: u64) -> u64 {
        pace.start + ((s + k * self.streams()) as f64 * NS / pace.rate) as u64
    }

    /// The step whose latencies make the run's main distribution (`--hgrm`): the only step at a
    /// fixed rate, the half-load step of a search.
    pub fn reference_step(&self) -> usize {
        self.steps.len().saturating_sub(1)
    }

    /// Events of stream `s` in the measured part of `step` run at `pace`.
    pub fn scheduled(&self, step: usize, pace: Pace, s: u64) -> u64 {
        if pace.rate <= 0.0 {
            return 0;
        }
        let (from, to) = self.window(step, pace);
        self.first_at_or_after(pace, s, to) - self.first_at_or_after(pace, s, from)
    }

    /// The first event number of stream `s` at `pace` intended at or after `t`.
    fn first_at_or_after(&self, pace: Pace, s: u64, t: u64) -> u64 {
        let offset = t.saturating_sub(pace.start) as f64 * pace.rate / NS;
        let mut k = ((offset - s as f64) / self.streams() as f64).floor().max(0.0) as u64;
        k = k.saturating_sub(2);
        while self.intended(pace, s, k) < t {
            k += 1;
        }
        k
    }

    /// Refuses settings the scenario cannot run with, naming the flag to change.
    pub fn check(&self, processes: u32) -> Result<(), String> {
        if self.channels == 0 {
            return Err("--channels must be at least 1".into());
        }
        if self.publishers == 0 {
            return Err("--publishers must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err("--rate must be a positive number of events per second".into());
        }
        if !(self.start_rate > 0.0 && self.start_rate.is_finite()) {
            return Err("--start-rate must be a positive number of events per second".into());
        }
        if self.search_steps == 0 || self.search_steps > 64 {
            return Err("--search-steps must be between 1 and 64".into());
        }
        if self.step_ns == 0 {
            return Err("the measuring window (--duration, --step-duration) must not be empty".into());
        }
        if self.saturation() && processes > 1 {
            return Err("the saturation search runs in one process: give --rate to use --processes".into());
        }
        Ok(())
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A plan with `streams` channels laid out from 1 s, for tests.
    pub fn plan(via: Via, rate: Option<f64>) -> ChannelsPlan {
        let mut p = ChannelsPlan {
            via,
            app_id: "1".into(),
            app_key: "key".into(),
            app_secret: "secret".into(),
            channels: 4,
            subscribers: 100,
            publishers: 8,
            pipeline: 4,
            size: 64,
            rate,
            start_rate: 100.0,
            search_steps: 3,
            step_ns: 1_000_000_000,
            gap_ns: 500_000_000,
            server_pid: None,
            steps: Vec::new(),
        };
        p.lay_out(1_000_000_000, 1_500_000_000);
        p
    }

    #[test]
    fn a_search_lays_out_latest_bounds_and_windows_follow_the_pace() {
        let p = plan(Via::Api, None);
        assert_eq!(p.steps.len(), 4);
        assert_eq!(
            p.steps[0],
            StepTimes { send_start: 1_000_000_000, measure_start: 1_500_000_000, end: 2_500_000_000 }
        );
        assert_eq!(p.latest_start(1), 3_000_000_000, "at the latest a gap after the first");
        assert_eq!(p.steps[1].measure_start, 2_500_000_000, "at the earliest when the first ends");
        assert_eq!(p.steps[3].end, 1_500_000_000 + p.measured_ns());
        let pace = Pace { start: 2_600_000_000, rate: 10.0 };
        assert_eq!(p.window(1, pace), (2_600_000_000, 3_600_000_000));
        assert_eq!(p.window(0, p.first_pace()), (1_500_000_000, 2_500_000_000), "the first has a warm-up");
        let fixed = plan(Via::Api, Some(50.0));
        assert_eq!((fixed.steps.len(), fixed.reference_step(), fixed.first_pace().rate), (1, 0, 50.0));
    }

    #[test]
    fn streams_interleave_evenly_and_map_to_channels() {
        let p = plan(Via::Api, Some(1000.0));
        let pace = p.first_pace();
        // 4 channels over 8 connections: two streams per channel, one per connection.
        assert_eq!((p.streams(), p.api_connections()), (8, 8));
        assert_eq!((p.channel_of_stream(5), p.rank_in_channel(5)), (1, 1));
        let times: Vec<u64> = (0..16).map(|n| p.intended(pace, n % 8, n / 8) - 1_000_000_000).collect();
        assert_eq!(times, (0..16).map(|n| n * 1_000_000).collect::<Vec<_>>());
        // 1000/s over 8 streams for the 1 s measured part: 125 each.
        assert!((0..8).all(|s| p.scheduled(0, pace, s) == 125));
        let few = ChannelsPlan { publishers: 3, ..p.clone() };
        assert_eq!((few.streams(), few.api_connections()), (4, 3));
        let one = ChannelsPlan { channels: 1, ..p.clone() };
        assert_eq!((one.streams(), one.channel_of_stream(7), one.rank_in_channel(7)), (8, 0, 7));
        let ce = plan(Via::ClientEvents, Some(80.0));
        assert_eq!((ce.streams(), ce.total_connections()), (8, 108));
        assert_eq!((ce.channel_of_stream(6), ce.rank_in_channel(6)), (2, 1));
        assert!(ce.is_publisher(7) && !ce.is_publisher(8));
        assert_eq!((ce.channel_of_connection(5), ce.channel_of_connection(8), ce.channel_of_connection(13)), (1, 0, 1));
        assert_eq!(ce.channel_name(2), "private-bench-2");
        assert_eq!(p.ws_path(), "/app/key?protocol=7&client=loadtest&version=1.0");
    }

    #[test]
    fn bad_settings_name_their_flag() {
        let mut p = plan(Via::Api, None);
        assert!(p.check(2).unwrap_err().contains("--rate"));
        p.channels = 0;
        assert!(p.check(1).unwrap_err().contains("--channels"));
        assert!(plan(Via::Api, Some(0.0)).check(1).unwrap_err().contains("--rate"));
    }
}
