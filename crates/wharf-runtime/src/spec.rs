//! The contract between the engine and the runtime: everything needed to start one container,
//! fully resolved by the engine (image config merged, paths chosen, volumes created) except
//! what can only be resolved inside the container (the user from the image's /etc/passwd,
//! the executable from the container's PATH). Serialised as JSON to `wharf __init` over a pipe.
//!
//! Stable in shape: the networking issue adds `Network::Path` users, the detach issue adds a
//! monitor that consumes the same spec.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Full container id (64 hex).
    pub id: String,
    pub rootfs: RootfsSpec,
    pub process: ProcessSpec,
    pub hostname: String,
    /// Applied in order, after the rootfs and /proc, /sys, /dev are set up. Targets are
    /// resolved inside the rootfs (invariant 2); missing targets are created.
    pub mounts: Vec<Mount>,
    pub network: Network,
    pub security: SecuritySpec,
    pub cgroup: CgroupSpec,
    pub rlimits: Vec<Rlimit>,
    /// Run a tiny init as pid 1 that forwards signals and reaps zombies (`--init`).
    pub init: bool,
    /// Print what was clamped or skipped (rlimits, etc.) to stderr (`--debug`).
    pub debug: bool,
    /// Namespaced kernel parameters (OCI `linux.sysctl`: `net.ipv4.ip_forward` → `1`),
    /// written by init under `/proc/sys` after the network is configured; a key the kernel
    /// lacks or refuses fails the start.
    #[serde(default)]
    pub sysctl: std::collections::BTreeMap<String, String>,
    /// `--domainname`: the NIS domain name set in the container's UTS namespace.
    #[serde(default)]
    pub domainname: String,
    /// `--uts host`: stay in the host's UTS namespace (neither hostname nor domain name is
    /// set then).
    #[serde(default)]
    pub host_uts: bool,
    /// `--oom-score-adj` (-1000..=1000), written to init's `/proc/self/oom_score_adj`
    /// before anything of the container's runs (inherited by its processes).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `--shm-size` in bytes: the size of the container's `/dev/shm` tmpfs (64 MiB when
    /// `None`, docker's default).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--device`: host device nodes re-created in the container (the cgroup rule that
    /// lets the container use them is in `cgroup.resources.devices`).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// `--pid host`: stay in the host's PID namespace (the container's /proc shows the
    /// host's processes).
    #[serde(default)]
    pub host_pid: bool,
    /// `--ipc`: the IPC namespace and the /dev/shm that goes with it.
    #[serde(default)]
    pub ipc: Ipc,
}

/// Which IPC namespace a container gets, and its /dev/shm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ipc {
    /// A new namespace and a fresh /dev/shm tmpfs (`private`).
    #[default]
    Private,
    /// A new namespace whose /dev/shm is a bind of `shm`, a tmpfs the engine mounted on the
    /// host side (`shareable`: other containers can bind it too).
    Shareable { shm: PathBuf },
    /// The host's namespace and a bind of the host's /dev/shm (`--ipc host`).
    Host,
    /// Another container's (`--ipc container:X`): init joins the namespace of X's pid 1 and
    /// binds X's host-side /dev/shm tmpfs `shm`.
    Join { pid: i32, shm: PathBuf },
}

/// A device node made inside the container's /dev (`--device /dev/fuse:/dev/fuse:rwm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Absolute path inside the container, below `/dev/`.
    pub path: String,
    /// `'c'` (character) or `'b'` (block).
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    /// Permission bits of the node (the host node's).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// An overlay rootfs: the store returns the directories, the runtime mounts them inside the
/// container's own mount namespace (so the mount disappears with the container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsSpec {
    /// Layer directories, topmost first (overlay `lowerdir` order). At least one.
    pub lower: Vec<PathBuf>,
    /// The container's writable layer and overlay workdir (same filesystem).
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Empty directory used as the mount point.
    pub target: PathBuf,
    /// `--read-only`: the rootfs is remounted read-only after all mounts are made.
    pub readonly: bool,
    /// The rootfs mount is `nosuid` (the admin policy's `nosuid`): set-user-ID and file
    /// capabilities of the image's files are ignored.
    #[serde(default)]
    pub nosuid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in the container's PATH when it has no '/'.
    pub args: Vec<String>,
    /// Final environment (`KEY=value`), PATH/HOSTNAME/HOME/TERM defaults already merged in by
    /// the engine except HOME, which the runtime adds from /etc/passwd when absent.
    pub env: Vec<String>,
    /// Absolute working directory inside the container; created if missing.
    pub cwd: String,
    /// `user[:group]`, names or numbers, resolved against the container's /etc/passwd and
    /// /etc/group. Empty = root.
    pub user: String,
    /// `--group-add`.
    pub additional_groups: Vec<String>,
    /// Allocate a pty (`-t`).
    pub terminal: bool,
    /// Keep stdin open (`-i`); otherwise stdin is /dev/null.
    pub stdin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Bind a host path (file or directory). `source` must exist.
    Bind,
    /// A fresh tmpfs; `options` like `size=64m,mode=1777`.
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
    /// Extra mount data (tmpfs only), validated by the engine.
    pub options: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// New network namespace with `lo` up.
    None,
    /// Stay in the host's network namespace.
    Host,
    /// Join a prepared network namespace (bind-mounted nsfs file; `--network container:`).
    Path(PathBuf),
    /// New network namespace with `lo` up, plugged into host bridges through one veth pair
    /// per network (`eth0`, `eth1`, … in order; empty: a container disconnected from every
    /// network keeps `lo` only).
    Bridge(Vec<BridgeNet>),
}

/// A container's place on a bridge, all chosen by the engine (addresses allocated, bridge
/// made, firewall rules written); the runtime only plugs the cable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeNet {
    /// Host bridge the host end joins (`wharf0`).
    pub bridge: String,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// The container end (`eth0`, `eth1`, …).
    pub ifname: String,
    /// The container's addresses with their prefix lengths.
    pub addresses: Vec<(std::net::IpAddr, u8)>,
    /// The default route (the first network's gateway only).
    pub gateway: Option<std::net::IpAddr>,
    pub gateway6: Option<std::net::IpAddr>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Hairpin mode on the bridge port: the container reaches its own published ports.
    pub hairpin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecuritySpec {
    /// Capability names without the CAP_ prefix, upper case (`CHOWN`). The final set: the
    /// engine has already applied --cap-add/--cap-drop/--privileged to Docker's default.
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    /// Docker's masked paths (nothing mounted over them when privileged).
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// /sys read-write, all devices allowed in the device cgroup.
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    Unconfined,
    /// wharf's built-in Docker-shaped profile.
    Default,
    /// A Docker-format JSON profile's contents (`--security-opt seccomp=<file>`).
    Profile(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSpec {
    /// Relative cgroup path, e.g. `wharf/<id>` (under each v1 controller, or the v2 root).
    pub path: String,
    /// Bytes; None = unlimited.
    pub memory: Option<i64>,
    /// CPU quota in 1e-9 CPUs; None = unlimited.
    pub nano_cpus: Option<i64>,
    /// None = unlimited.
    pub pids_limit: Option<i64>,
    /// The other resource limits (`--cpu-shares`, `--memory-swap`, `--blkio-weight`, ...).
    #[serde(default)]
    pub resources: Resources,
}

/// Resource limits beyond memory/cpus/pids, each `None`/empty = left as the kernel has it.
/// Shared by a create (applied to the new cgroup) and `update` (applied to a live one):
/// every set field is written, a field whose controller or file is missing is an error
/// naming the limit (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Relative CPU weight (docker's `--cpu-shares`, 2..=262144; v2: `cpu.weight`).
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// CFS period and quota in microseconds (`--cpu-period`, `--cpu-quota`; quota -1 =
    /// unlimited).
    #[serde(default)]
    pub cpu_period: Option<u64>,
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`, `--cpuset-mems` (kernel list syntax, `0-1,3`).
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    #[serde(default)]
    pub cpuset_mems: Option<String>,
    /// Memory plus swap in bytes (`--memory-swap`; -1 = unlimited swap).
    #[serde(default)]
    pub memory_swap: Option<i64>,
    /// `--memory-reservation` (soft limit; v2: `memory.low`).
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness` (0..=100, v1 only).
    #[serde(default)]
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable` (v1 only).
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// `--blkio-weight` (10..=1000).
    #[serde(default)]
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`: (major, minor, weight).
    #[serde(default)]
    pub blkio_weight_device: Vec<(u64, u64, u16)>,
    /// `--device-read-bps`, `--device-write-bps`, `--device-read-iops`,
    /// `--device-write-iops`: (major, minor, rate).
    #[serde(default)]
    pub read_bps: Vec<(u64, u64, u64)>,
    #[serde(default)]
    pub write_bps: Vec<(u64, u64, u64)>,
    #[serde(default)]
    pub read_iops: Vec<(u64, u64, u64)>,
    #[serde(default)]
    pub write_iops: Vec<(u64, u64, u64)>,
    /// Device cgroup rules added to docker's default allow-list (`c 10:229 rwm`), from
    /// `--device` and `--device-cgroup-rule`; checked by [`crate::cgroup::check_device_rule`].
    #[serde(default)]
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_*` name in lower case without the prefix (`nofile`).
    pub resource: wharf_types::container::RlimitResource,
    pub soft: u64,
    pub hard: u64,
}
