//! The network service: `network create|ls|inspect|rm|prune|connect|disconnect` as typed
//! requests with docker's rules and wording. Networks are bridge networks (records in
//! `wharf_store::network`, the host side in `network::bridge`), plus docker's predefined
//! `bridge` (the default network, recorded on first use), `host` and `none` (no record: ids
//! derived from their names, stable across invocations).
//!
//! `create` makes the record, then the bridge and its firewall rules at once (as docker
//! does); a failure there removes the record again. `rm` refuses predefined networks and a
//! network with active endpoints (a container running on it, or starting: an address taken
//! by a live owner), then removes rules, bridge, run-root state and record, in that order, so
//! a crash halfway leaves a record that `rm` can be run on again. `connect`/`disconnect`
//! live in `network::connect`.
//!
//! Must not: parse argv or print; remove anything of a network another container is using;
//! decide which subnets are free (the store does, given the host's subnets and the pools).

use crate::network::alloc::Ipam;
use crate::network::reconcile::Liveness;
use crate::network::{self, bridge, endpoint, DEFAULT_NETWORK};
use crate::refusal::ValidationError;
use crate::volumes::{labels_from_list, LabelFilter};
use crate::{Engine, EngineError};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use wharf_store::network::{NetworkError, NewNetwork};
use wharf_sys::netlink::{link, Family, Socket};
use wharf_types::container::NetworkMode;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::net::Subnet;

pub use wharf_store::network::NetworkRecord;

/// docker's predefined networks without a bridge: the host's stack, and no network at all.
pub const HOST_NETWORK: &str = "host";
pub const NONE_NETWORK: &str = "none";
/// The only driver of user-defined networks.
pub const BRIDGE_DRIVER: &str = "bridge";

/// docker's bridge driver options wharf reads.
const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_MTU: &str = "com.docker.network.driver.mtu";
const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";

/// `network create`: docker's flags, unparsed (the engine parses them, so every error names
/// its flag).
#[derive(Debug, Clone, Default)]
pub struct NetworkCreateRequest {
    pub name: String,
    /// `--driver`; `None` means `bridge`.
    pub driver: Option<String>,
    /// `--subnet` (at most one IPv4 and, with `--ipv6`, one IPv6).
    pub subnets: Vec<String>,
    /// `--gateway`.
    pub gateways: Vec<String>,
    /// `--ip-range`.
    pub ip_ranges: Vec<String>,
    /// `--internal`: no outbound NAT, no published ports.
    pub internal: bool,
    /// `--attachable`: accepted (every wharf network can be joined by `run --network`).
    pub attachable: bool,
    /// `--ipv6`: dual-stack; the IPv6 subnet is `--subnet`'s IPv6 one, else the first free
    /// of daemon.json's IPv6 `default-address-pools`.
    pub ipv6: bool,
    /// `--label KEY[=VALUE]`.
    pub labels: Vec<String>,
    /// `--opt KEY[=VALUE]` (docker's bridge driver options).
    pub options: Vec<String>,
}

/// `network ls`.
#[derive(Debug, Clone, Default)]
pub struct NetworkListRequest {
    /// docker's `--filter`: `name=PART`, `id=PART`, `driver=NAME`, `label=K[=V]`,
    /// `label!=K[=V]`, `type=custom|builtin`, `scope=local`, `dangling=true|false`; values of
    /// one key are alternatives, different keys must all hold.
    pub filters: Vec<String>,
}

/// `network prune`.
#[derive(Debug, Clone, Default)]
pub struct NetworkPruneRequest {
    /// `label=…`, `label!=…`, `until=TIMESTAMP|DURATION`; all must hold.
    pub filters: Vec<String>,
}

/// `network connect`.
#[derive(Debug, Clone, Default)]
pub struct NetworkConnectRequest {
    pub network: String,
    pub container: String,
    /// `--alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4: Option<String>,
    /// `--ip6` (a network with IPv6).
    pub ipv6: Option<String>,
}

/// One line of `network ls` (what its columns and `--format` fields show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub scope: &'static str,
    pub internal: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339; empty for `host` and `none`.
    pub created: String,
    /// docker's predefined networks (`bridge`, `host`, `none`).
    pub builtin: bool,
}

/// A network as a request names it.
pub(crate) enum Net {
    /// A bridge network, the default `bridge` included.
    Bridge(Box<NetworkRecord>),
    /// `host` or `none`.
    Builtin(&'static str),
}

/// The stable id of `host` or `none`.
pub fn builtin_id(name: &str) -> String {
    wharf_types::Digest::of(format!("wharf predefined network {name}").as_bytes())
        .hex()
        .to_string()
}

fn builtin_driver(name: &str) -> &'static str {
    if name == HOST_NETWORK {
        "host"
    } else {
        "null"
    }
}

/// docker's `EndpointID` of a container on a network: stable, derived from both ids.
pub(crate) fn endpoint_id(network_id: &str, container_id: &str) -> String {
    wharf_types::Digest::of(format!("{network_id}/{container_id}").as_bytes())
        .hex()
        .to_string()
}

/// `KEY=VALUE` (or `KEY` for an empty value) of `--opt`, as docker's map options.
fn options_from_list(list: &[String]) -> BTreeMap<String, String> {
    labels_from_list(list)
}

fn parse_subnet(flag: &'static str, v: &str) -> Result<Subnet, EngineError> {
    v.parse::<Subnet>().map_err(|error| {
        ValidationError::NetworkSubnet {
            flag,
            value: v.to_string(),
            error,
        }
        .into()
    })
}

fn at_most_one<T>(flag: &'static str, v: Vec<T>) -> Result<Option<T>, EngineError> {
    if v.len() > 1 {
        return Err(ValidationError::NetworkMultiple {
            flag,
            count: v.len(),
        }
        .into());
    }
    Ok(v.into_iter().next())
}

impl Engine {
    /// A network by name, full id or unique id prefix, the predefined ones included.
    pub(crate) fn resolve_network(&self, key: &str) -> Result<Net, EngineError> {
        match key {
            HOST_NETWORK => return Ok(Net::Builtin(HOST_NETWORK)),
            NONE_NETWORK => return Ok(Net::Builtin(NONE_NETWORK)),
            _ => {}
        }
        match self.network(key) {
            Ok(n) => Ok(Net::Bridge(Box::new(n))),
            Err(EngineError::Network(NetworkError::NotFound(k))) => {
                let hex = !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit());
                for b in [HOST_NETWORK, NONE_NETWORK] {
                    if hex && builtin_id(b).starts_with(key) {
                        return Ok(Net::Builtin(b));
                    }
                }
                Err(NetworkError::NotFound(k).into())
            }
            Err(e) => Err(e),
        }
    }

    /// `network create`: checks every flag, records the network (a subnet from the pools
    /// that overlaps no other network and none of the host's own subnets unless given), then
    /// makes its bridge and firewall rules; if that fails, the record goes again.
    pub fn create_network(&self, req: &NetworkCreateRequest) -> Result<NetworkRecord, EngineError> {
        if let Some(d) = req.driver.as_deref().filter(|d| *d != BRIDGE_DRIVER) {
            return Err(ValidationError::NetworkDriver {
                driver: d.to_string(),
            }
            .into());
        }
        let subnets = req
            .subnets
            .iter()
            .map(|s| parse_subnet("--subnet", s))
            .collect::<Result<Vec<_>, _>>()?;
        let gateways = req
            .gateways
            .iter()
            .map(|g| {
                g.parse::<IpAddr>().map_err(|_| {
                    EngineError::from(ValidationError::NetworkAddress {
                        flag: "--gateway",
                        value: g.clone(),
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ranges = req
            .ip_ranges
            .iter()
            .map(|r| parse_subnet("--ip-range", r))
            .collect::<Result<Vec<_>, _>>()?;
        if subnets.is_empty() && !(gateways.is_empty() && ranges.is_empty()) {
            return Err(ValidationError::NetworkNoSubnet.into());
        }
        if let Some(r) = ranges.iter().find(|r| !r.is_ipv4()) {
            return Err(ValidationError::NetworkIpv6 {
                what: format!("an IPv6 --ip-range ({r})"),
            }
            .into());
        }
        // one subnet per family, each gateway in one of them (docker pairs them the same way)
        let (v4, v6): (Vec<Subnet>, Vec<Subnet>) = subnets.into_iter().partition(|s| s.is_ipv4());
        if let Some(s) = v6.first().filter(|_| !req.ipv6) {
            return Err(ValidationError::NetworkIpv6Off { subnet: *s }.into());
        }
        let subnet = at_most_one("--subnet", v4)?;
        let subnet6 = at_most_one("--subnet", v6)?;
        let (g4, g6): (Vec<IpAddr>, Vec<IpAddr>) = gateways.into_iter().partition(|g| g.is_ipv4());
        let gateway = at_most_one("--gateway", g4)?;
        let gateway6 = at_most_one("--gateway", g6)?;
        for (g, s) in [(gateway, subnet), (gateway6, subnet6)] {
            if let (Some(g), None) = (g, s) {
                return Err(ValidationError::NetworkGatewayUnmatched { gateway: g }.into());
            }
        }
        let ip_range = at_most_one("--ip-range", ranges)?;
        let options = options_from_list(&req.options);
        let bridge = self.check_network_options(&options)?;
        // the host's own subnets, not those of this store's bridges (an overlap with
        // another network is the store's refusal, naming that network)
        let ours: Vec<Subnet> = self.store.networks()?.iter().map(|n| n.subnet).collect();
        let host: Vec<Subnet> = network::host_subnets()
            .into_iter()
            .filter(|h| !ours.contains(h))
            .collect();
        for s in [subnet, subnet6].into_iter().flatten() {
            if let Some(h) = host.iter().find(|h| h.overlaps(&s)) {
                return Err(ValidationError::NetworkHostOverlap {
                    subnet: s,
                    host: *h,
                }
                .into());
            }
        }
        // the default network is recorded first, so a user network never takes its subnet
        self.default_network()?;
        let settings = self.network_settings()?;
        let rec = self
            .store
            .create_network(
                &NewNetwork {
                    name: req.name.clone(),
                    subnet,
                    gateway,
                    ip_range,
                    internal: req.internal,
                    labels: labels_from_list(&req.labels),
                    options,
                    bridge,
                    ipv6: req.ipv6,
                    subnet6,
                    gateway6,
                },
                &settings.pools,
                &host,
            )
            .map_err(|e| -> EngineError {
                let flag = match e {
                    NetworkError::Overlap { .. } | NetworkError::TooSmall(_) => "--subnet",
                    NetworkError::GatewayOutside { .. } => "--gateway",
                    NetworkError::RangeOutside { .. } => "--ip-range",
                    e => return e.into(),
                };
                ValidationError::NetworkFlag { flag, source: e }.into()
            })?;
        if let Err(e) = bridge::ensure(&self.opts.run_root, &rec) {
            let _ = bridge::remove(&self.opts.run_root, &rec);
            let _ = self.store.remove_network(&rec.id);
            return Err(e.into());
        }
        self.emit_network("create", &rec.id, &rec.name);
        Ok(rec)
    }

    /// docker's bridge options: a bridge name (a free interface name no other network
    /// uses), an MTU; the options wharf cannot honour yet are refused rather than ignored.
    /// Returns the bridge name asked for.
    fn check_network_options(
        &self,
        options: &BTreeMap<String, String>,
    ) -> Result<Option<String>, EngineError> {
        let bad = |key: &str, value: &str, reason: &'static str| -> EngineError {
            ValidationError::NetworkOption {
                key: key.to_string(),
                value: value.to_string(),
                reason,
            }
            .into()
        };
        let unsupported = |key: &str, value: &str| -> EngineError {
            ValidationError::NetworkOptionUnsupported {
                key: key.to_string(),
                value: value.to_string(),
            }
            .into()
        };
        for (k, v) in options {
            match k.as_str() {
                OPT_MTU if !v.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m)) => {
                    return Err(bad(k, v, "the MTU must be a number from 68 to 65535"));
                }
                OPT_ICC | OPT_MASQUERADE => match v.as_str() {
                    "true" => {}
                    "false" => return Err(unsupported(k, v)),
                    _ => return Err(bad(k, v, "expected true or false")),
                },
                OPT_HOST_BINDING if v != "0.0.0.0" => return Err(unsupported(k, v)),
                _ => {}
            }
        }
        let Some(name) = options.get(OPT_BRIDGE_NAME) else {
            return Ok(None);
        };
        if link::valid_name(name).is_err() {
            return Err(bad(OPT_BRIDGE_NAME, name, "not a valid interface name"));
        }
        if name == network::DEFAULT_BRIDGE
            || self.store.networks()?.iter().any(|n| n.bridge == *name)
        {
            return Err(bad(
                OPT_BRIDGE_NAME,
                name,
                "another network uses that bridge",
            ));
        }
        let exists = Socket::open(Family::Route)
            .and_then(|mut s| link::get(&mut s, name))
            .map_err(|source| bridge::BridgeError::Link {
                network: name.clone(),
                source,
            })?;
        if exists.is_some() {
            // adopting docker0 (or any interface) would make `network rm` delete it
            return Err(bad(
                OPT_BRIDGE_NAME,
                name,
                "an interface of that name exists on the host",
            ));
        }
        Ok(Some(name.clone()))
    }

    fn emit_network(&self, action: &str, id: &str, name: &str) {
        self.emit(
            "network",
            action,
            id,
            &[
                ("name", name.to_string()),
                ("type", BRIDGE_DRIVER.to_string()),
            ],
        );
    }

    /// Every network, the predefined ones included, by name.
    fn all_networks(&self) -> Result<Vec<NetworkSummary>, EngineError> {
        self.default_network()?;
        let mut out: Vec<NetworkSummary> = self
            .store
            .networks()?
            .into_iter()
            .map(|n| NetworkSummary {
                builtin: n.name == DEFAULT_NETWORK,
                id: n.id,
                name: n.name,
                driver: n.driver,
                scope: "local",
                internal: n.internal,
                ipv6: n.ipv6.is_some(),
                labels: n.labels,
                created: n.created,
            })
            .collect();
        for b in [HOST_NETWORK, NONE_NETWORK] {
            out.push(NetworkSummary {
                id: builtin_id(b),
                name: b.to_string(),
                driver: builtin_driver(b).to_string(),
                scope: "local",
                internal: false,
                ipv6: false,
                labels: BTreeMap::new(),
                created: String::new(),
                builtin: true,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The containers with an endpoint on a bridge network that still hold it (running, or
    /// a start in flight), and whether any live owner holds one of its addresses.
    fn active_endpoints(
        &self,
        net: &NetworkRecord,
        live: &Liveness<'_>,
    ) -> (Vec<endpoint::Endpoint>, bool) {
        let eps: Vec<endpoint::Endpoint> = endpoint::list(&self.opts.run_root, &net.id)
            .into_iter()
            .filter(|e| !live.dead_now(&e.container_id))
            .collect();
        let held = Ipam::new(&self.opts.run_root, &net.id)
            .allocations()
            .iter()
            .any(|(_, o)| !live.dead_now(o));
        (eps, held)
    }

    /// `network ls --filter …`: the networks that pass every filter, by name. Leftovers of
    /// crashed containers and removed networks are reconciled first (best effort).
    pub fn list_networks(
        &self,
        req: &NetworkListRequest,
    ) -> Result<Vec<NetworkSummary>, EngineError> {
        let filter = ListFilter::parse(&req.filters)?;
        let _ = self.reconcile_network();
        let all = self.all_networks()?;
        let dangling = match filter.dangling {
            Some(_) => Some(self.used_network_ids()?),
            None => None,
        };
        Ok(all
            .into_iter()
            .filter(|n| filter.matches(n, dangling.as_ref()))
            .collect())
    }

    /// Ids of the networks some container holds (bridge networks with active endpoints;
    /// `host`/`none` while a container runs with them).
    fn used_network_ids(&self) -> Result<Vec<String>, EngineError> {
        let live = Liveness::new(self)?;
        let mut used = Vec::new();
        for n in self.store.networks()? {
            let (eps, held) = self.active_endpoints(&n, &live);
            if !eps.is_empty() || held {
                used.push(n.id);
            }
        }
        for info in self.containers(false)? {
            match info.record.host_config.network_mode {
                NetworkMode::Host => used.push(builtin_id(HOST_NETWORK)),
                NetworkMode::None => used.push(builtin_id(NONE_NETWORK)),
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        Ok(used)
    }

    /// `network inspect`: docker's object for one network.
    pub fn inspect_network(&self, key: &str) -> Result<Value, EngineError> {
        let live = Liveness::new(self)?;
        match self.resolve_network(key)? {
            Net::Bridge(n) => {
                let (eps, _) = self.active_endpoints(&n, &live);
                let mut containers = Map::new();
                for e in eps {
                    containers.insert(
                        e.container_id.clone(),
                        json!({
                            "Name": e.name,
                            "EndpointID": endpoint_id(&n.id, &e.container_id),
                            "MacAddress": e.mac,
                            "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                            "IPv6Address": e
                                .ipv6
                                .map(|v| format!("{}/{}", v.ip, v.prefix))
                                .unwrap_or_default(),
                        }),
                    );
                }
                let settings = self.network_settings()?;
                Ok(inspect_json(&n, containers, settings.mtu))
            }
            Net::Builtin(b) => {
                let mut containers = Map::new();
                for info in self.containers(false)? {
                    let on = match info.record.host_config.network_mode {
                        NetworkMode::Host => b == HOST_NETWORK,
                        NetworkMode::None => b == NONE_NETWORK,
                        #[allow(unreachable_patterns)]
                        _ => false,
                    };
                    if on {
                        let id = info.record.id.as_str().to_string();
                        containers.insert(
                            id.clone(),
                            json!({
                                "Name": info.record.name,
                                "EndpointID": endpoint_id(&builtin_id(b), &id),
                                "MacAddress": "",
                                "IPv4Address": "",
                                "IPv6Address": "",
                            }),
                        );
                    }
                }
                Ok(json!({
                    "Name": b,
                    "Id": builtin_id(b),
                    "Created": "0001-01-01T00:00:00Z",
                    "Scope": "local",
                    "Driver": builtin_driver(b),
                    "EnableIPv6": false,
                    "IPAM": {"Driver": "default", "Options": null, "Config": []},
                    "Internal": false,
                    "Attachable": false,
                    "Ingress": false,
                    "ConfigFrom": {"Network": ""},
                    "ConfigOnly": false,
                    "Containers": containers,
                    "Options": {},
                    "Labels": {},
                }))
            }
        }
    }

    /// `network rm`: refuses the predefined networks and a network in use; removes its
    /// firewall rules, bridge and run-root state, then its record. Returns the network's
    /// name.
    pub fn remove_network(&self, key: &str) -> Result<String, EngineError> {
        let n = match self.resolve_network(key)? {
            Net::Builtin(b) => {
                return Err(ValidationError::NetworkPredefined { name: b.into() }.into())
            }
            Net::Bridge(n) if n.name == DEFAULT_NETWORK => {
                return Err(ValidationError::NetworkPredefined { name: n.name }.into())
            }
            Net::Bridge(n) => n,
        };
        let live = Liveness::new(self)?;
        self.remove_bridge_network(&n, &live)?;
        Ok(n.name)
    }

    fn remove_bridge_network(
        &self,
        n: &NetworkRecord,
        live: &Liveness<'_>,
    ) -> Result<(), EngineError> {
        let (eps, held) = self.active_endpoints(n, live);
        if !eps.is_empty() || held {
            return Err(ValidationError::NetworkInUse {
                name: n.name.clone(),
                id: n.id.clone(),
            }
            .into());
        }
        bridge::remove(&self.opts.run_root, n)?;
        match self.store.remove_network(&n.id) {
            // removed meanwhile by another `rm`
            Err(NetworkError::NotFound(_)) => return Ok(()),
            r => r?,
        }
        self.emit_network("destroy", &n.id, &n.name);
        Ok(())
    }

    /// `network prune`: removes every user-defined network without active endpoints that
    /// passes the filters; returns their names. A network in use meanwhile stays.
    pub fn prune_networks(&self, req: &NetworkPruneRequest) -> Result<Vec<String>, EngineError> {
        let filters = crate::prune::PruneFilters::parse(&req.filters)?;
        let _ = self.reconcile_network();
        let live = Liveness::new(self)?;
        let mut deleted = Vec::new();
        for n in self.store.networks()? {
            if n.name == DEFAULT_NETWORK || !filters.matches(&n.created, &n.labels) {
                continue;
            }
            match self.remove_bridge_network(&n, &live) {
                Ok(()) => deleted.push(n.name),
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

/// docker's `network inspect` object of a bridge network.
pub fn inspect_json(n: &NetworkRecord, containers: Map<String, Value>, mtu: Option<u32>) -> Value {
    let mut cfg = Map::new();
    cfg.insert("Subnet".into(), json!(n.subnet.to_string()));
    if let Some(r) = n.ip_range {
        cfg.insert("IPRange".into(), json!(r.to_string()));
    }
    cfg.insert("Gateway".into(), json!(n.gateway.to_string()));
    let mut config = vec![Value::Object(cfg)];
    if let Some(v6) = n.ipv6 {
        config.push(json!({"Subnet": v6.subnet.to_string(), "Gateway": v6.gateway.to_string()}));
    }
    let mut options: BTreeMap<String, String> = n.options.clone();
    if n.name == DEFAULT_NETWORK {
        // what docker shows for its default bridge
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            (OPT_ICC, "true"),
            (OPT_MASQUERADE, "true"),
            (OPT_HOST_BINDING, "0.0.0.0"),
            (OPT_BRIDGE_NAME, n.bridge.as_str()),
        ] {
            options.insert(k.to_string(), v.to_string());
        }
        options.insert(OPT_MTU.to_string(), mtu.unwrap_or(1500).to_string());
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6.is_some(),
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// A parsed [`NetworkListRequest`].
#[derive(Default)]
struct ListFilter {
    names: Vec<String>,
    ids: Vec<String>,
    drivers: Vec<String>,
    types: Vec<bool>,
    scopes: Vec<String>,
    dangling: Option<bool>,
    labels: Vec<LabelFilter>,
}

impl ListFilter {
    fn parse(filters: &[String]) -> Result<ListFilter, EngineError> {
        let mut out = ListFilter::default();
        for f in filters {
            if f.starts_with("label=") || f.starts_with("label!=") {
                out.labels.push(LabelFilter::parse(f)?);
                continue;
            }
            let Some((k, v)) = f.split_once('=') else {
                return Err(ValidationError::FilterFormat { filter: f.clone() }.into());
            };
            let bad_value = || -> EngineError {
                ValidationError::FilterValue {
                    name: k.to_string(),
                    value: v.to_string(),
                }
                .into()
            };
            match k {
                "name" => out.names.push(v.to_string()),
                "id" => out.ids.push(v.to_string()),
                "driver" => out.drivers.push(v.to_string()),
                "scope" => out.scopes.push(v.to_string()),
                "type" => out.types.push(match v {
                    "builtin" => true,
                    "custom" => false,
                    _ => return Err(bad_value()),
                }),
                "dangling" => {
                    out.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad_value()),
                    })
                }
                _ => {
                    return Err(ValidationError::FilterName {
                        name: k.to_string(),
                    }
                    .into())
                }
            }
        }
        Ok(out)
    }

    fn matches(&self, n: &NetworkSummary, used: Option<&Vec<String>>) -> bool {
        let any =
            |vs: &[String], f: &dyn Fn(&str) -> bool| vs.is_empty() || vs.iter().any(|v| f(v));
        any(&self.names, &|v| n.name.contains(v))
            && any(&self.ids, &|v| n.id.contains(v))
            && any(&self.drivers, &|v| n.driver == v)
            && any(&self.scopes, &|v| n.scope == v)
            && (self.types.is_empty() || self.types.contains(&n.builtin))
            && self.labels.iter().all(|l| l.matches(&n.labels))
            && match (self.dangling, used) {
                // builtin networks are never dangling (docker)
                (Some(d), Some(u)) => d == (!n.builtin && !u.contains(&n.id)),
                _ => true,
            }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn summary(name: &str, builtin: bool, labels: &[(&str, &str)]) -> NetworkSummary {
        NetworkSummary {
            id: format!("{:0>64}", name.len()),
            name: name.into(),
            driver: if name == "host" { "host" } else { "bridge" }.into(),
            scope: "local",
            internal: false,
            ipv6: false,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created: String::new(),
            builtin,
        }
    }

    #[test]
    fn list_filters() {
        let app = summary("app-net", false, &[("env", "prod")]);
        let host = summary("host", true, &[]);
        let used = vec![app.id.clone()];
        let m = |fs: &[&str], n: &NetworkSummary| {
            let f: Vec<String> = fs.iter().map(|s| s.to_string()).collect();
            ListFilter::parse(&f).unwrap().matches(n, Some(&used))
        };
        assert!(m(&[], &app) && m(&[], &host));
        assert!(m(&["name=app"], &app) && !m(&["name=app"], &host));
        assert!(m(&["name=zzz", "name=net"], &app));
        assert!(m(&["type=custom"], &app) && !m(&["type=custom"], &host));
        assert!(m(&["type=builtin"], &host));
        assert!(m(&["driver=host"], &host) && !m(&["driver=host"], &app));
        assert!(m(&["label=env=prod"], &app) && !m(&["label=env"], &host));
        assert!(m(&["label!=env"], &host));
        assert!(m(&["id=0000"], &app) && !m(&["id=zz"], &app));
        assert!(m(&["scope=local"], &app) && !m(&["scope=swarm"], &app));
        assert!(m(&["dangling=false"], &app) && !m(&["dangling=true"], &app));
        assert!(!m(&["dangling=true"], &host), "builtins are never dangling");
        for (bad, msg) in [
            ("type=weird", "invalid filter 'type=weird'"),
            ("until=1h", "invalid filter 'until'"),
            ("nokey", "bad format of filter (expected name=value): nokey"),
        ] {
            let e = ListFilter::parse(&[bad.to_string()]).err().unwrap();
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn builtin_ids_are_stable_and_distinct() {
        assert_eq!(builtin_id("host"), builtin_id("host"));
        assert_ne!(builtin_id("host"), builtin_id("none"));
        assert_eq!(builtin_id("none").len(), 64);
        assert_eq!(builtin_driver("none"), "null");
        assert_ne!(endpoint_id("a", "b"), endpoint_id("b", "a"));
    }

    #[test]
    fn inspect_shape() {
        let n = NetworkRecord {
            id: "f".repeat(64),
            name: "app".into(),
            driver: "bridge".into(),
            created: "2026-01-01T00:00:00Z".into(),
            bridge: "wh-ffffffffffff".into(),
            subnet: "10.9.0.0/16".parse().unwrap(),
            gateway: "10.9.0.1".parse().unwrap(),
            ip_range: Some("10.9.1.0/24".parse().unwrap()),
            internal: true,
            labels: BTreeMap::from([("a".into(), "b".into())]),
            options: BTreeMap::new(),
            ipv6: None,
        };
        let v = inspect_json(&n, Map::new(), None);
        assert_eq!(v["EnableIPv6"], false);
        assert_eq!(v["IPAM"]["Config"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.9.0.0/16");
        assert_eq!(v["IPAM"]["Config"][0]["IPRange"], "10.9.1.0/24");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.9.0.1");
        assert_eq!(v["Internal"], true);
        assert_eq!(v["Labels"]["a"], "b");
        assert_eq!(v["Options"], json!({}));
        let mut d = n.clone();
        d.name = DEFAULT_NETWORK.into();
        d.bridge = "wharf0".into();
        let v = inspect_json(&d, Map::new(), Some(1400));
        assert_eq!(v["Options"]["com.docker.network.bridge.name"], "wharf0");
        assert_eq!(v["Options"]["com.docker.network.driver.mtu"], "1400");
        // dual stack: docker's EnableIPv6 and both subnets in IPAM.Config
        let mut six = n.clone();
        six.ipv6 = Some(wharf_store::network::Ipv6Config {
            subnet: "fd09::/64".parse().unwrap(),
            gateway: "fd09::1".parse().unwrap(),
        });
        let v = inspect_json(&six, Map::new(), None);
        assert_eq!(v["EnableIPv6"], true);
        assert_eq!(
            v["IPAM"]["Config"][1],
            json!({"Subnet": "fd09::/64", "Gateway": "fd09::1"})
        );
    }
}
