//! Presence and channel occupancy over a cluster (`--redis`): who is in a
//! presence channel on any node, and which channels are occupied anywhere,
//! kept in Redis so every node answers alike and each `member_added`,
//! `member_removed`, `channel_occupied` and `channel_vacated` happens once
//! per cluster, not once per node.
//!
//! Each node counts once per user and channel (its tabs are its own
//! business, in the local `PresenceRegistry`) and once per occupied channel,
//! in hashes of its own (`{p}:np:{node}`, `{p}:no:{node}`) beside the
//! cluster's totals (`{p}:pu:{channel}` users, `{p}:pi:{channel}` their
//! info, `{p}:occ` occupied channels), each change done by one Lua script
//! so that the node that takes a total from 0 to 1, or back, is the one
//! that tells. A node proves itself alive with a key that expires after
//! three heartbeats; when one is gone, the first node to notice subtracts
//! what it had (one script, so only one node does) and tells its members'
//! departures. A node that finds itself forgotten (Redis restarted, or it
//! was away too long) puts its own state back and tells the difference.
//!
//! All of it runs on one thread of its own: workers only queue jobs, and
//! whatever has to follow a job (the greeting of a presence subscriber, an
//! API answer) runs when it is done. While Redis is away the jobs are
//! answered from this node's own view, and set right when it returns.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde_json::value::RawValue;

use super::audience;
use super::presence::PresenceRegistry;
use super::webhooks::Webhooks;
use crate::cluster::StateLink;
use crate::handle::ServerHandle;
use crate::pusher::webhook::WebhookEvent;
use crate::pusher::{protocol, Apps, PresenceMember, PresenceSnapshot};

/// Jobs that may wait for the thread; past it a join is answered from this
/// node's view and a count change is left to the next resync.
const QUEUE: usize = 16 * 1024;

/// How long after its pub/sub bridge is back a node waits before telling
/// what changed while Redis was away: the longest reconnect backoff, so the
/// other nodes have resubscribed and hear it.
const RESYNC_GRACE: Duration = Duration::from_secs(2);

/// One node's presence in one channel: counts it once per user, refuses a
/// new user past the most, and returns whether the user is new to the
/// cluster and everyone's info.
const JOIN: &str = r"
local new = 0
if ARGV[5] == '1' then
  local count = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if count <= 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {-1, {}} end
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
  if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then new = 1 end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return {new, redis.call('HGETALL', KEYS[2])}
";

/// One node's last tab of a user left a channel: 1 when it was the
/// cluster's last, 0 when others remain, -1 when this node had not counted
/// it (Redis lost this node's state).
const LEAVE: &str = r"
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if mine <= 0 then return -1 end
if mine == 1 then redis.call('HDEL', KEYS[3], ARGV[2]) else redis.call('HINCRBY', KEYS[3], ARGV[2], -1) end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
";

/// A channel became occupied (+1) or vacated (-1) on one node: the number
/// of nodes occupying it now. Sums only, so changes may arrive in any order.
const OCCUPY: &str = r"
if redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2]) == 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
local all = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if all == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return all
";

/// Subtracts everything node ARGV[1] counted (unless it is alive again, or
/// another node did it first; ARGV[3] = '1' forces it, for a node's own):
/// returns the users that left the cluster ({channel, user, ...}) and the
/// channels now vacated. The channels' keys are built here, under ARGV[2]:
/// fine on one Redis, which is where shared state lives.
const FORGET_NODE: &str = r"
if ARGV[3] ~= '1' then
  if redis.call('EXISTS', KEYS[5]) == 1 then return {{}, {}} end
  if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return {{}, {}} end
end
local removed = {}
local np = redis.call('HGETALL', KEYS[2])
for i = 1, #np, 2 do
  local at = string.find(np[i], '\31', 1, true)
  if at then
    local key, user = string.sub(np[i], 1, at - 1), string.sub(np[i], at + 1)
    local pu, pi = ARGV[2] .. ':pu:' .. key, ARGV[2] .. ':pi:' .. key
    if redis.call('HINCRBY', pu, user, -tonumber(np[i + 1])) <= 0 then
      redis.call('HDEL', pu, user)
      redis.call('HDEL', pi, user)
      table.insert(removed, key)
      table.insert(removed, user)
    end
  end
end
local vacated = {}
local no = redis.call('HGETALL', KEYS[3])
for i = 1, #no, 2 do
  if redis.call('HINCRBY', KEYS[4], no[i], -tonumber(no[i + 1])) == 0 then
    redis.call('HDEL', KEYS[4], no[i])
    table.insert(vacated, no[i])
  end
end
redis.call('DEL', KEYS[2], KEYS[3])
return {removed, vacated}
";

/// What a presence join found.
pub(crate) enum JoinAnswer {
    /// Joined: whether the user is new to the channel (told to the others
    /// already), and every member.
    Joined { snapshot: PresenceSnapshot },
    /// The channel has its most users and this one is new.
    Full,
}

/// Something for the state thread to do.
pub(crate) enum Job {
    /// A connection joined presence channel `key` as `member`; `count`:
    /// the user's first connection here. `then` greets it.
    Join { key: String, member: PresenceMember, count: bool, max: usize, then: Box<dyn FnOnce(JoinAnswer) + Send> },
    /// The user's last connection here left presence channel `key`.
    Leave { key: String, user_id: String },
    /// Channel `key` became occupied (+1) or vacated (-1) here.
    Occupancy { key: String, delta: i64 },
    /// A read for the API: given a reader, or `None` while Redis is away
    /// (then it answers from this node's view).
    Read(ReadJob),
}

/// A read of the cluster's state, or of this node's while Redis is away.
pub(crate) type ReadJob = Box<dyn for<'a> FnOnce(Option<Reader<'a>>) + Send>;

/// The workers' side: queues jobs, never waits.
pub(crate) struct ClusterState {
    jobs: Sender<Job>,
}

impl ClusterState {
    /// Starts the state thread.
    pub(crate) fn start(
        link: StateLink,
        server: ServerHandle,
        apps: Apps,
        webhooks: Webhooks,
        presence: Arc<PresenceRegistry>,
    ) -> std::io::Result<ClusterState> {
        let (jobs, inbox) = crossbeam_channel::bounded(QUEUE);
        let thread = StateThread {
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
            scripts: Scripts::new(),
        };
        std::thread::Builder::new().name("fanout-redis-state".into()).spawn(move || thread.run(&inbox))?;
        Ok(ClusterState { jobs })
    }

    /// Queues `job`; when the queue is full, a join or read is done at once
    /// from this node's view, a count change is left to the next resync.
    pub(crate) fn submit(&self, job: Job, presence: &PresenceRegistry) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = self.jobs.try_send(job) {
            match job {
                Job::Join { key, then, .. } => then(JoinAnswer::Joined { snapshot: presence.snapshot(&key) }),
                Job::Read(read) => read(None),
                Job::Leave { .. } | Job::Occupancy { .. } => {}
            }
        }
    }
}

/// Redis key names.
struct Keys {
    prefix: String,
    /// This node's id in hex.
    node: String,
}

impl Keys {
    fn users(&self, key: &str) -> String {
        format!("{}:pu:{key}", self.prefix)
    }
    fn infos(&self, key: &str) -> String {
        format!("{}:pi:{key}", self.prefix)
    }
    fn node_presence(&self, node: &str) -> String {
        format!("{}:np:{node}", self.prefix)
    }
    fn node_occupancy(&self, node: &str) -> String {
        format!("{}:no:{node}", self.prefix)
    }
    fn occupied(&self) -> String {
        format!("{}:occ", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }
}

/// Reads of the cluster's presence and occupancy, for the API.
pub(crate) struct Reader<'a> {
    connection: &'a mut redis::Connection,
    prefix: &'a str,
}

impl Reader<'_> {
    /// The channels occupied on some node whose key starts with `prefix`,
    /// sorted.
    pub(crate) fn occupied(&mut self, prefix: &str) -> redis::RedisResult<Vec<String>> {
        let all: Vec<(String, i64)> =
            redis::cmd("HGETALL").arg(format!("{}:occ", self.prefix)).query(self.connection)?;
        let mut found: Vec<String> =
            all.into_iter().filter(|(k, n)| *n > 0 && k.starts_with(prefix)).map(|(k, _)| k).collect();
        found.sort_unstable();
        Ok(found)
    }

    /// Whether channel `key` is occupied on some node.
    pub(crate) fn is_occupied(&mut self, key: &str) -> redis::RedisResult<bool> {
        let nodes: Option<i64> =
            redis::cmd("HGET").arg(format!("{}:occ", self.prefix)).arg(key).query(self.connection)?;
        Ok(nodes.is_some_and(|n| n > 0))
    }

    /// The user ids of presence channel `key` over the cluster, sorted.
    pub(crate) fn users(&mut self, key: &str) -> redis::RedisResult<Vec<String>> {
        let mut users: Vec<String> =
            redis::cmd("HKEYS").arg(format!("{}:pu:{key}", self.prefix)).query(self.connection)?;
        users.sort_unstable();
        Ok(users)
    }

    /// The number of users of presence channel `key` over the cluster.
    pub(crate) fn user_count(&mut self, key: &str) -> redis::RedisResult<usize> {
        redis::cmd("HLEN").arg(format!("{}:pu:{key}", self.prefix)).query(self.connection)
    }
}

/// The scripts, hashed once (sent by hash, and whole when Redis lacks them).
struct Scripts {
    join: redis::Script,
    leave: redis::Script,
    occupy: redis::Script,
    forget: redis::Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            join: redis::Script::new(JOIN),
            leave: redis::Script::new(LEAVE),
            occupy: redis::Script::new(OCCUPY),
            forget: redis::Script::new(FORGET_NODE),
        }
    }
}

/// Runs `script` with `keys` and `args`.
fn invoke<T: redis::FromRedisValue>(
    connection: &mut redis::Connection,
    script: &redis::Script,
    keys: &[&str],
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(*key);
    }
    for arg in args {
        invocation.arg(*arg);
    }
    invocation.invoke(connection)
}

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

struct StateThread {
    link: StateLink,
    keys: Keys,
    server: ServerHandle,
    apps: Apps,
    webhooks: Webhooks,
    presence: Arc<PresenceRegistry>,
    connection: Option<redis::Connection>,
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
    scripts: Scripts,
}

impl StateThread {
    fn run(mut self, inbox: &Receiver<Job>) {
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
            match self.link.client.get_connection_with_timeout(Duration::from_secs(2)).and_then(|c| {
                c.set_read_timeout(Some(self.link.heartbeat * 3))?;
                c.set_write_timeout(Some(self.link.heartbeat * 3))?;
                Ok(c)
            }) {
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
                let outcome = self.connection.as_mut().map(|connection| {
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
                let outcome = self.connection.as_mut().map(|connection| {
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
                read(self.connection.as_mut().map(|connection| Reader { connection, prefix }));
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
        let field = format!("{key}\x1f{}", member.user_id);
        let info = member.user_info.as_ref().map_or("", |i| i.get());
        let (pu, pi, np) = (self.keys.users(key), self.keys.infos(key), self.keys.node_presence(&self.keys.node));
        self.connect_if_due();
        let (max, count) = (max.to_string(), if count { "1" } else { "0" });
        let outcome = self.connection.as_mut().map(|connection| {
            let args = [member.user_id.as_str(), info, &max, &field, count];
            invoke::<(i64, Vec<String>)>(connection, &self.scripts.join, &[&pu, &pi, &np], &args)
        });
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
                if count == "1" {
                    let user = (key.to_owned(), member.user_id.clone());
                    self.outage_removed.remove(&user);
                    self.outage_added.insert(user);
                    self.tell_added(key, member, Reach::Everywhere);
                }
                JoinAnswer::Joined { snapshot }
            }
        }
    }

    /// Proves this node alive, puts its state back when Redis forgot it,
    /// and forgets the nodes that stopped proving it.
    fn heartbeat(&mut self) {
        let (alive, nodes) = (self.keys.alive(&self.keys.node), self.keys.nodes());
        let ttl = u64::try_from((self.link.heartbeat * 3).as_millis()).unwrap_or(u64::MAX);
        self.connect_if_due();
        let Some(connection) = self.connection.as_mut() else { return };
        let outcome: redis::RedisResult<(i64, Vec<String>)> = redis::pipe()
            .cmd("SET")
            .arg(&alive)
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("SADD")
            .arg(&nodes)
            .arg(&self.keys.node)
            .cmd("SMEMBERS")
            .arg(&nodes)
            .query(connection);
        let (added, members) = match outcome {
            Ok(answer) => answer,
            Err(e) => return self.failed(&e),
        };
        if added == 1 {
            self.resync = true; // Redis forgot this node, or never knew it
        }
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
        let Some(connection) = self.connection.as_mut() else { return Ok(Changes::default()) };
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
            let field = format!("{key}\x1f{}", member.user_id);
            let info = member.user_info.as_ref().map_or("", |i| i.get()).to_owned();
            let (pu, pi, np) = (self.keys.users(&key), self.keys.infos(&key), self.keys.node_presence(&node));
            let Some(connection) = self.connection.as_mut() else { return Ok(()) };
            let max = usize::MAX.to_string();
            let args = [member.user_id.as_str(), &info, &max, &field, "1"];
            let (new, _): (i64, Vec<String>) = invoke(connection, &self.scripts.join, &[&pu, &pi, &np], &args)?;
            if new == 1 {
                after.users.push((key, member.user_id));
            }
        }
        for key in self.server.channels("").into_iter().map(|c| c.name) {
            if !self.is_app_channel(&key) {
                continue;
            }
            let (occ, no) = (self.keys.occupied(), self.keys.node_occupancy(&node));
            let Some(connection) = self.connection.as_mut() else { return Ok(()) };
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

    /// A channel of a configured app (not a roster channel): what the
    /// cluster counts.
    fn is_app_channel(&self, key: &str) -> bool {
        audience::split(key)
            .is_some_and(|(app, channel)| self.apps.by_id(app).is_some() && !audience::is_roster(channel))
    }

    fn tell_added(&self, key: &str, member: &PresenceMember, reach: Reach) {
        let Some((app, channel)) = audience::split(key) else { return };
        let added = protocol::member_added(channel, &member.user_id, member.user_info.as_deref());
        self.publish(key, &audience::pusher_only(added), reach);
        if let (Reach::Everywhere, Some(app)) = (reach, self.apps.by_id(app)) {
            let event = WebhookEvent::MemberAdded { channel: channel.to_owned(), user_id: member.user_id.clone() };
            self.webhooks.emit(app, event);
        }
    }

    fn tell_removed(&self, key: &str, user_id: &str, reach: Reach) {
        let Some((app, channel)) = audience::split(key) else { return };
        let removed = protocol::member_removed(channel, user_id);
        self.publish(key, &audience::pusher_only(removed), reach);
        if let (Reach::Everywhere, Some(app)) = (reach, self.apps.by_id(app)) {
            let event = WebhookEvent::MemberRemoved { channel: channel.to_owned(), user_id: user_id.to_owned() };
            self.webhooks.emit(app, event);
        }
    }

    fn publish(&self, key: &str, publication: &crate::channels::Publication, reach: Reach) {
        match reach {
            Reach::Everywhere => {
                let _ = self.server.try_publish(key, publication, None, Some(Duration::from_millis(100)));
            }
            Reach::Elsewhere => self.server.publish_elsewhere(key, publication),
        }
    }

    fn tell_channel(&self, key: &str, occupied: bool) {
        let Some((app, channel)) = audience::split(key) else { return };
        let Some(app) = self.apps.by_id(app) else { return };
        let channel = channel.to_owned();
        let event =
            if occupied { WebhookEvent::ChannelOccupied { channel } } else { WebhookEvent::ChannelVacated { channel } };
        self.webhooks.emit(app, event);
    }
}

/// The members of `infos` (`[user, info, user, info, ...]`, info "" for
/// none), in user id order.
fn snapshot(infos: &[String]) -> PresenceSnapshot {
    let mut members: Vec<PresenceMember> = infos
        .chunks_exact(2)
        .map(|pair| PresenceMember {
            user_id: pair[0].clone(),
            user_info: (!pair[1].is_empty()).then(|| RawValue::from_string(pair[1].clone()).ok()).flatten(),
        })
        .collect();
    members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    PresenceSnapshot::from_members(&members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_from_redis_keeps_each_user_s_info_in_user_order() {
        let infos = ["u2", r#"{"name":"two"}"#, "u1", ""].map(String::from);
        let members = snapshot(&infos);
        assert_eq!(members.ids().collect::<Vec<_>>(), ["u1", "u2"]);
        assert_eq!(members.info("u1").map(|i| i.map(RawValue::get)), Some(None));
        assert_eq!(members.info("u2").flatten().map(RawValue::get), Some(r#"{"name":"two"}"#));
        // What Redis held that is not JSON any more is kept as a member without info.
        assert_eq!(snapshot(&["u3", "{broken"].map(String::from)).info("u3").map(|i| i.is_none()), Some(true));
    }

    #[test]
    fn keys_live_under_the_prefix_and_name_their_node() {
        let keys = Keys { prefix: "fanout".into(), node: "00000000000000ff".into() };
        assert_eq!(keys.users("42:presence-room"), "fanout:pu:42:presence-room");
        assert_eq!(keys.infos("42:presence-room"), "fanout:pi:42:presence-room");
        assert_eq!(keys.node_presence(&keys.node), "fanout:np:00000000000000ff");
        assert_eq!(keys.node_occupancy("ab"), "fanout:no:ab");
        assert_eq!(
            (keys.occupied(), keys.nodes(), keys.alive("ab")),
            ("fanout:occ".into(), "fanout:nodes".into(), "fanout:alive:ab".into())
        );
    }
}
