//! Raw chat rooms (`/chat/{room}`, `/`): what a client asks for in its
//! query, and how it joins and leaves.
//!
//! - `?since=OFFSET&epoch=EPOCH`: recover what was missed (with history).
//! - `?history=N` (1 to 100): the room's last N messages after the welcome
//!   (with history), then `{"type":"history","count":..}`.
//! - `?name=NAME`: a *named member*. Its welcome lists the room's names
//!   (`"members"`, and its own as `"name"`), it hears
//!   `{"type":"presence","joined"|"left":NAME}` when a name's first tab
//!   joins or last one leaves, `{"type":"stream","epoch":..}` when the
//!   room's history begins a stream, and its own messages come back to it
//!   (so what it counts is what the room got). All of that rides the room's
//!   roster channel (see `audience::roster`), which only named members
//!   join: a client without `?name` receives nothing it did not before.

use super::audience::{self, RAW};
use super::roster::{self, Full};
use super::sequencer::{self, Busy, Greeting};
use super::{ConnState, RoomDetails, Service, TokenUser};
use crate::chat::ChatHandler;
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::handler::Rejection;
use crate::http::Request;
use crate::message::Message;
use crate::pusher::protocol::Since;
use crate::ws::close::codes;

/// The most recent messages a client may ask for with `?history=N`.
pub(crate) const MAX_RECENT: usize = 100;

/// What a raw room client asked for in its query.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RoomQuery {
    /// `?since=OFFSET&epoch=EPOCH`.
    pub(crate) since: Option<Since>,
    /// `?history=N`: 0 when not asked.
    pub(crate) recent: usize,
    /// `?name=NAME`, or the token's `sub` when the client logged in.
    pub(crate) name: Option<String>,
}

impl RoomQuery {
    /// Reads the query of a room upgrade; a malformed part is refused with
    /// 400 before the upgrade, saying which. With a token (`user`), the
    /// name is the token's `sub` and `?name`'s value is not looked at:
    /// `?name` then only asks to be a named member.
    pub(crate) fn parse(request: &Request, user: Option<&TokenUser>) -> Result<RoomQuery, Rejection> {
        let since = room_since(request)?;
        let recent = match request.query_param("history") {
            None => 0,
            Some(n) => match n.parse::<usize>() {
                Ok(n) if (1..=MAX_RECENT).contains(&n) => n,
                _ => return Err(refuse(&format!("history must be a number of messages from 1 to {MAX_RECENT}"))),
            },
        };
        let name = match (request.query_param("name"), user) {
            (None, _) => None,
            (Some(_), Some(user)) => {
                let name = user.id.clone();
                roster::check_name(&name).map_err(|e| refuse(&format!("the token's sub is no member name: {e}")))?;
                Some(name)
            }
            (Some(name), None) => {
                roster::check_name(&name).map_err(|e| refuse(&e.to_string()))?;
                Some(name.into_owned())
            }
        };
        Ok(RoomQuery { since, recent, name })
    }

    /// The connection state of a client of the room whose core channel is
    /// `channel` (nothing boxed for a client that asked for nothing).
    pub(crate) fn into_state(self, channel: String, user: Option<TokenUser>) -> ConnState {
        let RoomQuery { since, recent, name } = self;
        let plain = since.is_none() && recent == 0 && name.is_none() && user.is_none();
        let details = (!plain).then(|| Box::new(RoomDetails { since, user, name, recent }));
        ConnState::Room { channel, details }
    }
}

fn refuse(why: &str) -> Rejection {
    Rejection::bad_request().body(format!("{why}\n"))
}

/// The recovery a raw room client asks for with `?since=OFFSET&epoch=EPOCH`
/// (both or neither); a malformed one is refused with 400.
fn room_since(request: &Request) -> Result<Option<Since>, Rejection> {
    match (request.query_param("since"), request.query_param("epoch")) {
        (None, None) => Ok(None),
        (Some(offset), Some(epoch)) => match offset.parse::<u64>() {
            Ok(offset) if !epoch.is_empty() => Ok(Some(Since { epoch: epoch.into_owned(), offset })),
            _ => Err(refuse("since must be an offset (a non-negative integer) and epoch non-empty")),
        },
        _ => Err(refuse("since and epoch go together: ?since=OFFSET&epoch=EPOCH")),
    }
}

/// Why a room client could not join: closed with this code and reason.
enum Refused {
    /// A named member in a room that lists its most names.
    Full(Full),
    /// A worker's inbox lacked room.
    Busy,
}

impl From<Busy> for Refused {
    fn from(_: Busy) -> Self {
        Refused::Busy
    }
}

impl Service {
    /// Greets a new room client and makes it a member of `channel` (and of
    /// the roster, when named); closes it if that cannot be done.
    pub(super) fn room_opened(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        channel: &str,
        details: Option<&mut RoomDetails>,
    ) {
        let welcome = ChatHandler::welcome(conn, server);
        let (since, recent, name) = match details {
            Some(details) => (details.since.take(), details.recent, details.name.as_deref()),
            None => (None, 0, None),
        };
        let joined = match name {
            None => self.join_room(server, conn, channel, welcome, since, recent, None).map_err(Refused::from),
            Some(name) => self.join_named(server, conn, channel, name, &welcome, since, recent),
        };
        match joined {
            Ok(()) => {}
            Err(Refused::Busy) => {
                server.disconnect(conn, codes::TRY_AGAIN_LATER, "server busy");
            }
            Err(Refused::Full(Full { max })) => {
                let why = format!("the room has its most named members ({max})");
                server.disconnect(conn, codes::POLICY_VIOLATION, &why);
            }
        }
    }

    /// A named member closed: the others are told when it was its name's
    /// last connection.
    pub(super) fn room_closed(&self, server: &ServerHandle, conn: ConnId, channel: &str) {
        let mut rooms = self.roster.lock();
        if let Some(name) = rooms.leave(channel, conn) {
            let left = audience::roster_frame(&serde_json::json!({"type": "presence", "left": name}));
            // Under the lock, like joins. A full inbox drops the notice (the
            // others list the name until they reconnect): never wait here.
            if server.publish_in_order(&audience::roster(channel), &left, None).is_err() {
                log::debug!("room {channel}: the departure of a named member was not announced: an inbox is full");
            }
        }
    }

    /// Joins `channel`: the welcome first, then `recent` messages or what
    /// was missed since `since` (with history), then the room's messages.
    /// With `roster`, joins that roster channel in order with the welcome
    /// (see the roster module); everything then goes through the workers'
    /// inboxes, so nothing sent later can overtake the welcome.
    #[allow(clippy::too_many_arguments)]
    fn join_room(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        channel: &str,
        welcome: String,
        since: Option<Since>,
        recent: usize,
        roster: Option<String>,
    ) -> Result<(), Busy> {
        if let Some(sequencer) = self.sequencer_for(channel) {
            // The sequencer greets: the welcome then carries the room's
            // position, and comes before the replay and any live message.
            let greeting = Greeting::Raw { welcome, recent, roster };
            if server.shared.cluster.is_none() {
                return sequencer.join(server, conn, channel, greeting, since).map(drop);
            }
            // In a cluster the join waits for the room's stream in Redis.
            let here = server.clone();
            let then = Box::new(move |outcome: Result<_, Busy>| {
                if outcome.is_err() {
                    here.disconnect(conn, codes::TRY_AGAIN_LATER, "server busy");
                }
            });
            sequencer.join_then(server, conn, channel, greeting, since, then);
            return Ok(());
        }
        // No history: nothing to replay, but a client that asked for some
        // still gets its marker, so it never waits for one.
        let marker = (recent > 0).then(|| Message::text(sequencer::history_marker(0, None)));
        match roster {
            None => {
                server.push(conn, &Message::text(welcome));
                if let Some(marker) = &marker {
                    server.push(conn, marker);
                }
                server.subscribe(conn, channel);
            }
            Some(roster) => {
                let mut pushes = vec![Prepared::new(&Message::text(welcome))];
                pushes.extend(marker.as_ref().map(Prepared::new));
                server.join_in_order(conn, &roster, RAW, &pushes).map_err(|_| Busy)?;
                server.join_in_order(conn, channel, RAW, &[]).map_err(|_| Busy)?;
            }
        }
        Ok(())
    }

    /// Joins `channel` as the named member `name`: under the roster lock,
    /// enters the name, joins with a welcome listing the names, and tells
    /// the others when the name is new; undone if any of it fails.
    #[allow(clippy::too_many_arguments)]
    fn join_named(
        &self,
        server: &ServerHandle,
        conn: ConnId,
        channel: &str,
        name: &str,
        welcome: &str,
        since: Option<Since>,
        recent: usize,
    ) -> Result<(), Refused> {
        let roster = audience::roster(channel);
        let mut rooms = self.roster.lock();
        let entered = rooms.enter(channel, conn, name, roster::MAX_NAMES_PER_ROOM).map_err(Refused::Full)?;
        let welcome = named_welcome(welcome, name, &entered.members);
        let joined =
            self.join_room(server, conn, channel, welcome, since, recent, Some(roster.clone())).and_then(|()| {
                if !entered.first {
                    return Ok(());
                }
                let joined = audience::roster_frame(&serde_json::json!({"type": "presence", "joined": name}));
                server.publish_in_order(&roster, &joined, Some(conn)).map_err(|_| Busy)
            });
        if joined.is_err() {
            // Nobody was told of it: the connection closes unannounced.
            rooms.leave(channel, conn);
        }
        Ok(joined?)
    }
}

/// A named member's welcome: the usual one with `"name"` (what the server
/// calls it: the token's `sub` when it logged in) and `"members"`.
fn named_welcome(welcome: &str, name: &str, members: &[String]) -> String {
    match serde_json::from_str::<serde_json::Value>(welcome) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("name".into(), name.into());
            fields.insert("members".into(), members.into());
            serde_json::Value::Object(fields).to_string()
        }
        _ => welcome.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(target: &str) -> Result<RoomQuery, u16> {
        RoomQuery::parse(&Request::new("GET", target), None).map_err(|r| r.status())
    }

    #[test]
    fn a_plain_query_asks_for_nothing() {
        assert_eq!(query("/chat/lobby"), Ok(RoomQuery::default()));
        assert_eq!(query("/chat/lobby?other=1"), Ok(RoomQuery::default()));
    }

    #[test]
    fn names_are_checked_before_the_upgrade() {
        assert_eq!(query("/chat/lobby?name=Ada%20L.").map(|q| q.name), Ok(Some("Ada L.".into())));
        assert_eq!(query("/chat/lobby?name=%F0%9F%99%82").map(|q| q.name), Ok(Some("🙂".into())));
        assert_eq!(query("/chat/lobby?name="), Err(400));
        assert_eq!(query(&format!("/chat/lobby?name={}", "x".repeat(41))), Err(400));
        assert_eq!(query("/chat/lobby?name=a%0Ab"), Err(400), "no line breaks");
    }

    #[test]
    fn with_a_token_the_name_is_its_sub() {
        let user = TokenUser { id: "user-7".into(), expires_at: None };
        let parse = |target: &str, user: &TokenUser| RoomQuery::parse(&Request::new("GET", target), Some(user));
        assert_eq!(parse("/chat/a?name=mallory", &user).map(|q| q.name).ok(), Some(Some("user-7".into())));
        assert_eq!(parse("/chat/a?name=", &user).map(|q| q.name).ok(), Some(Some("user-7".into())));
        assert_eq!(parse("/chat/a", &user).map(|q| q.name).ok(), Some(None), "named only when asked");
        let long = TokenUser { id: "x".repeat(41), expires_at: None };
        assert_eq!(parse("/chat/a?name=x", &long).map_err(|r| r.status()).err(), Some(400));
    }

    #[test]
    fn history_is_one_to_a_hundred_messages() {
        assert_eq!(query("/chat/lobby?history=1").map(|q| q.recent), Ok(1));
        assert_eq!(query("/chat/lobby?history=100").map(|q| q.recent), Ok(100));
        for bad in ["0", "101", "-1", "ten", ""] {
            assert_eq!(query(&format!("/chat/lobby?history={bad}")), Err(400), "{bad}");
        }
    }

    #[test]
    fn since_and_epoch_go_together() {
        let since = query("/chat/lobby?since=4&epoch=abc").map(|q| q.since);
        assert_eq!(since, Ok(Some(Since { epoch: "abc".into(), offset: 4 })));
        for bad in ["since=4", "epoch=abc", "since=-1&epoch=abc", "since=1&epoch="] {
            assert_eq!(query(&format!("/chat/lobby?{bad}")), Err(400), "{bad}");
        }
    }

    #[test]
    fn only_clients_that_asked_for_something_carry_details() {
        let plain = RoomQuery::default().into_state("1:a".into(), None);
        assert!(matches!(plain, ConnState::Room { details: None, .. }));
        let named = RoomQuery { name: Some("ada".into()), ..RoomQuery::default() }.into_state("1:a".into(), None);
        assert!(matches!(named, ConnState::Room { details: Some(d), .. } if d.name.as_deref() == Some("ada")));
    }

    #[test]
    fn a_named_welcome_lists_the_members_and_its_own_name() {
        let welcome = r#"{"type":"welcome","id":7,"connections":2}"#;
        let named: serde_json::Value =
            serde_json::from_str(&named_welcome(welcome, "b\"o", &["a".into(), "b\"o".into()])).expect("json");
        assert_eq!(
            named,
            serde_json::json!({"type": "welcome", "id": 7, "connections": 2, "name": "b\"o", "members": ["a", "b\"o"]})
        );
    }
}
