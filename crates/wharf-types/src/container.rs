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

/// How the container is connected. Bridge networking arrives later; the runtime takes a
/// namespace path for it so the netns step plugs in without changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Own network namespace with only `lo` (up).
    None,
    /// The host's network namespace.
    Host,
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
}

/// Docker's `HostConfig`: how the host runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    pub network_mode: NetworkMode,
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
            network_mode: NetworkMode::None,
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
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"HostConfig\""));
        let back: ContainerRecord = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }
}
