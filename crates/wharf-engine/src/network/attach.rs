//! A container's network at each start and at each exit (every start allocates, every exit
//! releases; the monitor's restarts included).
//!
//! Start, on a bridge network (the default `bridge` or a user network): the bridge made if
//! needed (`bridge::ensure`), an address (`--ip` or the next free one), one host port per
//! published port (a given one, or one from daemon.json's `published-port-range` narrowed to
//! the policy's `[run] published_ports`), the DNAT rules (`Firewall::publish`), the endpoint
//! file (names the resolver answers to), `/etc/hosts` and `/etc/resolv.conf`, the resolver
//! process for a user network, and the runtime's `Network::Bridge` for the veth. A failure at
//! any step releases what the earlier ones took: nothing is left half-made. `container:`
//! joins the running container's namespace (`Network::Path`) and mounts its /etc files.
//!
//! Release (`release_network`, from `crate::release`): DNAT rules, host ports, address,
//! endpoint — every step idempotent, so it is safe after a crash, twice, or for a container
//! that never started. The veth goes with the container's namespace (the kernel removes it,
//! lazily, also after a killed start); only a namespace that `container:` joiners keep alive
//! has its veth deleted here.
//! Must not: enter the container's namespace (the runtime's init configures `eth0`).

use super::alloc::{Ipam, Ports};
use super::endpoint::{self, Endpoint, PortRecord};
use super::firewall::{Firewall, Published};
use super::{bridge, host_veth_name, resolver, DEFAULT_NETWORK};
use crate::etcfiles::{self, EtcFiles};
use crate::refusal::ValidationError;
use crate::state::Status;
use crate::{Engine, EngineError};
use wharf_runtime::spec::{self as rs, BridgeNet, ContainerSpec};
use wharf_store::network::{NetworkError, NetworkRecord};
use wharf_store::ContainerPaths;
use wharf_sys::netlink::{link, Family, Socket};
use wharf_types::container::{ContainerRecord, NetworkMode};
use wharf_types::ports::{PortKey, PortMapping};

/// Marker prefix in a container's run directory: `joined-<id>` joined its network namespace.
const JOINED: &str = "joined-";

/// The ports a start publishes: every `-p` binding, and with `-P` every exposed port that
/// has none (docker's rules).
pub fn port_requests(rec: &ContainerRecord) -> Vec<PortMapping> {
    let hc = &rec.host_config;
    let mut out = Vec::new();
    for (key, bindings) in &hc.port_bindings {
        let Ok(k) = PortKey::parse(key) else { continue };
        for b in bindings {
            if let Some(m) = PortMapping::from_binding(k, b) {
                out.push(m);
            }
        }
    }
    if hc.publish_all_ports {
        for key in rec.config.exposed_ports.keys() {
            if hc.port_bindings.contains_key(key) {
                continue;
            }
            if let Ok(k) = PortKey::parse(key) {
                out.push(PortMapping {
                    container: k,
                    host_ip: None,
                    host_ports: None,
                });
            }
        }
    }
    out
}

impl Engine {
    /// The network record a bridge-mode container is on: the default network, or the user
    /// network its record names (by id: a network removed and made again under the same
    /// name is another network).
    pub(crate) fn network_of(&self, rec: &ContainerRecord) -> Result<NetworkRecord, EngineError> {
        match &rec.host_config.network_mode {
            NetworkMode::User(name) => {
                let by_id = rec
                    .networking_config
                    .endpoints_config
                    .get(name)
                    .map(|e| e.network_id.as_str())
                    .filter(|id| !id.is_empty());
                let found = match by_id {
                    Some(id) => self.store.network(id),
                    None => self.store.network(name),
                };
                match found {
                    Ok(n) => Ok(n),
                    Err(NetworkError::NotFound(_)) => {
                        Err(ValidationError::NetworkNotFound { name: name.clone() }.into())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            _ => self.default_network(),
        }
    }

    /// Sets up the container's network for this start and puts it into `spec`; on failure
    /// nothing it took is left.
    pub(crate) fn attach_network(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
        spec: &mut ContainerSpec,
    ) -> Result<(), EngineError> {
        match &rec.host_config.network_mode {
            NetworkMode::None => spec.network = rs::Network::None,
            NetworkMode::Host => spec.network = rs::Network::Host,
            NetworkMode::Container(target) => self.join_container(rec, target, spec)?,
            NetworkMode::Bridge | NetworkMode::User(_) => {
                let r = self.attach_bridge(rec, paths, spec);
                if r.is_err() {
                    let _ = self.release_network(rec);
                }
                r?;
            }
        }
        Ok(())
    }

    /// `container:<id>`: the running container's network namespace, hostname and /etc files.
    /// A marker in the joined container's run directory (`joined-<id>`) tells its release that
    /// the namespace outlives it: its veth must then be taken out (docker's joiners lose the
    /// network with the container that owns it, and its address is handed out again).
    fn join_container(
        &self,
        rec: &ContainerRecord,
        target: &str,
        spec: &mut ContainerSpec,
    ) -> Result<(), EngineError> {
        let info = self.container(target)?;
        let running = matches!(info.state.status(), Status::Running | Status::Paused)
            && info.state.pid > 0
            && info.state.process_alive();
        if !running {
            return Err(ValidationError::NetworkContainerNotRunning {
                id: info.record.id.to_string(),
            }
            .into());
        }
        let dir = self.run_dir(&info.record.id);
        let marker = dir.join(format!("{JOINED}{}", rec.id));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&marker, b""))
            .map_err(|e| EngineError::io("write", &marker, e))?;
        spec.network = rs::Network::Path(format!("/proc/{}/ns/net", info.state.pid).into());
        spec.hostname = info.record.config.hostname.clone();
        let dir = self.store.container_paths(&info.record.id).dir;
        for m in &mut spec.mounts {
            let file = match m.destination.as_str() {
                "/etc/hosts" => "hosts",
                "/etc/hostname" => "hostname",
                "/etc/resolv.conf" => "resolv.conf",
                _ => continue,
            };
            m.source = dir.join(file);
        }
        Ok(())
    }

    /// The host ports `-P` and `-p CTR` may be given: daemon.json's range narrowed to the
    /// policy's; `Err` with the refusal's message when they do not meet.
    fn port_range(&self) -> Result<(u16, u16), EngineError> {
        let (lo, hi) = self.network_settings()?.port_range;
        let Some((plo, phi)) = self.policy_port_range() else {
            return Ok((lo, hi));
        };
        let (a, b) = (lo.max(plo), hi.min(phi));
        if a > b {
            return Err(EngineError::Invalid(ValidationError::PortRangesDisjoint {
                daemon: format!("{lo}-{hi}"),
                policy: format!("{plo}-{phi}"),
            }));
        }
        Ok((a, b))
    }

    fn attach_bridge(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
        spec: &mut ContainerSpec,
    ) -> Result<(), EngineError> {
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        let net = self.network_of(rec)?;
        let settings = self.network_settings()?;
        bridge::ensure(run_root, &net)?;
        let ep_cfg = rec.networking_config.endpoints_config.get(&net.name);
        let want = ep_cfg
            .and_then(|e| e.ipam_config.as_ref())
            .map(|i| wharf_types::netopts::parse_ip(&i.ipv4_address))
            .transpose()?;
        let ip = Ipam::new(run_root, &net.id).allocate(&net, id, want)?;

        // host ports (none on an internal network: nothing reaches it from outside)
        let requests = if net.internal {
            Vec::new()
        } else {
            port_requests(rec)
        };
        let mut published = Vec::with_capacity(requests.len());
        let mut records = Vec::with_capacity(requests.len());
        if !requests.is_empty() {
            let range = match self.port_range() {
                Ok(r) => r,
                Err(EngineError::Invalid(why)) => {
                    self.policy_ports(rec, &[], Some(why.to_string()))?;
                    return Err(why.into());
                }
                Err(e) => return Err(e),
            };
            let ports = Ports::new(run_root);
            for m in &requests {
                let hp = ports.allocate(m.container.proto, m.host_ip, m.host_ports, range, id)?;
                published.push(Published {
                    host_ip: m.host_ip,
                    host_port: hp.port,
                    proto: m.container.proto,
                    container_port: m.container.port,
                });
                records.push(PortRecord {
                    container: m.container.to_string(),
                    host_ip: m
                        .host_ip
                        .map_or_else(|| "0.0.0.0".to_string(), |i| i.to_string()),
                    host_port: hp.port,
                });
            }
            let taken: Vec<(String, u16)> = records
                .iter()
                .map(|r| (r.container.clone(), r.host_port))
                .collect();
            self.policy_ports(rec, &taken, None)?;
            Firewall::open()?.publish(id, ip, &published)?;
        }

        let mac = match rec.config.mac_address.as_str() {
            "" => wharf_runtime::net::mac_for(ip),
            m => Some(wharf_types::netopts::parse_mac(m)?),
        };
        let mut aliases: Vec<String> = ep_cfg.map(|e| e.aliases.clone()).unwrap_or_default();
        let hostname = rec.config.hostname.clone();
        if !hostname.is_empty()
            && hostname != rec.name
            && hostname != rec.id.short()
            && !aliases.contains(&hostname)
        {
            aliases.push(hostname);
        }
        let ep = Endpoint {
            container_id: id.to_string(),
            name: rec.name.clone(),
            aliases,
            network_id: net.id.clone(),
            ip,
            prefix: net.subnet.prefix(),
            gateway: net.gateway,
            mac: mac
                .map(|m| wharf_types::netopts::format_mac(&m))
                .unwrap_or_default(),
            ports: records,
        };
        endpoint::write(run_root, &ep)
            .map_err(|e| EngineError::io("write endpoint", run_root, e))?;

        let user = net.name != DEFAULT_NETWORK;
        let hc = &rec.host_config;
        let files = EtcFiles {
            network: &hc.network_mode,
            hostname: &rec.config.hostname,
            address: Some(ip),
            host_gateway: Some(net.gateway),
            resolver: user.then_some(net.gateway),
            dns: &hc.dns,
            dns_search: &hc.dns_search,
            dns_options: &hc.dns_options,
            extra_hosts: &hc.extra_hosts,
        };
        etcfiles::write_all(&paths.dir, &files)
            .map_err(|e| EngineError::io("write", &paths.dir, e))?;
        if user {
            resolver::ensure_running(&self.opts.root, run_root, net.gateway, self.opts.debug);
        }
        spec.network = rs::Network::Bridge(BridgeNet {
            bridge: net.bridge.clone(),
            host_veth: host_veth_name(id),
            addresses: vec![(ip, net.subnet.prefix())],
            gateway: Some(net.gateway),
            gateway6: None,
            mac,
            mtu: settings.mtu,
            hairpin: true,
        });
        Ok(())
    }

    /// Releases what a start of the container took on its network; idempotent. Every step is
    /// tried; the first error is returned.
    pub(crate) fn release_network(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        if let NetworkMode::Container(target) = &rec.host_config.network_mode {
            if let Ok(t) = target.parse::<wharf_types::ContainerId>() {
                let marker = self.run_dir(&t).join(format!("{JOINED}{}", rec.id));
                let _ = std::fs::remove_file(marker);
            }
            return Ok(());
        }
        if !rec.host_config.network_mode.is_bridge() {
            return Ok(());
        }
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        let mut first: Result<(), EngineError> = Ok(());
        let ports = Ports::new(run_root);
        let held = ports.allocations().iter().any(|(_, o)| o == id);
        // a start killed between publishing and recording could leave rules without ports
        // only if the record publishes anything
        if held || !port_requests(rec).is_empty() {
            match Firewall::open() {
                Ok(mut fw) => {
                    if let Err(e) = fw.unpublish(id) {
                        first = Err(e.into());
                    }
                }
                Err(e) => first = Err(e.into()),
            }
        }
        ports.release_all(id);
        for nid in endpoint::networks_with_state(run_root) {
            let ipam = Ipam::new(run_root, &nid);
            match endpoint::read(run_root, &nid, id) {
                Some(ep) => ipam.release(ep.ip, id),
                None => ipam.release_all(id),
            }
            endpoint::remove(run_root, &nid, id);
        }
        // The veth goes with the container's namespace: the kernel removes it once the last
        // process in it is gone (lazily, off this path: deleting it here would wait for its
        // RCU grace periods on every exit). Only when another container joined the namespace
        // does it outlive the container, and is taken out here.
        if self.has_joiners(&rec.id) {
            if let Err(e) = Socket::open(Family::Route)
                .and_then(|mut s| link::delete(&mut s, &host_veth_name(id)).map(drop))
            {
                if first.is_ok() {
                    first = Err(EngineError::Link {
                        id: id.to_string(),
                        source: e,
                    });
                }
            }
        }
        first
    }

    /// Whether a container started with `--network container:<id>` joined this one.
    fn has_joiners(&self, id: &wharf_types::ContainerId) -> bool {
        std::fs::read_dir(self.run_dir(id)).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(JOINED))
        })
    }

    /// A running container's place on its bridge network (address, MAC, published ports),
    /// for `inspect`, `ps` and `port`; `None` when it is on none or not running.
    pub fn container_endpoint(&self, rec: &ContainerRecord) -> Option<Endpoint> {
        let run_root = &self.opts.run_root;
        match &rec.host_config.network_mode {
            NetworkMode::Bridge => {
                let net = self.store.network(DEFAULT_NETWORK).ok()?;
                endpoint::read(run_root, &net.id, rec.id.as_str())
            }
            NetworkMode::User(name) => {
                let nid = rec
                    .networking_config
                    .endpoints_config
                    .get(name)
                    .map(|e| e.network_id.clone())
                    .filter(|i| !i.is_empty())
                    .or_else(|| self.store.network(name).ok().map(|n| n.id))?;
                endpoint::read(run_root, &nid, rec.id.as_str())
            }
            _ => None,
        }
    }
}
