//! One Pusher connection's state and what its frames do: ping, subscribe
//! (public, private, encrypted, presence), unsubscribe, sign-in, client
//! events. Every refusal is answered in the protocol's own terms
//! (`pusher:error`, `pusher:subscription_error`) and costs nothing else.

use std::sync::Arc;
use std::time::Instant;

use super::announce;
use super::audience::{self, PUSHER};
use super::cluster_state::{Job, JoinAnswer};
use super::presence::JoinError;
use super::sequencer::{Busy, Greeting, Joined, Sequencer, StoredEvent};
use super::webhooks::Webhooks;
use super::Service;
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::message::Message;
use crate::pusher::protocol::{self, Since, WatchlistEvent};
use crate::pusher::webhook::WebhookEvent;
use crate::pusher::{auth, codes, names, App, ChannelKind, EventData, Incoming};

/// A Pusher connection's state, owned by its worker.
#[derive(Debug)]
pub struct Session {
    /// The app's id, or `None` when the key was unknown (closing with 4001).
    pub(crate) app: Option<String>,
    pub(crate) socket_id: String,
    pub(crate) channels: Vec<Subscribed>,
    /// The signed-in user's id.
    pub(crate) user: Option<String>,
    /// Client events left in the current second, and when it started.
    tokens: u32,
    window: Option<Instant>,
    /// The close code to end with at open (unknown app, over quota...).
    pub(crate) refuse: Option<(u16, &'static str)>,
}

/// One channel a connection is subscribed to.
#[derive(Debug)]
pub(crate) struct Subscribed {
    pub(crate) name: String,
    pub(crate) kind: ChannelKind,
    /// Its presence user id on a presence channel.
    pub(crate) user_id: Option<String>,
}

impl Session {
    pub(crate) fn new(app: Option<String>, socket_id: String) -> Self {
        Session { app, socket_id, channels: Vec::new(), user: None, tokens: 0, window: None, refuse: None }
    }

    fn subscribed(&self, channel: &str) -> Option<&Subscribed> {
        self.channels.iter().find(|s| s.name == channel)
    }

    /// Takes one client event from this second's allowance.
    fn allow_client_event(&mut self, per_second: u32, now: Instant) -> bool {
        if self.window.is_none_or(|start| now.duration_since(start).as_secs() >= 1) {
            self.window = Some(now);
            self.tokens = per_second;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

fn push(server: &ServerHandle, conn: ConnId, text: String) {
    server.push(conn, &Message::text(text));
}

/// Subscribes `conn` to channel `key` as a Pusher member and greets it
/// with `subscription_succeeded` (with `snapshot`, on a presence channel);
/// through `sequencer` when the channel keeps history (then with what it
/// missed since `since`, or a cache channel's last event, and a
/// `cache_miss` webhook for `app` when there was none). Nothing is
/// subscribed on `Busy`; in a cluster a channel with history is joined once
/// its stream in Redis is read, and a `Busy` then is told to the client.
#[allow(clippy::too_many_arguments)]
fn join_channel(
    server: &ServerHandle,
    conn: ConnId,
    key: &str,
    channel: &str,
    snapshot: Option<crate::pusher::PresenceSnapshot>,
    sequencer: Option<&Arc<Sequencer>>,
    since: Option<Since>,
    (app, webhooks): (&App, &Webhooks),
) -> Result<(), Busy> {
    match sequencer {
        Some(sequencer) => {
            let greeting = Greeting::Pusher { presence: snapshot, cache: names::is_cache(channel) };
            if server.shared.cluster.is_none() {
                if sequencer.join(server, conn, key, greeting, since)?.cache_miss {
                    webhooks.emit(app, WebhookEvent::CacheMiss { channel: channel.to_owned() });
                }
                return Ok(());
            }
            let (here, app, webhooks, channel) = (server.clone(), app.clone(), webhooks.clone(), channel.to_owned());
            let then = Box::new(move |outcome: Result<Joined, Busy>| match outcome {
                Ok(joined) if joined.cache_miss => webhooks.emit(&app, WebhookEvent::CacheMiss { channel }),
                Ok(_) => {}
                Err(Busy) => {
                    let why = "the server is congested: retry shortly";
                    push(&here, conn, protocol::subscription_error(&channel, "ServerBusy", why, 503));
                }
            });
            sequencer.join_then(server, conn, key, greeting, since, then);
            Ok(())
        }
        None => {
            server.subscribe_as(conn, key, PUSHER);
            // In a cluster, "subscribed" waits until events from every node
            // reach it.
            let (greeting, here) = (protocol::subscription_succeeded(channel, snapshot.as_ref()), server.clone());
            server.when_channel_ready(
                key,
                Box::new(move || {
                    here.push_timeout(conn, &Message::text(greeting), std::time::Duration::from_secs(1));
                }),
            );
            Ok(())
        }
    }
}

impl Service {
    /// Handles one text frame of a Pusher connection.
    pub(crate) fn pusher_frame(&self, server: &ServerHandle, conn: ConnId, session: &mut Session, text: &str) {
        let Some(app) = session.app.as_deref().and_then(|id| self.apps.by_id(id)) else { return };
        let incoming = match crate::pusher::parse_incoming(text) {
            Ok(incoming) => incoming,
            Err(e) => return push(server, conn, protocol::error(None, &e.to_string())),
        };
        match incoming {
            Incoming::Ping => push(server, conn, protocol::pong()),
            Incoming::Pong | Incoming::Other { .. } => {}
            Incoming::Subscribe { channel, auth, channel_data, since } => {
                self.subscribe(server, conn, session, app, channel, auth, channel_data, since);
            }
            Incoming::Unsubscribe { channel } => {
                if let Some(at) = session.channels.iter().position(|s| s.name == channel) {
                    let subscribed = session.channels.swap_remove(at);
                    self.leave(server, conn, app, &subscribed);
                }
            }
            Incoming::Signin { auth, user_data } => self.sign_in(server, conn, session, app, &auth, &user_data),
            Incoming::ClientEvent { event, channel, data } => {
                self.client_event(server, conn, session, app, &event, &channel, data.get());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        session: &mut Session,
        app: &App,
        channel: String,
        auth: Option<String>,
        channel_data: Option<String>,
        since: Option<Since>,
    ) {
        let refuse = |kind: &str, error: &str, status: u16| {
            push(server, conn, protocol::subscription_error(&channel, kind, error, status));
        };
        let kind = match names::classify(&channel, app.limits.max_channel_name_length) {
            Ok(kind) => kind,
            Err(e) => return refuse("InvalidChannel", &e.to_string(), 400),
        };
        if kind == ChannelKind::ServerToUser {
            // A signed-in client (pusher-js) subscribes to its own channel,
            // which sign-in joined already; anyone else's is refused.
            if session.user.is_some() && names::server_to_user_id(&channel) == session.user.as_deref() {
                return push(server, conn, protocol::subscription_succeeded(&channel, None));
            }
            return refuse("AuthError", "server-to-user channels are joined by signing in as that user", 403);
        }
        if session.subscribed(&channel).is_some() && kind != ChannelKind::Presence {
            return push(server, conn, protocol::subscription_succeeded(&channel, None));
        }
        if kind.requires_auth() {
            let data = if kind == ChannelKind::Presence { channel_data.as_deref() } else { None };
            let signed = auth.as_deref().is_some_and(|auth| {
                auth::verify_channel_auth(&app.key, &app.secret, &session.socket_id, &channel, data, auth)
            });
            if !signed {
                let why = if auth.is_none() { "no auth signature" } else { "invalid auth signature" };
                self.counters.bump_auth_failure();
                return refuse("AuthError", why, 401);
            }
        }
        let key = audience::audience(&app.id, &channel);
        let mut user_id = None;
        let mut snapshot = None;
        if kind == ChannelKind::Presence {
            if let Some(subscribed) = session.subscribed(&channel) {
                // Re-subscribing to a presence channel: only its member list again.
                let Some(cluster) = self.cluster.get() else {
                    let ids = self.presence.snapshot(&key);
                    return push(server, conn, protocol::subscription_succeeded(&channel, Some(&ids)));
                };
                let member = crate::pusher::PresenceMember {
                    user_id: subscribed.user_id.clone().unwrap_or_default(),
                    user_info: None,
                };
                let (server, name) = (server.clone(), channel.clone());
                let then = Box::new(move |answer| {
                    if let JoinAnswer::Joined { snapshot } = answer {
                        push(&server, conn, protocol::subscription_succeeded(&name, Some(&snapshot)));
                    }
                });
                let job = Job::Join { key, member, count: false, max: usize::MAX, then };
                return cluster.submit(job, &self.presence);
            }
            let Some(data) = channel_data.as_deref() else {
                return refuse("InvalidChannelData", "presence channels need channel_data", 400);
            };
            let member = match crate::pusher::parse_channel_data(data, app.limits.max_presence_member_bytes) {
                Ok(member) => member,
                Err(e) => return refuse("InvalidChannelData", &e.to_string(), 400),
            };
            let id = member.user_id.clone();
            let max = app.limits.max_presence_members;
            let joined = match self.presence.join(&key, conn, member.clone(), max) {
                Ok(joined) => joined,
                Err(JoinError::Full { max }) => {
                    return refuse("LimitReached", &format!("presence channel has its most members ({max})"), 403)
                }
            };
            if let Some(cluster) = self.cluster.get() {
                // The members are the cluster's: the greeting waits for them.
                let greet = self.greeter(server, conn, app, &key, &channel, since);
                let (server, presence, name) = (server.clone(), self.presence.clone(), channel.clone());
                let job_key = key.clone();
                let then = Box::new(move |answer| match answer {
                    JoinAnswer::Joined { snapshot } => greet(Some(snapshot)),
                    JoinAnswer::Full => {
                        let _ = presence.leave(&job_key, conn);
                        let why = format!("presence channel has its most members ({max})");
                        push(&server, conn, protocol::subscription_error(&name, "LimitReached", &why, 403));
                    }
                });
                cluster.submit(Job::Join { key, member, count: joined.new_user, max, then }, &self.presence);
                session.channels.push(Subscribed { name: channel, kind, user_id: Some(id) });
                return;
            }
            if joined.new_user {
                let news = announce::member_added(&channel, &id, joined.snapshot.info(&id).flatten());
                let _ = server.try_publish(&key, &news.publication, None, None);
                self.webhook(app, news.webhook);
            }
            snapshot = Some(joined.snapshot);
            user_id = Some(id);
        }
        let subscribed = Subscribed { name: channel.clone(), kind, user_id };
        let sequencer = self.sequencer_for(&key);
        let hooks = (app, &self.webhooks);
        if let Err(Busy) = join_channel(server, conn, &key, &channel, snapshot, sequencer, since, hooks) {
            self.leave(server, conn, app, &subscribed);
            return refuse("ServerBusy", "the server is congested: retry shortly", 503);
        }
        session.channels.push(subscribed);
    }

    /// What greets a presence subscriber once the cluster told its
    /// members: [`join_channel`] on another thread, with what it needs.
    fn greeter(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        app: &App,
        key: &str,
        channel: &str,
        since: Option<Since>,
    ) -> impl FnOnce(Option<crate::pusher::PresenceSnapshot>) + Send + 'static {
        let (server, app, key, channel) = (server.clone(), app.clone(), key.to_owned(), channel.to_owned());
        let (sequencer, webhooks) = (self.sequencer_for(&key).cloned(), self.webhooks.clone());
        move |snapshot| {
            let hooks = (&app, &webhooks);
            if let Err(Busy) = join_channel(&server, conn, &key, &channel, snapshot, sequencer.as_ref(), since, hooks) {
                let why = "the server is congested: retry shortly";
                push(&server, conn, protocol::subscription_error(&channel, "ServerBusy", why, 503));
            }
        }
    }

    /// Ends a subscription: the core membership, and on a presence channel
    /// the member (told to the others once the user's last tab left).
    pub(crate) fn leave(&self, server: &ServerHandle, conn: ConnId, app: &App, subscribed: &Subscribed) {
        let key = audience::audience(&app.id, &subscribed.name);
        // A channel with history was joined through the sequencer: leaving
        // goes the same way, or it could overtake the join.
        if self.sequencer_for(&key).is_none_or(|sequencer| sequencer.leave(server, conn, &key).is_err()) {
            server.unsubscribe(conn, &key);
        }
        if subscribed.kind == ChannelKind::Presence {
            if let Some(user_id) = self.presence.leave(&key, conn) {
                if let Some(cluster) = self.cluster.get() {
                    // Told once per cluster, by the node whose user was the last.
                    return cluster.submit(Job::Leave { key, user_id }, &self.presence);
                }
                let news = announce::member_removed(&subscribed.name, &user_id);
                let _ = server.try_publish(&key, &news.publication, None, None);
                self.webhook(app, news.webhook);
            }
        }
    }

    fn sign_in(&self, server: &ServerHandle, conn: ConnId, session: &mut Session, app: &App, auth: &str, data: &str) {
        if !app.user_authentication {
            return push(server, conn, protocol::error(Some(codes::UNAUTHORIZED), "user authentication is disabled"));
        }
        if !auth::verify_user_auth(&app.key, &app.secret, &session.socket_id, data, auth) {
            self.counters.bump_auth_failure();
            return push(server, conn, protocol::error(Some(codes::UNAUTHORIZED), "invalid signin signature"));
        }
        let Some((user, watchlist)) = parse_user_data(data) else {
            return push(server, conn, protocol::error(Some(codes::UNAUTHORIZED), "user_data needs a string id"));
        };
        if session.user.is_some() {
            return push(server, conn, protocol::error(None, "already signed in"));
        }
        server.subscribe_as(
            conn,
            &audience::audience(&app.id, &format!("{}{user}", names::SERVER_TO_USER_PREFIX)),
            PUSHER,
        );
        push(server, conn, protocol::signin_success(data));
        let signed = self.users.sign_in(&app.id, &user, conn, &watchlist);
        if !signed.online_watched.is_empty() {
            push(server, conn, protocol::watchlist_events(&[(WatchlistEvent::Online, signed.online_watched)]));
        }
        let online = protocol::watchlist_events(&[(WatchlistEvent::Online, vec![user.clone()])]);
        for watcher in signed.tell_online {
            push(server, watcher, online.clone());
        }
        session.user = Some(user);
    }

    #[allow(clippy::too_many_arguments)]
    fn client_event(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        session: &mut Session,
        app: &App,
        event: &str,
        channel: &str,
        data: &str,
    ) {
        let refuse = |code: Option<u16>, why: &str| push(server, conn, protocol::error(code, why));
        if !app.client_events {
            return refuse(None, "client events are not enabled for this app");
        }
        let Some(subscribed) = session.subscribed(channel) else {
            return refuse(None, &format!("client event on {channel}, which this connection is not subscribed to"));
        };
        if !subscribed.kind.allows_client_events() {
            return refuse(None, "client events are only accepted on private and presence channels");
        }
        if data.len() > app.limits.max_event_payload_bytes || event.len() > app.limits.max_event_name_length {
            return refuse(None, "client event too large");
        }
        let user_id = subscribed.user_id.clone();
        if !session.allow_client_event(app.limits.client_events_per_second, Instant::now()) {
            self.counters.bump_client_events_rejected();
            return refuse(Some(codes::CLIENT_EVENT_RATE_LIMIT), "client event rejected: rate limit");
        }
        let key = audience::audience(&app.id, channel);
        match self.sequencer_for(&key) {
            Some(sequencer) => {
                let stored = StoredEvent::new(event, &EventData::Raw(data), user_id.as_deref());
                if sequencer.congested() || sequencer.publish(server, &key, stored, Some(conn), None).is_err() {
                    return refuse(None, "client event rejected: the server is congested");
                }
            }
            None => {
                let publication = audience::event(channel, event, &EventData::Raw(data), user_id.as_deref());
                let _ = server.try_publish(&key, &publication, Some(conn), None);
            }
        }
        self.counters.bump_client_events();
        self.webhook(
            app,
            WebhookEvent::ClientEvent {
                channel: channel.to_owned(),
                event: event.to_owned(),
                data: data.to_owned(),
                socket_id: session.socket_id.clone(),
                user_id,
            },
        );
    }

    /// Everything a closing Pusher connection leaves behind: presence
    /// members, its signed-in user, its app's connection count.
    pub(crate) fn pusher_closed(&self, server: &ServerHandle, conn: ConnId, session: Session) {
        let Some(app) = session.app.as_deref().and_then(|id| self.apps.by_id(id)) else { return };
        if session.refuse.is_none() {
            self.counters.connection_closed(&app.id);
        }
        for subscribed in &session.channels {
            if subscribed.kind == ChannelKind::Presence {
                self.leave(server, conn, app, subscribed);
            } else {
                // The workers drop its memberships; a cluster's history
                // also counts its members per channel.
                let key = audience::audience(&app.id, &subscribed.name);
                if let Some(sequencer) = self.sequencer_for(&key) {
                    sequencer.closed(server, conn, &key);
                }
            }
        }
        if let Some(user) = &session.user {
            if let Some(watchers) = self.users.sign_out(&app.id, user, conn) {
                let offline = protocol::watchlist_events(&[(WatchlistEvent::Offline, vec![user.clone()])]);
                for watcher in watchers {
                    push(server, watcher, offline.clone());
                }
            }
        }
    }
}

/// The id and watchlist of a sign-in's `user_data`.
fn parse_user_data(data: &str) -> Option<(String, Vec<String>)> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let id = match value.get("id")? {
        serde_json::Value::String(id) if !id.is_empty() => id.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let watchlist = match value.get("watchlist") {
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((id, watchlist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_gives_an_id_and_a_watchlist() {
        assert_eq!(
            parse_user_data(r#"{"id":"7","watchlist":["1",2]}"#),
            Some(("7".into(), vec!["1".into(), "2".into()]))
        );
        assert_eq!(parse_user_data(r#"{"id":12}"#), Some(("12".into(), vec![])));
        assert_eq!(parse_user_data(r#"{"id":""}"#), None);
        assert_eq!(parse_user_data(r#"{"name":"x"}"#), None);
        assert_eq!(parse_user_data("not json"), None);
    }

    #[test]
    fn client_events_are_limited_per_second() {
        let mut session = Session::new(Some("1".into()), "1.1".into());
        let now = Instant::now();
        assert!((0..10).all(|_| session.allow_client_event(10, now)));
        assert!(!session.allow_client_event(10, now));
        assert!(session.allow_client_event(10, now + std::time::Duration::from_secs(1)));
    }
}
