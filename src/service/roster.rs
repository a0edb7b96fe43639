//! Who is in each raw chat room by name, over every worker: the names
//! clients gave with `?name=` (or their token's `sub`), each with its
//! connections, so that a name's first tab is announced as joined and its
//! last one as left, once, however many tabs it has.
//!
//! Why a lock the caller holds (see [`Roster::lock`]) rather than calls
//! that lock inside: a joining member's welcome must list exactly the names
//! announced before it and none announced after. The service keeps the
//! guard while it queues the welcome, the roster subscription and the
//! announcement through the workers' inboxes in order, so every member
//! hears of each join and leave once, in one order, after its own list.
//! Joins and leaves only; never on the message path.

use std::collections::HashMap;

use parking_lot::{Mutex, MutexGuard};

use crate::conn_id::ConnId;

/// The longest member name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 40;

/// The most distinct names one room lists (a welcome lists them all): a
/// new name past it is refused, another tab of a listed name is not.
pub(crate) const MAX_NAMES_PER_ROOM: usize = 1_000;

/// Why a name cannot be a member name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    /// Empty, or longer than [`MAX_NAME_CHARS`].
    #[error("a name is 1 to {MAX_NAME_CHARS} characters")]
    Length,
    /// It holds a control character (a line break, say).
    #[error("a name may not contain control characters")]
    Control,
}

/// Checks a member name: 1 to [`MAX_NAME_CHARS`] characters, none of them
/// a control character (they would forge lines wherever names are shown).
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(())
}

/// One name in a room and the connections that use it.
struct Named {
    name: String,
    conns: Vec<ConnId>,
}

/// A room already lists its most names, and this is a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    /// The bound that was reached.
    pub(crate) max: usize,
}

/// What entering a room did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entered {
    /// The room's names in the order they arrived, the new one included:
    /// what the welcome lists.
    pub(crate) members: Vec<String>,
    /// True when the name had no other connection in the room: the others
    /// are told it joined.
    pub(crate) first: bool,
}

/// The named members of every room, keyed by the room's core channel.
#[derive(Default)]
pub(crate) struct Rooms {
    rooms: HashMap<String, Vec<Named>>,
}

impl Rooms {
    /// Adds `conn` as `name` to `room`, unless that would make the room
    /// list more than `max` names.
    pub(crate) fn enter(&mut self, room: &str, conn: ConnId, name: &str, max: usize) -> Result<Entered, Full> {
        let names = self.rooms.entry(room.to_owned()).or_default();
        let first = match names.iter().position(|n| n.name == name) {
            Some(at) => {
                if !names[at].conns.contains(&conn) {
                    names[at].conns.push(conn);
                }
                false
            }
            None if names.len() >= max => {
                if names.is_empty() {
                    self.rooms.remove(room);
                }
                return Err(Full { max });
            }
            None => {
                names.push(Named { name: name.to_owned(), conns: vec![conn] });
                true
            }
        };
        Ok(Entered { members: self.members(room), first })
    }

    /// Removes `conn` from `room`; returns its name when that was the
    /// name's last connection there (the others are told it left).
    pub(crate) fn leave(&mut self, room: &str, conn: ConnId) -> Option<String> {
        let names = self.rooms.get_mut(room)?;
        let at = names.iter().position(|n| n.conns.contains(&conn))?;
        names[at].conns.retain(|&c| c != conn);
        if !names[at].conns.is_empty() {
            return None;
        }
        let gone = names.remove(at);
        if names.is_empty() {
            self.rooms.remove(room);
        }
        Some(gone.name)
    }

    /// The names in `room`, in the order they arrived.
    pub(crate) fn members(&self, room: &str) -> Vec<String> {
        self.rooms.get(room).map_or_else(Vec::new, |names| names.iter().map(|n| n.name.clone()).collect())
    }
}

/// [`Rooms`] behind the lock that orders joins and leaves.
#[derive(Default)]
pub(crate) struct Roster {
    rooms: Mutex<Rooms>,
}

impl Roster {
    /// Takes the lock: hold it from changing the rooms to queueing what
    /// the change sends (see the module doc).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Rooms> {
        self.rooms.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(n: u64) -> ConnId {
        ConnId::from_u64(n)
    }

    #[test]
    fn names_are_one_to_forty_characters_without_control_characters() {
        assert_eq!(check_name("ada"), Ok(()));
        assert_eq!(check_name(&"é".repeat(40)), Ok(()), "characters, not bytes");
        assert_eq!(check_name("Ada Lovelace 🙂"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Length));
        assert_eq!(check_name(&"x".repeat(41)), Err(NameError::Length));
        assert_eq!(check_name("two\nlines"), Err(NameError::Control));
        assert_eq!(check_name("nul\0"), Err(NameError::Control));
        assert_eq!(check_name("bell\u{7}"), Err(NameError::Control));
        assert_eq!(check_name("c1\u{85}"), Err(NameError::Control));
    }

    #[test]
    fn a_name_joins_with_its_first_tab_and_leaves_with_its_last() {
        let mut rooms = Rooms::default();
        let ada = rooms.enter("1:a", conn(1), "ada", 10).expect("room");
        assert_eq!(ada, Entered { members: vec!["ada".into()], first: true });
        let second_tab = rooms.enter("1:a", conn(2), "ada", 10).expect("room");
        assert_eq!(second_tab, Entered { members: vec!["ada".into()], first: false }, "listed once");
        let bob = rooms.enter("1:a", conn(3), "bob", 10).expect("room");
        assert_eq!(bob.members, vec!["ada".to_owned(), "bob".to_owned()], "in arrival order");
        assert_eq!(rooms.leave("1:a", conn(1)), None, "ada still has a tab");
        assert_eq!(rooms.leave("1:a", conn(2)), Some("ada".to_owned()));
        assert_eq!(rooms.members("1:a"), vec!["bob".to_owned()]);
        assert_eq!(rooms.leave("1:a", conn(3)), Some("bob".to_owned()));
        assert!(rooms.rooms.is_empty(), "an empty room keeps nothing");
        assert_eq!(rooms.leave("1:a", conn(3)), None, "leaving twice is harmless");
    }

    #[test]
    fn rooms_are_apart_and_a_connection_counts_once() {
        let mut rooms = Rooms::default();
        rooms.enter("1:a", conn(1), "ada", 10).expect("room");
        assert!(rooms.enter("1:b", conn(2), "ada", 10).expect("room").first, "another room, another list");
        assert!(!rooms.enter("1:a", conn(1), "ada", 10).expect("room").first);
        assert_eq!(rooms.leave("1:a", conn(1)), Some("ada".to_owned()), "one connection, one leave");
        assert_eq!(rooms.members("1:b"), vec!["ada".to_owned()]);
        assert_eq!(rooms.leave("1:a", conn(2)), None, "not a member of that room");
    }

    #[test]
    fn a_full_room_refuses_new_names_but_not_new_tabs() {
        let mut rooms = Rooms::default();
        rooms.enter("r", conn(1), "a", 2).expect("room");
        rooms.enter("r", conn(2), "b", 2).expect("room");
        assert_eq!(rooms.enter("r", conn(3), "c", 2), Err(Full { max: 2 }));
        assert!(rooms.enter("r", conn(4), "a", 2).is_ok());
        assert_eq!(rooms.enter("empty", conn(5), "x", 0), Err(Full { max: 0 }));
        assert!(!rooms.rooms.contains_key("empty"), "a refused first name leaves no room behind");
    }

    #[test]
    fn the_lock_is_shared_by_every_caller() {
        let roster = std::sync::Arc::new(Roster::default());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let roster = std::sync::Arc::clone(&roster);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let id = conn(t * 1_000 + i);
                        roster.lock().enter("r", id, &format!("n{}", i % 7), 100).expect("room");
                        roster.lock().leave("r", id);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("no panic"));
        assert!(roster.lock().members("r").is_empty());
    }
}
