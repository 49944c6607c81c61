//! Bridge networking in the engine: which addresses and host ports a container gets
//! (`alloc`), the host side of a network (`bridge`: the interface, forwarding, and the
//! `firewall` rules — nftables, or legacy `iptables` on kernels without nf_tables), where a
//! running container sits on a network (`endpoint`), and the embedded DNS resolver of user
//! networks (`dns` for the messages, `resolver` for the one process serving them). The
//! runtime only plugs the veth (`wharf_runtime::net`).

pub mod alloc;
pub mod attach;
pub mod bridge;
pub mod coexist;
pub(crate) mod config;
pub mod dns;
pub mod endpoint;
pub mod firewall;
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

/// The host end of a container's veth: `wv` and the first 12 hex digits of its id (14
/// bytes: within IFNAMSIZ). The one namer: the start names it so (`attach`), the release and
/// reconciliation find it from the id alone by that name, also after a crash.
pub fn host_veth_name(container_id: &str) -> String {
    format!("wv{}", container_id.get(..12).unwrap_or(container_id))
}

/// The container-id prefix of a host veth named by [`host_veth_name`].
pub fn host_veth_owner(ifname: &str) -> Option<&str> {
    let p = ifname.strip_prefix("wv")?;
    (p.len() == 12
        && p.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(p)
}

/// The subnets of the host's own addresses (a new network must overlap none of them: a
/// bridge on the host's LAN subnet would cut the host off). Empty when netlink fails.
pub fn host_subnets() -> Vec<Subnet> {
    let Ok(mut s) = Socket::open(Family::Route) else {
        return Vec::new();
    };
    link::addresses(&mut s, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, ip, _)| ip.is_ipv4() && !ip.is_loopback())
        .filter_map(|(_, ip, prefix)| Subnet::containing(ip, prefix))
        .collect()
}

impl Engine {
    /// docker's default network `bridge` (`wharf0`), recorded on first use: its subnet is
    /// daemon.json's `bip`, else the first of the address pools that overlaps neither another
    /// network nor a subnet of the host's own addresses (so it never lands on `docker0`'s).
    pub fn default_network(&self) -> Result<NetworkRecord, EngineError> {
        match self.store.network(DEFAULT_NETWORK) {
            Ok(n) => return Ok(n),
            Err(NetworkError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
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
        let host: Vec<Subnet> = host_subnets()
            .into_iter()
            .filter(|s| settings.bip.is_none_or(|(_, b)| b != *s))
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
    fn host_veth_name_fits_ifnamsiz_and_names_its_owner() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let name = host_veth_name(id);
        assert_eq!(name, "wv0123456789ab");
        assert!(name.len() < 16, "IFNAMSIZ counts the NUL");
        assert_eq!(host_veth_owner(&name), Some(&id[..12]));
        // not one of ours: another prefix, a short or uppercase suffix, docker's veths
        assert_eq!(host_veth_owner("veth0123456"), None);
        assert_eq!(host_veth_owner("wv0123"), None);
        assert_eq!(host_veth_owner("wv0123456789AB"), None);
        assert_eq!(host_veth_owner("docker0"), None);
    }
}
