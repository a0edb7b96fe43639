//! The Pusher HTTP API on the server's port: publish (`events`,
//! `batch_events`), inspect (`channels`, one channel, its users) and
//! `terminate_connections`. Every request is signed (see
//! `pusher::api_auth`); every answer is JSON, errors as `{"error": ..}`.

use serde_json::{json, Map, Value};

use super::audience;
use super::channel_view::{ChannelView, ClusterView, LocalView};
use super::cluster_state::Job;
use super::durable::Ack;
use super::sequencer::StoredEvent;
use super::Service;
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::history::{Entry, Position};
use crate::http::{Request, Response};
use crate::pusher::{self, codes, names, App, ChannelKind, EventData, SocketId, TriggerRequest};

/// A routed API request: which endpoint, of which app.
struct Route<'a> {
    endpoint: &'static str,
    method: &'static str,
    /// The app's id from the path; `None` for `/users/..` (Python SDK),
    /// which names its app by `auth_key` alone.
    app_id: Option<&'a str>,
    channel: Option<String>,
    user: Option<String>,
}

fn route(path: &str) -> Option<Route<'_>> {
    let (app_id, rest) = match path.strip_prefix("/apps/") {
        Some(rest) => {
            let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
            (Some(id), rest)
        }
        None if path.starts_with("/users/") => (None, &path[1..]),
        None => return None,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let decode = |s: &str| crate::http::decode_path_segment(s).into_owned();
    let (endpoint, method, channel, user) = match parts.as_slice() {
        ["events"] => ("events", "POST", None, None),
        ["batch_events"] => ("batch_events", "POST", None, None),
        ["channels"] => ("channels", "GET", None, None),
        ["channels", name] => ("channel", "GET", Some(decode(name)), None),
        ["channels", name, "users"] => ("users", "GET", Some(decode(name)), None),
        ["channels", name, "history"] => ("history", "GET", Some(decode(name)), None),
        ["users", user, "terminate_connections"] => ("terminate_connections", "POST", None, Some(decode(user))),
        _ => ("unknown", "", None, None),
    };
    if app_id.is_none() && endpoint != "terminate_connections" {
        return None;
    }
    Some(Route { endpoint, method, app_id, channel, user })
}

/// A JSON answer.
fn answer(status: u16, body: &Value) -> Response {
    Response::new(status).header("Content-Type", "application/json").body(body.to_string())
}

fn error(status: u16, message: &str) -> Response {
    answer(status, &json!({ "error": message }))
}

impl Service {
    /// Answers an API request; `None` for paths that are not the API.
    pub(crate) fn api(&self, server: &ServerHandle, request: &Request) -> Option<Response> {
        let route = route(request.path())?;
        let response = self.api_answer(server, request, &route);
        self.counters.api_request(route.endpoint, response.status());
        Some(response)
    }

    fn api_answer(&self, server: &ServerHandle, request: &Request, route: &Route<'_>) -> Response {
        if route.endpoint == "unknown" {
            return error(404, "no such API endpoint");
        }
        if request.method() != route.method {
            return error(405, &format!("{} takes {}", route.endpoint, route.method)).header("Allow", route.method);
        }
        let app = match route.app_id {
            Some(id) => self.apps.by_id(id),
            None => request.query_param("auth_key").and_then(|key| self.apps.by_key(&key)),
        };
        let Some(app) = app else { return error(404, "unknown app") };
        let params = request.query_pairs();
        if let Err(e) = pusher::verify_api_request(
            request.method(),
            request.path(),
            &params,
            request.body(),
            &app.key,
            &app.secret,
            crate::token::now_secs(),
        ) {
            return error(e.status(), &e.to_string());
        }
        if !app.enabled {
            return error(403, "app is disabled");
        }
        match route.endpoint {
            "events" => match pusher::parse_trigger_event(request.body(), &app.limits) {
                Ok(event) => self.trigger(server, app, &[event], false),
                Err(e) => error(e.status(), &e.to_string()),
            },
            "batch_events" => match pusher::parse_batch_events(request.body(), &app.limits) {
                Ok(events) => self.trigger(server, app, &events, true),
                Err(e) => error(e.status(), &e.to_string()),
            },
            "channels" => self.list_channels(server, app, request),
            "channel" => self.channel_info(server, app, route.channel.as_deref().unwrap_or_default(), request),
            "users" => self.channel_users(server, app, route.channel.as_deref().unwrap_or_default()),
            "history" => self.channel_history(server, app, route.channel.as_deref().unwrap_or_default(), request),
            _ => self.terminate(server, app, route.user.as_deref().unwrap_or_default()),
        }
    }

    fn trigger(&self, server: &ServerHandle, app: &App, events: &[TriggerRequest], batch: bool) -> Response {
        let congested = |key: &str| self.sequencer_for(key).is_some_and(|s| s.congested());
        let keys = || events.iter().flat_map(|e| e.channels.iter().map(|c| audience::audience(&app.id, c)));
        if server.is_congested() || keys().any(|key| congested(&key)) {
            return error(503, "the server is congested: retry shortly").header("Retry-After", "1");
        }
        // Answered once every event of a channel with a durable history is on disk.
        let ack = Ack::new();
        for event in events {
            let except = event.socket_id.as_deref().and_then(SocketId::parse).map(ConnId::from_u64);
            for channel in &event.channels {
                let key = audience::audience(&app.id, channel);
                let sent = match self.sequencer_for(&key) {
                    Some(sequencer) => {
                        let stored = StoredEvent::new(&event.name, &EventData::Str(&event.data), None);
                        sequencer.publish(server, &key, stored, except, Some(&ack)).is_ok()
                    }
                    None => {
                        let publication = audience::event(channel, &event.name, &EventData::Str(&event.data), None);
                        server.try_publish(&key, &publication, except, None).is_ok()
                    }
                };
                if !sent {
                    return error(503, "the server is congested: retry shortly").header("Retry-After", "1");
                }
            }
        }
        let infos: Vec<Option<Value>> = events
            .iter()
            .map(|event| {
                let info = event.info.as_deref()?;
                let channels: Map<String, Value> =
                    event.channels.iter().map(|c| (c.clone(), self.trigger_attributes(server, app, c, info))).collect();
                Some(Value::Object(channels))
            })
            .collect();
        let ok = match (batch, infos.iter().any(Option::is_some)) {
            (_, false) => answer(200, &json!({})),
            (false, true) => answer(200, &json!({ "channels": infos[0] })),
            (true, true) => {
                let batch: Vec<Value> = infos.into_iter().map(|i| i.unwrap_or_else(|| json!({}))).collect();
                answer(200, &json!({ "batch": batch }))
            }
        };
        if std::sync::Arc::strong_count(&ack) == 1 {
            return ok; // nothing waits for the disk
        }
        let (placeholder, responder) = server.defer_response();
        ack.arm(responder, ok);
        placeholder
    }

    /// The `info` attributes a trigger answers with: this node's view (an
    /// answer to a publish does not wait for Redis).
    fn trigger_attributes(&self, server: &ServerHandle, app: &App, channel: &str, info: &str) -> Value {
        let key = audience::audience(&app.id, channel);
        attributes(&mut LocalView { server, presence: &self.presence }, &key, channel, info)
    }

    /// Answers from the channels' view: this node's on a single node, the
    /// cluster's with `--redis` (later, from the state thread).
    fn with_view(
        &self,
        server: &ServerHandle,
        answer: impl FnOnce(&mut dyn ChannelView) -> Response + Send + 'static,
    ) -> Response {
        let Some(cluster) = self.cluster.get() else {
            return answer(&mut LocalView { server, presence: &self.presence });
        };
        let (placeholder, responder) = server.defer_response();
        let (server, presence) = (server.clone(), self.presence.clone());
        let read = move |reader: Option<super::cluster_state::Reader<'_>>| {
            let mut local = LocalView { server: &server, presence: &presence };
            let response = match reader {
                Some(reader) => answer(&mut ClusterView { reader, local }),
                None => answer(&mut local),
            };
            responder.send(response);
        };
        cluster.submit(Job::Read(Box::new(read)), &self.presence);
        placeholder
    }

    fn list_channels(&self, server: &ServerHandle, app: &App, request: &Request) -> Response {
        let prefix = request.query_param("filter_by_prefix").unwrap_or_default().to_string();
        let info = request.query_param("info").unwrap_or_default().to_string();
        if info.split(',').any(|a| a.trim() == "user_count") && !prefix.starts_with("presence-") {
            return error(400, "info=user_count needs filter_by_prefix=presence-");
        }
        let app_id = app.id.clone();
        self.with_view(server, move |view| {
            let all = audience::audience(&app_id, "");
            let mut channels = Map::new();
            for key in view.occupied(&audience::audience(&app_id, &prefix)) {
                let name = &key[all.len()..];
                if name.starts_with(names::SERVER_TO_USER_PREFIX) || audience::is_service_channel(name) {
                    continue;
                }
                channels.insert(name.to_owned(), attributes(view, &key, name, &info));
            }
            answer(200, &json!({ "channels": channels }))
        })
    }

    fn channel_info(&self, server: &ServerHandle, app: &App, channel: &str, request: &Request) -> Response {
        if let Err(e) = names::classify(channel, app.limits.max_channel_name_length) {
            return error(400, &e.to_string());
        }
        let info = request.query_param("info").unwrap_or_default().to_string();
        if info.split(',').any(|a| a.trim() == "user_count") && !is_presence(channel) {
            return error(400, "user_count is only available for presence channels");
        }
        let (key, channel) = (audience::audience(&app.id, channel), channel.to_owned());
        self.with_view(server, move |view| {
            let mut body = Map::new();
            body.insert("occupied".into(), view.is_occupied(&key).into());
            if let Value::Object(attributes) = attributes(view, &key, &channel, &info) {
                body.extend(attributes);
            }
            answer(200, &Value::Object(body))
        })
    }

    fn channel_users(&self, server: &ServerHandle, app: &App, channel: &str) -> Response {
        if !is_presence(channel) {
            return error(400, "users are only listed for presence channels");
        }
        let key = audience::audience(&app.id, channel);
        self.with_view(server, move |view| {
            let users: Vec<Value> = view.users(&key).into_iter().map(|id| json!({ "id": id })).collect();
            answer(200, &json!({ "users": users }))
        })
    }

    /// The newest messages of a channel's history, oldest first:
    /// `{"epoch":..,"offset":..,"messages":[{"offset":..,"event":..,"data":..}]}`
    /// (`user_id` on client events of presence channels), `limit` of them
    /// (default 100, at most 1,000), older than offset `before` if given.
    fn channel_history(&self, server: &ServerHandle, app: &App, channel: &str, request: &Request) -> Response {
        if let Err(e) = names::classify(channel, app.limits.max_channel_name_length) {
            return error(400, &e.to_string());
        }
        let key = audience::audience(&app.id, channel);
        let Some(sequencer) = self.sequencer_for(&key) else {
            return error(404, "this channel keeps no history (start fanout with --history-size or --history-ttl)");
        };
        let number = |name: &str| request.query_param(name).map(|v| v.parse::<u64>().map_err(|_| name.to_owned()));
        let (limit, before) = match (number("limit").transpose(), number("before").transpose()) {
            (Ok(limit), Ok(before)) => (limit.unwrap_or(100).clamp(1, 1_000), before),
            (Err(name), _) | (_, Err(name)) => return error(400, &format!("{name} must be a non-negative integer")),
        };
        if let Some(cluster) = server.shared.cluster.as_ref() {
            // The cluster's history is in Redis: answered once it is read.
            let (placeholder, responder) = server.defer_response();
            sequencer.read_shared(cluster, &key, limit as usize, before, move |read| {
                responder.send(match read {
                    Ok((top, entries)) => history_answer(top, &entries),
                    Err(e) => error(503, &format!("history cannot be read: {e}")).header("Retry-After", "1"),
                });
            });
            return placeholder;
        }
        let (top, entries) = sequencer.history().latest(&key, limit as usize, before, sequencer.now_ms());
        history_answer(top, &entries)
    }

    fn terminate(&self, server: &ServerHandle, app: &App, user: &str) -> Response {
        for conn in self.users.conns(&app.id, user) {
            server.disconnect(conn, codes::UNAUTHORIZED, "connections terminated by the server");
        }
        answer(200, &json!({}))
    }
}

/// The history API's answer: the stream's position and `entries`.
fn history_answer(top: Option<Position>, entries: &[Entry<StoredEvent>]) -> Response {
    let messages: Vec<Value> = entries.iter().map(|entry| entry.payload.to_json(entry.offset)).collect();
    let mut body = Map::new();
    if let Some(top) = top {
        body.insert("epoch".into(), top.epoch.as_ref().into());
        body.insert("offset".into(), top.offset.into());
    }
    body.insert("messages".into(), messages.into());
    answer(200, &Value::Object(body))
}

/// The requested `info` attributes of channel `name` (core key `key`).
fn attributes(view: &mut dyn ChannelView, key: &str, name: &str, info: &str) -> Value {
    let mut attributes = Map::new();
    for attribute in info.split(',').map(str::trim) {
        match attribute {
            "subscription_count" => {
                attributes.insert(attribute.into(), view.subscriptions(key).into());
            }
            "user_count" if is_presence(name) => {
                attributes.insert(attribute.into(), view.user_count(key).into());
            }
            _ => {}
        }
    }
    Value::Object(attributes)
}

fn is_presence(channel: &str) -> bool {
    matches!(names::classify(channel, usize::MAX), Ok(ChannelKind::Presence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_route_to_their_endpoints() {
        let r = route("/apps/12/channels/presence-a%2Eb/users").expect("routed");
        assert_eq!((r.endpoint, r.app_id, r.channel.as_deref()), ("users", Some("12"), Some("presence-a.b")));
        assert_eq!(route("/apps/12/events").map(|r| r.method), Some("POST"));
        let python = route("/users/7/terminate_connections").expect("routed");
        assert_eq!(
            (python.endpoint, python.app_id, python.user.as_deref()),
            ("terminate_connections", None, Some("7"))
        );
        assert_eq!(route("/apps/12/nothing").map(|r| r.endpoint), Some("unknown"));
        assert!(route("/users/7").is_none());
        assert!(route("/chat").is_none());
    }
}
