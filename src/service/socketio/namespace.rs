//! One socket: a session's connection to one namespace, with its id, the
//! `auth` it connected with, and the rooms it joined.

use serde_json::value::RawValue;

use super::names;

/// A connected namespace of a session.
#[derive(Debug)]
pub(crate) struct Namespace {
    /// The namespace's name (`/`, `/admin`).
    name: Box<str>,
    /// The socket's id, told to the client in the CONNECT answer; also the
    /// name of its own room.
    sid: Box<str>,
    /// The `auth` object of the client's CONNECT, as it sent it (bounded by
    /// [`super::session::MAX_AUTH_BYTES`]).
    auth: Option<Box<RawValue>>,
    /// The rooms it joined, by name (its own room not included).
    rooms: Vec<String>,
}

impl Namespace {
    /// Socket `sid` connected to namespace `name` with `auth`.
    pub(crate) fn new(name: String, sid: String, auth: Option<Box<RawValue>>) -> Namespace {
        Namespace { name: name.into_boxed_str(), sid: sid.into_boxed_str(), auth, rooms: Vec::new() }
    }

    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The socket's id.
    pub(crate) fn sid(&self) -> &str {
        &self.sid
    }

    /// The handshake's `auth` object, if the client sent one.
    #[cfg_attr(not(test), allow(dead_code))] // for the application hooks of a later version
    pub(crate) fn auth(&self) -> Option<&RawValue> {
        self.auth.as_deref()
    }

    /// Rooms joined.
    pub(crate) fn rooms(&self) -> &[String] {
        &self.rooms
    }

    /// True when it joined `room`.
    pub(crate) fn is_in(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == room)
    }

    /// Records `room` as joined; false if it already was.
    pub(crate) fn join(&mut self, room: &str) -> bool {
        if self.is_in(room) {
            return false;
        }
        self.rooms.push(room.to_owned());
        true
    }

    /// Forgets `room`; false if it was not joined.
    pub(crate) fn leave(&mut self, room: &str) -> bool {
        let before = self.rooms.len();
        self.rooms.retain(|r| r != room);
        self.rooms.len() != before
    }

    /// Every core channel the socket is a member of: the namespace's
    /// audience, its own room and the rooms it joined.
    pub(crate) fn channels(&self, room_app: &str) -> Vec<String> {
        let mut channels =
            vec![names::namespace_audience(&self.name), names::own_room(room_app, &self.name, &self.sid)];
        // Joined rooms passed `names::room` when they were joined.
        channels.extend(self.rooms.iter().filter_map(|room| names::room(room_app, &self.name, room).ok()));
        channels
    }
}
