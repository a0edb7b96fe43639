//! [`App`]s: the credentials, switches and limits of each Pusher app the
//! server hosts, and [`Apps`], the set looked up by key or id.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::names::DEFAULT_MAX_CHANNEL_NAME;
use super::webhook::WebhookKind;

/// One Pusher app: clients connect to `/app/{key}`, the HTTP API is under
/// `/apps/{id}/`, and `secret` signs both.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The id in HTTP API paths.
    pub id: String,
    /// The public key clients connect with.
    pub key: String,
    /// The secret that signs subscriptions, API requests and webhooks.
    pub secret: String,
    /// Whether connections and API calls are accepted (else 4003 / 403).
    pub enabled: bool,
    /// Whether clients may trigger `client-` events (Pusher: off by default).
    pub client_events: bool,
    /// Whether clients may sign in with `pusher:signin`.
    pub user_authentication: bool,
    /// Limits on connections, names, events and presence.
    pub limits: AppLimits,
    /// Origins whose browsers may connect; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Where webhooks are sent.
    pub webhooks: Vec<WebhookTarget>,
    /// With history on (`--history-size`/`--history-ttl`): the channel-name
    /// prefixes whose channels keep it; `None` for every channel. Cache
    /// channels keep their last event either way.
    pub history_channels: Option<Vec<String>>,
}

impl App {
    /// An enabled app with these credentials and Pusher's defaults: client
    /// events off, sign-in on, default limits, any origin, no webhooks.
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> Self {
        App {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            enabled: true,
            client_events: false,
            user_authentication: true,
            limits: AppLimits::default(),
            allowed_origins: Vec::new(),
            webhooks: Vec::new(),
            history_channels: None,
        }
    }

    /// Whether `channel` keeps history when history is on.
    pub fn keeps_history(&self, channel: &str) -> bool {
        self.history_channels.as_ref().is_none_or(|prefixes| prefixes.iter().any(|p| channel.starts_with(p.as_str())))
    }

    /// Whether a browser at `origin` (the `Origin` header) may connect: any
    /// may when `allowed_origins` is empty; otherwise it must match one of
    /// them (the patterns of [`crate::origin`]: `*`, full origins, hosts,
    /// `*.domain`).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty() || crate::origin::allowed(&self.allowed_origins, origin)
    }
}

/// Shows everything but the secret, so apps can be logged.
impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("client_events", &self.client_events)
            .field("user_authentication", &self.user_authentication)
            .field("limits", &self.limits)
            .field("allowed_origins", &self.allowed_origins)
            .field("webhooks", &self.webhooks)
            .field("history_channels", &self.history_channels)
            .finish()
    }
}

/// An app's limits; [`Default`] gives Pusher's. Every limit but
/// `max_connections` must be at least 1 (a config file saying 0 is refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppLimits {
    /// Connections at once; `None` for no limit (past it: 4004).
    #[serde(deserialize_with = "positive_option")]
    pub max_connections: Option<usize>,
    /// Characters in a channel name, prefix included (164).
    #[serde(deserialize_with = "positive")]
    pub max_channel_name_length: usize,
    /// Bytes of an event's `data` (10 KiB; over it the API answers 413).
    #[serde(deserialize_with = "positive")]
    pub max_event_payload_bytes: usize,
    /// Channels one API event may go to (100).
    #[serde(deserialize_with = "positive")]
    pub max_event_channels: usize,
    /// Events in one `batch_events` call (10).
    #[serde(deserialize_with = "positive")]
    pub max_batch_size: usize,
    /// Distinct users in one presence channel (100).
    #[serde(deserialize_with = "positive")]
    pub max_presence_members: usize,
    /// Bytes of one member's `user_info` JSON (1024).
    #[serde(deserialize_with = "positive")]
    pub max_presence_member_bytes: usize,
    /// Client events one connection may send per second (10; past it: 4301).
    #[serde(deserialize_with = "positive")]
    pub client_events_per_second: u32,
    /// Characters in an event name (200).
    #[serde(deserialize_with = "positive")]
    pub max_event_name_length: usize,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            max_connections: None,
            max_channel_name_length: DEFAULT_MAX_CHANNEL_NAME,
            max_event_payload_bytes: 10 * 1024,
            max_event_channels: 100,
            max_batch_size: 10,
            max_presence_members: 100,
            max_presence_member_bytes: 1024,
            client_events_per_second: 10,
            max_event_name_length: 200,
        }
    }
}

fn positive<'de, D: Deserializer<'de>, N: Deserialize<'de> + PartialEq + Default>(d: D) -> Result<N, D::Error> {
    let value = N::deserialize(d)?;
    if value == N::default() {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

fn positive_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    positive(d).map(Some)
}

/// Where an app's webhooks go, and which kinds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// An `http://` URL (the sender speaks plain HTTP only).
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// The kinds sent there; empty sends every kind.
    #[serde(default)]
    pub events: Vec<WebhookKind>,
}

impl WebhookTarget {
    /// Whether events of `kind` are sent to this target.
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    match url.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => Ok(url),
        _ => Err(serde::de::Error::custom(format!(
            "webhook url {url:?} must be http://host[:port]/path (https is not supported)"
        ))),
    }
}

/// The apps a server hosts, found by key (WebSocket path) or id (API path).
/// The default hosts none.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    apps: Vec<App>,
    by_key: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

/// What makes a list of apps inconsistent; the config file turns it into a
/// message with the line at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    EmptyId,
    EmptyKey,
    EmptySecret,
    BadIdChars,
    BadKeyChars,
    DuplicateId,
    DuplicateKey,
}

impl Apps {
    /// A server hosting one app.
    pub fn single(app: App) -> Self {
        let by_key = HashMap::from([(app.key.clone(), 0)]);
        let by_id = HashMap::from([(app.id.clone(), 0)]);
        Apps { apps: vec![app], by_key, by_id }
    }

    /// The app whose key is `key`.
    pub fn by_key(&self, key: &str) -> Option<&App> {
        self.by_key.get(key).and_then(|&at| self.apps.get(at))
    }

    /// The app whose id is `id`.
    pub fn by_id(&self, id: &str) -> Option<&App> {
        self.by_id.get(id).and_then(|&at| self.apps.get(at))
    }

    /// Every app, in the order configured.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }

    /// How many apps there are (at least one when built from a config).
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The set of `apps`, or the index of the first app at fault and why:
    /// ids, keys and secrets must be non-empty, ids and keys unique and made
    /// of URL-safe characters (`A-Z a-z 0-9 - . _ ~`), as they sit in paths.
    pub(crate) fn build(apps: Vec<App>) -> Result<Self, (usize, Problem)> {
        let url_safe = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let mut by_key = HashMap::new();
        let mut by_id = HashMap::new();
        for (at, app) in apps.iter().enumerate() {
            let problem = if app.id.is_empty() {
                Some(Problem::EmptyId)
            } else if app.key.is_empty() {
                Some(Problem::EmptyKey)
            } else if app.secret.is_empty() {
                Some(Problem::EmptySecret)
            } else if !url_safe(&app.id) {
                Some(Problem::BadIdChars)
            } else if !url_safe(&app.key) {
                Some(Problem::BadKeyChars)
            } else if by_id.insert(app.id.clone(), at).is_some() {
                Some(Problem::DuplicateId)
            } else if by_key.insert(app.key.clone(), at).is_some() {
                Some(Problem::DuplicateKey)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err((at, problem));
            }
        }
        Ok(Apps { apps, by_key, by_id })
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
