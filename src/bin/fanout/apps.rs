//! The Pusher app flags: one app from `--app-id/--app-key/--app-secret`,
//! or several from `--apps-file`.

use std::path::PathBuf;

use clap::Args;

use fanout::pusher::{App, Apps, WebhookTarget};

/// Which Pusher apps the server hosts.
#[derive(Debug, Clone, Default, Args)]
pub struct AppFlags {
    /// Pusher app id (with --app-key and --app-secret: one app from flags;
    /// Pusher clients connect to /app/KEY, the HTTP API is /apps/ID/...).
    #[arg(long, requires_all = ["app_key", "app_secret"])]
    pub app_id: Option<String>,
    /// Pusher app key.
    #[arg(long, requires_all = ["app_id", "app_secret"])]
    pub app_key: Option<String>,
    /// Pusher app secret (signs channel auth, API requests and webhooks).
    #[arg(long, requires_all = ["app_id", "app_key"])]
    pub app_secret: Option<String>,
    /// Let the app's clients send client events (client-*) on private and
    /// presence channels.
    #[arg(long, requires = "app_id")]
    pub app_client_events: bool,
    /// Post the app's webhooks to this http:// URL (repeatable).
    #[arg(long = "app-webhook", requires = "app_id", value_name = "URL")]
    pub app_webhooks: Vec<String>,
    /// Most connections the app may hold at once (past it: close 4004).
    #[arg(long, requires = "app_id")]
    pub app_max_connections: Option<usize>,
    /// Pusher apps from a TOML file ([[app]] tables: id, key, secret,
    /// client_events, allowed_origins, [app.limits], [[app.webhook]]).
    #[arg(long, conflicts_with = "app_id", value_name = "FILE")]
    pub apps_file: Option<PathBuf>,
}

impl AppFlags {
    /// The apps the flags describe (none: Pusher connections are refused
    /// with 4001 and the HTTP API answers 404).
    pub fn apps(&self) -> Result<Apps, String> {
        if let Some(path) = &self.apps_file {
            return Apps::from_file(path).map_err(|e| e.to_string());
        }
        let (Some(id), Some(key), Some(secret)) = (&self.app_id, &self.app_key, &self.app_secret) else {
            return Ok(Apps::default());
        };
        if [id, key, secret].iter().any(|v| v.is_empty()) {
            return Err("--app-id, --app-key and --app-secret must not be empty".into());
        }
        let mut app = App::new(id, key, secret);
        app.client_events = self.app_client_events;
        app.limits.max_connections = self.app_max_connections;
        for url in &self.app_webhooks {
            if !url.starts_with("http://") {
                return Err(format!("--app-webhook {url:?}: only http:// URLs are supported"));
            }
            app.webhooks.push(WebhookTarget { url: url.clone(), events: Vec::new() });
        }
        Apps::new(vec![app]).map_err(|e| format!("--app-id/--app-key/--app-secret: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fanout").chain(args.iter().copied()))
    }

    #[test]
    fn one_app_comes_from_three_flags() {
        let cli =
            parse(&["--app-id", "1", "--app-key", "k", "--app-secret", "s", "--app-client-events"]).expect("valid");
        let apps = cli.apps.apps().expect("an app");
        let app = apps.by_key("k").expect("by key");
        assert_eq!((app.id.as_str(), app.client_events), ("1", true));
        assert!(parse(&[]).expect("valid").apps.apps().expect("none").is_empty());
    }

    #[test]
    fn incomplete_or_conflicting_app_flags_are_errors() {
        assert!(parse(&["--app-id", "1"]).is_err());
        assert!(parse(&["--app-client-events"]).is_err());
        assert!(parse(&["--app-id", "1", "--app-key", "k", "--app-secret", "s", "--apps-file", "x.toml"]).is_err());
        let bad_hook = parse(&["--app-id", "1", "--app-key", "k", "--app-secret", "s", "--app-webhook", "ftp://x"]);
        assert!(bad_hook.expect("parses").apps.apps().is_err());
    }
}
