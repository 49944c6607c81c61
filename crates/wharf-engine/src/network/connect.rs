//! `network connect` and `network disconnect`: a container's membership of bridge networks.
//!
//! The record keeps the list (`NetworkingConfig.EndpointsConfig` per network, and wharf's
//! interface order in `WharfNetworks`), replaced by a compare-and-swap under the store's
//! metadata lock. A stopped container only has its record changed; the next start attaches
//! every network in order (`eth0`, `eth1`, …). A running one is changed live as well:
//! connect takes an address, writes the endpoint (the resolver answers its names there at
//! once) and has the runtime plug a veth whose container end is born in the container's
//! namespace and configured there by a single-threaded helper (`wharf_runtime::net::
//! attach_running`); disconnect deletes the host end (the container's end goes with it), the
//! published ports if they were on that network, the address and the endpoint. /etc/hosts and
//! /etc/resolv.conf are rewritten in place. Nothing is left half-made: a failed connect gives
//! back what it took, a record changed meanwhile undoes the live part.
//!
//! Must not: enter the container's namespace (the runtime's helper does), print.

use super::alloc::{Ipam, Ports};
use super::config::{check_requested_ip, check_requested_ip6};
use super::endpoint::{self, if_index};
use super::firewall::Firewall;
use super::{resolver, DEFAULT_NETWORK, MAX_NETWORKS};
use crate::networks::{Net, NetworkConnectRequest, BRIDGE_DRIVER};
use crate::refusal::ValidationError;
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::{link, Family, Socket};
use wharf_types::container::{
    ContainerRecord, EndpointConfig, EndpointIpamConfig, NetworkMode, NetworkingConfig,
};

/// Whether the container's process runs now (its namespace exists to be changed).
fn live(info: &ContainerInfo) -> bool {
    matches!(info.state.status(), Status::Running | Status::Paused)
        && info.state.pid > 0
        && info.state.process_alive()
}

impl Engine {
    /// The bridge network a connect/disconnect names (`host`/`none` refused as docker does).
    fn membership_network(&self, key: &str) -> Result<NetworkRecord, EngineError> {
        match self.resolve_network(key)? {
            Net::Builtin(b) => {
                Err(ValidationError::NetworkBuiltinConnect { network: b.into() }.into())
            }
            Net::Bridge(n) => Ok(*n),
        }
    }

    /// Where `net` is in the container's list of networks.
    fn position_of(
        &self,
        rec: &ContainerRecord,
        names: &[String],
        net: &NetworkRecord,
    ) -> Option<usize> {
        names.iter().position(|n| {
            let id = rec
                .networking_config
                .endpoints_config
                .get(n)
                .map(|e| e.network_id.as_str())
                .filter(|i| !i.is_empty());
            match id {
                Some(id) => id == net.id,
                None => *n == net.name,
            }
        })
    }

    fn emit_membership(&self, action: &str, net: &NetworkRecord, rec: &ContainerRecord) {
        self.emit(
            "network",
            action,
            &net.id,
            &[
                ("container", rec.id.to_string()),
                ("name", net.name.clone()),
                ("type", BRIDGE_DRIVER.to_string()),
            ],
        );
    }

    /// `network connect [--alias A] [--ip IP] [--ip6 IP6] NET CTR`: docker's checks (the
    /// network is a bridge network, the container is on bridge networks, not already on
    /// this one, aliases, `--ip` and `--ip6` only on user networks, each inside its subnet),
    /// then the record; a running container gets the interface at once (`eth<n>`, the
    /// first free number), with its IPv6 address too on a dual-stack network.
    pub fn connect_network(&self, req: &NetworkConnectRequest) -> Result<(), EngineError> {
        let net = self.membership_network(&req.network)?;
        let info = self.container(&req.container)?;
        let rec = &info.record;
        match &rec.host_config.network_mode {
            NetworkMode::Host | NetworkMode::Container(_) => {
                return Err(ValidationError::NetworkConnectShared.into())
            }
            NetworkMode::None => return Err(ValidationError::NetworkConnectNone.into()),
            NetworkMode::Bridge | NetworkMode::User(_) => {}
        }
        let names = rec.bridge_networks();
        if self.position_of(rec, &names, &net).is_some() {
            return Err(ValidationError::NetworkAlreadyConnected {
                container: rec.name.clone(),
                network: net.name.clone(),
            }
            .into());
        }
        let default = net.name == DEFAULT_NETWORK;
        if default && !req.aliases.is_empty() {
            return Err(ValidationError::NetworkAlias.into());
        }
        let given = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).is_some();
        if default && (given(&req.ipv4) || given(&req.ipv6)) {
            return Err(super::alloc::AllocError::AddressOnDefault.into());
        }
        let mut ipam = EndpointIpamConfig::default();
        if let Some(s) = req.ipv4.as_deref().filter(|s| !s.is_empty()) {
            let ip = wharf_types::netopts::parse_ip(s)?;
            check_requested_ip(&net, ip)?;
            ipam.ipv4_address = ip.to_string();
        }
        if let Some(s) = req.ipv6.as_deref().filter(|s| !s.is_empty()) {
            let ip = wharf_types::netopts::parse_ip6(s)?;
            check_requested_ip6(&net, ip)?;
            ipam.ipv6_address = ip.to_string();
        }
        let ipam_config = (ipam != EndpointIpamConfig::default()).then_some(ipam);
        if names.len() >= MAX_NETWORKS {
            return Err(ValidationError::NetworkTooMany {
                container: rec.name.clone(),
                count: names.len(),
            }
            .into());
        }
        let cfg = EndpointConfig {
            ipam_config,
            aliases: req.aliases.clone(),
            network_id: net.id.clone(),
            mac_address: String::new(),
        };
        let mut new = rec.networking_config.clone();
        new.endpoints_config.insert(net.name.clone(), cfg.clone());
        let mut list = names;
        list.push(net.name.clone());
        new.networks = Some(list);

        if !live(&info) {
            self.swap_networks(rec, &new)?;
            self.emit_membership("connect", &net, rec);
            return Ok(());
        }
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        let existing = self.container_endpoints(rec);
        let index = (0..)
            .find(|i| !existing.iter().any(|e| if_index(&e.ifname) == Some(*i)))
            .unwrap_or(0);
        let links = if default {
            Vec::new()
        } else {
            self.link_aliases(rec)
        };
        // the first bridge network of a container that has none gets the default route
        let (ep, bn) = self.join_network(
            rec,
            &net,
            Some(&cfg),
            index,
            existing.is_empty(),
            false,
            links,
        )?;
        let undo = |ep: &endpoint::Endpoint| {
            if let Ok(mut s) = Socket::open(Family::Route) {
                let _ = link::delete(&mut s, &ep.host_veth);
            }
            let ipam = Ipam::new(run_root, &net.id);
            for ip in ep.addresses() {
                ipam.release(ip, id);
            }
            endpoint::remove(run_root, &net.id, id);
        };
        if let Err(e) = wharf_runtime::net::attach_running(&bn, info.state.pid) {
            undo(&ep);
            return Err(e.into());
        }
        if let Err(e) = self.swap_networks(rec, &new) {
            undo(&ep);
            return Err(e);
        }
        let mut updated = rec.clone();
        updated.networking_config = new;
        self.refresh_etc_files(&updated)?;
        if !default {
            resolver::ensure_running(&self.opts.root, run_root, net.gateway, self.opts.debug);
        }
        self.emit_membership("connect", &net, rec);
        Ok(())
    }

    /// `network disconnect [-f] NET CTR`: the record loses the network; a running container
    /// loses its interface there (and its published ports, when they were on it), its
    /// address and its endpoint. Disconnecting the last network is allowed: the container
    /// keeps `lo` only. `force` also clears what a container that is not (or no longer)
    /// recorded on the network still holds there.
    pub fn disconnect_network(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<(), EngineError> {
        let net = self.membership_network(network)?;
        let info = self.container(container)?;
        let rec = &info.record;
        let names = rec.bridge_networks();
        let Some(pos) = self.position_of(rec, &names, &net) else {
            if force && endpoint::read(&self.opts.run_root, &net.id, rec.id.as_str()).is_some() {
                self.leave_live(rec, &net)?;
                self.refresh_etc_files(rec)?;
                return Ok(());
            }
            return Err(ValidationError::NetworkNotConnected {
                id: rec.id.to_string(),
                network: net.name.clone(),
            }
            .into());
        };
        let mut new = rec.networking_config.clone();
        let mut list = names;
        let name = list.remove(pos);
        new.endpoints_config.remove(&name);
        new.networks = Some(list);
        self.swap_networks(rec, &new)?;
        if live(&info) {
            self.leave_live(rec, &net)?;
            let mut updated = rec.clone();
            updated.networking_config = new;
            self.refresh_etc_files(&updated)?;
        }
        self.emit_membership("disconnect", &net, rec);
        Ok(())
    }

    /// Replaces the record's networks if nobody changed them since `rec` was read.
    fn swap_networks(
        &self,
        rec: &ContainerRecord,
        new: &NetworkingConfig,
    ) -> Result<(), EngineError> {
        if self
            .store
            .set_container_networks(&rec.id, &rec.networking_config, new)?
        {
            Ok(())
        } else {
            Err(ValidationError::NetworkRecordChanged {
                container: rec.name.clone(),
            }
            .into())
        }
    }

    /// A running container off one network: its interface (deleting the host end takes the
    /// container's end with it), its published ports if they were on it, address, endpoint.
    fn leave_live(&self, rec: &ContainerRecord, net: &NetworkRecord) -> Result<(), EngineError> {
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        let Some(ep) = endpoint::read(run_root, &net.id, id) else {
            Ipam::new(run_root, &net.id).release_all(id);
            return Ok(());
        };
        let veth = if ep.host_veth.is_empty() {
            super::host_veth_name(id, 0).unwrap_or_default()
        } else {
            ep.host_veth.clone()
        };
        Socket::open(Family::Route)
            .and_then(|mut s| link::delete(&mut s, &veth).map(drop))
            .map_err(|source| EngineError::Link {
                id: id.to_string(),
                source,
            })?;
        if !ep.ports.is_empty() {
            Firewall::open()?.unpublish(id)?;
            Ports::new(run_root).release_all(id);
        }
        let ipam = Ipam::new(run_root, &net.id);
        for ip in ep.addresses() {
            ipam.release(ip, id);
        }
        endpoint::remove(run_root, &net.id, id);
        Ok(())
    }

    /// A running container's /etc/hosts and /etc/resolv.conf after its networks changed:
    /// one hosts line per address, the embedded resolver of its first user network.
    fn refresh_etc_files(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let eps = self.container_endpoints(rec);
        let default_id = self.store.network(DEFAULT_NETWORK).ok().map(|n| n.id);
        let addresses: Vec<std::net::IpAddr> = eps.iter().flat_map(|e| e.addresses()).collect();
        let gateway = eps.first().map(|e| e.gateway);
        let resolver_gw = eps
            .iter()
            .find(|e| Some(&e.network_id) != default_id.as_ref())
            .map(|e| e.gateway);
        let links = self.legacy_link_hosts(rec);
        let paths = self.store.container_paths(&rec.id);
        self.write_etc_files(rec, &paths, &addresses, gateway, resolver_gw, &links)
    }
}
