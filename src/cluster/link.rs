//! A command connection to the cluster's Redis: to one instance, or to a
//! Redis Cluster through the `redis` crate's cluster client, which sends
//! each command to the master of its key's slot and follows redirections
//! when slots move. The bridge threads and the state thread use it alike.

use std::time::Duration;

use redis::{Cmd, ConnectionLike, RedisResult, Value};

/// Where commands go.
#[derive(Clone)]
pub(crate) enum Target {
    /// One Redis instance.
    One(redis::Client),
    /// A Redis Cluster, reached through any of its nodes.
    Cluster(redis::cluster::ClusterClient),
}

/// A connection made from a [`Target`].
pub(crate) enum Link {
    One(redis::Connection),
    // Boxed: a connection of either kind lives as long as the thread.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Target {
    /// Connects; reads and writes on the connection then fail after `io`.
    pub(crate) fn connect(&self, io: Duration) -> RedisResult<Link> {
        match self {
            Target::One(client) => {
                let connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                connection.set_read_timeout(Some(io))?;
                connection.set_write_timeout(Some(io))?;
                Ok(Link::One(connection))
            }
            Target::Cluster(client) => {
                let connection = client.get_connection()?;
                connection.set_read_timeout(Some(io))?;
                connection.set_write_timeout(Some(io))?;
                Ok(Link::Cluster(Box::new(connection)))
            }
        }
    }
}

impl Link {
    /// The connection, for single commands and scripts (on a Redis Cluster
    /// a pipeline of these goes to the master of its first key: only for
    /// commands whose keys share a slot).
    pub(crate) fn as_dyn(&mut self) -> &mut (dyn ConnectionLike + 'static) {
        match self {
            Link::One(connection) => connection,
            Link::Cluster(connection) => &mut **connection,
        }
    }

    /// Sends `commands` in one round trip (on a Redis Cluster, one per
    /// master they go to) and gives their replies in order; with `ignore`,
    /// none (an error reply still fails the whole).
    pub(crate) fn pipeline(&mut self, commands: Vec<Cmd>, ignore: bool) -> RedisResult<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Link::One(connection) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command);
                    if ignore {
                        pipe.ignore();
                    }
                }
                if ignore {
                    return pipe.query::<()>(connection).map(|()| Vec::new());
                }
                pipe.query(connection)
            }
            Link::Cluster(connection) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for command in &commands {
                    pipe.add_command(command.clone());
                    if ignore {
                        pipe.ignore();
                    }
                }
                let sent = match ignore {
                    true => pipe.query::<()>(connection).map(|()| Vec::new()),
                    false => pipe.query(connection),
                };
                match sent {
                    Err(e) if redirected(&e).is_some() => {
                        // A slot moved: the crate's pipelines do not follow
                        // that, its single commands do (and learn the new
                        // map). Those redirected never ran, so they are sent
                        // again, once each; a read is sent again whole.
                        let again = match ignore {
                            true => redirected(&e).unwrap_or_default(),
                            false => (0..commands.len()).collect(),
                        };
                        let mut replies = Vec::with_capacity(again.len());
                        for index in again {
                            replies.push(commands[index].query::<Value>(&mut **connection)?);
                        }
                        Ok(if ignore { Vec::new() } else { replies })
                    }
                    other => other,
                }
            }
        }
    }
}

/// The commands of a failed pipeline that Redis sent elsewhere (`MOVED`,
/// `ASK`), when those are all its failures.
fn redirected(error: &redis::RedisError) -> Option<Vec<usize>> {
    let failures = error.clone().into_server_errors()?;
    let redirect = |kind| matches!(kind, Some(redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask));
    let all = !failures.is_empty() && failures.iter().all(|(_, e)| redirect(e.kind()));
    all.then(|| failures.iter().map(|(index, _)| *index).collect())
}
