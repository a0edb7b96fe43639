//! The `channels` scenario's parts besides its event-loop driver (`scenario::channels`): flags
//! and plan, the schedule of each event stream, the HTTP API publisher, the saturation search
//! and the board the threads share, the counts, and the report.
//!
//! What a run does: `-c N` subscribers open `ws://HOST:PORT/app/{key}?protocol=7&...` (`wss://`
//! when `--url` is), wait for `pusher:connection_established`, subscribe to `bench-{i % C}` and
//! wait for `pusher_internal:subscription_succeeded`; only those subscribed before measuring begins are
//! counted. Events carry a stamp (stream, sequence number, intended send time) in their `data`
//! string, so every subscriber checks loss, duplicates and per-stream order, and measures
//! latency against the same host clock.
//!
//! Publishing:
//! - `--via api` (default): one thread sends signed `POST /apps/{id}/events` requests on
//!   `--publishers` keep-alive HTTP/1.1 connections (https, to the same host and port, when the
//!   `--url` is wss://), `--pipeline` requests in flight on each;
//!   each channel's events form one or more numbered streams (enough for every connection to
//!   carry one), stream `s` always on connection `s % P`, so each stream reaches the server in
//!   order and a single busy channel still uses every connection. Answers are counted by status (`503 (Retry-After)` apart); only 2xx-accepted events
//!   are owed to subscribers.
//! - `--via client-events`: `--publishers` extra WebSocket connections subscribe to
//!   `private-bench-{k % C}` (auth signed with the app secret, as an auth endpoint would) and
//!   send `client-bench` events; subscribers join the private channels. Servers limit client
//!   events per connection (Pusher: 10/s; sockudo: `SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND`,
//!   100 by default, and client events must be enabled), so a high rate needs many publishers:
//!   each sends `R / P` per second. Publishers also receive each other's events on their
//!   channel; those deliveries are not counted.
//!
//! Rates: `--rate R` runs one window of `--duration` after `--warmup`. Without it a saturation
//! search runs `--search-steps` steps of `--step-duration` from `--start-rate`, doubling while
//! the server keeps up and bisecting after the first failure (see `search`); each step starts
//! once the one before drained (at most `--step-gap` after it), then one step runs at half the
//! best sustained rate. A server that was just overloaded may still be slow in that last step;
//! for a clean "p99 at half load", run `--rate` at half the sustained rate on a fresh server.
//!
//! Memory: with `--server-pid`, the server's VmRSS is read before connecting and once
//! subscribed (just before traffic); the difference over the subscribed connections is the
//! memory per subscription. Allocators keep freed memory, so start the server afresh per run.

pub mod api_link;
pub mod api_publisher;
pub mod args;
pub mod board;
pub mod cursor;
pub mod http;
pub mod output;
pub mod plan;
pub mod report;
pub mod search;
pub mod stats;
pub mod table;
pub mod warnings;
