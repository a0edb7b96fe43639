//! The Redis channels a cluster uses, and which Redis instance holds each.
//!
//! Under prefix `p`: `p:ch:{channel}` carries a channel's publications,
//! `p:broadcast` the node-wide broadcasts, and `p:node:{id}` is one node's
//! own channel (its publisher wakes its subscriber through it, and its
//! heartbeats prove both connections alive). A channel that keeps history
//! has its recent events in the stream `p:hx:{channel}` and its epoch and
//! newest offset in the hash `p:hm:{channel}`, on the instance that carries
//! its publications (a script touches both and publishes).

use std::hash::{BuildHasher, Hasher};

/// Redis channel names under one prefix.
///
/// On a Redis Cluster (`tagged`) a fanout channel's name sits in a hash tag
/// (`p:ch:{channel}`, `p:hx:{channel}`, `p:hm:{channel}`), so its shard
/// channel, stream and hash share one slot (the script that touches all
/// three runs on one master) while channels spread over the masters; and
/// the node-wide keys sit under `{p}`, one slot, so the presence scripts
/// that touch several of them run there.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `p:ch:`, what every channel's name starts with.
    channels: String,
    prefix: String,
    tagged: bool,
}

impl Names {
    /// Names under `prefix`: 1-64 letters, digits, `-`, `_`, `.` or `:`.
    pub(crate) fn new(prefix: &str) -> Option<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
        if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(allowed) {
            return None;
        }
        Some(Names { channels: format!("{prefix}:ch:"), prefix: prefix.to_owned(), tagged: false })
    }

    /// These names with hash tags, for a Redis Cluster.
    pub(crate) fn tagged(mut self) -> Self {
        self.tagged = true;
        self
    }

    /// What node-wide keys start with: the prefix, in a hash tag on a
    /// Redis Cluster.
    pub(crate) fn prefix(&self) -> String {
        match self.tagged {
            true => format!("{{{}}}", self.prefix),
            false => self.prefix.clone(),
        }
    }

    /// `start` then the channel's name, in a hash tag on a Redis Cluster.
    fn of(&self, start: &[u8], channel: &str) -> Vec<u8> {
        match self.tagged {
            true => [start, b"{", channel.as_bytes(), b"}"].concat(),
            false => [start, channel.as_bytes()].concat(),
        }
    }

    /// The Redis channel of fanout channel `channel`.
    pub(crate) fn channel(&self, channel: &str) -> Vec<u8> {
        self.of(self.channels.as_bytes(), channel)
    }

    /// The fanout channel a Redis channel name carries, if it is one.
    pub(crate) fn channel_of<'a>(&self, redis_channel: &'a str) -> Option<&'a str> {
        let name = redis_channel.strip_prefix(&self.channels)?;
        match self.tagged {
            true => name.strip_prefix('{')?.strip_suffix('}'),
            false => Some(name),
        }
    }

    /// The stream of channel `channel`'s recent events.
    pub(crate) fn stream(&self, channel: &str) -> Vec<u8> {
        self.of(format!("{}:hx:", self.prefix).as_bytes(), channel)
    }

    /// The hash with channel `channel`'s epoch (`e`) and newest offset (`t`).
    pub(crate) fn stream_top(&self, channel: &str) -> Vec<u8> {
        self.of(format!("{}:hm:", self.prefix).as_bytes(), channel)
    }

    /// The Redis channel of node-wide broadcasts.
    pub(crate) fn broadcast(&self) -> Vec<u8> {
        format!("{}:broadcast", self.prefix).into_bytes()
    }

    /// The key that says node `node` is alive while it exists (it expires
    /// three heartbeats after the node last set it).
    pub(crate) fn alive(&self, node: u64) -> Vec<u8> {
        format!("{}:alive:{node:016x}", self.prefix()).into_bytes()
    }

    /// Node `node`'s own Redis channel.
    pub(crate) fn control(&self, node: u64) -> Vec<u8> {
        format!("{}:node:{node:016x}", self.prefix).into_bytes()
    }
}

/// Which of `shards` Redis instances carries `channel`: FNV-1a of its name,
/// the same on every node and every build.
pub(crate) fn shard_of(channel: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let hash = channel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % shards as u64) as usize
}

/// A node id for this process: random, so a restarted node is a new node.
pub(crate) fn new_node_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}

/// `url` with the password, if any, replaced by `***` (for logs and errors).
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let shown = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{shown}/{path}"),
        None => format!("{scheme}://{shown}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_under_their_prefix_only() {
        let names = Names::new("prod").expect("a prefix");
        let redis = String::from_utf8(names.channel("12345:presence-room")).expect("utf-8");
        assert_eq!(redis, "prod:ch:12345:presence-room");
        assert_eq!(names.channel_of(&redis), Some("12345:presence-room"));
        assert_eq!(names.channel_of("other:ch:12345:x"), None);
        assert_eq!(names.channel_of("prod:broadcast"), None);
        assert_eq!(names.broadcast(), b"prod:broadcast");
        assert_eq!(names.control(255), b"prod:node:00000000000000ff");
        assert_eq!(names.alive(255), b"prod:alive:00000000000000ff");
        assert!(Names::new("").is_none() && Names::new("a b").is_none() && Names::new(&"x".repeat(65)).is_none());
    }

    #[test]
    fn on_a_redis_cluster_a_channel_s_names_share_a_hash_tag_and_node_keys_share_the_prefix_s() {
        let names = Names::new("prod").expect("a prefix").tagged();
        let redis = String::from_utf8(names.channel("1:room")).expect("utf-8");
        assert_eq!(redis, "prod:ch:{1:room}");
        assert_eq!(names.channel_of(&redis), Some("1:room"));
        assert_eq!(names.stream("1:room"), b"prod:hx:{1:room}");
        assert_eq!(names.stream_top("1:room"), b"prod:hm:{1:room}");
        assert_eq!((names.prefix().as_str(), &names.alive(1)[..]), ("{prod}", &b"{prod}:alive:0000000000000001"[..]));
        assert_eq!(names.channel_of("prod:ch:1:room"), None);
    }

    #[test]
    fn channels_spread_over_instances_the_same_way_everywhere() {
        assert_eq!(shard_of("anything", 1), 0);
        // FNV-1a is fixed: these must never change, or nodes of different
        // builds would disagree.
        assert_eq!(shard_of("a", 2), (0xaf63_dc4c_8601_ec8cu64 % 2) as usize);
        let spread: std::collections::HashSet<usize> = (0..64).map(|n| shard_of(&format!("room-{n}"), 4)).collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn passwords_never_reach_a_log() {
        assert_eq!(hide_password("redis://:hunter2@db:6379/2"), "redis://:***@db:6379/2");
        assert_eq!(hide_password("rediss://app:hunter2@db"), "rediss://app:***@db");
        assert_eq!(hide_password("redis://db:6379"), "redis://db:6379");
        assert_eq!(hide_password("redis://tok@db"), "redis://***@db");
    }

    #[test]
    fn node_ids_differ() {
        assert_ne!(new_node_id(), new_node_id());
    }
}
