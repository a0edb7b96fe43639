//! The application the `fanout` binary runs: the chat (`/chat`, rooms on
//! `/chat/{room}` and `/`), Pusher protocol 7 connections on `/app/{key}`,
//! the Pusher HTTP API and webhooks, all on one port over one channel core.
//!
//! - `audience`: core channel names per app, and publications in both
//!   wire forms (raw text for room clients, Pusher envelopes).
//! - `session`: one Pusher connection's state and frames.
//! - `presence`, `users`: presence members and signed-in users over every
//!   worker (joins and leaves only; never on the publish path).
//! - `api`: the signed HTTP API. `webhooks`: batched, delayed, retried
//!   posts on threads of their own.
//! - `counters`: per-app figures for `/metrics`.
//! - `sequencer`: channel history, and the one thread that orders every
//!   publish, join and leave of the channels that keep it.
//! - `rooms`, `roster`: raw rooms' query (`?since`, `?history`, `?name`),
//!   joins and leaves, and their named members over every worker.
//! - `page`: the chat page served on `GET /`.
//! - `socketio`: Socket.IO clients on `/socket.io/` (Engine.IO v4 over a
//!   WebSocket, the Socket.IO v5 default app); its rooms are channels.

mod announce;
mod api;
mod audience;
mod channel_view;
mod cluster_state;
mod counters;
mod durable;
mod expiry;
mod page;
mod presence;
mod rooms;
mod roster;
mod sequencer;
mod session;
mod socketio;
mod stored_event;
mod users;
mod webhook_post;
mod webhooks;

use crate::channels::ChannelChange;
use crate::chat::{ChatHandler, ChatTarget};
use crate::conn_id::ConnId;
use crate::handle::ServerHandle;
use crate::handler::{Accept, CloseInfo, Handler, Rejection};
use crate::http::{Request, Response};
use crate::message::Message;
use crate::metrics::MetricsOut;
use crate::pusher::protocol::Since;
use crate::pusher::webhook::WebhookEvent;
use crate::pusher::{codes, protocol, App, Apps, EventData, SocketId};

pub use expiry::TOKEN_EXPIRED;
pub use session::Session;
pub use socketio::{PolledSocket, SioSession};

use crate::history::store::{DurableStore, StoreError};
use crate::token::{TokenCarrier, TokenError, TokenVerifier, TOKEN_PROTOCOL};
use cluster_state::{ClusterState, Job};
use counters::ServiceCounters;
use expiry::TokenExpiry;
use presence::PresenceRegistry;
use rooms::RoomQuery;
use roster::Roster;
use sequencer::{Sequencer, StoredEvent};
use users::UserRegistry;
use webhooks::Webhooks;

/// What cache channels keep without `--history-*`: their last event, in at
/// most 64 MiB over all of them.
const CACHE_HISTORY: crate::history::HistoryConfig =
    crate::history::HistoryConfig { size: Some(1), ttl: None, max_bytes: 64 << 20 };

/// How often a Pusher client should ping when idle, as told in
/// `connection_established` (Pusher's own value).
pub const ACTIVITY_TIMEOUT_SECS: u32 = 120;

/// A connection's state in the service.
#[derive(Debug)]
pub enum ConnState {
    /// A `/chat` client: the whole-server broadcast.
    Everyone {
        /// Who its token says it is (with `--auth-*`).
        user: Option<Box<TokenUser>>,
    },
    /// A raw room client: its room's core channel.
    Room {
        /// The room's core channel.
        channel: String,
        /// Who it is, its member name, and what it asked to recover or
        /// replay, when any of it applies (boxed: most room clients have
        /// none).
        details: Option<Box<RoomDetails>>,
    },
    /// A Pusher client.
    Pusher(Box<Session>),
    /// A Socket.IO client (boxed: its namespaces and rooms).
    SocketIo(Box<SioSession>),
    /// A WebSocket upgrading a Socket.IO polling session, then carrying it
    /// (the session itself lives in the polling table).
    SocketIoUpgrade(Box<PolledSocket>),
}

/// The user a raw client's token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The token's `sub`.
    pub id: String,
    /// The token's `exp` (seconds since 1970): the connection closes then.
    pub expires_at: Option<u64>,
}

/// What a raw room client brought besides its room.
#[derive(Debug, Default)]
pub struct RoomDetails {
    /// The position it asked to recover from (`?since=OFFSET&epoch=EPOCH`);
    /// taken when it joins.
    pub since: Option<Since>,
    /// Who its token says it is.
    pub user: Option<TokenUser>,
    /// Its name as a named member of the room (`?name=NAME`, or its
    /// token's `sub`).
    pub name: Option<String>,
    /// How many of the room's last messages it asked for (`?history=N`;
    /// 0: none).
    pub recent: usize,
}

impl ConnState {
    /// The user of a raw client that logged in with a token.
    pub fn token_user(&self) -> Option<&TokenUser> {
        match self {
            ConnState::Everyone { user } => user.as_deref(),
            ConnState::Room { details, .. } => details.as_ref().and_then(|d| d.user.as_ref()),
            ConnState::SocketIo(session) => session.user(),
            ConnState::Pusher(_) | ConnState::SocketIoUpgrade(_) => None,
        }
    }
}

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The Pusher apps served; raw rooms belong to the first one.
    pub apps: Apps,
    /// Chat: send each message back to its sender as well.
    pub echo_to_sender: bool,
    /// Channel history for every channel and raw room (none: no history).
    pub history: Option<crate::history::HistoryConfig>,
    /// Where history is also kept on disk (`--history-dir`); needs `history`.
    pub history_dir: Option<std::path::PathBuf>,
    /// Raw chat clients must present a token this verifies (`--auth-*`).
    pub tokens: Option<std::sync::Arc<TokenVerifier>>,
}

/// Chat, rooms, Pusher connections, the HTTP API and webhooks.
pub struct Service {
    apps: Apps,
    /// The app raw rooms belong to ("" when no app is configured).
    room_app: String,
    echo_to_sender: bool,
    presence: std::sync::Arc<PresenceRegistry>,
    /// Presence and occupancy over the cluster, with `--redis` (started
    /// with the server).
    cluster: std::sync::OnceLock<ClusterState>,
    /// Raw rooms' named members.
    roster: Roster,
    users: UserRegistry,
    webhooks: Webhooks,
    counters: ServiceCounters,
    sequencer: Option<std::sync::Arc<Sequencer>>,
    /// The last event of each cache channel, when there is no history.
    cache: std::sync::Arc<Sequencer>,
    tokens: Option<std::sync::Arc<TokenVerifier>>,
    expiry: TokenExpiry,
    socketio: socketio::SocketIo,
}

impl Service {
    /// A service for `config`; starts the webhook threads if an app has
    /// webhooks. With `history_dir`, opens the store there and takes its
    /// history back: a store that cannot be opened or read is an error
    /// naming its file (never a silent fresh start).
    pub fn new(config: ServiceConfig) -> Result<Self, StoreError> {
        let sequencer = match (config.history, &config.history_dir) {
            (Some(history), Some(dir)) => Some(Sequencer::with_store(history, DurableStore::open(dir)?)?),
            (Some(history), None) => Some(Sequencer::new(history)),
            (None, Some(dir)) => {
                let path = dir.join(crate::history::store::FILE_NAME);
                let reason = "a history directory needs history: give a history size or age too".to_owned();
                return Err(StoreError::Open { path, reason });
            }
            (None, None) => None,
        };
        let room_app = config.apps.iter().next().map_or_else(String::new, |app| app.id.clone());
        let sequencer = sequencer.map(|sequencer| std::sync::Arc::new(sequencer.with_room_app(&room_app)));
        let cache = std::sync::Arc::new(Sequencer::new(CACHE_HISTORY).with_room_app(&room_app));
        let webhooks = Webhooks::start(&config.apps);
        let counters = ServiceCounters::new(&config.apps);
        Ok(Service {
            apps: config.apps,
            room_app,
            echo_to_sender: config.echo_to_sender,
            presence: Default::default(),
            cluster: std::sync::OnceLock::new(),
            roster: Roster::default(),
            users: UserRegistry::default(),
            webhooks,
            counters,
            sequencer,
            cache,
            tokens: config.tokens,
            expiry: TokenExpiry::default(),
            socketio: socketio::SocketIo::default(),
        })
    }

    /// Sends `message` to every raw connection whose token names `user_id`
    /// (as does an API event to the first app's `#server-to-user-{user_id}`,
    /// which reaches that user's Pusher connections too).
    pub fn push_to_user(&self, server: &ServerHandle, user_id: &str, message: &Message) {
        server.publish(&self.user_audience(user_id), message);
    }

    fn user_audience(&self, user_id: &str) -> String {
        audience::audience(&self.room_app, &format!("{}{user_id}", crate::pusher::names::SERVER_TO_USER_PREFIX))
    }

    /// With `--auth-*`: the user a raw client's token names, if it may use
    /// `room` (`None`: the whole-server chat), and whether the token came
    /// as a subprotocol. Without a verifier: no user.
    fn authenticate(&self, request: &Request, room: Option<&str>) -> Result<Option<(TokenUser, bool)>, Rejection> {
        let Some(verifier) = &self.tokens else { return Ok(None) };
        let refuse = |e: TokenError| {
            let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{e}\"");
            Rejection::unauthorized(&challenge).body(format!("{e}\n"))
        };
        let (token, carrier) = crate::token::token_in(request).ok_or_else(|| refuse(TokenError::Missing))?;
        let claims = verifier.verify(&token).map_err(refuse)?;
        // The whole-server chat is not a room: a token limited to rooms
        // may use it only when it lists "*".
        if !claims.may_join(room.unwrap_or("*")) {
            return Err(Rejection::forbidden().body("the token does not allow this room\n"));
        }
        let user = TokenUser { id: claims.user_id, expires_at: claims.expires_at };
        Ok(Some((user, carrier == TokenCarrier::Subprotocol)))
    }

    /// A raw or Socket.IO client that logged in: reachable as its user (in
    /// `dialect`), and closed when its token expires.
    fn user_opened(&self, server: &ServerHandle, conn: ConnId, user: &TokenUser, dialect: crate::channels::Dialect) {
        server.subscribe_as(conn, &self.user_audience(&user.id), dialect);
        if let Some(at) = user.expires_at {
            self.expiry.watch(server, conn, at);
        }
    }

    /// The sequencer, when core channel `key` keeps history: with history
    /// on, every channel its app's `history_channels` allows (but a user's
    /// own `#server-to-user-` channel), and cache channels always (their
    /// last event at least).
    fn sequencer_for(&self, key: &str) -> Option<&std::sync::Arc<Sequencer>> {
        let (app, channel) = audience::split(key).unwrap_or(("", key));
        if channel.starts_with(crate::pusher::names::SERVER_TO_USER_PREFIX) {
            return None;
        }
        let narrowed_out = self.apps.by_id(app).is_some_and(|app| !app.keeps_history(channel));
        match &self.sequencer {
            Some(sequencer) if !narrowed_out => Some(sequencer),
            _ => crate::pusher::names::is_cache(channel).then_some(&self.cache),
        }
    }

    /// Queues a webhook event for `app` (never blocks).
    fn webhook(&self, app: &App, event: WebhookEvent) {
        self.webhooks.emit(app, event);
    }

    fn pusher_upgrade(&self, request: &Request, key: &str) -> Result<Accept<ConnState>, Rejection> {
        let mut session = Session::new(None, String::new());
        match self.apps.by_key(key) {
            None => session.refuse = Some((codes::APP_DOES_NOT_EXIST, "unknown app key")),
            Some(app) => {
                if let Some(origin) = request.header("Origin") {
                    if !app.origin_allowed(origin) {
                        return Err(Rejection::forbidden().body("origin not allowed for this app\n"));
                    }
                }
                session.app = Some(app.id.clone());
                let protocol_version = request.query_param("protocol");
                session.refuse = match protocol_version.as_deref().map(str::parse::<u32>) {
                    _ if !app.enabled => Some((codes::APP_DISABLED, "app is disabled")),
                    None => Some((codes::NO_PROTOCOL_VERSION, "no protocol version given")),
                    Some(Ok(5..=7)) => None,
                    Some(_) => Some((codes::UNSUPPORTED_PROTOCOL, "unsupported protocol version")),
                };
                if session.refuse.is_none() && !self.counters.connection_opened(app) {
                    session.refuse = Some((codes::OVER_CONNECTION_QUOTA, "over the app's connection quota"));
                }
            }
        }
        Ok(Accept::new(ConnState::Pusher(Box::new(session))).without_broadcasts())
    }
}

impl Handler for Service {
    type State = ConnState;

    fn on_upgrade(&self, _server: &ServerHandle, request: &Request) -> Result<Accept<ConnState>, Rejection> {
        if let Some(key) = request.path().strip_prefix("/app/") {
            return self.pusher_upgrade(request, key);
        }
        if socketio::is_endpoint(request) {
            return self.socketio_upgrade(request);
        }
        let target = ChatTarget::of_path(request.path()).ok_or_else(|| ChatTarget::refusal(request.path()))?;
        let room = match &target {
            ChatTarget::Everyone => None,
            ChatTarget::Room(room) => Some(room.as_str()),
        };
        let login = self.authenticate(request, room)?;
        let as_subprotocol = login.as_ref().is_some_and(|(_, subprotocol)| *subprotocol);
        let user = login.map(|(user, _)| user);
        let accept = match target {
            ChatTarget::Everyone => Accept::new(ConnState::Everyone { user: user.map(Box::new) }),
            ChatTarget::Room(room) => {
                let query = RoomQuery::parse(request, user.as_ref())?;
                let channel = audience::audience(&self.room_app, &room);
                Accept::new(query.into_state(channel, user)).without_broadcasts()
            }
        };
        Ok(if as_subprotocol { accept.with_protocol(Some(TOKEN_PROTOCOL)) } else { accept })
    }

    fn on_open(&self, server: &ServerHandle, conn: ConnId, state: &mut ConnState) {
        match state {
            ConnState::Everyone { user } => {
                server.push(conn, &Message::text(ChatHandler::welcome(conn, server)));
                if let Some(user) = user {
                    self.user_opened(server, conn, user, audience::RAW);
                }
            }
            ConnState::Room { channel, details } => {
                if let Some(user) = details.as_ref().and_then(|d| d.user.as_ref()) {
                    self.user_opened(server, conn, user, audience::RAW);
                }
                self.room_opened(server, conn, channel, details.as_deref_mut());
            }
            ConnState::Pusher(session) => {
                if let Some((code, why)) = session.refuse {
                    server.push(conn, &Message::text(protocol::error(Some(code), why)));
                    server.disconnect(conn, code, why);
                    return;
                }
                session.socket_id = SocketId::from_conn_u64(conn.as_u64()).to_string();
                let established = protocol::connection_established(&session.socket_id, ACTIVITY_TIMEOUT_SECS);
                server.push(conn, &Message::text(established));
            }
            ConnState::SocketIo(session) => self.socketio_opened(server, conn, session),
            // The session is open already: the client speaks first (`2probe`).
            ConnState::SocketIoUpgrade(_) => {}
        }
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, state: &mut ConnState, message: Message) {
        match state {
            ConnState::Everyone { .. } if self.echo_to_sender => server.broadcast(&message),
            ConnState::Everyone { .. } => server.broadcast_except(&message, conn),
            ConnState::Room { channel: room, details } => {
                let channel = audience::split(room).map_or("", |(_, channel)| channel);
                // Named members get their own messages back: what they count
                // is then exactly what the room got, in its order.
                let named = details.as_ref().is_some_and(|d| d.name.is_some());
                let except = (!self.echo_to_sender && !named).then_some(conn);
                match (self.sequencer_for(room), message.as_text()) {
                    (Some(sequencer), Some(text)) => {
                        let event = StoredEvent::new(audience::ROOM_MESSAGE_EVENT, &EventData::Str(text), None);
                        // A full inbox or a congested disk drops the message
                        // (counted in /metrics).
                        if !sequencer.congested() {
                            let _ = sequencer.publish(server, room, event, except, None);
                        }
                    }
                    _ => {
                        let _ = server.try_publish(room, &audience::room_message(channel, &message), except, None);
                    }
                }
            }
            ConnState::Pusher(session) => match message.as_text() {
                Some(text) => self.pusher_frame(server, conn, session, text),
                None => {
                    server.push(conn, &Message::text(protocol::error(None, "Pusher frames are text")));
                }
            },
            ConnState::SocketIo(session) => self.socketio_message(server, conn, session, &message),
            ConnState::SocketIoUpgrade(socket) => self.polled_message(server, conn, socket, &message),
        }
    }

    fn on_close(&self, server: &ServerHandle, conn: ConnId, state: ConnState, _close: &CloseInfo) {
        if let Some(at) = state.token_user().and_then(|user| user.expires_at) {
            self.expiry.forget(conn, at);
        }
        match state {
            ConnState::Pusher(session) => self.pusher_closed(server, conn, *session),
            ConnState::SocketIo(session) => self.socketio_closed(server, conn, &session),
            ConnState::SocketIoUpgrade(socket) => self.polled_closed(server, conn, &socket),
            ConnState::Room { channel, details } => {
                if details.is_some_and(|d| d.name.is_some()) {
                    self.room_closed(server, conn, &channel);
                }
                if let Some(sequencer) = self.sequencer_for(&channel) {
                    sequencer.closed(server, conn, &channel);
                }
            }
            _ => {}
        }
    }

    fn idle_close(&self, state: &ConnState) -> (u16, &'static str) {
        match state {
            // The server's pings went unanswered: Pusher's own code, on which
            // its clients reconnect at once.
            ConnState::Pusher(_) => (codes::PONG_NOT_RECEIVED, "Pong reply not received"),
            // Engine.IO's pings went unanswered (see `socketio::heartbeat`).
            ConnState::SocketIo(_) | ConnState::SocketIoUpgrade(_) => {
                (crate::ws::close::codes::GOING_AWAY, "ping timeout")
            }
            _ => (crate::ws::close::codes::GOING_AWAY, "idle timeout"),
        }
    }

    fn on_start(&self, server: &ServerHandle) {
        let Some(cluster) = &server.shared.cluster else { return };
        // Stored events go to the sequencer whose members joined the channel.
        let sequencers: Vec<_> = self.sequencer.iter().chain([&self.cache]).cloned().collect();
        let here = server.clone();
        cluster.set_stored_sink(Box::new(move |key, stored| {
            let _ = sequencers.iter().any(|sequencer| sequencer.deliver_stored(&here, key, &stored));
        }));

        let started = ClusterState::start(
            cluster.state_link(),
            server.clone(),
            self.apps.clone(),
            self.webhooks.clone(),
            self.presence.clone(),
        );
        match started {
            Ok(state) => {
                let _ = self.cluster.set(state);
            }
            Err(e) => {
                log::error!("cannot start the presence thread ({e}): presence and occupancy are this node's only")
            }
        }
    }

    fn on_channel(&self, _server: &ServerHandle, key: &str, change: ChannelChange) {
        // Roster channels are the service's own, not the app's.
        let Some((app, channel)) = announce::counted_channel(&self.apps, key) else { return };
        if let Some(cluster) = self.cluster.get() {
            // Told once per cluster, by the node that changed the total.
            let delta = if change == ChannelChange::Occupied { 1 } else { -1 };
            return cluster.submit(Job::Occupancy { key: key.to_owned(), delta }, &self.presence);
        }
        self.webhook(app, announce::occupancy(channel, change));
    }

    fn on_http(&self, server: &ServerHandle, request: &Request) -> Option<Response> {
        if let Some(response) = page::serve(request) {
            return Some(response);
        }
        if socketio::is_endpoint(request) {
            return Some(self.socketio_http(server, request));
        }
        if let Some(response) = self.api(server, request) {
            return Some(response);
        }
        ChatHandler::default().on_http(server, request)
    }

    fn metrics(&self, server: &ServerHandle, out: &mut MetricsOut) {
        self.counters.report(server, &self.presence, out);
        self.webhooks.report(out);
        // Without --history-* the cache channels' last events are history.
        self.sequencer.as_ref().unwrap_or(&self.cache).report(out);
        self.socketio_metrics(out);
    }
}
