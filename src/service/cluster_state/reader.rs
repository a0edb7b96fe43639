//! What the HTTP API reads of the cluster's presence and occupancy.

/// Reads of the cluster's presence and occupancy, for the API.
pub(crate) struct Reader<'a> {
    pub(super) connection: &'a mut (dyn redis::ConnectionLike + 'static),
    pub(super) prefix: &'a str,
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
