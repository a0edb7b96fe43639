//! The `channels` scenario's parts besides its event-loop driver (`scenario::channels`): flags
//! and plan, the schedule of each event stream, the HTTP API publisher, the saturation search
//! and the board the threads share, the counts, and the report.

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
