//! Network records: `meta/networks/<id>.json`, one file per user-defined or default bridge
//! network, written once (atomic, durable). Names and subnets are reserved under the metadata
//! lock, so two CLIs creating networks at once never get the same name or overlapping subnets.
//! Which addresses are in use is volatile state kept by the engine (a reboot frees them).
//! Must not: decide which host subnets are taken (the engine asks the kernel and passes them).

use crate::error::StoreError;
use crate::lock::Lock;
use crate::util::{fsync_dir, now_rfc3339, random_hex, read_json, write_json_atomic};
use crate::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::net::{first_free, Pool, Subnet};

/// A bridge network as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex.
    pub id: String,
    pub name: String,
    /// `bridge` (the only driver).
    pub driver: String,
    pub created: String,
    /// Host bridge interface (`wharf0` for the default network, `wh-<id12>` otherwise).
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: IpAddr,
    /// Containers get addresses from this part of the subnet (`--ip-range`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// `--internal`: no outbound NAT, no published ports.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `--ipv6`: the network's IPv6 subnet and gateway (docker's `EnableIPv6`); `None`: IPv4
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Config>,
}

/// The IPv6 half of a dual-stack network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Config {
    pub subnet: Subnet,
    pub gateway: IpAddr,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewNetwork {
    pub name: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The host bridge's name; `None` = `wh-<first 12 of the id>`.
    pub bridge: Option<String>,
    /// `--ipv6`: an IPv6 subnet too (`subnet6`, else the first free of the IPv6 `pools`).
    pub ipv6: bool,
    pub subnet6: Option<Subnet>,
    pub gateway6: Option<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("network name {0:?} is reserved")]
    Reserved(String),
    #[error("multiple networks found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {other})")]
    Overlap { subnet: Subnet, other: String },
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreeSubnet,
    #[error("could not find an available, non-overlapping IPv6 address pool to assign to the network: give --subnet with an IPv6 subnet (or IPv6 default-address-pools in daemon.json)")]
    NoFreeSubnet6,
    #[error("no matching subnet for gateway {gateway} (subnet {subnet})")]
    GatewayOutside { gateway: IpAddr, subnet: Subnet },
    #[error("no matching subnet for range {range} (subnet {subnet})")]
    RangeOutside { range: Subnet, subnet: Subnet },
    #[error("subnet {0} is too small for a bridge network (at most /30 for IPv4, /126 for IPv6)")]
    TooSmall(Subnet),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::Exists(_) => ErrorKind::Conflict,
            NetworkError::Overlap { .. } => ErrorKind::Conflict,
            NetworkError::NoFreeSubnet | NetworkError::NoFreeSubnet6 => ErrorKind::Unavailable,
            NetworkError::InvalidName(_)
            | NetworkError::Reserved(_)
            | NetworkError::Ambiguous(_)
            | NetworkError::GatewayOutside { .. }
            | NetworkError::RangeOutside { .. }
            | NetworkError::TooSmall(_) => ErrorKind::InvalidArgument,
            NetworkError::Store(e) => e.kind(),
        }
    }
}

/// docker's network name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, here at most 128 bytes.
pub fn valid_network_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Names docker reserves for its predefined networks (`bridge` is created by the engine).
pub const RESERVED: &[&str] = &["host", "none", "default"];

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Store {
    fn networks_dir(&self) -> PathBuf {
        self.root.join("meta/networks")
    }

    /// Every network, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, NetworkError> {
        let dir = self.networks_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("listing", &dir)(e).into()),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(StoreError::io("listing", &dir))?;
            let name = ent.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !is_hex64(id) {
                continue;
            }
            if let Some(r) = read_json::<NetworkRecord>(&ent.path())? {
                if r.id == id {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by exact name, full id, or unique id prefix (docker's lookup order).
    pub fn network(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&NetworkRecord> =
            if !key.is_empty() && key.len() < 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                all.iter().filter(|n| n.id.starts_with(key)).collect()
            } else {
                Vec::new()
            };
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::NotFound(key.to_string())),
            _ => Err(NetworkError::Ambiguous(key.to_string())),
        }
    }

    /// Creates a network. Without a subnet, the first of `pools` that overlaps neither another
    /// network nor `host_taken` (the host's own routes and addresses) is used; a given subnet
    /// must not overlap another network's. The gateway defaults to the subnet's first address.
    pub fn create_network(
        &self,
        req: &NewNetwork,
        pools: &[Pool],
        host_taken: &[Subnet],
    ) -> Result<NetworkRecord, NetworkError> {
        if !valid_network_name(&req.name) {
            return Err(NetworkError::InvalidName(req.name.clone()));
        }
        if RESERVED.contains(&req.name.as_str()) {
            return Err(NetworkError::Reserved(req.name.clone()));
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let existing = self.networks()?;
        if existing.iter().any(|n| n.name == req.name) {
            return Err(NetworkError::Exists(req.name.clone()));
        }
        // every network's subnets, both families (subnets of different families never overlap)
        let others: Vec<(Subnet, &str)> = existing
            .iter()
            .flat_map(|n| {
                std::iter::once((n.subnet, n.name.as_str()))
                    .chain(n.ipv6.map(|v| (v.subnet, n.name.as_str())))
            })
            .collect();
        let choose = |want: Option<Subnet>, v4: bool| -> Result<Subnet, NetworkError> {
            match want {
                Some(s) => {
                    if let Some((o, name)) = others.iter().find(|(o, _)| o.overlaps(&s)) {
                        return Err(NetworkError::Overlap {
                            subnet: s,
                            other: format!("{o} of network {name}"),
                        });
                    }
                    Ok(s)
                }
                None => {
                    let mut taken: Vec<Subnet> = others.iter().map(|(s, _)| *s).collect();
                    taken.extend_from_slice(host_taken);
                    let pools: Vec<Pool> = pools
                        .iter()
                        .filter(|p| p.base.is_ipv4() == v4)
                        .copied()
                        .collect();
                    first_free(&pools, &taken).ok_or(if v4 {
                        NetworkError::NoFreeSubnet
                    } else {
                        NetworkError::NoFreeSubnet6
                    })
                }
            }
        };
        let gateway_of = |subnet: Subnet, want: Option<IpAddr>| match want {
            Some(g)
                if subnet.contains(g) && Some(g) != subnet.broadcast() && g != subnet.addr() =>
            {
                Ok(g)
            }
            Some(g) => Err(NetworkError::GatewayOutside { gateway: g, subnet }),
            None => subnet.nth(1).ok_or(NetworkError::TooSmall(subnet)),
        };
        let subnet = choose(req.subnet, true)?;
        if subnet.is_ipv4() && subnet.prefix() > 30 {
            return Err(NetworkError::TooSmall(subnet));
        }
        let gateway = gateway_of(subnet, req.gateway)?;
        let ipv6 = if req.ipv6 {
            let subnet = choose(req.subnet6, false)?;
            if subnet.prefix() > 126 {
                return Err(NetworkError::TooSmall(subnet));
            }
            let gateway = gateway_of(subnet, req.gateway6)?;
            Some(Ipv6Config { subnet, gateway })
        } else {
            None
        };
        if let Some(r) = req.ip_range {
            if !(subnet.contains(r.addr()) && r.prefix() >= subnet.prefix()) {
                return Err(NetworkError::RangeOutside { range: r, subnet });
            }
        }
        let id = random_hex()?;
        let bridge = req
            .bridge
            .clone()
            .unwrap_or_else(|| format!("wh-{}", &id[..12]));
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            driver: "bridge".to_string(),
            created: now_rfc3339(),
            bridge,
            subnet,
            gateway,
            ip_range: req.ip_range,
            internal: req.internal,
            labels: req.labels.clone(),
            options: req.options.clone(),
            ipv6,
        };
        let dir = self.networks_dir();
        std::fs::create_dir_all(&dir).map_err(StoreError::io("creating", &dir))?;
        write_json_atomic(&dir.join(format!("{id}.json")), "network", &rec)?;
        Ok(rec)
    }

    /// Removes a network's record (the engine checks it is unused and tears down its bridge
    /// first). A missing record is `NotFound`.
    pub fn remove_network(&self, id: &str) -> Result<(), NetworkError> {
        if !is_hex64(id) {
            return Err(NetworkError::NotFound(id.to_string()));
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let dir = self.networks_dir();
        let path = dir.join(format!("{id}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(fsync_dir(&dir)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(NetworkError::NotFound(id.to_string()))
            }
            Err(e) => Err(StoreError::io("removing", &path)(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_types::net::default_pools;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().expect("tempdir");
        let s = Store::open(d.path()).expect("store");
        (d, s)
    }

    fn new(name: &str) -> NewNetwork {
        NewNetwork {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn create_list_lookup_remove() {
        let (_d, s) = store();
        let pools = default_pools();
        let taken: Vec<Subnet> = vec!["172.17.0.0/16".parse().expect("subnet")];
        let a = s.create_network(&new("app"), &pools, &taken).expect("app");
        assert_eq!(a.subnet.to_string(), "172.18.0.0/16");
        assert_eq!(a.gateway.to_string(), "172.18.0.1");
        assert_eq!(a.bridge, format!("wh-{}", &a.id[..12]));
        let b = s.create_network(&new("db"), &pools, &taken).expect("db");
        assert_eq!(b.subnet.to_string(), "172.19.0.0/16");
        assert_eq!(s.network("app").expect("by name"), a);
        assert_eq!(s.network(&a.id).expect("by id"), a);
        assert_eq!(s.network(&a.id[..10]).expect("by prefix"), a);
        assert!(matches!(s.network("nope"), Err(NetworkError::NotFound(_))));
        assert_eq!(
            s.networks()
                .expect("list")
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            vec!["app", "db"]
        );
        let e = s
            .create_network(&new("app"), &pools, &taken)
            .expect_err("dup");
        assert_eq!(e.to_string(), "network with name app already exists");
        s.remove_network(&a.id).expect("rm");
        assert!(matches!(s.network("app"), Err(NetworkError::NotFound(_))));
        assert!(matches!(
            s.remove_network(&a.id),
            Err(NetworkError::NotFound(_))
        ));
        // the freed subnet is given out again
        let c = s
            .create_network(&new("again"), &pools, &taken)
            .expect("again");
        assert_eq!(c.subnet.to_string(), "172.18.0.0/16");
    }

    #[test]
    fn dual_stack_networks() {
        let (_d, s) = store();
        let mut pools = default_pools();
        let v6 = |n: &str, sub: Option<&str>| NewNetwork {
            ipv6: true,
            subnet6: sub.map(|x| x.parse().expect("subnet")),
            ..new(n)
        };
        // no IPv6 pool and no IPv6 subnet: refused, naming the way out
        let e = s
            .create_network(&v6("a", None), &pools, &[])
            .expect_err("no v6 pool");
        assert!(matches!(e, NetworkError::NoFreeSubnet6), "{e}");
        let a = s
            .create_network(&v6("a", Some("fd10:1::/64")), &pools, &[])
            .expect("a");
        let six = a.ipv6.expect("ipv6");
        assert_eq!(
            (six.subnet.to_string(), six.gateway.to_string()),
            ("fd10:1::/64".into(), "fd10:1::1".into())
        );
        assert!(a.subnet.is_ipv4(), "dual stack: {}", a.subnet);
        let e = s
            .create_network(&v6("b", Some("fd10:1::/48")), &pools, &[])
            .expect_err("overlap");
        assert!(e.to_string().contains("fd10:1::/64 of network a"), "{e}");
        let e = s
            .create_network(
                &NewNetwork {
                    gateway6: Some("fd10:2::1".parse().expect("ip")),
                    ..v6("b", Some("fd10:3::/64"))
                },
                &pools,
                &[],
            )
            .expect_err("gateway outside");
        assert!(matches!(e, NetworkError::GatewayOutside { .. }), "{e}");
        // IPv6 pools: the next free subnet of the pool
        pools.push(Pool {
            base: "fd20::/56".parse().expect("pool"),
            size: 64,
        });
        let taken: Vec<Subnet> = vec!["fd20::/64".parse().expect("host")];
        let b = s.create_network(&v6("b", None), &pools, &taken).expect("b");
        assert_eq!(
            b.ipv6.map(|v| v.subnet.to_string()),
            Some("fd20:0:0:1::/64".into())
        );
        // an IPv4-only network records no IPv6 half
        let c = s.create_network(&new("c"), &pools, &[]).expect("c");
        assert!(c.ipv6.is_none() && c.subnet.is_ipv4());
        let back = s.network("b").expect("read back");
        assert_eq!(back, b);
    }

    #[test]
    fn explicit_subnets_gateways_ranges() {
        let (_d, s) = store();
        let pools = default_pools();
        let mut r = new("x");
        r.subnet = Some("10.5.0.0/16".parse().expect("subnet"));
        r.gateway = Some("10.5.0.254".parse().expect("ip"));
        r.ip_range = Some("10.5.1.0/24".parse().expect("range"));
        let x = s.create_network(&r, &pools, &[]).expect("x");
        assert_eq!(x.gateway.to_string(), "10.5.0.254");
        let mut o = new("y");
        o.subnet = Some("10.5.3.0/24".parse().expect("subnet"));
        let e = s.create_network(&o, &pools, &[]).expect_err("overlap");
        assert!(e.to_string().contains("Pool overlaps"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let mut g = new("g");
        g.subnet = Some("10.6.0.0/24".parse().expect("subnet"));
        g.gateway = Some("10.7.0.1".parse().expect("ip"));
        assert!(matches!(
            s.create_network(&g, &pools, &[]),
            Err(NetworkError::GatewayOutside { .. })
        ));
        g.gateway = Some("10.6.0.255".parse().expect("ip"));
        assert!(
            s.create_network(&g, &pools, &[]).is_err(),
            "broadcast gateway"
        );
        let mut rr = new("r");
        rr.subnet = Some("10.8.0.0/24".parse().expect("subnet"));
        rr.ip_range = Some("10.8.0.0/16".parse().expect("range"));
        assert!(matches!(
            s.create_network(&rr, &pools, &[]),
            Err(NetworkError::RangeOutside { .. })
        ));
        let mut t = new("t");
        t.subnet = Some("10.9.0.0/31".parse().expect("subnet"));
        assert!(matches!(
            s.create_network(&t, &pools, &[]),
            Err(NetworkError::TooSmall(_))
        ));
        for bad in ["", "-x", "a b", "x/y"] {
            assert!(matches!(
                s.create_network(&new(bad), &pools, &[]),
                Err(NetworkError::InvalidName(_))
            ));
        }
        assert!(matches!(
            s.create_network(&new("host"), &pools, &[]),
            Err(NetworkError::Reserved(_))
        ));
        // nothing half-created by the refusals
        assert_eq!(s.networks().expect("list").len(), 1);
    }

    #[test]
    fn parallel_creates_get_distinct_subnets() {
        let (_d, s) = store();
        let s = std::sync::Arc::new(s);
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    s.create_network(&new(&format!("n{i}")), &default_pools(), &[])
                        .expect("create")
                })
            })
            .collect();
        let nets: Vec<NetworkRecord> = hs.into_iter().map(|h| h.join().expect("join")).collect();
        for (i, a) in nets.iter().enumerate() {
            for b in &nets[i + 1..] {
                assert!(!a.subnet.overlaps(&b.subnet), "{} {}", a.subnet, b.subnet);
            }
        }
    }
}
