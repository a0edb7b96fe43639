//! One worker's channels: channel → the local connections subscribed, and
//! connection → its channels, kept exact by join, leave and close.

use std::collections::HashMap;
use std::sync::Arc;

use slab::Slab;

use super::Dialect;

/// One subscribed connection of a channel: its slab key on the worker and
/// the wire form it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) key: u32,
    pub(crate) dialect: Dialect,
}

struct Channel {
    name: Arc<str>,
    members: Vec<Member>,
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The connection is now a member; `first_here` when the channel had
    /// no other member on this worker.
    New { first_here: bool },
    /// It was a member already (its dialect is updated).
    Already,
}

/// A worker's channel index. Removing a member is O(its channels): each
/// membership remembers its position in the channel's member list, which
/// is compacted by swapping the last member in.
#[derive(Default)]
pub(crate) struct ChannelIndex {
    channels: Slab<Channel>,
    by_name: HashMap<Arc<str>, usize>,
    /// Per subscribed connection: (channel slot, position in its members).
    subs: HashMap<u32, Vec<(u32, u32)>>,
}

impl ChannelIndex {
    /// Adds connection `key` to `name`; returns the channel's shared name
    /// (the one allocation every worker structure refers to) with the outcome.
    pub(crate) fn join(&mut self, key: usize, name: &str, dialect: Dialect) -> (Arc<str>, Joined) {
        let key = key as u32;
        let slot = match self.by_name.get(name) {
            Some(&slot) => slot,
            None => {
                let name: Arc<str> = Arc::from(name);
                let slot = self.channels.insert(Channel { name: name.clone(), members: Vec::new() });
                self.by_name.insert(name, slot);
                slot
            }
        };
        let subs = self.subs.entry(key).or_default();
        let channel = &mut self.channels[slot];
        if let Some(&(_, pos)) = subs.iter().find(|(s, _)| *s as usize == slot) {
            channel.members[pos as usize].dialect = dialect;
            return (channel.name.clone(), Joined::Already);
        }
        let first_here = channel.members.is_empty();
        subs.push((slot as u32, channel.members.len() as u32));
        channel.members.push(Member { key, dialect });
        (channel.name.clone(), Joined::New { first_here })
    }

    /// Removes connection `key` from `name`: `None` when it was not a
    /// member, else the channel's name and whether it was the last member
    /// here (the channel is then gone from the index).
    pub(crate) fn leave(&mut self, key: usize, name: &str) -> Option<(Arc<str>, bool)> {
        let slot = *self.by_name.get(name)?;
        let subs = self.subs.get_mut(&(key as u32))?;
        let at = subs.iter().position(|(s, _)| *s as usize == slot)?;
        let (_, pos) = subs.swap_remove(at);
        if subs.is_empty() {
            self.subs.remove(&(key as u32));
        }
        Some(self.remove_member(slot, pos))
    }

    /// Removes connection `key` from every channel (it is closing); returns
    /// each channel's name and whether it was the last member here.
    pub(crate) fn leave_all(&mut self, key: usize) -> Vec<(Arc<str>, bool)> {
        let Some(subs) = self.subs.remove(&(key as u32)) else { return Vec::new() };
        subs.into_iter().map(|(slot, pos)| self.remove_member(slot as usize, pos)).collect()
    }

    fn remove_member(&mut self, slot: usize, pos: u32) -> (Arc<str>, bool) {
        let channel = &mut self.channels[slot];
        channel.members.swap_remove(pos as usize);
        if let Some(moved) = channel.members.get(pos as usize) {
            // The last member took the freed place: point its entry there.
            if let Some(entry) =
                self.subs.get_mut(&moved.key).and_then(|s| s.iter_mut().find(|(s, _)| *s as usize == slot))
            {
                entry.1 = pos;
            }
        }
        if !channel.members.is_empty() {
            return (channel.name.clone(), false);
        }
        let channel = self.channels.remove(slot);
        self.by_name.remove(&channel.name);
        (channel.name, true)
    }

    /// The local members of `name` (empty when it has none here).
    pub(crate) fn members(&self, name: &str) -> &[Member] {
        self.by_name.get(name).map_or(&[], |&slot| &self.channels[slot].members[..])
    }

    /// Channels with at least one member here.
    #[cfg(test)]
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Channels connection `key` is a member of.
    #[cfg(test)]
    pub(crate) fn channels_of(&self, key: usize) -> Vec<Arc<str>> {
        let subs = self.subs.get(&(key as u32)).map_or(&[][..], |s| &s[..]);
        subs.iter().map(|&(slot, _)| self.channels[slot as usize].name.clone()).collect()
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
