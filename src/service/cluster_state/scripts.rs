//! The Redis side of cluster state: key names, and the Lua scripts that
//! change them atomically.

use serde_json::value::RawValue;

use crate::pusher::{PresenceMember, PresenceSnapshot};

/// One node's presence in one channel: counts it once per user, refuses a
/// new user past the most, and returns whether the user is new to the
/// cluster and everyone's info.
pub(super) const JOIN: &str = r"
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

/// Redis key names.
pub(super) struct Keys {
    pub(super) prefix: String,
    /// This node's id in hex.
    pub(super) node: String,
}

impl Keys {
    pub(super) fn users(&self, key: &str) -> String {
        format!("{}:pu:{key}", self.prefix)
    }
    pub(super) fn infos(&self, key: &str) -> String {
        format!("{}:pi:{key}", self.prefix)
    }
    pub(super) fn node_presence(&self, node: &str) -> String {
        format!("{}:np:{node}", self.prefix)
    }
    pub(super) fn node_occupancy(&self, node: &str) -> String {
        format!("{}:no:{node}", self.prefix)
    }
    pub(super) fn occupied(&self) -> String {
        format!("{}:occ", self.prefix)
    }
    pub(super) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    pub(super) fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }
}

/// The scripts, hashed once (sent by hash, and whole when Redis lacks them).
pub(super) struct Scripts {
    pub(super) join: redis::Script,
    pub(super) leave: redis::Script,
    pub(super) occupy: redis::Script,
    pub(super) forget: redis::Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            join: redis::Script::new(JOIN),
            leave: redis::Script::new(LEAVE),
            occupy: redis::Script::new(OCCUPY),
            forget: redis::Script::new(FORGET_NODE),
        }
    }
}

/// Runs `script` with `keys` and `args`.
pub(super) fn invoke<T: redis::FromRedisValue>(
    connection: &mut dyn redis::ConnectionLike,
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

/// The members of `infos` (`[user, info, user, info, ...]`, info "" for
/// none), in user id order.
pub(super) fn snapshot(infos: &[String]) -> PresenceSnapshot {
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
