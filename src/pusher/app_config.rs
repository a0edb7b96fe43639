//! The apps file: TOML, one `[[app]]` table per app, every error pointing
//! at its line.
//!
//! ```toml
//! [[app]]
//! id = "1"
//! key = "app-key"
//! secret = "app-secret"
//! client_events = true
//! allowed_origins = ["https://example.com"]
//! history_channels = ["chat-", "private-chat-"]
//! [app.limits]
//! max_connections = 10000
//! [[app.webhook]]
//! url = "http://127.0.0.1:8000/pusher/webhooks"
//! events = ["channel_occupied", "member_added"]
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::app::{App, AppLimits, Apps, Problem, WebhookTarget};

/// Why an apps file (or list of apps) is refused.
#[derive(Debug, thiserror::Error)]
pub enum AppConfigError {
    /// The text is not valid TOML, or not a valid apps file, at this place.
    #[error("line {line}{}: {message}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    At {
        /// The line at fault, from 1.
        line: usize,
        /// The column (in characters, from 1) where known.
        column: Option<usize>,
        /// What is wrong there.
        message: String,
    },
    /// A list of apps built in code is inconsistent; the text says how.
    #[error("{0}")]
    Invalid(String),
    /// No `[[app]]` is defined.
    #[error("no [[app]] is defined")]
    NoApps,
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// An error in the file at `path`.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error, with its line.
        source: Box<AppConfigError>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    app: Vec<RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    id: Spanned<String>,
    key: Spanned<String>,
    secret: Spanned<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    client_events: bool,
    #[serde(default = "yes")]
    user_authentication: bool,
    #[serde(default)]
    limits: AppLimits,
    #[serde(default, deserialize_with = "origin_patterns")]
    allowed_origins: Vec<String>,
    #[serde(default)]
    webhook: Vec<WebhookTarget>,
    #[serde(default)]
    history_channels: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

fn origin_patterns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let patterns = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    for pattern in &patterns {
        crate::origin::validate(pattern).map_err(serde::de::Error::custom)?;
    }
    Ok(patterns)
}

impl Apps {
    /// The apps a TOML text defines (see the module docs for the format).
    /// Unknown fields, wrong types, zero limits, webhook URLs other than
    /// `http://`, and empty, duplicate or non-URL-safe ids and keys are
    /// refused with the line they are on.
    pub fn from_toml_str(text: &str) -> Result<Apps, AppConfigError> {
        let file: File = toml::from_str(text).map_err(|e| at(text, e.span(), e.message()))?;
        if file.app.is_empty() {
            return Err(AppConfigError::NoApps);
        }
        let spans: Vec<[Range<usize>; 3]> =
            file.app.iter().map(|a| [a.id.span(), a.key.span(), a.secret.span()]).collect();
        let apps = file.app.into_iter().map(RawApp::into_app).collect();
        Apps::build(apps).map_err(|(index, problem)| {
            let (field, message) = describe(problem);
            at(text, spans.get(index).map(|s| s[field].clone()), message)
        })
    }

    /// The apps the TOML file at `path` defines; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Apps, AppConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| AppConfigError::Io { path: path.into(), source })?;
        Apps::from_toml_str(&text).map_err(|e| AppConfigError::InFile { path: path.into(), source: Box::new(e) })
    }

    /// The set of `apps` built in code, checked like a config file: ids,
    /// keys and secrets non-empty, ids and keys unique and URL-safe.
    pub fn new(apps: Vec<App>) -> Result<Apps, AppConfigError> {
        if apps.is_empty() {
            return Err(AppConfigError::NoApps);
        }
        Apps::build(apps)
            .map_err(|(index, problem)| AppConfigError::Invalid(format!("app {}: {}", index + 1, describe(problem).1)))
    }
}

impl RawApp {
    fn into_app(self) -> App {
        App {
            id: self.id.into_inner(),
            key: self.key.into_inner(),
            secret: self.secret.into_inner(),
            enabled: self.enabled,
            client_events: self.client_events,
            user_authentication: self.user_authentication,
            limits: self.limits,
            allowed_origins: self.allowed_origins,
            webhooks: self.webhook,
            history_channels: self.history_channels,
        }
    }
}

/// Which field (0 id, 1 key, 2 secret) a problem is about, and its message.
fn describe(problem: Problem) -> (usize, &'static str) {
    match problem {
        Problem::EmptyId => (0, "id is empty"),
        Problem::EmptyKey => (1, "key is empty"),
        Problem::EmptySecret => (2, "secret is empty"),
        Problem::BadIdChars => (0, "id may only hold A-Z, a-z, 0-9 and -._~ (it is part of API paths)"),
        Problem::BadKeyChars => (1, "key may only hold A-Z, a-z, 0-9 and -._~ (it is part of WebSocket paths)"),
        Problem::DuplicateId => (0, "another app already has this id"),
        Problem::DuplicateKey => (1, "another app already has this key"),
    }
}

/// An error at byte offset `span.start` of `text`, as line and column; one
/// without a place when the span is unknown.
fn at(text: &str, span: Option<Range<usize>>, message: &str) -> AppConfigError {
    let Some(span) = span else {
        return AppConfigError::Invalid(message.trim_end().to_string());
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count() + 1);
    AppConfigError::At { line, column, message: message.trim_end().to_string() }
}

#[cfg(test)]
#[path = "app_config_tests.rs"]
mod tests;
