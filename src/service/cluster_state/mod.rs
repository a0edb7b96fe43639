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

//!
//! - `scripts`: the Redis keys and the Lua scripts that change them.
//! - `thread`: the state thread: jobs, heartbeats, forgetting dead nodes,
//!   putting this node's state back.
//! - `reader`: what the API reads.

mod reader;
mod scripts;
mod thread;

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use super::presence::PresenceRegistry;
use super::webhooks::Webhooks;
use crate::cluster::StateLink;
use crate::handle::ServerHandle;
use crate::pusher::{Apps, PresenceMember, PresenceSnapshot};

pub(crate) use reader::Reader;

/// Jobs that may wait for the thread; past it a join is answered from this
/// node's view and a count change is left to the next resync.
const QUEUE: usize = 16 * 1024;

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
        let thread = thread::StateThread::new(link, server, apps, webhooks, presence);
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
