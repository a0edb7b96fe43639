//! The channel methods of [`ServerHandle`]: join, leave, publish, inspect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Dialect, Publication};
use crate::bus::{Command, Publish, SendError, Wait, COMMAND_OVERHEAD};
use crate::conn_id::ConnId;
use crate::handle::{Prepared, ServerHandle};
use crate::message::Message;

/// One occupied channel as [`ServerHandle::channels`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel's name.
    pub name: String,
    /// Subscriptions over every worker (one per subscribed connection).
    pub subscriptions: usize,
}

impl ServerHandle {
    /// Makes `conn` a member of `channel`, receiving the default dialect of
    /// what is published there. Takes effect in order with the pushes made
    /// to `conn` before it: a publish that reaches the worker after this
    /// call reaches `conn`. Returns false when `conn` is not open.
    pub fn subscribe(&self, conn: ConnId, channel: &str) -> bool {
        self.subscribe_as(conn, channel, Dialect::DEFAULT)
    }

    /// Like [`ServerHandle::subscribe`], receiving `dialect`. Subscribing
    /// again only changes the dialect.
    pub fn subscribe_as(&self, conn: ConnId, channel: &str, dialect: Dialect) -> bool {
        self.membership(conn, Command::Subscribe { conn, channel: channel.into(), dialect })
    }

    /// Ends `conn`'s membership of `channel` (nothing if it was not a
    /// member). Returns false when `conn` is not open.
    pub fn unsubscribe(&self, conn: ConnId, channel: &str) -> bool {
        self.membership(conn, Command::Unsubscribe { conn, channel: channel.into() })
    }

    fn membership(&self, conn: ConnId, command: Command) -> bool {
        self.exists(conn) && self.shared.bus.send(conn.worker(), command, Wait::Forever).is_ok()
    }

    /// Sends `message` to every member of `channel`, waiting for room if
    /// needed. Encoded once; crosses only to the workers with members.
    pub fn publish(&self, channel: &str, message: &Message) {
        let _ = self.publish_with(channel, &Publication::single(&Prepared::new(message)), None, Wait::Forever);
    }

    /// Sends `message` to every member of `channel` but `except` (a chat
    /// room's sender), waiting for room if needed.
    pub fn publish_except(&self, channel: &str, message: &Message, except: ConnId) {
        let publication = Publication::single(&Prepared::new(message));
        let _ = self.publish_with(channel, &publication, Some(except), Wait::Forever);
    }

    /// The general form: sends `publication` (a frame per dialect) to every
    /// member of `channel` but `except`, waiting at most `timeout` for room
    /// (`None`: not at all). All or nothing over the workers with members:
    /// `Full` means no member got it. Returns the members' workers reached
    /// (0 when the channel has no member).
    pub fn try_publish(
        &self,
        channel: &str,
        publication: &Publication,
        except: Option<ConnId>,
        timeout: Option<Duration>,
    ) -> Result<usize, SendError> {
        let wait = timeout.map_or(Wait::No, |t| Instant::now().checked_add(t).map_or(Wait::Forever, Wait::Until));
        self.publish_with(channel, publication, except, wait)
    }

    /// Sends `publication` to every member of `channel` but `except`
    /// through every worker's inbox, never waiting (`Full` when one lacks
    /// room): in order with every other call of the `*_in_order` methods
    /// (see [`crate::bus::Bus::send_through_inboxes`]). A worker without
    /// members drops it on arrival.
    pub(crate) fn publish_in_order(
        &self,
        channel: &str,
        publication: &Publication,
        except: Option<ConnId>,
    ) -> Result<(), SendError> {
        self.publish_in_order_here(channel, publication, except)?;
        self.forward_to_cluster(channel, publication);
        Ok(())
    }

    /// As [`ServerHandle::publish_in_order`], to this node's members only
    /// (a publication the cluster already carries).
    pub(crate) fn publish_in_order_here(
        &self,
        channel: &str,
        publication: &Publication,
        except: Option<ConnId>,
    ) -> Result<(), SendError> {
        let publish = Publish {
            channel: Arc::from(channel),
            publication: publication.clone(),
            except,
            sent_at: Some(Instant::now()),
        };
        let bus = &self.shared.bus;
        bus.send_through_inboxes(bus.every_worker().iter().map(|&w| (w, Command::Publish(publish.clone()))).collect())
    }

    /// Subscribes `conn` to `channel` as `dialect`, then sends it `pushes`,
    /// through its worker's inbox, all or none, in order with every other
    /// call of the `*_in_order` methods.
    pub(crate) fn join_in_order(
        &self,
        conn: ConnId,
        channel: &str,
        dialect: Dialect,
        pushes: &[Prepared],
    ) -> Result<(), SendError> {
        let worker = conn.worker();
        let mut sends = vec![(worker, Command::Subscribe { conn, channel: channel.into(), dialect })];
        sends.extend(pushes.iter().map(|p| (worker, Command::Push { conn, frame: p.frame.clone() })));
        self.shared.bus.send_through_inboxes(sends)
    }

    /// Unsubscribes `conn` from `channel` in order with every other call of
    /// the `*_in_order` methods.
    pub(crate) fn leave_in_order(&self, conn: ConnId, channel: &str) -> Result<(), SendError> {
        let command = Command::Unsubscribe { conn, channel: channel.into() };
        self.shared.bus.send_through_inboxes(vec![(conn.worker(), command)])
    }

    fn publish_with(
        &self,
        channel: &str,
        publication: &Publication,
        except: Option<ConnId>,
        wait: Wait,
    ) -> Result<usize, SendError> {
        let reached = self.publish_here(channel, publication, except, wait)?;
        self.forward_to_cluster(channel, publication);
        Ok(reached)
    }

    /// Runs `then` once a publish from any node of the cluster reaches this
    /// node's members of `channel` (its Redis subscription is confirmed;
    /// at once on a single node, or while Redis is away).
    pub(crate) fn when_channel_ready(&self, channel: &str, then: crate::cluster::Waiter) {
        match &self.shared.cluster {
            Some(cluster) => cluster.when_subscribed(channel, then),
            None => then(),
        }
    }

    /// Hands a publication to the other nodes only (this node's members
    /// had it already), when there are some.
    pub(crate) fn publish_elsewhere(&self, channel: &str, publication: &Publication) {
        self.forward_to_cluster(channel, publication);
    }

    /// Hands a publication this node's members got (or would have, had it
    /// any) to the other nodes, when there are some.
    fn forward_to_cluster(&self, channel: &str, publication: &Publication) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.forward_publication(channel, publication);
        }
    }

    /// Delivers a publication another node made to this node's members,
    /// never waiting (`Full`: none got it).
    pub(crate) fn publish_from_cluster(&self, channel: &str, publication: &Publication) -> Result<usize, SendError> {
        self.publish_here(channel, publication, None, Wait::No)
    }

    /// Sends `publication` to this node's members of `channel` only,
    /// waiting at most `timeout` for room: for what every node does for its
    /// own clients (a heartbeat), which must not cross to the other nodes.
    pub(crate) fn publish_on_this_node(
        &self,
        channel: &str,
        publication: &Publication,
        timeout: Duration,
    ) -> Result<usize, SendError> {
        let wait = Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until);
        self.publish_here(channel, publication, None, wait)
    }

    /// Sends `publication` to this node's members of `channel` but `except`.
    fn publish_here(
        &self,
        channel: &str,
        publication: &Publication,
        except: Option<ConnId>,
        wait: Wait,
    ) -> Result<usize, SendError> {
        let mut workers = Vec::new();
        self.shared.channels.workers_with(channel, &mut workers);
        if workers.is_empty() {
            return Ok(0);
        }
        let publish = Publish {
            channel: Arc::from(channel),
            publication: publication.clone(),
            except,
            sent_at: Some(Instant::now()),
        };
        let cost = publication.bytes() + channel.len() + COMMAND_OVERHEAD;
        self.shared.bus.multicast(&workers, cost, || Command::Publish(publish.clone()), wait)?;
        Ok(workers.len())
    }

    /// Connections subscribed to `channel` now, over every worker.
    pub fn subscription_count(&self, channel: &str) -> usize {
        self.shared.channels.subscriptions(channel)
    }

    /// Occupied channels whose name starts with `prefix` (all with ""),
    /// sorted by name.
    pub fn channels(&self, prefix: &str) -> Vec<ChannelInfo> {
        let found = self.shared.channels.channels(prefix);
        found.into_iter().map(|(name, subscriptions)| ChannelInfo { name, subscriptions }).collect()
    }

    /// Occupied channels now.
    pub fn channel_count(&self) -> usize {
        self.shared.channels.len()
    }
}
