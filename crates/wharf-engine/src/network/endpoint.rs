//! A running container's place on a network — address, MAC, names it answers to, published
//! ports — in the run root (`<run-root>/networks/<network-id>/endpoints/<container-id>.json`),
//! written when it starts and removed when it is released. The DNS resolver, `port`,
//! `network inspect` and the leak checks read them; a reboot clears them with the containers.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One published port as recorded (docker's `PortBinding` once allocated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRecord {
    /// `80/tcp`.
    pub container: String,
    /// `0.0.0.0` when published on every address.
    pub host_ip: String,
    pub host_port: u16,
}

/// A `--link` on a user network: `alias` names `container_id` for this container only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAlias {
    pub alias: String,
    pub container_id: String,
}

fn default_ifname() -> String {
    "eth0".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    /// The container's name without the leading `/`.
    pub name: String,
    /// `--network-alias`, `--link` aliases, the hostname.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub network_id: String,
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    pub mac: String,
    #[serde(default)]
    pub ports: Vec<PortRecord>,
    /// The container's `--dns` servers: on a user network the resolver forwards this
    /// container's other questions to them instead of the host's resolvers (docker's rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// The container's interface on this network (`eth0`, `eth1`, …).
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// The host end of its veth.
    #[serde(default)]
    pub host_veth: String,
    /// `--link` aliases this container resolves (user networks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkAlias>,
    /// The IPv6 address on a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<EndpointV6>,
}

/// A container's IPv6 address on a dual-stack network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointV6 {
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
}

impl Endpoint {
    /// Every address of the container on the network (IPv4 first).
    pub fn addresses(&self) -> Vec<IpAddr> {
        std::iter::once(self.ip)
            .chain(self.ipv6.map(|v| v.ip))
            .collect()
    }

    /// Whether a DNS name (lower case) names this container: its name, an alias, its full id
    /// or its 12-character short id (docker answers all of these).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            || (name.len() >= 12
                && name.len() <= 64
                && self.container_id.starts_with(name)
                && (name.len() == 12 || name.len() == 64))
    }
}

fn dir(run_root: &Path, network_id: &str) -> PathBuf {
    run_root.join("networks").join(network_id).join("endpoints")
}

/// Writes a container's endpoint on a network: a temp file renamed over the old one, so a
/// reader sees the old or the new endpoint, never half of one. Not fsynced: it is volatile
/// state (a crash or reboot ends the container it describes; `release` removes it).
pub fn write(run_root: &Path, ep: &Endpoint) -> std::io::Result<()> {
    let d = dir(run_root, &ep.network_id);
    std::fs::create_dir_all(&d)?;
    let body = serde_json::to_vec(ep).map_err(std::io::Error::other)?;
    let tmp = d.join(format!(".{}.tmp", ep.container_id));
    std::fs::write(&tmp, &body)?;
    std::fs::rename(&tmp, d.join(format!("{}.json", ep.container_id)))
}

/// A container's endpoint on a network, if it has one (bounded read; a foreign or broken
/// file is none).
pub fn read(run_root: &Path, network_id: &str, container_id: &str) -> Option<Endpoint> {
    let path = dir(run_root, network_id).join(format!("{container_id}.json"));
    let b = wharf_sys::fs::read_small_file(None, &path, 64 * 1024).ok()??;
    serde_json::from_slice(&b).ok()
}

/// Removes a container's endpoint on a network (missing: nothing to do).
pub fn remove(run_root: &Path, network_id: &str, container_id: &str) {
    let _ = std::fs::remove_file(dir(run_root, network_id).join(format!("{container_id}.json")));
}

/// Every endpoint of a network. Unreadable or foreign files are skipped (bounded reads).
pub fn list(run_root: &Path, network_id: &str) -> Vec<Endpoint> {
    let Ok(rd) = std::fs::read_dir(dir(run_root, network_id)) else {
        return Vec::new();
    };
    let mut out: Vec<Endpoint> = rd
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json")))
        .filter_map(|e| {
            let b = wharf_sys::fs::read_small_file(None, &e.path(), 64 * 1024).ok()??;
            serde_json::from_slice(&b).ok()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The index of `ethN` (`None` for another name).
pub fn if_index(ifname: &str) -> Option<usize> {
    ifname.strip_prefix("eth")?.parse().ok()
}

/// Every endpoint of a container, on whichever network (networks with run-root state).
pub fn of_container(run_root: &Path, container_id: &str) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = networks_with_state(run_root)
        .iter()
        .filter_map(|n| read(run_root, n, container_id))
        .collect();
    out.sort_by_key(|e| if_index(&e.ifname));
    out
}

/// The ids of networks that have run-root state.
pub fn networks_with_state(run_root: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(run_root.join("networks")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: char, name: &str) -> Endpoint {
        Endpoint {
            container_id: id.to_string().repeat(64),
            name: name.into(),
            aliases: vec!["web".into()],
            network_id: "d".repeat(64),
            ip: "172.18.0.2".parse().expect("ip"),
            prefix: 16,
            gateway: "172.18.0.1".parse().expect("ip"),
            mac: "02:42:ac:12:00:02".into(),
            ports: vec![],
            ifname: "eth0".into(),
            host_veth: String::new(),
            links: vec![],
            ipv6: None,
            dns: vec![],
        }
    }

    #[test]
    fn names_aliases_ids() {
        let e = ep('a', "Front");
        for yes in ["front", "web", &"a".repeat(12), &"a".repeat(64)] {
            assert!(e.answers_to(yes), "{yes}");
        }
        for no in ["fron", "aaaa", &"a".repeat(13), "b"] {
            assert!(!e.answers_to(no), "{no}");
        }
    }

    #[test]
    fn write_list_remove() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), &ep('a', "x")).expect("write");
        write(d.path(), &ep('b', "y")).expect("write");
        std::fs::write(
            dir(d.path(), &"d".repeat(64)).join("junk.json"),
            b"{not json",
        )
        .expect("junk");
        let l = list(d.path(), &"d".repeat(64));
        assert_eq!(
            l.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!(networks_with_state(d.path()), vec!["d".repeat(64)]);
        let back = read(d.path(), &"d".repeat(64), &"a".repeat(64)).expect("read");
        assert_eq!(back, ep('a', "x"));
        assert!(read(d.path(), &"d".repeat(64), &"c".repeat(64)).is_none());
        remove(d.path(), &"d".repeat(64), &"a".repeat(64));
        assert_eq!(list(d.path(), &"d".repeat(64)).len(), 1);
    }
}
