//! The state thread: runs the jobs the workers queue, proves this node
//! alive, forgets the nodes that stopped proving it, and puts this node's
//! state back when Redis lost it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::scripts::{invoke, snapshot, Keys, Scripts};
use super::{Job, JoinAnswer, Reader};
use crate::channels::ChannelChange;
use crate::cluster::StateLink;
use crate::handle::ServerHandle;
use crate::pusher::{Apps, PresenceMember};
use crate::service::presence::PresenceRegistry;
use crate::service::webhooks::Webhooks;
use crate::service::{announce, audience};

/// How long after its pub/sub bridge is back a node waits before telling
/// what changed while Redis was away: the longest reconnect backoff, so the
/// other nodes have resubscribed and hear it.
const RESYNC_GRACE: Duration = Duration::from_secs(2);

/// Who hears of a member that came or went.
#[derive(Clone, Copy)]
enum Reach {
    /// Every member on every node (and the webhooks).
    Everywhere,
    /// The members on the other nodes only: this node's were told already.
    Elsewhere,
}

/// Users that left and channels vacated, or joined and occupied, by one
/// change of a node's whole state.
#[derive(Default)]
struct Changes {
    /// (channel key, user id)
    users: Vec<(String, String)>,
    channels: Vec<String>,
}

pub(super) struct StateThread {
    link: StateLink,
    keys: Keys,
    server: ServerHandle,
    apps: Apps,
    webhooks: Webhooks,
    presence: Arc<PresenceRegistry>,
    connection: Option<crate::cluster::Link>,
    failures: u32,
    retry_at: Instant,
    /// This node's state in Redis may differ from its own view: put it
    /// back at the next chance.
    resync: bool,
    /// Presence users told as new by this node alone while Redis was away:
    /// the cluster hears of them at the resync.
    outage_added: HashSet<(String, String)>,
    /// Channels occupied here while Redis was away.
    outage_occupied: HashSet<String>,
    /// Presence users that left while Redis could not count it, told here
    /// then: the others hear of them at the resync.
    outage_removed: HashSet<(String, String)>,
    /// Since when this node's pub/sub bridge has been up.
    bridged_since: Option<Instant>,
    /// This node is in the cluster's set of nodes (as far as it knows).
    registered: bool,
    scripts: Scripts,
}

impl StateThread {
    pub(super) fn new(
        link: StateLink,
        server: ServerHandle,
        apps: Apps,
        webhooks: Webhooks,
        presence: Arc<PresenceRegistry>,
    ) -> Self {
        StateThread {
            keys: Keys { prefix: link.prefix.clone(), node: format!("{:016x}", link.node) },
            link,
            server,
            apps,
            webhooks,
            presence,
            connection: None,
            failures: 0,
            retry_at: Instant::now(),
            resync: true,
            outage_added: HashSet::new(),
            outage_occupied: HashSet::new(),
            outage_removed: HashSet::new(),
            bridged_since: None,
            registered: false,
            scripts: Scripts::new(),
        }
    }

    pub(super) fn run(mut self, inbox: &Receiver<Job>) {
        let mut beat_at = Instant::now();
        while !self.server.is_shutting_down() {
            match inbox.recv_timeout(self.link.heartbeat.min(Duration::from_millis(250))) {
                Ok(job) => self.job(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= beat_at {
                beat_at = Instant::now() + self.link.heartbeat;
                self.heartbeat();
            }
        }
    }

    /// Makes the connection if there is none and it is time to try.
    fn connect_if_due(&mut self) {
        if self.connection.is_none() && Instant::now() >= self.retry_at {
            match self.link.target.connect(self.link.heartbeat * 3) {
                Ok(connection) => {
                    self.connection = Some(connection);
                    self.failures = 0;
                }
                Err(e) => {
                    if self.failures == 0 {
                        log::warn!("redis {}: cannot connect for presence ({e}); retrying", self.link.shown);
                    }
                    self.retry_at = Instant::now() + crate::cluster::backoff(self.failures);
                    self.failures = self.failures.saturating_add(1);
                }
            }
        }
    }

    /// Drops the connection after `e`; this node's state is put back once
    /// it is made again.
    fn failed(&mut self, e: &redis::RedisError) {
        log::warn!("redis {}: presence and occupancy failed ({e}); reconnecting", self.link.shown);
        self.connection = None;
        self.resync = true;
        self.registered = false;
    }

    fn job(&mut self, job: Job) {
        match job {
            Job::Join { key, member, count, max, then } => {
                let answer = self.join(&key, &member, count, max);
                then(answer);
            }
            Job::Leave { key, user_id } => {
                let field = format!("{key}\x1f{user_id}");
                let (pu, pi, np) =
                    (self.keys.users(&key), self.keys.infos(&key), self.keys.node_presence(&self.keys.node));
                self.connect_if_due();
                let outcome = self.connection.as_mut().map(|link| {
                    let connection = link.as_dyn();
                    invoke::<i64>(connection, &self.scripts.leave, &[&pu, &pi, &np], &[&user_id, &field])
                });
                match outcome {
                    Some(Ok(1)) => self.tell_removed(&key, &user_id, Reach::Everywhere),
                    // Not counted here: Redis lost this node's state, which
                    // the resync puts back without this user.
                    Some(Ok(-1)) if self.resync => self.left_unseen(key, user_id),
                    Some(Ok(_)) => {}
                    failure => {
                        if let Some(Err(e)) = failure {
                            self.failed(&e);
                        }
                        self.resync = true;
                        self.left_unseen(key, user_id);
                    }
                }
            }
            Job::Occupancy { key, delta } => {
                let (occ, no) = (self.keys.occupied(), self.keys.node_occupancy(&self.keys.node));
                self.connect_if_due();
                let outcome = self.connection.as_mut().map(|link| {
                    let connection = link.as_dyn();
                    invoke::<i64>(connection, &self.scripts.occupy, &[&occ, &no], &[&key, &delta.to_string()])
                });
                match outcome {
                    Some(Ok(1)) if delta > 0 => self.tell_channel(&key, true),
                    Some(Ok(0)) if delta < 0 => self.tell_channel(&key, false),
                    Some(Ok(_)) => {}
                    failure => {
                        if let Some(Err(e)) = failure {
                            self.failed(&e);
                        }
                        // Whether the cluster changed is known at the resync.
                        self.resync = true;
                        if delta > 0 {
                            self.outage_occupied.insert(key);
                        } else {
                            self.outage_occupied.remove(&key);
                        }
                    }
                }
            }
            Job::Read(read) => {
                self.connect_if_due();
                let prefix = self.keys.prefix.as_str();
                read(self.connection.as_mut().map(|link| Reader { connection: link.as_dyn(), prefix }));
            }
        }
    }

    /// A user left while Redis could not count it: told here as a single
    /// node would, and to the others at the resync.
    fn left_unseen(&mut self, key: String, user_id: String) {
        self.tell_removed(&key, &user_id, Reach::Everywhere);
        let user = (key, user_id);
        self.outage_added.remove(&user);
        self.outage_removed.insert(user);
    }

    /// Runs the join script (with Redis away: this node's view), telling
    /// the channel of a user new to it.
    fn join(&mut self, key: &str, member: &PresenceMember, count: bool, max: usize) -> JoinAnswer {
        self.connect_if_due();
        let outcome = self.run_join(key, member, count, max);
        match outcome {
            Some(Ok((-1, _))) => JoinAnswer::Full,
            Some(Ok((new, infos))) => {
                if new == 1 {
                    self.tell_added(key, member, Reach::Everywhere);
                }
                JoinAnswer::Joined { snapshot: snapshot(&infos) }
            }
            failure => {
                if let Some(Err(e)) = failure {
                    self.failed(&e);
                }
                self.resync = true;
                // Told by this node alone, as a single node would: its view
                // says whether the user is new. The others hear it at the resync.
                let snapshot = self.presence.snapshot(key);
                if count {
                    let user = (key.to_owned(), member.user_id.clone());
                    self.outage_removed.remove(&user);
                    self.outage_added.insert(user);
                    self.tell_added(key, member, Reach::Everywhere);
                }
                JoinAnswer::Joined { snapshot }
            }
        }
    }

    /// Runs the join script for `member` of channel `key` (`count`: this
    /// node counts the user now), if there is a connection.
    fn run_join(
        &mut self,
        key: &str,
        member: &PresenceMember,
        count: bool,
        max: usize,
    ) -> Option<redis::RedisResult<(i64, Vec<String>)>> {
        if count && !self.registered {
            // A node killed right after its first join must still be one the
            // others know, or nobody would take its members away.
            if let Err(e) = self.register(true) {
                return Some(Err(e));
            }
        }
        let connection = self.connection.as_mut()?.as_dyn();
        let field = format!("{key}\x1f{}", member.user_id);
        let info = member.user_info.as_ref().map_or("", |i| i.get());
        let keys = [self.keys.users(key), self.keys.infos(key), self.keys.node_presence(&self.keys.node)];
        let (max, count) = (max.to_string(), if count { "1" } else { "0" });
        let args = [member.user_id.as_str(), info, &max, &field, count];
        Some(invoke(connection, &self.scripts.join, &keys.each_ref().map(String::as_str), &args))
    }

    /// Registers this node in the cluster, puts its state back when Redis
    /// forgot it, and forgets the nodes that stopped proving they are alive.
    fn heartbeat(&mut self) {
        // The node's alive key is the publisher thread's (it never waits on
        // a worker); this node joins the cluster's set only once the key is
        // there, or the others would forget it as soon as it joined.
        self.connect_if_due();
        match self.register(false) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.failed(&e),
        }
        let Some(connection) = self.connection.as_mut().map(crate::cluster::Link::as_dyn) else { return };
        let members: Vec<String> = match redis::cmd("SMEMBERS").arg(self.keys.nodes()).query(connection) {
            Ok(members) => members,
            Err(e) => return self.failed(&e),
        };
        // What the resync tells travels by pub/sub: it waits until every
        // node can have resubscribed after Redis came back.
        let bridged = self.server.shared.cluster.as_ref().is_some_and(crate::cluster::Cluster::is_up);
        let since = if bridged { *self.bridged_since.get_or_insert_with(Instant::now) } else { Instant::now() };
        if !bridged {
            self.bridged_since = None;
        }
        if self.resync && since.elapsed() >= RESYNC_GRACE + self.link.heartbeat {
            if let Err(e) = self.resync() {
                return self.failed(&e);
            }
        }
        let me = self.keys.node.clone();
        for node in members.iter().filter(|n| **n != me) {
            if let Err(e) = self.forget_if_gone(node) {
                return self.failed(&e);
            }
        }
    }

    /// Puts this node in the cluster's set of nodes once its alive key is
    /// there (`prove`: sets the key first if it is not, for a node whose
    /// publisher has not set it yet); a node Redis did not know has its
    /// state put back. False when the key is not there (nor set).
    fn register(&mut self, prove: bool) -> redis::RedisResult<bool> {
        let (nodes, alive) = (self.keys.nodes(), self.keys.alive(&self.keys.node));
        let ttl = u64::try_from((self.link.heartbeat * 3).as_millis()).unwrap_or(u64::MAX);
        let Some(connection) = self.connection.as_mut().map(crate::cluster::Link::as_dyn) else { return Ok(false) };
        if prove {
            let _: Option<String> =
                redis::cmd("SET").arg(&alive).arg(1).arg("PX").arg(ttl).arg("NX").query(connection)?;
        }
        let proven: bool = redis::cmd("EXISTS").arg(&alive).query(connection)?;
        if !proven {
            return Ok(false);
        }
        let added: i64 = redis::cmd("SADD").arg(&nodes).arg(&self.keys.node).query(connection)?;
        if added == 1 {
            self.resync = true; // Redis forgot this node, or never knew it
        }
        self.registered = true;
        Ok(true)
    }

    /// Forgets `node` if its alive key expired; tells what it took along.
    fn forget_if_gone(&mut self, node: &str) -> redis::RedisResult<()> {
        let changes = self.forget(node, false)?;
        if !changes.users.is_empty() || !changes.channels.is_empty() {
            log::info!(
                "redis {}: node {node} is gone: {} presence members and {} channels with it",
                self.link.shown,
                changes.users.len(),
                changes.channels.len()
            );
        }
        for (key, user) in &changes.users {
            self.tell_removed(key, user, Reach::Everywhere);
        }
        for key in &changes.channels {
            self.tell_channel(key, false);
        }
        Ok(())
    }

    fn forget(&mut self, node: &str, force: bool) -> redis::RedisResult<Changes> {
        let keys = [
            self.keys.nodes(),
            self.keys.node_presence(node),
            self.keys.node_occupancy(node),
            self.keys.occupied(),
            self.keys.alive(node),
        ];
        let Some(connection) = self.connection.as_mut().map(crate::cluster::Link::as_dyn) else {
            return Ok(Changes::default());
        };
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args = [node, self.keys.prefix.as_str(), if force { "1" } else { "0" }];
        let (removed, vacated): (Vec<String>, Vec<String>) = invoke(connection, &self.scripts.forget, &keys, &args)?;
        let users = removed.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        Ok(Changes { users, channels: vacated })
    }

    /// Replaces what Redis holds of this node with its own view, and tells
    /// the difference: users and channels gone meanwhile (told again if
    /// this node told its own clients already: pusher-js ignores a second
    /// `member_removed`), and those that came while Redis was away.
    fn resync(&mut self) -> redis::RedisResult<()> {
        let node = self.keys.node.clone();
        let before = self.forget(&node, true)?;
        let mut after = Changes::default();
        for (key, member) in self.presence.all_members() {
            let Some(outcome) = self.run_join(&key, &member, true, usize::MAX) else { return Ok(()) };
            let (new, _) = outcome?;
            if new == 1 {
                after.users.push((key, member.user_id));
            }
        }
        for key in self.server.channels("").into_iter().map(|c| c.name) {
            if announce::counted_channel(&self.apps, &key).is_none() {
                continue;
            }
            let (occ, no) = (self.keys.occupied(), self.keys.node_occupancy(&node));
            let Some(connection) = self.connection.as_mut().map(crate::cluster::Link::as_dyn) else { return Ok(()) };
            let all: i64 = invoke(connection, &self.scripts.occupy, &[&occ, &no], &[&key, "1"])?;
            if all == 1 {
                after.channels.push(key);
            }
        }
        self.resync = false;
        let gone: HashSet<&(String, String)> = before.users.iter().collect();
        let back: HashSet<&(String, String)> = after.users.iter().collect();
        // Users that left while Redis was away were told here then: the
        // others hear of them now.
        let outage_removed = std::mem::take(&mut self.outage_removed);
        for (key, user) in before.users.iter().filter(|u| !back.contains(u) && !outage_removed.contains(*u)) {
            self.tell_removed(key, user, Reach::Everywhere);
        }
        for (key, user) in &outage_removed {
            self.tell_removed(key, user, Reach::Elsewhere);
        }
        // New to the cluster: those that joined while Redis was away, told
        // here then (the rest were told when they joined; after Redis lost
        // everything all of this node's users are new to it, and nobody
        // needs telling).
        let outage_added = std::mem::take(&mut self.outage_added);
        for (key, user) in after.users.iter().filter(|u| !gone.contains(u) && outage_added.contains(*u)) {
            let info = self.presence.snapshot(key).info(user).flatten().map(|i| i.to_owned());
            let member = PresenceMember { user_id: user.clone(), user_info: info };
            self.tell_added(key, &member, Reach::Elsewhere);
        }
        let (vacated, occupied): (HashSet<&String>, HashSet<&String>) =
            (before.channels.iter().collect(), after.channels.iter().collect());
        for key in before.channels.iter().filter(|k| !occupied.contains(k)) {
            self.tell_channel(key, false);
        }
        let outage_occupied = std::mem::take(&mut self.outage_occupied);
        for key in after.channels.iter().filter(|k| !vacated.contains(k) && outage_occupied.contains(*k)) {
            self.tell_channel(key, true);
        }
        log::info!("redis {}: presence and occupancy of this node in place", self.link.shown);
        Ok(())
    }

    fn tell_added(&self, key: &str, member: &PresenceMember, reach: Reach) {
        let Some((_, channel)) = audience::split(key) else { return };
        self.tell(key, announce::member_added(channel, &member.user_id, member.user_info.as_deref()), reach);
    }

    fn tell_removed(&self, key: &str, user_id: &str, reach: Reach) {
        let Some((_, channel)) = audience::split(key) else { return };
        self.tell(key, announce::member_removed(channel, user_id), reach);
    }

    /// Publishes `news` to the channel's members (`Elsewhere`: on the other
    /// nodes only) and, `Everywhere`, posts its webhook.
    fn tell(&self, key: &str, news: announce::MemberNews, reach: Reach) {
        match reach {
            Reach::Everywhere => {
                let _ = self.server.try_publish(key, &news.publication, None, Some(Duration::from_millis(100)));
                if let Some(app) = audience::split(key).and_then(|(app, _)| self.apps.by_id(app)) {
                    self.webhooks.emit(app, news.webhook);
                }
            }
            Reach::Elsewhere => self.server.publish_elsewhere(key, &news.publication),
        }
    }

    fn tell_channel(&self, key: &str, occupied: bool) {
        let Some((app, channel)) = announce::counted_channel(&self.apps, key) else { return };
        let change = if occupied { ChannelChange::Occupied } else { ChannelChange::Vacated };
        self.webhooks.emit(app, announce::occupancy(channel, change));
    }
}
