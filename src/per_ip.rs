//! Limits per client address: open WebSocket connections
//! (`--max-connections-per-ip`) and upgrade attempts per second
//! (`--max-handshakes-per-ip`), both answered 429 before the upgrade.
//!
//! An IPv6 client is counted by its /64, which is what one host or
//! subscriber line gets; an IPv4 client by its address. The address is the
//! socket's peer, or the first `X-Forwarded-For` hop under `--trust-proxy`.
//!
//! One table shared by the workers, split in shards by address so workers
//! rarely meet on a lock; it is touched once per upgrade and once per
//! close, never per message. An address leaves the table once it has no
//! open connection and its handshake allowance is full again, so the table
//! holds only addresses that are connected or were recently active.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

const SHARDS: usize = 16;

/// What the table counts one client by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IpKey(u128);

impl IpKey {
    /// The key of `ip`: an IPv4 address (IPv4-mapped IPv6 included) as is,
    /// an IPv6 address by its /64.
    pub(crate) fn of(ip: IpAddr) -> IpKey {
        // IPv4 as its mapped IPv6 form (::ffff:a.b.c.d): the low 64 bits
        // of an IPv6 key are always zero, so the two never meet.
        let v4 = |v4: std::net::Ipv4Addr| IpKey(0xffff_0000_0000 | u128::from(u32::from(v4)));
        match ip {
            IpAddr::V4(addr) => v4(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(addr) => v4(addr),
                None => IpKey(u128::from(v6) & !((1u128 << 64) - 1)),
            },
        }
    }

    fn shard(self) -> usize {
        // Both halves, so neither IPv4 (low bits) nor /64s (high bits) land in one shard.
        let mixed = (self.0 as u64) ^ ((self.0 >> 64) as u64);
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS
    }
}

/// Why an upgrade is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PerIpRefusal {
    /// The address holds `max_connections_per_ip` connections already.
    Connections,
    /// The address spent its handshake allowance.
    Handshakes,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    open: u32,
    /// Handshakes the address may still start now (fractional: it refills
    /// continuously).
    allowance: f64,
    refilled_ms: u64,
}

/// The shared table and its limits.
pub(crate) struct PerIpLimits {
    max_open: Option<u32>,
    handshakes_per_sec: Option<u32>,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<IpKey, Entry>,
    /// Sweep when the shard grows past this.
    sweep_at: usize,
}

impl PerIpLimits {
    /// A table enforcing the given limits (`None`: no limit of that kind).
    pub(crate) fn new(max_open: Option<u32>, handshakes_per_sec: Option<u32>) -> PerIpLimits {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard { entries: HashMap::new(), sweep_at: 1024 })).collect();
        PerIpLimits { max_open, handshakes_per_sec, shards }
    }

    /// True when either limit is set; otherwise nothing is counted.
    pub(crate) fn enabled(&self) -> bool {
        self.max_open.is_some() || self.handshakes_per_sec.is_some()
    }

    /// Counts an upgrade attempt from `ip` and, if it is allowed, a
    /// connection it opens: pair with [`PerIpLimits::release`] when it
    /// closes (or when the upgrade fails later).
    pub(crate) fn try_open(&self, ip: IpAddr, now_ms: u64) -> Result<IpKey, PerIpRefusal> {
        let key = IpKey::of(ip);
        let mut shard = self.shards[key.shard()].lock();
        let rate = self.handshakes_per_sec;
        let full = rate.map_or(0.0, f64::from);
        let entry = shard.entries.entry(key).or_insert(Entry { open: 0, allowance: full, refilled_ms: now_ms });
        if let Some(rate) = rate {
            let elapsed = now_ms.saturating_sub(entry.refilled_ms) as f64 / 1000.0;
            entry.allowance = (entry.allowance + elapsed * f64::from(rate)).min(full);
            entry.refilled_ms = now_ms;
            if entry.allowance < 1.0 {
                return Err(PerIpRefusal::Handshakes);
            }
            entry.allowance -= 1.0;
        }
        if self.max_open.is_some_and(|max| entry.open >= max) {
            return Err(PerIpRefusal::Connections);
        }
        entry.open += 1;
        if shard.entries.len() >= shard.sweep_at {
            self.sweep(&mut shard, now_ms);
        }
        Ok(key)
    }

    /// A connection counted by [`PerIpLimits::try_open`] is gone.
    pub(crate) fn release(&self, key: IpKey) {
        let mut shard = self.shards[key.shard()].lock();
        if let Some(entry) = shard.entries.get_mut(&key) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && self.handshakes_per_sec.is_none() {
                shard.entries.remove(&key);
            }
        }
    }

    /// Connections open from `ip` (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn open_from(&self, ip: IpAddr) -> u32 {
        let key = IpKey::of(ip);
        self.shards[key.shard()].lock().entries.get(&key).map_or(0, |e| e.open)
    }

    /// Drops addresses with nothing open whose allowance has refilled, and
    /// sets the next sweep at twice what remains, so sweeping costs O(1)
    /// per insert however many addresses come and go.
    fn sweep(&self, shard: &mut Shard, now_ms: u64) {
        let full = self.handshakes_per_sec.map_or(0.0, f64::from);
        let rate = self.handshakes_per_sec.map_or(f64::INFINITY, f64::from);
        shard.entries.retain(|_, e| {
            let refilled = e.allowance + now_ms.saturating_sub(e.refilled_ms) as f64 / 1000.0 * rate;
            e.open > 0 || refilled < full
        });
        shard.sweep_at = (shard.entries.len() * 2).max(1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn connections_are_limited_per_address_and_released_on_close() {
        let limits = PerIpLimits::new(Some(2), None);
        let a = limits.try_open(ip("10.0.0.1"), 0).unwrap();
        limits.try_open(ip("10.0.0.1"), 0).unwrap();
        assert_eq!(limits.try_open(ip("10.0.0.1"), 0), Err(PerIpRefusal::Connections));
        assert!(limits.try_open(ip("10.0.0.2"), 0).is_ok(), "another address has its own count");
        limits.release(a);
        assert_eq!(limits.open_from(ip("10.0.0.1")), 1);
        assert!(limits.try_open(ip("10.0.0.1"), 0).is_ok());
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let limits = PerIpLimits::new(Some(1), None);
        limits.try_open(ip("2001:db8:1:2::1"), 0).unwrap();
        assert!(limits.try_open(ip("2001:db8:1:2::ffff"), 0).is_err(), "same /64");
        assert!(limits.try_open(ip("2001:db8:1:3::1"), 0).is_ok(), "another /64");
        limits.try_open(ip("192.0.2.7"), 0).unwrap();
        assert!(limits.try_open(ip("::ffff:192.0.2.7"), 0).is_err());
        assert_ne!(IpKey::of(ip("0.0.0.1")), IpKey::of(ip("::1")));
    }

    #[test]
    fn handshakes_refill_at_the_rate_in_bursts_of_up_to_the_rate() {
        let limits = PerIpLimits::new(None, Some(4));
        let from = ip("10.0.0.9");
        for _ in 0..4 {
            let key = limits.try_open(from, 1_000).unwrap();
            limits.release(key);
        }
        assert_eq!(limits.try_open(from, 1_000), Err(PerIpRefusal::Handshakes));
        assert_eq!(limits.try_open(from, 1_200), Err(PerIpRefusal::Handshakes), "0.8 of a handshake back");
        assert!(limits.try_open(from, 1_300).is_ok(), "one back after 250 ms");
        assert_eq!(limits.try_open(from, 1_300), Err(PerIpRefusal::Handshakes));
        assert!(limits.try_open(from, 60_000).is_ok(), "refilled, never beyond the burst");
    }

    #[test]
    fn idle_addresses_leave_the_table() {
        let limits = PerIpLimits::new(Some(10), Some(100));
        for n in 0..100_000u32 {
            let key = limits.try_open(IpAddr::from(n.to_be_bytes()), u64::from(n) * 100).unwrap();
            limits.release(key);
        }
        let held: usize = limits.shards.iter().map(|s| s.lock().entries.len()).sum();
        assert!(held <= SHARDS * 1024, "{held} addresses held");
    }
}
