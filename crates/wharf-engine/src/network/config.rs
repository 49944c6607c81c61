//! A container's network as decided at create: which network (the default `bridge`, a user
//! network that must exist, recorded by id; or the container whose namespace is joined,
//! recorded by full id), the endpoint settings (`--ip` inside the network's subnet,
//! `--network-alias`) and, for `container:`, the joined container's hostname (docker's). The
//! user's options were parsed and checked against the mode before (`crate::validate`).
//! Must not: allocate anything (addresses and ports are taken at start, `attach`).

use super::alloc::AllocError;
use super::DEFAULT_NETWORK;
use crate::create::CreateRequest;
use crate::refusal::ValidationError;
use crate::{Engine, EngineError};
use std::net::IpAddr;
use wharf_store::network::{NetworkError, NetworkRecord};
use wharf_types::container::{EndpointConfig, NetworkMode, NetworkingConfig};

/// What the record says about the container's network.
#[derive(Debug, Clone)]
pub(crate) struct CreateNetwork {
    pub mode: NetworkMode,
    pub networking: NetworkingConfig,
    /// `container:`: the joined container's hostname, which becomes this one's.
    pub hostname: Option<String>,
}

/// `--ip` must name an address containers on `net` can have: inside the subnet (and the
/// ip-range when the network has one), not the network, gateway or broadcast address.
pub(crate) fn check_requested_ip(net: &NetworkRecord, ip: IpAddr) -> Result<(), AllocError> {
    let inside = net.subnet.contains(ip)
        && ip != net.gateway
        && ip != net.subnet.addr()
        && Some(ip) != net.subnet.broadcast();
    if inside {
        Ok(())
    } else {
        Err(AllocError::AddressOutside(ip))
    }
}

/// `--ip6` must name an address of `net`'s IPv6 subnet other than its gateway and its
/// subnet-router anycast address; a network without IPv6 has none.
pub(crate) fn check_requested_ip6(net: &NetworkRecord, ip: IpAddr) -> Result<(), EngineError> {
    let Some(v6) = net.ipv6 else {
        return Err(ValidationError::Ip6WithoutIpv6 {
            address: ip.to_string(),
            network: net.name.clone(),
        }
        .into());
    };
    if v6.subnet.contains(ip) && ip != v6.gateway && ip != v6.subnet.addr() {
        Ok(())
    } else {
        Err(AllocError::AddressOutside(ip).into())
    }
}

/// `-p [IPv6]:…` needs a container with an IPv6 address: nothing in the kernel carries IPv6
/// to an IPv4-only container (docker's userland proxy would); refused at create when the
/// network is known (and again at start, `attach`).
fn check_published_families(net: &NetworkRecord, req: &CreateRequest) -> Result<(), EngineError> {
    if net.ipv6.is_some() {
        return Ok(());
    }
    for b in req.host.port_bindings.values().flatten() {
        let ip = b.host_ip.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<IpAddr>().is_ok_and(|i| i.is_ipv6()) {
            return Err(ValidationError::PublishIpv6 {
                address: ip.to_string(),
                network: net.name.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// docker's recorded form of a link: `/<target>:/<container>/<alias>`.
pub(crate) fn link_record(target: &str, container: &str, alias: &str) -> String {
    format!("/{target}:/{container}/{alias}")
}

/// The `--link`s of a record for a container now named `container`.
pub(crate) fn relink(links: &[String], container: &str) -> Vec<String> {
    links
        .iter()
        .map(|l| match l.split_once(':') {
            Some((t, rest)) => link_record(
                t.trim_start_matches('/'),
                container,
                rest.rsplit('/').next().unwrap_or(rest),
            ),
            None => l.clone(),
        })
        .collect()
}

impl Engine {
    /// The request's `--link`s (`/<target>:/<alias>` from `validate`) with each target found
    /// (docker: "could not get container for NAME") and recorded by its name, for a
    /// container named `container`.
    pub(crate) fn links_for_create(
        &self,
        links: &[String],
        container: &str,
    ) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::with_capacity(links.len());
        for l in links {
            let Some((target, rest)) = l.split_once(':') else {
                return Err(ValidationError::LinkFormat { value: l.clone() }.into());
            };
            let target = target.trim_start_matches('/');
            let alias = rest.rsplit('/').next().unwrap_or(rest);
            let t = match self.store.container(target) {
                Ok(t) => t,
                Err(wharf_store::StoreError::ContainerNotFound(_)) => {
                    return Err(ValidationError::LinkNotFound {
                        name: target.to_string(),
                    }
                    .into())
                }
                Err(e) => return Err(e.into()),
            };
            out.push(link_record(&t.name, container, alias));
        }
        Ok(out)
    }

    /// Resolves the request's network mode against what exists now.
    pub(crate) fn network_for_create(
        &self,
        req: &CreateRequest,
    ) -> Result<CreateNetwork, EngineError> {
        let plain = |mode: NetworkMode| CreateNetwork {
            mode,
            networking: NetworkingConfig::default(),
            hostname: None,
        };
        match &req.host.network_mode {
            NetworkMode::None => Ok(plain(NetworkMode::None)),
            NetworkMode::Host => Ok(plain(NetworkMode::Host)),
            NetworkMode::Bridge => {
                // made (its subnet chosen, put on wharf0) by the first start, not by a create:
                // a container that is only created touches nothing on the host
                match self.store.network(DEFAULT_NETWORK) {
                    Ok(net) => {
                        check_published_families(&net, req)?;
                        Ok(self.on_network(NetworkMode::Bridge, &net, req))
                    }
                    Err(NetworkError::NotFound(_)) => Ok(plain(NetworkMode::Bridge)),
                    Err(e) => Err(e.into()),
                }
            }
            NetworkMode::User(key) => {
                let net = match self.network(key) {
                    Ok(n) => n,
                    Err(EngineError::Network(NetworkError::NotFound(_))) => {
                        return Err(ValidationError::NetworkNotFound { name: key.clone() }.into())
                    }
                    Err(e) => return Err(e),
                };
                if net.name == DEFAULT_NETWORK {
                    // the default network named by its id: docker's rules for `bridge`
                    if req.endpoint.ipam_config.is_some() {
                        return Err(AllocError::AddressOnDefault.into());
                    }
                    if !req.endpoint.aliases.is_empty() {
                        return Err(ValidationError::NetworkAlias.into());
                    }
                    check_published_families(&net, req)?;
                    return Ok(self.on_network(NetworkMode::Bridge, &net, req));
                }
                if let Some(ipam) = &req.endpoint.ipam_config {
                    if !ipam.ipv4_address.is_empty() {
                        let ip = wharf_types::netopts::parse_ip(&ipam.ipv4_address)?;
                        check_requested_ip(&net, ip)?;
                    }
                    if !ipam.ipv6_address.is_empty() {
                        let ip = wharf_types::netopts::parse_ip6(&ipam.ipv6_address)?;
                        check_requested_ip6(&net, ip)?;
                    }
                }
                check_published_families(&net, req)?;
                Ok(self.on_network(NetworkMode::User(net.name.clone()), &net, req))
            }
            NetworkMode::Container(key) => {
                let target = self.store.container(key)?;
                if req.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(&target.name) {
                    return Err(ValidationError::NetworkSelf {
                        name: target.name.clone(),
                    }
                    .into());
                }
                Ok(CreateNetwork {
                    mode: NetworkMode::Container(target.id.to_string()),
                    networking: NetworkingConfig::default(),
                    hostname: Some(target.config.hostname.clone()),
                })
            }
        }
    }

    fn on_network(
        &self,
        mode: NetworkMode,
        net: &NetworkRecord,
        req: &CreateRequest,
    ) -> CreateNetwork {
        let mut ep: EndpointConfig = req.endpoint.clone();
        ep.network_id = net.id.clone();
        let mut networking = NetworkingConfig::default();
        networking.endpoints_config.insert(net.name.clone(), ep);
        CreateNetwork {
            mode,
            networking,
            hostname: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn requested_ips() {
        let subnet: wharf_types::net::Subnet = "10.9.0.0/24".parse().expect("subnet");
        let net = NetworkRecord {
            id: "a".repeat(64),
            name: "n".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wh-x".into(),
            subnet,
            gateway: "10.9.0.1".parse().expect("gw"),
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: None,
        };
        assert!(check_requested_ip(&net, "10.9.0.7".parse().expect("ip")).is_ok());
        for bad in ["10.9.0.1", "10.9.0.0", "10.9.0.255", "10.9.1.7"] {
            let e = check_requested_ip(&net, bad.parse().expect("ip")).expect_err(bad);
            assert_eq!(
                e.to_string(),
                format!("no configured subnet or ip-range contain the IP address {bad}")
            );
        }
        let e = check_requested_ip6(&net, "fd09::7".parse().expect("ip")).expect_err("no v6");
        assert_eq!(
            e.to_string(),
            "invalid --ip6 fd09::7: network n has no IPv6 subnet (network create --ipv6)"
        );
        let mut six = net.clone();
        six.ipv6 = Some(wharf_store::network::Ipv6Config {
            subnet: "fd09::/64".parse().expect("subnet"),
            gateway: "fd09::1".parse().expect("gw"),
        });
        assert!(check_requested_ip6(&six, "fd09::7".parse().expect("ip")).is_ok());
        for bad in ["fd09::1", "fd09::", "fd0a::7", "10.9.0.7"] {
            let e = check_requested_ip6(&six, bad.parse().expect("ip")).expect_err(bad);
            assert_eq!(
                e.to_string(),
                format!("no configured subnet or ip-range contain the IP address {bad}")
            );
        }
    }
}
