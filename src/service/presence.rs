//! Who is in each presence channel, over every worker: users with how many
//! connections each, so `member_added` and `member_removed` fire once per
//! user, not per tab. Kept off the publish path (joins and leaves only).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::conn_id::ConnId;
use crate::pusher::{PresenceMember, PresenceSnapshot};

/// One user of a presence channel.
struct User {
    member: PresenceMember,
    conns: Vec<ConnId>,
}

/// One presence channel: users in the order they arrived.
#[derive(Default)]
struct Channel {
    users: Vec<User>,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// The channel already has its most users and this is a new one.
    Full { max: usize },
}

/// What a join did.
pub(crate) struct Joined {
    /// The members as the new subscriber sees them, itself included.
    pub(crate) snapshot: PresenceSnapshot,
    /// True when the user had no other connection in the channel: the
    /// others are told `member_added`.
    pub(crate) new_user: bool,
}

/// Presence channels by audience key.
#[derive(Default)]
pub(crate) struct PresenceRegistry {
    channels: Mutex<HashMap<String, Channel>>,
}

impl PresenceRegistry {
    /// Adds `conn` as `member` of `channel`, unless that would pass
    /// `max_users` distinct users.
    pub(crate) fn join(
        &self,
        channel: &str,
        conn: ConnId,
        member: PresenceMember,
        max_users: usize,
    ) -> Result<Joined, JoinError> {
        let mut channels = self.channels.lock();
        let entry = channels.entry(channel.to_owned()).or_default();
        let known = entry.users.iter().position(|u| u.member.user_id == member.user_id);
        let new_user = match known {
            Some(at) => {
                let user = &mut entry.users[at];
                if !user.conns.contains(&conn) {
                    user.conns.push(conn);
                }
                false
            }
            None if entry.users.len() >= max_users => {
                if entry.users.is_empty() {
                    channels.remove(channel);
                }
                return Err(JoinError::Full { max: max_users });
            }
            None => {
                entry.users.push(User { member, conns: vec![conn] });
                true
            }
        };
        let snapshot = PresenceSnapshot::from_members(entry.users.iter().map(|u| &u.member));
        Ok(Joined { snapshot, new_user })
    }

    /// Removes `conn` from `channel`; returns the user id when that was the
    /// user's last connection there (the others are told `member_removed`).
    pub(crate) fn leave(&self, channel: &str, conn: ConnId) -> Option<String> {
        let mut channels = self.channels.lock();
        let entry = channels.get_mut(channel)?;
        let at = entry.users.iter().position(|u| u.conns.contains(&conn))?;
        let user = &mut entry.users[at];
        user.conns.retain(|&c| c != conn);
        if !user.conns.is_empty() {
            return None;
        }
        let user = entry.users.remove(at);
        if entry.users.is_empty() {
            channels.remove(channel);
        }
        Some(user.member.user_id)
    }

    /// The member list of `channel` as a subscriber is told it.
    pub(crate) fn snapshot(&self, channel: &str) -> PresenceSnapshot {
        let channels = self.channels.lock();
        channels.get(channel).map_or_else(PresenceSnapshot::default, |c| {
            PresenceSnapshot::from_members(c.users.iter().map(|u| &u.member))
        })
    }

    /// The distinct user ids of `channel`, in arrival order.
    pub(crate) fn user_ids(&self, channel: &str) -> Vec<String> {
        let channels = self.channels.lock();
        channels.get(channel).map_or_else(Vec::new, |c| c.users.iter().map(|u| u.member.user_id.clone()).collect())
    }

    /// Every user of every presence channel here, by channel: what this
    /// node puts into a cluster's shared presence.
    pub(crate) fn all_members(&self) -> Vec<(String, PresenceMember)> {
        let channels = self.channels.lock();
        channels.iter().flat_map(|(key, c)| c.users.iter().map(move |u| (key.clone(), u.member.clone()))).collect()
    }

    /// Distinct users of `channel`.
    pub(crate) fn user_count(&self, channel: &str) -> usize {
        self.channels.lock().get(channel).map_or(0, |c| c.users.len())
    }

    /// Presence members over every channel whose key starts with `prefix`.
    pub(crate) fn members_with_prefix(&self, prefix: &str) -> usize {
        self.channels.lock().iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, c)| c.users.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> PresenceMember {
        crate::pusher::parse_channel_data(&format!("{{\"user_id\":\"{id}\"}}"), 1024).expect("valid")
    }

    #[test]
    fn a_user_is_added_and_removed_once_whatever_its_tabs() {
        let registry = PresenceRegistry::default();
        let (tab1, tab2, other) = (ConnId::from_u64(1), ConnId::from_u64(2), ConnId::from_u64(3));
        assert!(registry.join("p", tab1, member("1"), 100).expect("room").new_user);
        assert!(!registry.join("p", tab2, member("1"), 100).expect("room").new_user);
        let joined = registry.join("p", other, member("2"), 100).expect("room");
        assert!(joined.new_user);
        assert_eq!(joined.snapshot.count(), 2);
        assert_eq!(registry.leave("p", tab1), None, "user 1 still has a tab");
        assert_eq!(registry.leave("p", tab2), Some("1".to_owned()));
        assert_eq!(registry.user_ids("p"), vec!["2".to_owned()]);
        assert_eq!(registry.leave("p", other), Some("2".to_owned()));
        assert_eq!(registry.user_count("p"), 0);
        assert_eq!(registry.leave("p", other), None);
    }

    #[test]
    fn a_full_channel_refuses_new_users_but_not_new_tabs() {
        let registry = PresenceRegistry::default();
        registry.join("p", ConnId::from_u64(1), member("a"), 2).expect("room");
        registry.join("p", ConnId::from_u64(2), member("b"), 2).expect("room");
        assert_eq!(registry.join("p", ConnId::from_u64(3), member("c"), 2).err(), Some(JoinError::Full { max: 2 }));
        assert!(registry.join("p", ConnId::from_u64(4), member("a"), 2).is_ok());
        assert_eq!(registry.members_with_prefix(""), 2);
    }
}
