//! A container's create-time configuration, as the engine records it once at create time and
//! never rewrites (invariant 4). Field names follow Docker's `Config`/`HostConfig` so `inspect`
//! output looks familiar. Runtime state (pid, status, exit code) is NOT here.

use crate::digest::Digest;
use crate::id::ContainerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a mount brings into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path (`-v /host:/ctr`).
    Bind,
    /// A named volume under the wharf root (`-v name:/ctr`).
    Volume,
    /// A fresh tmpfs (`--tmpfs /ctr[:opts]`).
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountConfig {
    #[serde(rename = "Type")]
    pub kind: MountKind,
    /// Host path (bind), volume name (volume), empty (tmpfs).
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    /// tmpfs options (`size=64m,mode=1777`), passed through after validation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
    /// A missing bind source is created (`-v`); `--mount type=bind` refuses one, like docker
    /// (its `BindOptions.CreateMountpoint`). Records from before this field were all
    /// created-on-demand.
    #[serde(default = "yes")]
    pub create_mountpoint: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    #[serde(rename = "Name")]
    pub resource: RlimitResource,
    #[serde(rename = "Soft")]
    pub soft: u64,
    #[serde(rename = "Hard")]
    pub hard: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RlimitResource {
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
    As,
}

impl RlimitResource {
    pub fn parse(s: &str) -> Option<RlimitResource> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// How the container is connected: docker's `HostConfig.NetworkMode`, recorded as docker
/// writes it (`"bridge"`, `"none"`, `"host"`, `"container:<id>"`, or a user network's name).
/// The network's id is in the record's endpoint settings ([`EndpointConfig::network_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// docker's default network `bridge` (docker's default for `run`).
    #[default]
    Bridge,
    /// Own network namespace with only `lo` (up).
    None,
    /// The host's network namespace.
    Host,
    /// A user-defined bridge network, by name.
    User(String),
    /// Another container's network namespace (`container:<id>`; the full id once created).
    Container(String),
}

impl NetworkMode {
    /// docker's `--network` value as written: `bridge`/`default`, `none`, `host`,
    /// `container:<name|id>`, else a user network's name or id. Pure: whether the network
    /// or container exists is the engine's question.
    pub fn from_docker(s: &str) -> NetworkMode {
        match s {
            "bridge" | "default" => NetworkMode::Bridge,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            _ => match s.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c.to_string()),
                None => NetworkMode::User(s.to_string()),
            },
        }
    }

    /// The value docker records and prints.
    pub fn as_docker(&self) -> String {
        match self {
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::User(n) => n.clone(),
            NetworkMode::Container(c) => format!("container:{c}"),
        }
    }

    /// A bridge network (the default one or a user-defined one): the container gets an
    /// address, a veth and maybe published ports.
    pub fn is_bridge(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::User(_))
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_docker())
    }
}

impl Serialize for NetworkMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_docker())
    }
}

impl<'de> Deserialize<'de> for NetworkMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // docker writes "default" for the default network in some versions; an empty value
        // is docker's "not set" (the default network)
        Ok(if s.is_empty() {
            NetworkMode::Bridge
        } else {
            NetworkMode::from_docker(&s)
        })
    }
}

/// docker's `PortBinding`: where a container port is published on the host. An empty
/// `HostIp` is every address; an empty `HostPort` is a port chosen at start; a range
/// (`8000-8010`) is any free one of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default)]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: String,
}

/// docker's empty JSON object (`"ExposedPorts": {"80/tcp": {}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// docker's `IPAMConfig` of an endpoint: the addresses asked for with `--ip` and `--ip6`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    /// `--ip6`.
    #[serde(
        rename = "IPv6Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
}

/// docker's `EndpointSettings` as given at create: which network (its id, so a network
/// removed and made again under the same name is not silently joined), `--ip`,
/// `--network-alias`, `--mac-address`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    #[serde(
        rename = "IPAMConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

/// docker's `NetworkingConfig`: endpoint settings per network name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    #[serde(default)]
    pub endpoints_config: BTreeMap<String, EndpointConfig>,
    /// wharf's list of the bridge networks the container is on, in interface order (`eth0`,
    /// `eth1`, … as docker names them in connect order), once `network connect` or
    /// `disconnect` changed it; `None` (every create, and records made before connect
    /// existed) is the one network of `HostConfig.NetworkMode`. `Some([])`: disconnected from
    /// every network (the container keeps `lo` only).
    #[serde(
        rename = "WharfNetworks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub networks: Option<Vec<String>>,
}

/// Docker's `Config`: process defaults merged from the image and the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    /// docker's `StdinOnce`: the container's stdin closes when the attached client's
    /// input ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    /// The image as the user named it.
    pub image: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`); None = 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `--health-*` merged over the image's HEALTHCHECK; `Test == ["NONE"]` disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::oci::HealthConfig>,
    /// The image's EXPOSE, `--expose` and the published ports' keys (`80/tcp`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, EmptyObject>,
    /// `--mac-address` (docker's canonical lower-case form).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

/// Docker's `HostConfig`: how the host runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    #[serde(default)]
    pub network_mode: NetworkMode,
    /// `-p`: container port key (`80/tcp`) → where it is published.
    #[serde(default)]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port without a binding gets a host port at start.
    #[serde(default)]
    pub publish_all_ports: bool,
    /// `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host name:ip` (`ip` may be `host-gateway`, resolved at start).
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// `--link`, as docker records it: `/<target>:/<this container>/<alias>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// Bytes; 0 = unlimited.
    #[serde(default)]
    pub memory: i64,
    /// CPU quota in units of 1e-9 CPUs; 0 = unlimited.
    #[serde(default)]
    pub nano_cpus: i64,
    /// `None` = wharf's default limit; `Some(-1)` or `Some(0)` = unlimited.
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub init: bool,
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--group-add`: extra groups for the process.
    #[serde(default)]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub log_config: LogConfig,
    /// `--sysctl key=value`: namespaced kernel parameters written by the container's init
    /// (`wharf_types::sysctl` says which are allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `--cpu-shares`, `--memory-swap`, `--blkio-*`, `--device`, ... (docker's `Resources`).
    #[serde(flatten)]
    pub resources: crate::resources::Resources,
    /// `--ipc`, `--pid`, `--uts`, `--shm-size`, `--oom-score-adj`, `--volumes-from`, ...
    #[serde(flatten)]
    pub options: crate::resources::HostOptions,
}

/// Docker's `RestartPolicy`: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// "" or "no", "on-failure", "always", "unless-stopped".
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Parses `--restart` values.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let maximum_retry_count = match (name, count) {
            ("on-failure", Some(c)) => c.parse::<i64>().ok().filter(|n| *n >= 0)?,
            (_, Some(_)) => return None,
            _ => 0,
        };
        match name {
            "no" | "on-failure" | "always" | "unless-stopped" => Some(RestartPolicy {
                name: name.to_string(),
                maximum_retry_count,
            }),
            _ => None,
        }
    }
}

/// Docker's `LogConfig`: driver name and its options (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub driver: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            driver: "json-file".to_string(),
            config: BTreeMap::new(),
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            mounts: Vec::new(),
            network_mode: NetworkMode::Bridge,
            port_bindings: BTreeMap::new(),
            publish_all_ports: false,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            extra_hosts: Vec::new(),
            links: Vec::new(),
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            security_opt: Vec::new(),
            memory: 0,
            nano_cpus: 0,
            pids_limit: None,
            readonly_rootfs: false,
            auto_remove: false,
            init: false,
            ulimits: Vec::new(),
            group_add: Vec::new(),
            restart_policy: RestartPolicy::default(),
            log_config: LogConfig::default(),
            sysctls: BTreeMap::new(),
            resources: Default::default(),
            options: Default::default(),
        }
    }
}

/// The record the metadata store keeps per container, written once at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerRecord {
    pub id: ContainerId,
    /// Without docker's leading '/'.
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// Image id (config digest).
    pub image: Digest,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// Endpoint settings of the container's network (bridge or user networks; empty for
    /// `none`, `host` and `container:`).
    #[serde(default)]
    pub networking_config: NetworkingConfig,
}

impl ContainerRecord {
    /// The bridge networks the container is on, by name, in interface order: the list
    /// `network connect`/`disconnect` recorded, else the network of `NetworkMode` (none for
    /// `none`, `host` and `container:`).
    pub fn bridge_networks(&self) -> Vec<String> {
        if let Some(list) = &self.networking_config.networks {
            return list.clone();
        }
        match &self.host_config.network_mode {
            NetworkMode::Bridge => vec!["bridge".to_string()],
            NetworkMode::User(n) => vec![n.clone()],
            _ => Vec::new(),
        }
    }

    /// `--link`s as (target container, alias), parsed from docker's recorded form
    /// (`/<target>:/<this>/<alias>`); malformed entries are skipped.
    pub fn links(&self) -> Vec<(String, String)> {
        self.host_config
            .links
            .iter()
            .filter_map(|l| {
                let (target, this) = l.split_once(':')?;
                let alias = this.rsplit('/').next()?;
                let target = target.trim_start_matches('/');
                (!target.is_empty() && !alias.is_empty())
                    .then(|| (target.to_string(), alias.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(
            RestartPolicy::parse("on-failure:3")
                .unwrap()
                .maximum_retry_count,
            3
        );
        assert_eq!(RestartPolicy::parse("always").unwrap().name, "always");
        assert!(RestartPolicy::parse("on-failure:x").is_none());
        assert!(RestartPolicy::parse("always:3").is_none());
        assert!(RestartPolicy::parse("sometimes").is_none());
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(
            RlimitResource::parse("nofile"),
            Some(RlimitResource::Nofile)
        );
        assert_eq!(RlimitResource::parse("bogus"), None);
    }

    #[test]
    fn record_roundtrip() {
        let r = ContainerRecord {
            id: ContainerId::from_bytes([1; 32]),
            name: "web".into(),
            created: "2026-01-01T00:00:00Z".into(),
            image: Digest::of(b"x"),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            networking_config: NetworkingConfig::default(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"HostConfig\""));
        let back: ContainerRecord = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn network_lists_and_links() {
        let mut r = ContainerRecord {
            id: ContainerId::from_bytes([1; 32]),
            name: "web".into(),
            created: String::new(),
            image: Digest::of(b"x"),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            networking_config: NetworkingConfig::default(),
        };
        // a record without the list (made before connect existed) reads as its mode's network
        let old: ContainerRecord =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(old.bridge_networks(), ["bridge"]);
        r.host_config.network_mode = NetworkMode::User("app".into());
        assert_eq!(r.bridge_networks(), ["app"]);
        r.host_config.network_mode = NetworkMode::None;
        assert!(r.bridge_networks().is_empty());
        r.host_config.network_mode = NetworkMode::User("app".into());
        r.networking_config.networks = Some(vec!["app".into(), "b".into()]);
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"WharfNetworks\":[\"app\",\"b\"]"), "{j}");
        r.networking_config.networks = Some(Vec::new());
        assert!(r.bridge_networks().is_empty());
        r.host_config.links = vec!["/db:/web/dbx".into(), "bad".into(), "/c:/web/c".into()];
        assert_eq!(
            r.links(),
            [
                ("db".to_string(), "dbx".to_string()),
                ("c".into(), "c".into())
            ]
        );
    }

    #[test]
    fn network_modes_as_docker_writes_them() {
        for (s, m) in [
            ("bridge", NetworkMode::Bridge),
            ("none", NetworkMode::None),
            ("host", NetworkMode::Host),
            ("app", NetworkMode::User("app".into())),
            ("container:abc", NetworkMode::Container("abc".into())),
        ] {
            assert_eq!(NetworkMode::from_docker(s), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<NetworkMode>(&format!("\"{s}\"")).unwrap(),
                m
            );
        }
        assert_eq!(NetworkMode::from_docker("default"), NetworkMode::Bridge);
        assert!(NetworkMode::User("x".into()).is_bridge() && !NetworkMode::Host.is_bridge());
    }

    /// A record written before bridge networking (no port, DNS or endpoint fields) loads.
    #[test]
    fn old_records_load() {
        let old = r#"{"Id":"0101010101010101010101010101010101010101010101010101010101010101",
            "Name":"web","Created":"2026-01-01T00:00:00Z",
            "Image":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Config":{"Hostname":"h","Image":"busybox"},
            "HostConfig":{"NetworkMode":"none"}}"#;
        let r: ContainerRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.host_config.network_mode, NetworkMode::None);
        assert!(r.host_config.port_bindings.is_empty() && r.config.exposed_ports.is_empty());
        assert!(r.networking_config.endpoints_config.is_empty());
        let mut with = HostConfig::default();
        with.port_bindings.insert(
            "80/tcp".into(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: "8080".into(),
            }],
        );
        let j = serde_json::to_value(&with).unwrap();
        assert_eq!(
            j["PortBindings"],
            serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(j["NetworkMode"], "bridge");
    }
}
