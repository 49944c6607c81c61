//! A container's networks at each start and at each exit (every start allocates, every exit
//! releases; the monitor's restarts included).
//!
//! Start, on bridge networks (the default `bridge` or user networks; every network of the
//! record, in interface order `eth0`, `eth1`, …): each bridge made if needed
//! (`bridge::ensure`), an address on each (`--ip` or the next free one), on the first network
//! one host port per published port (a given one, or one from daemon.json's
//! `published-port-range` narrowed to the policy's `[run] published_ports`) and the DNAT rules
//! (`Firewall::publish`), an endpoint file per network (names the resolver answers to,
//! `--link` aliases on user networks), then `/etc/hosts` (a line per address, legacy `--link`
//! lines) and `/etc/resolv.conf`, the resolver process for a user network, the legacy links'
//! environment, and the runtime's `Network::Bridge` veths (the default route on the first). A
//! failure at any step releases what the earlier ones took: nothing is left half-made.
//! `container:` joins the running container's namespace (`Network::Path`) and mounts its /etc
//! files.
//!
//! Release (`release_network`, from `crate::release`): DNAT rules, host ports, and on every
//! network the address and endpoint — every step idempotent, so it is safe after a crash,
//! twice, or for a container that never started. The veths go with the container's namespace
//! (the kernel removes them, lazily, also after a killed start); only a namespace that
//! `container:` joiners keep alive has its veths deleted here.
//! Must not: enter the container's namespace (the runtime's init configures the interfaces).

use super::alloc::{Ipam, Ports};
use super::endpoint::{self, Endpoint, EndpointV6, LinkAlias, PortRecord};
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
use wharf_types::container::{ContainerRecord, EndpointConfig, NetworkMode};
use wharf_types::error::HasKind;
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
    /// One of a bridge-mode container's networks, by the name its record gives it: by the id
    /// its endpoint settings hold (a network removed and made again under the same name is
    /// another network), else by name; `bridge` is the default network.
    pub(crate) fn network_named(
        &self,
        rec: &ContainerRecord,
        name: &str,
    ) -> Result<NetworkRecord, EngineError> {
        if name == DEFAULT_NETWORK {
            return self.default_network();
        }
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
            Err(NetworkError::NotFound(_)) => Err(ValidationError::NetworkNotFound {
                name: name.to_string(),
            }
            .into()),
            Err(e) => Err(e.into()),
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
        let names = rec.bridge_networks();
        let legacy = self.legacy_links(rec, &names)?;
        let mut nets = Vec::with_capacity(names.len());
        let mut addresses = Vec::with_capacity(names.len());
        let mut resolver_gw = None;
        let mut gateway = None;
        for (i, name) in names.iter().enumerate() {
            let net = self.network_named(rec, name)?;
            let cfg = rec.networking_config.endpoints_config.get(name);
            let links = if net.name == DEFAULT_NETWORK {
                Vec::new()
            } else {
                self.link_aliases(rec)
            };
            let (ep, bn) = self.join_network(rec, &net, cfg, i, i == 0, i == 0, links)?;
            // every family's hosts line, IPv4 first
            addresses.extend(ep.addresses());
            gateway.get_or_insert(net.gateway);
            if net.name != DEFAULT_NETWORK && resolver_gw.is_none() {
                resolver_gw = Some(net.gateway);
            }
            nets.push(bn);
        }
        for e in &legacy.env {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            if !spec
                .process
                .env
                .iter()
                .any(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) == key)
            {
                spec.process.env.push(e.clone());
            }
        }
        self.write_etc_files(rec, paths, &addresses, gateway, resolver_gw, &legacy.hosts)?;
        if let Some(gw) = resolver_gw {
            resolver::ensure_running(&self.opts.root, &self.opts.run_root, gw, self.opts.debug);
        }
        spec.network = rs::Network::Bridge(nets);
        Ok(())
    }

    /// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf for these addresses
    /// (rewritten in place: a running container's bind mounts keep seeing them).
    pub(crate) fn write_etc_files(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
        addresses: &[std::net::IpAddr],
        gateway: Option<std::net::IpAddr>,
        resolver_gw: Option<std::net::IpAddr>,
        links: &[String],
    ) -> Result<(), EngineError> {
        let hc = &rec.host_config;
        let files = EtcFiles {
            network: &hc.network_mode,
            hostname: &rec.config.hostname,
            addresses,
            links,
            // off a bridge (disconnected from all): the default network's, as at create
            host_gateway: gateway.or_else(|| {
                hc.extra_hosts
                    .iter()
                    .any(|h| h.ends_with(wharf_types::netopts::HOST_GATEWAY))
                    .then(|| self.default_network().ok().map(|n| n.gateway))
                    .flatten()
            }),
            resolver: resolver_gw,
            dns: &hc.dns,
            dns_search: &hc.dns_search,
            dns_options: &hc.dns_options,
            extra_hosts: &hc.extra_hosts,
        };
        etcfiles::write_all(&paths.dir, &files).map_err(|e| EngineError::io("write", &paths.dir, e))
    }

    /// The container on one more network: its address (`--ip` or the next free one), with
    /// `publish` its host ports and DNAT rules, its endpoint file (names, aliases, `--link`
    /// aliases), and the runtime's veth for interface `eth<index>` (the default route only
    /// with `default_route`). On failure the address and endpoint taken here are released
    /// (ports and rules are the caller's: `release_network`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join_network(
        &self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        cfg: Option<&EndpointConfig>,
        index: usize,
        default_route: bool,
        publish: bool,
        links: Vec<LinkAlias>,
    ) -> Result<(Endpoint, BridgeNet), EngineError> {
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        let Some(veth) = super::host_veth_name(id, index) else {
            return Err(ValidationError::NetworkTooMany {
                container: rec.name.clone(),
                count: index,
            }
            .into());
        };
        let settings = self.network_settings()?;
        bridge::ensure(run_root, net)?;
        let want = cfg
            .and_then(|e| e.ipam_config.as_ref())
            .filter(|i| !i.ipv4_address.is_empty())
            .map(|i| wharf_types::netopts::parse_ip(&i.ipv4_address))
            .transpose()?;
        let want6 = cfg
            .and_then(|e| e.ipam_config.as_ref())
            .filter(|i| !i.ipv6_address.is_empty())
            .map(|i| wharf_types::netopts::parse_ip6(&i.ipv6_address))
            .transpose()?;
        let ipam = Ipam::new(run_root, &net.id);
        let ip = ipam.allocate(net, id, want)?;
        // dual-stack: the IPv6 address beside it (same allocation files, same release)
        let ip6 = match ipam.allocate6(net, id, want6) {
            Ok(a) => a,
            Err(e) => {
                ipam.release(ip, id);
                return Err(e.into());
            }
        };
        let r = self.endpoint_on(rec, net, cfg, (ip, ip6), index, &veth, publish, links);
        let ep = match r {
            Ok(ep) => ep,
            Err(e) => {
                for a in std::iter::once(ip).chain(ip6) {
                    ipam.release(a, id);
                }
                endpoint::remove(run_root, &net.id, id);
                return Err(e);
            }
        };
        let mac = wharf_types::netopts::parse_mac(&ep.mac).ok();
        let bn = BridgeNet {
            bridge: net.bridge.clone(),
            host_veth: veth,
            ifname: ep.ifname.clone(),
            addresses: std::iter::once((ip, net.subnet.prefix()))
                .chain(ep.ipv6.map(|v| (v.ip, v.prefix)))
                .collect(),
            // the default routes of both families are the first network's
            gateway: default_route.then_some(net.gateway),
            gateway6: ep.ipv6.filter(|_| default_route).map(|v| v.gateway),
            mac,
            mtu: settings.mtu,
            hairpin: true,
        };
        Ok((ep, bn))
    }

    /// Ports and rules (with `primary`), then the endpoint file, for an address taken.
    #[allow(clippy::too_many_arguments)]
    fn endpoint_on(
        &self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        cfg: Option<&EndpointConfig>,
        (ip, ip6): (std::net::IpAddr, Option<std::net::IpAddr>),
        index: usize,
        veth: &str,
        primary: bool,
        links: Vec<LinkAlias>,
    ) -> Result<Endpoint, EngineError> {
        let run_root = &self.opts.run_root;
        let id = rec.id.as_str();
        // host ports: on the first network only (docker publishes on the endpoint that
        // gives the default route), none on an internal network
        let requests = if net.internal || !primary {
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
            if let Some(v6) = requests
                .iter()
                .filter_map(|m| m.host_ip)
                .find(|h| h.is_ipv6() && ip6.is_none())
            {
                // nothing in the kernel would carry IPv6 to an IPv4-only container
                return Err(ValidationError::PublishIpv6 {
                    address: v6.to_string(),
                    network: net.name.clone(),
                }
                .into());
            }
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
                // on every address of a dual-stack container: both families, as docker lists
                if m.host_ip.is_none() && ip6.is_some() {
                    records.push(PortRecord {
                        container: m.container.to_string(),
                        host_ip: "::".to_string(),
                        host_port: hp.port,
                    });
                }
            }
            let taken: Vec<(String, u16)> = records
                .iter()
                .map(|r| (r.container.clone(), r.host_port))
                .collect();
            self.policy_ports(rec, &taken, None)?;
            let mut fw = Firewall::open()?;
            fw.publish(id, ip, &published)?;
            if let Some(ip6) = ip6 {
                fw.publish(id, ip6, &published)?;
            }
        }

        // docker's MAC follows the address; `--mac-address` is the first network's
        let mac = match rec.config.mac_address.as_str() {
            m if !m.is_empty() && index == 0 => Some(wharf_types::netopts::parse_mac(m)?),
            _ => wharf_runtime::net::mac_for(ip),
        };
        let mut aliases: Vec<String> = cfg.map(|e| e.aliases.clone()).unwrap_or_default();
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
            ipv6: ip6.zip(net.ipv6).map(|(ip, v6)| EndpointV6 {
                ip,
                prefix: v6.subnet.prefix(),
                gateway: v6.gateway,
            }),
            // recorded parsed at create (`validate`); the resolver forwards to them
            dns: rec
                .host_config
                .dns
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect(),
            ifname: format!("eth{index}"),
            host_veth: veth.to_string(),
            links,
        };
        endpoint::write(run_root, &ep)
            .map_err(|e| EngineError::io("write endpoint", run_root, e))?;
        Ok(ep)
    }

    /// `--link` on user networks: each alias names its target for this container only
    /// (targets that no longer exist are left out).
    pub(crate) fn link_aliases(&self, rec: &ContainerRecord) -> Vec<LinkAlias> {
        rec.links()
            .into_iter()
            .filter_map(|(target, alias)| {
                let t = self.store.container(&target).ok()?;
                Some(LinkAlias {
                    alias,
                    container_id: t.id.to_string(),
                })
            })
            .collect()
    }

    /// `--link` on the default bridge (docker's legacy links): each target must run and be
    /// on the default network; its hosts line (`ip\talias hostname name`) and docker's
    /// environment variables (`ALIAS_PORT…`, `ALIAS_NAME`, `ALIAS_ENV_…`).
    fn legacy_links(
        &self,
        rec: &ContainerRecord,
        names: &[String],
    ) -> Result<LegacyLinks, EngineError> {
        let mut out = LegacyLinks::default();
        if !names.iter().any(|n| n == DEFAULT_NETWORK) {
            return Ok(out);
        }
        for (target, alias) in rec.links() {
            let info = match self.container(&target) {
                Ok(i) => i,
                Err(e) if e.kind() == wharf_types::error::ErrorKind::NotFound => {
                    return Err(ValidationError::LinkNotFound { name: target }.into())
                }
                Err(e) => return Err(e),
            };
            let t = &info.record;
            let running = matches!(info.state.status(), Status::Running | Status::Paused)
                && info.state.process_alive();
            if !running {
                return Err(ValidationError::LinkNotRunning {
                    target: t.name.clone(),
                    container: rec.name.clone(),
                    alias,
                }
                .into());
            }
            let ep = self
                .store
                .network(DEFAULT_NETWORK)
                .ok()
                .and_then(|n| endpoint::read(&self.opts.run_root, &n.id, t.id.as_str()));
            let Some(ep) = ep else {
                return Err(ValidationError::LinkNotOnDefault {
                    target: t.name.clone(),
                }
                .into());
            };
            let mut line = format!("{}\t{} {}", ep.ip, alias, t.config.hostname);
            if alias != t.name {
                line.push(' ');
                line.push_str(&t.name);
            }
            out.hosts.push(line);
            out.env.extend(link_env(
                &alias,
                &format!("/{}/{alias}", rec.name),
                ep.ip,
                t,
            ));
        }
        Ok(out)
    }

    /// The `/etc/hosts` lines of the container's legacy links as they stand (a target that
    /// stopped meanwhile: none), for a rewrite while it runs.
    pub(crate) fn legacy_link_hosts(&self, rec: &ContainerRecord) -> Vec<String> {
        self.legacy_links(rec, &rec.bridge_networks())
            .map(|l| l.hosts)
            .unwrap_or_default()
    }

    /// Releases what a start of the container took on its networks; idempotent. Every step
    /// is tried; the first error is returned.
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
        let mut veths = vec![host_veth_name(id, 0).unwrap_or_default()];
        for nid in endpoint::networks_with_state(run_root) {
            let ipam = Ipam::new(run_root, &nid);
            match endpoint::read(run_root, &nid, id) {
                Some(ep) => {
                    for ip in ep.addresses() {
                        ipam.release(ip, id);
                    }
                    if !ep.host_veth.is_empty() && !veths.contains(&ep.host_veth) {
                        veths.push(ep.host_veth);
                    }
                }
                None => ipam.release_all(id),
            }
            endpoint::remove(run_root, &nid, id);
        }
        // The veths go with the container's namespace: the kernel removes them once the last
        // process in it is gone (lazily, off this path: deleting them here would wait for
        // their RCU grace periods on every exit). Only when another container joined the
        // namespace do they outlive the container, and are taken out here.
        if self.has_joiners(&rec.id) {
            let r = Socket::open(Family::Route).and_then(|mut s| {
                for v in &veths {
                    link::delete(&mut s, v)?;
                }
                Ok(())
            });
            if let Err(e) = r {
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

    /// A running container's endpoints, in interface order (`eth0` first: the one with the
    /// published ports), for `inspect`, `ps` and `port`; empty when it is on none.
    pub fn container_endpoints(&self, rec: &ContainerRecord) -> Vec<Endpoint> {
        if !rec.host_config.network_mode.is_bridge() {
            return Vec::new();
        }
        endpoint::of_container(&self.opts.run_root, rec.id.as_str())
    }

    /// A running container's first endpoint (address, MAC, published ports).
    pub fn container_endpoint(&self, rec: &ContainerRecord) -> Option<Endpoint> {
        self.container_endpoints(rec).into_iter().next()
    }
}

/// What `--link`s on the default bridge add to a start.
#[derive(Debug, Default)]
struct LegacyLinks {
    /// `/etc/hosts` lines.
    hosts: Vec<String>,
    /// `ALIAS_…` environment variables.
    env: Vec<String>,
}

/// docker's environment variables of a legacy link (`moby/daemon/links`): `ALIAS_PORT` (the
/// lowest exposed port), per port `ALIAS_PORT_<port>_<PROTO>` and its `_ADDR`, `_PORT`,
/// `_PROTO`, `ALIAS_NAME=/<container>/<alias>`, and the target's environment as
/// `ALIAS_ENV_<key>` (but HOME and PATH).
fn link_env(
    alias: &str,
    link_name: &str,
    ip: std::net::IpAddr,
    target: &ContainerRecord,
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports: Vec<PortKey> = target
        .config
        .exposed_ports
        .keys()
        .filter_map(|k| PortKey::parse(k).ok())
        .collect();
    // docker's order: by number, tcp first on a tie
    ports.sort_by_key(|k| (k.port, k.proto.to_string() != "tcp", k.proto.to_string()));
    let mut env = Vec::new();
    if let Some(p) = ports.first() {
        env.push(format!("{prefix}_PORT={}://{ip}:{}", p.proto, p.port));
    }
    for p in &ports {
        let (port, proto) = (p.port, p.proto.to_string());
        let up = proto.to_ascii_uppercase();
        env.push(format!("{prefix}_PORT_{port}_{up}={proto}://{ip}:{port}"));
        env.push(format!("{prefix}_PORT_{port}_{up}_ADDR={ip}"));
        env.push(format!("{prefix}_PORT_{port}_{up}_PORT={port}"));
        env.push(format!("{prefix}_PORT_{port}_{up}_PROTO={proto}"));
    }
    env.push(format!("{prefix}_NAME={link_name}"));
    for e in &target.config.env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k == "HOME" || k == "PATH" {
            continue;
        }
        env.push(format!("{prefix}_ENV_{k}={v}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use wharf_types::container::{ContainerConfig, EmptyObject, HostConfig, NetworkingConfig};

    #[test]
    fn docker_link_environment() {
        let mut config = ContainerConfig {
            env: vec![
                "PATH=/bin".into(),
                "HOME=/root".into(),
                "DB_USER=app".into(),
                "junk".into(),
            ],
            ..Default::default()
        };
        config.exposed_ports = BTreeMap::from([
            ("5432/tcp".to_string(), EmptyObject {}),
            ("53/udp".to_string(), EmptyObject {}),
        ]);
        let t = ContainerRecord {
            id: wharf_types::ContainerId::from_bytes([7; 32]),
            name: "db".into(),
            created: String::new(),
            image: wharf_types::Digest::of(b"x"),
            config,
            host_config: HostConfig::default(),
            networking_config: NetworkingConfig::default(),
        };
        let env = link_env("my-db", "/web/my-db", "172.17.0.3".parse().expect("ip"), &t);
        assert_eq!(
            env,
            [
                "MY_DB_PORT=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.3",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_DB_USER=app",
            ]
        );
    }
}
