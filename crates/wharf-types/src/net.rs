//! IP subnets as networks use them: `172.18.0.0/16`, `fd00::/64`; containment, overlap, the
//! n-th address, and docker's default address pools. Pure.

use crate::error::{ErrorKind, HasKind};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("invalid CIDR address: {0}")]
    Cidr(String),
    #[error("invalid subnet {given}: it should be {canonical} (host bits set)")]
    HostBits { given: String, canonical: String },
}

impl HasKind for SubnetError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// An address prefix: the address has no host bits set (checked when parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn from_bits(v: u128, width: u8) -> IpAddr {
    if width == 32 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let all: u128 = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    if prefix == 0 {
        0
    } else {
        all & !(all >> prefix)
    }
}

impl Subnet {
    /// The subnet of `ip/prefix`, host bits cleared.
    pub fn containing(ip: IpAddr, prefix: u8) -> Option<Subnet> {
        let (v, w) = bits(ip);
        (prefix <= w).then(|| Subnet {
            addr: from_bits(v & mask(prefix, w), w),
            prefix,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn width(&self) -> u8 {
        bits(self.addr).1
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v, w) = bits(ip);
        let (a, aw) = bits(self.addr);
        w == aw && v & mask(self.prefix, w) == a
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        if self.is_ipv4() != other.is_ipv4() {
            return false;
        }
        let p = self.prefix.min(other.prefix);
        let w = self.width();
        let (a, _) = bits(self.addr);
        let (b, _) = bits(other.addr);
        a & mask(p, w) == b & mask(p, w)
    }

    /// The address `n` places into the subnet (`nth(1)` is docker's default gateway), if it
    /// is inside.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (a, w) = bits(self.addr);
        let host_bits = u32::from(w - self.prefix);
        if host_bits < 128 && n >> host_bits != 0 {
            return None;
        }
        Some(from_bits(a | n, w))
    }

    /// Number of addresses (saturating at u128::MAX for a /0 IPv6).
    pub fn size(&self) -> u128 {
        let host_bits = u32::from(self.width() - self.prefix);
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }

    /// Offset of `ip` inside the subnet.
    pub fn offset(&self, ip: IpAddr) -> Option<u128> {
        self.contains(ip).then(|| bits(ip).0 - bits(self.addr).0)
    }

    /// The IPv4 broadcast address (last address); `None` for IPv6.
    pub fn broadcast(&self) -> Option<IpAddr> {
        if !self.is_ipv4() {
            return None;
        }
        self.nth(self.size() - 1)
    }

    /// The `index`-th subnet of length `len` inside this one (`172.17.0.0/12` split by /16).
    pub fn split(&self, len: u8, index: u128) -> Option<Subnet> {
        if len < self.prefix || len > self.width() {
            return None;
        }
        let shift = u32::from(self.width() - len);
        let count_bits = u32::from(len - self.prefix);
        if count_bits < 128 && index >> count_bits != 0 {
            return None;
        }
        let (a, w) = bits(self.addr);
        let off = index.checked_shl(shift)?;
        Some(Subnet {
            addr: from_bits(a | off, w),
            prefix: len,
        })
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    /// `a.b.c.d/n` or `x::/n`; host bits set are an error (docker: "invalid subnet").
    fn from_str(s: &str) -> Result<Subnet, SubnetError> {
        let bad = || SubnetError::Cidr(s.to_string());
        let (ip, p) = s.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let net = Subnet::containing(ip, prefix).ok_or_else(bad)?;
        if net.addr != ip {
            return Err(SubnetError::HostBits {
                given: s.to_string(),
                canonical: net.to_string(),
            });
        }
        Ok(net)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A pool networks take their subnets from: `base` split into subnets of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// docker's default address pools (libnetwork's `ipamutils`): 172.17.0.0/16 … 172.31.0.0/16,
/// then 192.168.0.0/20 … 192.168.240.0/20.
pub fn default_pools() -> Vec<Pool> {
    let p = |s: &str, size| Pool {
        base: s.parse().unwrap_or(Subnet {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 32,
        }),
        size,
    };
    vec![
        p("172.17.0.0/16", 16),
        p("172.18.0.0/15", 16),
        p("172.20.0.0/14", 16),
        p("172.24.0.0/13", 16),
        p("192.168.0.0/16", 20),
    ]
}

/// The first subnet of the pools that overlaps none of `taken`.
pub fn first_free(pools: &[Pool], taken: &[Subnet]) -> Option<Subnet> {
    for pool in pools {
        let count = 1u128
            .checked_shl(u32::from(pool.size.saturating_sub(pool.base.prefix)))
            .unwrap_or(u128::MAX);
        let mut i = 0u128;
        while i < count.min(1 << 16) {
            let s = pool.base.split(pool.size, i)?;
            if !taken.iter().any(|t| t.overlaps(&s)) {
                return Some(s);
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        x.parse().expect(x)
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(s("172.18.0.0/16").to_string(), "172.18.0.0/16");
        assert_eq!(s("fd00:1::/64").to_string(), "fd00:1::/64");
        assert_eq!(
            "172.18.0.1/16"
                .parse::<Subnet>()
                .expect_err("host bits")
                .to_string(),
            "invalid subnet 172.18.0.1/16: it should be 172.18.0.0/16 (host bits set)"
        );
        for bad in [
            "172.18.0.0",
            "172.18.0.0/33",
            "x/16",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "::/129",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic() {
        let n = s("10.1.0.0/24");
        assert_eq!(n.nth(1), Some("10.1.0.1".parse().expect("ip")));
        assert_eq!(n.nth(256), None);
        assert_eq!(n.broadcast(), Some("10.1.0.255".parse().expect("ip")));
        assert_eq!(n.size(), 256);
        assert!(n.contains("10.1.0.77".parse().expect("ip")));
        assert!(!n.contains("10.1.1.0".parse().expect("ip")));
        assert!(!n.contains("::1".parse().expect("ip")));
        assert_eq!(n.offset("10.1.0.9".parse().expect("ip")), Some(9));
        assert!(s("10.0.0.0/8").overlaps(&n));
        assert!(n.overlaps(&s("10.0.0.0/8")));
        assert!(!n.overlaps(&s("10.1.1.0/24")));
        assert!(!n.overlaps(&s("::/0")));
        assert_eq!(s("172.16.0.0/12").split(16, 3), Some(s("172.19.0.0/16")));
        assert_eq!(s("172.16.0.0/12").split(16, 16), None);
        assert_eq!(s("fd00::/64").nth(2), Some("fd00::2".parse().expect("ip")));
        assert_eq!(s("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(s("::/0").size(), u128::MAX);
    }

    #[test]
    fn pools_skip_taken_subnets() {
        let pools = default_pools();
        assert_eq!(first_free(&pools, &[]), Some(s("172.17.0.0/16")));
        let taken = [s("172.17.0.0/16"), s("172.18.5.0/24")];
        assert_eq!(first_free(&pools, &taken), Some(s("172.19.0.0/16")));
        let all172: Vec<Subnet> = vec![s("172.16.0.0/12")];
        assert_eq!(first_free(&pools, &all172), Some(s("192.168.0.0/20")));
        assert_eq!(first_free(&pools, &[s("0.0.0.0/0")]), None);
    }
}
