//! The service's figures: connections per app (and their quota), client
//! events, failed signatures and API requests by endpoint and status, read
//! by `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::audience;
use super::presence::PresenceRegistry;
use crate::handle::ServerHandle;
use crate::metrics::MetricsOut;
use crate::pusher::{App, Apps};

/// Counters shared by every worker; bumped on joins, API requests and
/// client events, never per delivery.
pub(crate) struct ServiceCounters {
    /// Open Pusher connections per app id.
    connections: HashMap<String, AtomicUsize>,
    client_events: AtomicU64,
    client_events_rejected: AtomicU64,
    auth_failures: AtomicU64,
    api: Mutex<HashMap<(&'static str, u16), u64>>,
}

impl ServiceCounters {
    pub(crate) fn new(apps: &Apps) -> Self {
        ServiceCounters {
            connections: apps.iter().map(|app| (app.id.clone(), AtomicUsize::new(0))).collect(),
            client_events: AtomicU64::new(0),
            client_events_rejected: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            api: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection of `app`; false (and not counted) when the
    /// app is at its `max_connections`.
    pub(crate) fn connection_opened(&self, app: &App) -> bool {
        let Some(count) = self.connections.get(&app.id) else { return false };
        let max = app.limits.max_connections.unwrap_or(usize::MAX);
        count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// Counts a connection of `app` that ended.
    pub(crate) fn connection_closed(&self, app: &str) {
        if let Some(count) = self.connections.get(app) {
            let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    pub(crate) fn bump_client_events(&self) {
        self.client_events.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump_client_events_rejected(&self) {
        self.client_events_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an API request to `endpoint` answered with `status`.
    pub(crate) fn api_request(&self, endpoint: &'static str, status: u16) {
        *self.api.lock().entry((endpoint, status)).or_default() += 1;
    }

    /// Writes every figure, the per-app channel figures included.
    pub(crate) fn report(&self, server: &ServerHandle, presence: &PresenceRegistry, out: &mut MetricsOut) {
        let mut apps: Vec<(&String, &AtomicUsize)> = self.connections.iter().collect();
        apps.sort_by(|a, b| a.0.cmp(b.0));
        for (app, count) in apps {
            let labels = [("app", app.as_str())];
            let prefix = audience::audience(app, "");
            // Rooms' rosters and sockets' own rooms are the service's, not the app's.
            let mut channels = server.channels(&prefix);
            channels.retain(|c| !audience::is_service_channel(c.name.strip_prefix(&prefix).unwrap_or(&c.name)));
            let subscriptions = channels.iter().map(|c| c.subscriptions).sum::<usize>();
            out.gauge("fanout_app_connections", "Open Pusher connections per app", &labels, load(count));
            out.gauge("fanout_app_channels", "Occupied channels per app", &labels, channels.len() as u64);
            out.gauge("fanout_app_subscriptions", "Channel subscriptions per app", &labels, subscriptions as u64);
            let members = presence.members_with_prefix(&prefix) as u64;
            out.gauge("fanout_app_presence_members", "Presence members (users per channel) per app", &labels, members);
        }
        let relaxed = |n: &AtomicU64| n.load(Ordering::Relaxed);
        out.counter("fanout_client_events", "Client events relayed", &[], relaxed(&self.client_events));
        out.counter(
            "fanout_client_events_rejected",
            "Client events refused for the rate limit",
            &[],
            relaxed(&self.client_events_rejected),
        );
        out.counter(
            "fanout_auth_failures",
            "Subscriptions and sign-ins refused for a bad signature",
            &[],
            relaxed(&self.auth_failures),
        );
        let mut api: Vec<((&'static str, u16), u64)> = self.api.lock().iter().map(|(k, v)| (*k, *v)).collect();
        api.sort_unstable();
        for ((endpoint, status), count) in api {
            let status = status.to_string();
            let labels = [("endpoint", endpoint), ("status", status.as_str())];
            out.counter("fanout_api_requests", "HTTP API requests by endpoint and status", &labels, count);
        }
    }
}

fn load(n: &AtomicUsize) -> u64 {
    n.load(Ordering::Relaxed) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_quota_admits_up_to_its_limit_and_frees_on_close() {
        let mut app = App::new("1", "key", "secret");
        app.limits.max_connections = Some(2);
        let counters = ServiceCounters::new(&Apps::single(app.clone()));
        assert!(counters.connection_opened(&app));
        assert!(counters.connection_opened(&app));
        assert!(!counters.connection_opened(&app));
        counters.connection_closed("1");
        assert!(counters.connection_opened(&app));
        counters.connection_closed("unknown");
    }
}
