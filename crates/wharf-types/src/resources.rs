//! Docker's `Resources` (the part of `HostConfig` that `update` can change, plus devices)
//! and the namespace/runtime options of `HostConfig` beyond networking, as plain serde
//! structs with docker's field names and zero values. Pure: parsing the flags into them is
//! `wharf_engine::validate`'s, applying them the runtime's.

use serde::{Deserialize, Serialize};

/// `--blkio-weight-device PATH:WEIGHT`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// `--device-read-bps PATH:RATE` and the other three throttles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// The resource limits of a container beyond `Memory`, `NanoCpus` and `PidsLimit` (which
/// `HostConfig` has itself); each zero/empty value = not set, as in docker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    #[serde(default)]
    pub memory_reservation: i64,
    /// Memory plus swap; -1 = unlimited swap; 0 = docker's default (twice `Memory`).
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub blkio_weight: u16,
    #[serde(default)]
    pub blkio_weight_device: Vec<WeightDevice>,
    #[serde(default)]
    pub blkio_device_read_bps: Vec<ThrottleDevice>,
    #[serde(default)]
    pub blkio_device_write_bps: Vec<ThrottleDevice>,
    #[serde(default, rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Vec<ThrottleDevice>,
    #[serde(default, rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Vec<ThrottleDevice>,
    #[serde(default)]
    pub devices: Vec<DeviceMapping>,
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
}

/// `HostConfig`'s namespace, IPC and runtime options (`--ipc`, `--pid`, `--uts`,
/// `--userns`, `--cgroupns`, `--cgroup-parent`, `--shm-size`, `--oom-score-adj`,
/// `--volumes-from`, `--isolation`, `--runtime`), docker's names and zero values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostOptions {
    /// `private`, `shareable` (the container's own namespace) or `host`; empty = private.
    #[serde(default)]
    pub ipc_mode: String,
    /// Empty (own namespace) or `host`.
    #[serde(default)]
    pub pid_mode: String,
    /// Empty (own namespace) or `host`.
    #[serde(default, rename = "UTSMode")]
    pub uts_mode: String,
    /// Empty or `host` (wharf makes no user namespaces).
    #[serde(default)]
    pub userns_mode: String,
    /// Empty or `host` (wharf makes no cgroup namespaces).
    #[serde(default)]
    pub cgroupns_mode: String,
    #[serde(default)]
    pub cgroup_parent: String,
    /// Bytes; 0 = docker's 64 MiB.
    #[serde(default)]
    pub shm_size: i64,
    #[serde(default)]
    pub oom_score_adj: i64,
    /// `container[:ro|rw]`, resolved into `Mounts` at create.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub isolation: String,
    #[serde(default)]
    pub runtime: String,
}
