//! What the HTTP API reads about channels, from one of two views: this
//! node's (a single node, or a cluster while Redis is away) or the
//! cluster's (with `--redis`: occupancy and presence over every node, read
//! from Redis on the state thread). Each answer is written once, against
//! [`ChannelView`].

use super::cluster_state::Reader;
use super::presence::PresenceRegistry;
use crate::handle::ServerHandle;

/// Channels as the API sees them, by core channel key (`app:channel`).
pub(crate) trait ChannelView {
    /// Occupied channels whose key starts with `prefix`, sorted.
    fn occupied(&mut self, prefix: &str) -> Vec<String>;
    /// Whether `key` has a subscriber.
    fn is_occupied(&mut self, key: &str) -> bool;
    /// Subscriptions of `key` (in a cluster: this node's).
    fn subscriptions(&mut self, key: &str) -> usize;
    /// Distinct users of presence channel `key`.
    fn user_count(&mut self, key: &str) -> usize;
    /// The user ids of presence channel `key`.
    fn users(&mut self, key: &str) -> Vec<String>;
}

/// This node's view.
pub(crate) struct LocalView<'a> {
    pub(crate) server: &'a ServerHandle,
    pub(crate) presence: &'a PresenceRegistry,
}

impl ChannelView for LocalView<'_> {
    fn occupied(&mut self, prefix: &str) -> Vec<String> {
        self.server.channels(prefix).into_iter().map(|c| c.name).collect()
    }

    fn is_occupied(&mut self, key: &str) -> bool {
        self.server.subscription_count(key) > 0
    }

    fn subscriptions(&mut self, key: &str) -> usize {
        self.server.subscription_count(key)
    }

    fn user_count(&mut self, key: &str) -> usize {
        self.presence.user_count(key)
    }

    fn users(&mut self, key: &str) -> Vec<String> {
        self.presence.user_ids(key)
    }
}

/// The cluster's view; a read Redis fails is answered from this node's.
pub(crate) struct ClusterView<'a> {
    pub(crate) reader: Reader<'a>,
    pub(crate) local: LocalView<'a>,
}

impl ChannelView for ClusterView<'_> {
    fn occupied(&mut self, prefix: &str) -> Vec<String> {
        self.reader.occupied(prefix).unwrap_or_else(|_| self.local.occupied(prefix))
    }

    fn is_occupied(&mut self, key: &str) -> bool {
        self.local.is_occupied(key) || self.reader.is_occupied(key).unwrap_or(false)
    }

    fn subscriptions(&mut self, key: &str) -> usize {
        self.local.subscriptions(key)
    }

    fn user_count(&mut self, key: &str) -> usize {
        self.reader.user_count(key).unwrap_or_else(|_| self.local.user_count(key))
    }

    fn users(&mut self, key: &str) -> Vec<String> {
        self.reader.users(key).unwrap_or_else(|_| self.local.users(key))
    }
}
