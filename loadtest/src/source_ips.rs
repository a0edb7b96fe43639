//! `--source-ips`: the local addresses client sockets are spread over, so one client can exceed
//! the ~28k ephemeral ports a single (source, destination) address pair allows.

use std::net::{IpAddr, Ipv4Addr};

use thiserror::Error;

/// Why a `--source-ips` value cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SourceIpsError {
    /// A part is not an IPv4 address.
    #[error("bad IPv4 address {0:?} in --source-ips")]
    Address(String),
    /// A range whose end is before its start.
    #[error("empty range {0:?} in --source-ips (the end is before the start)")]
    EmptyRange(String),
    /// More addresses than is sensible; usually a typo such as 127.0.0.1-127.255.0.1.
    #[error("--source-ips lists {0} addresses; at most 65536 are allowed")]
    TooMany(u64),
}

/// An ordered list of source addresses handed out round-robin by global connection index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceIps {
    ips: Vec<Ipv4Addr>,
}

impl SourceIps {
    /// Parses `A-B` ranges and single addresses separated by commas, for example
    /// `127.0.0.1-127.0.0.16` or `127.0.0.1,127.0.0.2,127.0.1.1-127.0.1.4`.
    pub fn parse(text: &str) -> Result<SourceIps, SourceIpsError> {
        let mut ips = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (addr(a)?, addr(b)?),
                None => (addr(part)?, addr(part)?),
            };
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            if hi < lo {
                return Err(SourceIpsError::EmptyRange(part.to_string()));
            }
            let total = ips.len() as u64 + u64::from(hi - lo) + 1;
            if total > 65_536 {
                return Err(SourceIpsError::TooMany(total));
            }
            ips.extend((lo..=hi).map(Ipv4Addr::from));
        }
        if ips.is_empty() {
            return Err(SourceIpsError::Address(text.to_string()));
        }
        Ok(SourceIps { ips })
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// True when no source address is configured (the kernel picks one).
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// The source for global connection `index`: consecutive connections use consecutive
    /// addresses, so every address carries the same share whatever the thread/process split.
    pub fn for_connection(&self, index: u64) -> Option<IpAddr> {
        if self.ips.is_empty() {
            return None;
        }
        Some(IpAddr::V4(self.ips[(index % self.ips.len() as u64) as usize]))
    }
}

fn addr(text: &str) -> Result<Ipv4Addr, SourceIpsError> {
    text.trim().parse().map_err(|_| SourceIpsError::Address(text.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        let s = SourceIps::parse("127.0.0.1-127.0.0.16").unwrap();
        assert_eq!(s.len(), 16);
        let s = SourceIps::parse("127.0.0.1, 127.0.0.9,127.0.0.254-127.0.1.1").unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s.for_connection(5), Some("127.0.1.1".parse().unwrap()));
    }

    #[test]
    fn round_robin_wraps_over_all_addresses() {
        let s = SourceIps::parse("127.0.0.1-127.0.0.3").unwrap();
        let got: Vec<String> = (0..7).map(|i| s.for_connection(i).unwrap().to_string()).collect();
        assert_eq!(got, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
        assert_eq!(SourceIps::default().for_connection(3), None);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(SourceIps::parse("127.0.0.5-127.0.0.1"), Err(SourceIpsError::EmptyRange(_))));
        assert!(matches!(SourceIps::parse("127.0.0.x"), Err(SourceIpsError::Address(_))));
        assert!(matches!(SourceIps::parse(""), Err(SourceIpsError::Address(_))));
        assert!(matches!(SourceIps::parse("10.0.0.0-10.255.0.0"), Err(SourceIpsError::TooMany(_))));
    }
}
