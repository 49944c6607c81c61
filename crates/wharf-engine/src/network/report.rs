//! What front ends show of a container's network: docker's `NetworkSettings` for `inspect`,
//! and the port list `ps` and `port` render (docker API's `Port`: private port, type, and
//! where it is published). Read from the record and, while the container runs, its endpoint
//! file — nothing is asked of the kernel.

use super::endpoint::Endpoint;
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::Engine;
use serde_json::{json, Value};
use wharf_types::container::NetworkMode;
use wharf_types::ports::PortKey;

/// One port of a running container (docker API's `Port`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortEntry {
    pub private_port: u16,
    /// `tcp`, `udp`, `sctp`.
    pub proto: String,
    /// Where it is published (`0.0.0.0`, port); `None`: exposed only.
    pub public: Option<(String, u16)>,
}

fn running(info: &ContainerInfo) -> bool {
    matches!(
        info.state.status(),
        Status::Running | Status::Paused | Status::Restarting
    )
}

impl Engine {
    /// The endpoint of a container that runs (`None` otherwise or off a bridge).
    fn live_endpoint(&self, info: &ContainerInfo) -> Option<Endpoint> {
        if !running(info) {
            return None;
        }
        self.container_endpoint(&info.record)
    }

    /// A running container's ports: every published one with its host address and port,
    /// and every exposed one that is not published; empty when it does not run (docker's
    /// `ps`). Sorted as docker sorts them.
    pub fn container_ports(&self, info: &ContainerInfo) -> Vec<PortEntry> {
        if !running(info) {
            return Vec::new();
        }
        let ep = self.live_endpoint(info);
        let published = ep.as_ref().map(|e| e.ports.as_slice()).unwrap_or_default();
        let mut out: Vec<PortEntry> = published
            .iter()
            .filter_map(|p| {
                let k = PortKey::parse(&p.container).ok()?;
                Some(PortEntry {
                    private_port: k.port,
                    proto: k.proto.to_string(),
                    public: Some((p.host_ip.clone(), p.host_port)),
                })
            })
            .collect();
        if info.record.host_config.network_mode != NetworkMode::Host {
            for key in info.record.config.exposed_ports.keys() {
                if published.iter().any(|p| p.container == *key) {
                    continue;
                }
                if let Ok(k) = PortKey::parse(key) {
                    out.push(PortEntry {
                        private_port: k.port,
                        proto: k.proto.to_string(),
                        public: None,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (
                a.private_port,
                a.public.as_ref().map(|p| p.1),
                &a.proto,
                &a.public,
            )
                .cmp(&(
                    b.private_port,
                    b.public.as_ref().map(|p| p.1),
                    &b.proto,
                    &b.public,
                ))
        });
        out
    }

    /// docker's `NetworkSettings` of a container: the default bridge's address also in the
    /// top-level (deprecated) fields, every network's endpoint under `Networks`, and `Ports`
    /// (each exposed port with its bindings, `null` when not published) while it runs.
    pub fn network_settings_json(&self, info: &ContainerInfo) -> Value {
        let rec = &info.record;
        let eps = if running(info) {
            self.container_endpoints(rec)
        } else {
            Vec::new()
        };
        let ep = eps.first().cloned();
        let mode = &rec.host_config.network_mode;
        let mut ports = serde_json::Map::new();
        if ep.is_some() || (running(info) && *mode != NetworkMode::Host) {
            for key in rec.config.exposed_ports.keys() {
                ports.insert(key.clone(), Value::Null);
            }
            for p in ep.iter().flat_map(|e| e.ports.iter()) {
                let b = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
                match ports.get_mut(&p.container) {
                    Some(Value::Array(a)) => a.push(b),
                    _ => {
                        ports.insert(p.container.clone(), Value::Array(vec![b]));
                    }
                }
            }
        }
        let v6 = |ep: Option<&Endpoint>| ep.and_then(|e| e.ipv6);
        let endpoint_json = |name: &str, ep: Option<&Endpoint>| {
            let cfg = rec.networking_config.endpoints_config.get(name);
            let ipam = cfg
                .and_then(|c| c.ipam_config.as_ref())
                .map(|i| {
                    let mut m = serde_json::Map::new();
                    if !i.ipv4_address.is_empty() {
                        m.insert("IPv4Address".into(), json!(i.ipv4_address));
                    }
                    if !i.ipv6_address.is_empty() {
                        m.insert("IPv6Address".into(), json!(i.ipv6_address));
                    }
                    Value::Object(m)
                })
                .unwrap_or(Value::Null);
            let aliases = cfg
                .map(|c| c.aliases.clone())
                .filter(|a| !a.is_empty())
                .map(|a| json!(a))
                .unwrap_or(Value::Null);
            let links: Vec<String> = ep
                .map(|e| {
                    e.links
                        .iter()
                        .filter_map(|l| {
                            let t = self.store.container(&l.container_id).ok()?;
                            Some(format!("{}:{}", t.name, l.alias))
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "IPAMConfig": ipam,
                "Links": if links.is_empty() { Value::Null } else { json!(links) },
                "Aliases": aliases,
                "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                "NetworkID": ep
                    .map(|e| e.network_id.clone())
                    .or_else(|| cfg.map(|c| c.network_id.clone()))
                    .unwrap_or_default(),
                "EndpointID": ep
                    .map(|e| crate::networks::endpoint_id(&e.network_id, &e.container_id))
                    .unwrap_or_default(),
                "Gateway": ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
                "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": v6(ep).map(|v| v.gateway.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": v6(ep).map(|v| v.ip.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": v6(ep).map(|v| v.prefix).unwrap_or(0),
                "DriverOpts": null,
                "DNSNames": ep.map(|e| {
                    let mut n = vec![e.name.clone()];
                    let short = e.container_id.get(..12).unwrap_or(&e.container_id);
                    for a in e.aliases.iter().map(String::as_str).chain([short]) {
                        if !n.iter().any(|x| x == a) {
                            n.push(a.to_string());
                        }
                    }
                    json!(n)
                }).unwrap_or(Value::Null),
            })
        };
        let mut networks = serde_json::Map::new();
        match mode {
            NetworkMode::None | NetworkMode::Host => {
                networks.insert(mode.as_docker(), endpoint_json(&mode.as_docker(), None));
            }
            NetworkMode::Bridge | NetworkMode::User(_) => {
                // every network the record lists, with its endpoint while it runs
                for name in rec.bridge_networks() {
                    let nid = rec
                        .networking_config
                        .endpoints_config
                        .get(&name)
                        .map(|c| c.network_id.clone())
                        .filter(|i| !i.is_empty())
                        .or_else(|| self.store.network(&name).ok().map(|n| n.id));
                    let e = eps.iter().find(|e| Some(&e.network_id) == nid.as_ref());
                    networks.insert(name.clone(), endpoint_json(&name, e));
                }
            }
            NetworkMode::Container(_) => {}
        }
        // docker's deprecated top-level fields: the default bridge's endpoint
        let default_id = self
            .store
            .network(super::DEFAULT_NETWORK)
            .ok()
            .map(|n| n.id);
        let top = eps
            .iter()
            .find(|e| Some(&e.network_id) == default_id.as_ref());
        json!({
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": if running(info) && info.state.pid > 0 && *mode != NetworkMode::Host {
                format!("/proc/{}/ns/net", info.state.pid)
            } else {
                String::new()
            },
            "Ports": ports,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": top
                .map(|e| crate::networks::endpoint_id(&e.network_id, &e.container_id))
                .unwrap_or_default(),
            "Gateway": top.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "GlobalIPv6Address": v6(top).map(|v| v.ip.to_string()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": v6(top).map(|v| v.prefix).unwrap_or(0),
            "IPAddress": top.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": top.map(|e| e.prefix).unwrap_or(0),
            "IPv6Gateway": v6(top).map(|v| v.gateway.to_string()).unwrap_or_default(),
            "MacAddress": top.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }
}
