//! Signed-in users over every worker: each user's connections (for
//! per-user pushes and `terminate_connections`) and watchlists (who is told
//! when whom comes online or goes offline).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::conn_id::ConnId;

#[derive(Default)]
struct Inner {
    /// Connections per `app:user`.
    users: HashMap<String, UserEntry>,
    /// Per watched `app:user`: the online users (`app:user`) watching it.
    watchers: HashMap<String, Vec<String>>,
}

#[derive(Default)]
struct UserEntry {
    conns: Vec<ConnId>,
    watchlist: Vec<String>,
}

/// What a sign-in did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SignedIn {
    /// Users of the new connection's watchlist online now.
    pub(crate) online_watched: Vec<String>,
    /// When the user just came online: its watchers' connections, to be
    /// told `online`.
    pub(crate) tell_online: Vec<ConnId>,
}

/// Signed-in users, by app.
#[derive(Default)]
pub(crate) struct UserRegistry {
    inner: Mutex<Inner>,
}

fn key(app: &str, user: &str) -> String {
    format!("{app}:{user}")
}

impl UserRegistry {
    /// Records `conn` as signed in as `user` of `app`, watching `watchlist`.
    pub(crate) fn sign_in(&self, app: &str, user: &str, conn: ConnId, watchlist: &[String]) -> SignedIn {
        let mut inner = self.inner.lock();
        let me = key(app, user);
        let entry = inner.users.entry(me.clone()).or_default();
        let came_online = entry.conns.is_empty();
        if !entry.conns.contains(&conn) {
            entry.conns.push(conn);
        }
        let mut new_watches = Vec::new();
        for watched in watchlist {
            if !entry.watchlist.contains(watched) {
                entry.watchlist.push(watched.clone());
                new_watches.push(watched.clone());
            }
        }
        for watched in new_watches {
            let watchers = inner.watchers.entry(key(app, &watched)).or_default();
            if !watchers.contains(&me) {
                watchers.push(me.clone());
            }
        }
        let online_watched = watchlist
            .iter()
            .filter(|w| inner.users.get(&key(app, w)).is_some_and(|e| !e.conns.is_empty()))
            .cloned()
            .collect();
        let tell_online = if came_online { watcher_conns(&inner, &me) } else { Vec::new() };
        SignedIn { online_watched, tell_online }
    }

    /// Forgets `conn` of `user`; when that was the user's last connection,
    /// returns its watchers' connections, to be told `offline`.
    pub(crate) fn sign_out(&self, app: &str, user: &str, conn: ConnId) -> Option<Vec<ConnId>> {
        let mut inner = self.inner.lock();
        let me = key(app, user);
        let entry = inner.users.get_mut(&me)?;
        entry.conns.retain(|&c| c != conn);
        if !entry.conns.is_empty() {
            return None;
        }
        let entry = inner.users.remove(&me)?;
        for watched in entry.watchlist {
            let watched = key(app, &watched);
            if let Some(watchers) = inner.watchers.get_mut(&watched) {
                watchers.retain(|w| *w != me);
                if watchers.is_empty() {
                    inner.watchers.remove(&watched);
                }
            }
        }
        Some(watcher_conns(&inner, &me))
    }

    /// Every connection signed in as `user` of `app`.
    pub(crate) fn conns(&self, app: &str, user: &str) -> Vec<ConnId> {
        self.inner.lock().users.get(&key(app, user)).map_or_else(Vec::new, |e| e.conns.clone())
    }
}

fn watcher_conns(inner: &Inner, watched: &str) -> Vec<ConnId> {
    let watchers = inner.watchers.get(watched).map_or(&[][..], |w| &w[..]);
    watchers.iter().filter_map(|w| inner.users.get(w)).flat_map(|e| e.conns.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ConnId {
        ConnId::from_u64(n)
    }

    #[test]
    fn watchers_hear_a_user_come_online_once_and_go_offline_with_its_last_tab() {
        let users = UserRegistry::default();
        let watcher = users.sign_in("a", "1", id(1), &["2".to_owned()]);
        assert!(watcher.online_watched.is_empty() && watcher.tell_online.is_empty());
        assert_eq!(users.sign_in("a", "2", id(2), &[]).tell_online, vec![id(1)]);
        assert!(users.sign_in("a", "2", id(3), &[]).tell_online.is_empty(), "already online");
        assert_eq!(users.sign_out("a", "2", id(2)), None);
        assert_eq!(users.sign_out("a", "2", id(3)), Some(vec![id(1)]));
        assert_eq!(users.conns("a", "2"), vec![]);
    }

    #[test]
    fn a_new_watcher_learns_who_is_online_already() {
        let users = UserRegistry::default();
        users.sign_in("a", "2", id(2), &[]);
        let signed = users.sign_in("a", "1", id(1), &["2".to_owned(), "3".to_owned()]);
        assert_eq!(signed.online_watched, vec!["2".to_owned()]);
        // Apps are separate worlds.
        assert!(users.sign_in("b", "2", id(5), &[]).tell_online.is_empty());
        assert_eq!(users.conns("a", "1"), vec![id(1)]);
    }

    #[test]
    fn a_watcher_that_left_is_not_told() {
        let users = UserRegistry::default();
        users.sign_in("a", "1", id(1), &["2".to_owned()]);
        assert_eq!(users.sign_out("a", "1", id(1)), Some(vec![]));
        assert!(users.sign_in("a", "2", id(2), &[]).tell_online.is_empty());
    }
}
