//! The bodies of `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::app::AppLimits;
use super::names::{classify, NameError};
use super::protocol::is_object;
use super::socket_id::is_valid_socket_id;

/// One event to publish, as the HTTP API asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRequest {
    /// The event name.
    pub name: String,
    /// The event data, sent to subscribers as a JSON string.
    pub data: String,
    /// The channels, valid and without duplicates, in the order given.
    pub channels: Vec<String>,
    /// A connection not to send the event to (the publisher's own).
    pub socket_id: Option<String>,
    /// Comma-separated attributes to answer with (`user_count`, ...).
    pub info: Option<String>,
}

/// Why an API body is refused; [`ApiBodyError::status`] is the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiBodyError {
    /// The body is not a JSON object of the expected shape (400).
    #[error("malformed body: {0}")]
    Malformed(String),
    /// A required field is absent or null (400).
    #[error("missing {0}")]
    MissingField(&'static str),
    /// Both `channel` and `channels` were given (400).
    #[error("give either channel or channels, not both")]
    ChannelAndChannels,
    /// `channels` is empty (400).
    #[error("channels is empty")]
    NoChannels,
    /// More channels than the app allows (400).
    #[error("{count} channels; at most {max} are allowed")]
    TooManyChannels {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// A channel name is invalid (400).
    #[error("invalid channel {channel:?}: {reason}")]
    BadChannel {
        /// The name given.
        channel: String,
        /// Why it is invalid.
        reason: NameError,
    },
    /// `socket_id` is not of the form `123.456` (400).
    #[error("invalid socket_id {0:?}")]
    BadSocketId(String),
    /// The event name is empty (400).
    #[error("event name is empty")]
    EmptyName,
    /// The event name is too long (400).
    #[error("event name is {len} characters long; at most {max} are allowed")]
    NameTooLong {
        /// Its length in characters.
        len: usize,
        /// The longest allowed.
        max: usize,
    },
    /// The event data is larger than the app allows (413).
    #[error("event data is {len} bytes; at most {max} are allowed")]
    DataTooLarge {
        /// Its size in bytes.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `batch` holds more events than the app allows (400).
    #[error("batch of {count} events; at most {max} are allowed")]
    BatchTooLarge {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// The event at `index` of `batch` is refused (the status is its own).
    #[error("batch[{index}]: {source}")]
    InBatch {
        /// Its position in `batch`, from 0.
        index: usize,
        /// Why it is refused.
        source: Box<ApiBodyError>,
    },
}

impl ApiBodyError {
    /// The HTTP status to answer with: 413 for data over the limit, else 400.
    pub fn status(&self) -> u16 {
        match self {
            ApiBodyError::DataTooLarge { .. } => 413,
            ApiBodyError::InBatch { source, .. } => source.status(),
            _ => 400,
        }
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow, default)]
    batch: Option<Vec<&'a RawValue>>,
}

/// The event a `POST /apps/{id}/events` body asks to publish:
/// `{"name":..,"data":..,"channels":[..]}` (or `"channel":..`), with
/// optional `socket_id` and `info`, checked against `limits`. `data` should
/// be a string; other JSON is taken as its text.
pub fn parse_trigger_event(body: &[u8], limits: &AppLimits) -> Result<TriggerRequest, ApiBodyError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiBodyError::Malformed("body is not UTF-8".into()))?;
    let mut event: RawEvent = from_object(text)?;
    let channels = match (event.channel.take(), event.channels.take()) {
        (Some(_), Some(_)) => return Err(ApiBodyError::ChannelAndChannels),
        (Some(channel), None) => vec![channel],
        (None, Some(channels)) => channels,
        (None, None) => return Err(ApiBodyError::MissingField("channels")),
    };
    trigger(event, channels, limits)
}

/// The events a `POST /apps/{id}/batch_events` body asks to publish:
/// `{"batch":[{"name":..,"data":..,"channel":..},..]}`, at most
/// `limits.max_batch_size` of them, each checked like [`parse_trigger_event`]
/// but with exactly one `channel`. The first event refused refuses all.
pub fn parse_batch_events(body: &[u8], limits: &AppLimits) -> Result<Vec<TriggerRequest>, ApiBodyError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiBodyError::Malformed("body is not UTF-8".into()))?;
    let raw: RawBatch = from_object(text)?;
    let batch = raw.batch.ok_or(ApiBodyError::MissingField("batch"))?;
    if batch.len() > limits.max_batch_size {
        return Err(ApiBodyError::BatchTooLarge { count: batch.len(), max: limits.max_batch_size });
    }
    let one = |item: &RawValue| -> Result<TriggerRequest, ApiBodyError> {
        let event: RawEvent = from_object(item.get())?;
        if event.channels.is_some() {
            return Err(ApiBodyError::Malformed("a batch event takes one channel, not channels".into()));
        }
        let channel = event.channel.clone().ok_or(ApiBodyError::MissingField("channel"))?;
        trigger(event, vec![channel], limits)
    };
    batch
        .iter()
        .enumerate()
        .map(|(index, item)| one(item).map_err(|e| ApiBodyError::InBatch { index, source: Box::new(e) }))
        .collect()
}

fn trigger(event: RawEvent, channels: Vec<String>, limits: &AppLimits) -> Result<TriggerRequest, ApiBodyError> {
    let name = event.name.ok_or(ApiBodyError::MissingField("name"))?;
    let name_len = name.chars().count();
    if name_len == 0 {
        return Err(ApiBodyError::EmptyName);
    }
    if name_len > limits.max_event_name_length {
        return Err(ApiBodyError::NameTooLong { len: name_len, max: limits.max_event_name_length });
    }
    let raw = event.data.ok_or(ApiBodyError::MissingField("data"))?.get();
    // Pusher's SDKs send a string; some send the object itself. Take its text.
    let data = if raw.starts_with('"') { serde_json::from_str(raw).map_err(malformed)? } else { raw.to_string() };
    if data.len() > limits.max_event_payload_bytes {
        return Err(ApiBodyError::DataTooLarge { len: data.len(), max: limits.max_event_payload_bytes });
    }
    let channels = check_channels(channels, limits)?;
    if let Some(socket_id) = &event.socket_id {
        if !is_valid_socket_id(socket_id) {
            return Err(ApiBodyError::BadSocketId(socket_id.clone()));
        }
    }
    Ok(TriggerRequest { name, data, channels, socket_id: event.socket_id, info: event.info })
}

fn check_channels(channels: Vec<String>, limits: &AppLimits) -> Result<Vec<String>, ApiBodyError> {
    if channels.is_empty() {
        return Err(ApiBodyError::NoChannels);
    }
    if channels.len() > limits.max_event_channels {
        return Err(ApiBodyError::TooManyChannels { count: channels.len(), max: limits.max_event_channels });
    }
    let mut unique: Vec<String> = Vec::with_capacity(channels.len());
    for channel in channels {
        if let Err(reason) = classify(&channel, limits.max_channel_name_length) {
            return Err(ApiBodyError::BadChannel { channel, reason });
        }
        // At most 100 names: a linear scan beats hashing them.
        if !unique.contains(&channel) {
            unique.push(channel);
        }
    }
    Ok(unique)
}

fn from_object<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ApiBodyError> {
    let value = serde_json::from_str(text).map_err(malformed)?;
    if !is_object(text) {
        return Err(ApiBodyError::Malformed("expected a JSON object".into()));
    }
    Ok(value)
}

fn malformed(e: serde_json::Error) -> ApiBodyError {
    ApiBodyError::Malformed(e.to_string())
}

#[cfg(test)]
#[path = "api_body_tests.rs"]
mod tests;
