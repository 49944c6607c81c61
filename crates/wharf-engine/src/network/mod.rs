//! Bridge networking in the engine: which addresses and host ports a container gets
//! (`alloc`; host ports claimed host-wide by `hostports`), the host side of a network (`bridge`: the interface, forwarding, and the
//! `firewall` rules — nftables, or legacy `iptables` on kernels without nf_tables), where a
//! running container sits on a network (`endpoint`), and the embedded DNS resolver of user
//! networks (`dns` for the messages, `resolver` for the one process serving them). The
//! runtime only plugs the veth (`wharf_runtime::net`).

pub mod alloc;
pub mod attach;
pub mod bridge;
pub mod coexist;
pub(crate) mod config;
pub mod connect;
pub mod dns;
pub mod endpoint;
pub mod firewall;
pub mod hostports;
mod hostwide;
pub mod iptables;
pub mod reconcile;
pub mod report;
pub mod resolver;

use crate::{Engine, EngineError};
use wharf_store::network::{NetworkError, NetworkRecord, NewNetwork};
use wharf_sys::netlink::{link, Family, Socket};
use wharf_types::net::Subnet;

/// docker's default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The host bridge of the default network (docker's is `docker0`; both can coexist).
pub const DEFAULT_BRIDGE: &str = "wharf0";

/// How many bridge networks a container can be on at once (`eth0` … `eth20`): the host
/// ends of its veths are told apart by one letter after the id (IFNAMSIZ).
pub const MAX_NETWORKS: usize = 21;

/// The host end of a container's veth for its interface `eth<index>`: `wv` and the first 12
/// hex digits of its id (14 bytes), then for `eth1`… a letter `g`…`z` (15 bytes: within
/// IFNAMSIZ). The engine names them so, and reconciliation finds the ones left behind by
/// that name. `None` past [`MAX_NETWORKS`].
pub fn host_veth_name(container_id: &str, index: usize) -> Option<String> {
    let base = format!("wv{}", container_id.get(..12).unwrap_or(container_id));
    match index {
        0 => Some(base),
        i if i < MAX_NETWORKS => Some(format!("{base}{}", char::from(b'f' + i as u8))),
        _ => None,
    }
}

/// The container-id prefix of a host veth named by [`host_veth_name`].
pub fn host_veth_owner(ifname: &str) -> Option<&str> {
    let p = ifname.strip_prefix("wv")?;
    let id = p.get(..12)?;
    let suffix_ok = match p.as_bytes().get(12..) {
        Some([]) => true,
        Some([c]) => (b'g'..=b'z').contains(c),
        _ => false,
    };
    (suffix_ok
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(id)
}

/// The subnets of the host's own addresses, IPv4 and global IPv6 (a new network must
/// overlap none of them: a bridge on the host's LAN subnet would cut the host off). Empty
/// when netlink fails.
pub fn host_subnets() -> Vec<Subnet> {
    let Ok(mut s) = Socket::open(Family::Route) else {
        return Vec::new();
    };
    link::addresses(&mut s, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, ip, _)| !ip.is_loopback())
        .filter(|(_, ip, _)| match ip {
            std::net::IpAddr::V4(_) => true,
            // link-local fe80::/10 is on every interface, each its own link
            std::net::IpAddr::V6(a) => a.segments()[0] & 0xffc0 != 0xfe80,
        })
        .filter_map(|(_, ip, prefix)| Subnet::containing(ip, prefix))
        .collect()
}

impl Engine {
    /// docker's default network `bridge` (`wharf0`), recorded on first use: its subnet is
    /// daemon.json's `bip`, else the first of the address pools that overlaps neither another
    /// network nor a subnet of the host's own addresses (so it never lands on `docker0`'s);
    /// with daemon.json's `ipv6`, also `fixed-cidr-v6` (or an IPv6 pool's subnet). Recorded
    /// once: a later change of these keys does not change an existing default network.
    pub fn default_network(&self) -> Result<NetworkRecord, EngineError> {
        match self.store.network(DEFAULT_NETWORK) {
            Ok(n) if hostwide::registered(&n.id) => return Ok(n),
            // first use this boot (`/run` is per boot): made before a reboot, its subnet may
            // have been taken meanwhile by another store or a host interface
            Ok(n) => return self.default_network_first_use(n),
            Err(NetworkError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.make_default_network()
    }

    /// The default network's first use this boot: registered again; when its subnet is taken
    /// meanwhile and nothing of it is in use yet (no state in the run root), the record is
    /// made anew on a free subnet — the default network has no fixed addresses (`--ip` is for
    /// user networks), so nothing depends on the old one.
    fn default_network_first_use(&self, n: NetworkRecord) -> Result<NetworkRecord, EngineError> {
        let _host = hostwide::lock(&self.opts.run_root)?;
        let unused = !self.opts.run_root.join("networks").join(&n.id).exists();
        if unused && hostwide::subnet_taken(&n) {
            match self.store.remove_network(&n.id) {
                Ok(()) | Err(NetworkError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            drop(_host);
            return self.make_default_network();
        }
        hostwide::register(&self.opts.root, &n);
        Ok(n)
    }

    /// Makes the default network's record, bridge address and rules (under the host-wide
    /// lock: the subnet is chosen against every other store's).
    fn make_default_network(&self) -> Result<NetworkRecord, EngineError> {
        // The subnet is chosen from what the host's interfaces hold, so two stores choosing
        // at once (a second store on the host, parallel tests) would both take the same one:
        // the choice and the address on the bridge happen under one host-wide lock.
        let _host = hostwide::lock(&self.opts.run_root)?;
        // deleted stores' default networks leave the bridge first (their subnets free again)
        hostwide::reclaim();
        match self.store.network(DEFAULT_NETWORK) {
            Ok(n) => return Ok(n),
            Err(NetworkError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let settings = self.network_settings()?;
        let mut req = NewNetwork {
            name: DEFAULT_NETWORK.to_string(),
            bridge: Some(DEFAULT_BRIDGE.to_string()),
            ..Default::default()
        };
        if let Some((gw, subnet)) = settings.bip {
            req.subnet = Some(subnet);
            req.gateway = Some(gw);
        }
        // daemon.json's `ipv6` (docker's: `fixed-cidr-v6` is the IPv6 subnet, its first
        // address the gateway; else the first free IPv6 pool)
        req.ipv6 = settings.ipv6;
        req.subnet6 = settings.fixed_cidr_v6.filter(|_| settings.ipv6);
        // the host's own subnets, and every live store's default network even when its
        // gateway is not on the bridge now (made before this boot, not started since)
        let host: Vec<Subnet> = host_subnets()
            .into_iter()
            .chain(hostwide::live_subnets())
            .filter(|s| settings.bip.is_none_or(|(_, b)| b != *s))
            .filter(|s| req.subnet6 != Some(*s))
            .collect();
        let net = match self.store.create_network(&req, &settings.pools, &host) {
            Ok(n) => n,
            // made meanwhile by another wharf
            Err(NetworkError::Exists(_)) => return Ok(self.store.network(DEFAULT_NETWORK)?),
            Err(e) => return Err(e.into()),
        };
        // the gateway address marks the subnet taken for every other store
        hostwide::register(&self.opts.root, &net);
        bridge::ensure(&self.opts.run_root, &net)?;
        Ok(net)
    }

    /// A network by name, full id or unique id prefix; `bridge` is the default network.
    pub fn network(&self, key: &str) -> Result<NetworkRecord, EngineError> {
        if key == DEFAULT_NETWORK {
            return self.default_network();
        }
        Ok(self.store.network(key)?)
    }

    /// daemon.json's network keys, checked when the engine opened.
    pub fn network_settings(&self) -> Result<crate::daemon::NetworkSettings, EngineError> {
        self.daemon
            .network_settings()
            .map_err(|(key, value, problem)| {
                crate::daemon::ConfigError::Network {
                    path: self.daemon.path.clone().unwrap_or_default(),
                    key,
                    value,
                    problem,
                }
                .into()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(host_veth_name(&id, 0).as_deref(), Some("wv0123456789ab"));
        assert_eq!(host_veth_name(&id, 1).as_deref(), Some("wv0123456789abg"));
        assert_eq!(host_veth_name(&id, 20).as_deref(), Some("wv0123456789abz"));
        assert_eq!(host_veth_name(&id, 21), None);
        for i in 0..MAX_NETWORKS {
            let n = host_veth_name(&id, i).expect("name");
            assert!(n.len() <= 15, "{n}");
            assert_eq!(host_veth_owner(&n), Some("0123456789ab"), "{n}");
        }
        for no in [
            "wv0123456789a",
            "wv0123456789abf",
            "wv0123456789abgg",
            "wv0123456789AB",
        ] {
            assert_eq!(host_veth_owner(no), None, "{no}");
        }
    }
}
