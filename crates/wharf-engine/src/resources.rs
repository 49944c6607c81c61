//! The `run`/`create` flags beyond networking, mounts and the basics: resource limits
//! (`--cpu-shares`, `--memory-swap`, `--blkio-*`, `--device-*-bps`, ...), devices, the
//! namespace modes (`--ipc`, `--pid`, `--uts`, `--userns`, `--cgroupns`), `--shm-size`,
//! `--oom-score-adj`, `--domainname`, `--label-file`, and every docker flag wharf refuses
//! (each with the reason). Parsed into `HostConfig` here, checked with docker's daemon-side
//! rules (for the CLI, the API and `update` alike), and turned into the runtime's spec.
//!
//! Must not print or parse argv; reads the host only to resolve device nodes (`--device`,
//! the throttles' block devices) and `--label-file` files (bounded, the caller's side).

use crate::refusal::ValidationError as V;
use crate::EngineError;
use std::path::PathBuf;
use wharf_types::container::HostConfig;
use wharf_types::parse;
use wharf_types::resources::{DeviceMapping, ThrottleDevice, WeightDevice};

/// The largest `--label-file` read.
pub const LABEL_FILE_MAX: u64 = 1 << 20;

/// The flags of this module exactly as the user typed them (`None`/empty/false = not given).
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags {
    /// `-c/--cpu-shares`, `--cpu-period`, `--cpu-quota` (microseconds).
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`, `--cpuset-mems` (`0-1,3`).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `--memory-swap` (a size or `-1`), `--memory-reservation` (a size).
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    /// `--memory-swappiness` (0..=100; -1 = the host's).
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: bool,
    /// `--oom-score-adj` (-1000..=1000).
    pub oom_score_adj: Option<i64>,
    /// `--blkio-weight` (10..=1000), `--blkio-weight-device PATH:WEIGHT`.
    pub blkio_weight: Option<u16>,
    pub blkio_weight_device: Vec<String>,
    /// `--device-read-bps PATH:SIZE`, `--device-write-bps`, `--device-read-iops PATH:N`,
    /// `--device-write-iops`.
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
    pub device_read_iops: Vec<String>,
    pub device_write_iops: Vec<String>,
    /// `--device HOST[:CONTAINER][:PERMISSIONS]`, `--device-cgroup-rule 'c 1:3 rwm'`.
    pub devices: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    /// `--shm-size` (a size).
    pub shm_size: Option<String>,
    /// `--ipc`, `--pid`, `--uts`, `--userns`, `--cgroupns`, `--cgroup-parent`.
    pub ipc: Option<String>,
    pub pid: Option<String>,
    pub uts: Option<String>,
    pub userns: Option<String>,
    pub cgroupns: Option<String>,
    pub cgroup_parent: Option<String>,
    /// `--volumes-from CONTAINER[:ro|rw]` (resolved into mounts at create).
    pub volumes_from: Vec<String>,
    /// `--isolation` (only `default`), `--runtime` (only wharf's own: `runc`, `wharf`).
    pub isolation: Option<String>,
    pub runtime: Option<String>,
    /// `--label-file` paths (read with the caller's privileges; ignored for remote
    /// requests, which pass resolved labels).
    pub label_files: Vec<PathBuf>,
    /// Flags wharf refuses whatever their value: `--kernel-memory`, `--storage-opt`,
    /// `--gpus`, `--cpu-rt-period`, `--cpu-rt-runtime`, `--cpu-count`, `--cpu-percent`,
    /// `--io-maxbandwidth`, `--io-maxiops`, `--link-local-ip`, `--annotation`,
    /// `--volume-driver` (other than `local`), `--health-start-interval`,
    /// `--use-api-socket`: the flag's name (`--gpus`) when given.
    pub refused: Vec<String>,
}

fn invalid(e: V) -> EngineError {
    EngineError::Invalid(e)
}

fn bad_value(flag: &'static str, value: &str, reason: impl Into<String>) -> EngineError {
    invalid(V::FlagValue {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    })
}

/// Why wharf refuses a docker flag it has no way to apply.
pub fn refusal_reason(flag: &str) -> &'static str {
    match flag {
        "--kernel-memory" => "kernel memory limits are deprecated by the kernel and docker",
        "--storage-opt" => "the overlay snapshots have no per-container size option",
        "--gpus" => "no GPU device plugin (pass the device nodes with --device)",
        "--cpu-rt-period" | "--cpu-rt-runtime" => {
            "real-time CPU scheduling is not delegated to containers"
        }
        "--cpu-count" | "--cpu-percent" | "--io-maxbandwidth" | "--io-maxiops" => {
            "a Windows-only option"
        }
        "--link-local-ip" => "link-local addresses are not assigned by wharf's networks",
        "--annotation" => "wharf has no OCI runtime to pass annotations to",
        "--volume-driver" => "only the local volume driver exists",
        "--health-start-interval" => "healthchecks have no start interval (needs API 1.44)",
        "--use-api-socket" => "no API socket is mounted into containers",
        _ => "not implemented",
    }
}

/// Parses the flags into the request (`HostConfig::resources`/`options`, labels, the
/// domain name); `remote`: an API caller's (no host file is read for it).
pub fn apply(
    req: &mut crate::create::CreateRequest,
    f: &ResourceFlags,
    remote: bool,
) -> Result<(), EngineError> {
    if let Some(flag) = f.refused.first() {
        return Err(invalid(V::FlagRefused {
            flag: flag.clone(),
            reason: refusal_reason(flag),
        }));
    }
    let h = &mut req.host;
    let r = &mut h.resources;
    if let Some(v) = f.cpu_shares {
        r.cpu_shares = v;
    }
    if let Some(v) = f.cpu_period {
        r.cpu_period = v;
    }
    if let Some(v) = f.cpu_quota {
        r.cpu_quota = v;
    }
    if let Some(v) = &f.cpuset_cpus {
        r.cpuset_cpus = v.clone();
    }
    if let Some(v) = &f.cpuset_mems {
        r.cpuset_mems = v.clone();
    }
    if let Some(v) = &f.memory_swap {
        r.memory_swap = if v == "-1" {
            -1
        } else {
            parse::size(v).map_err(EngineError::Parse)?
        };
    }
    if let Some(v) = &f.memory_reservation {
        r.memory_reservation = parse::size(v).map_err(EngineError::Parse)?;
    }
    if let Some(v) = f.memory_swappiness {
        r.memory_swappiness = Some(v);
    }
    if f.oom_kill_disable {
        r.oom_kill_disable = Some(true);
    }
    if let Some(v) = f.blkio_weight {
        r.blkio_weight = v;
    }
    for w in &f.blkio_weight_device {
        let (path, weight) = split_device(w, "--blkio-weight-device")?;
        let weight = weight
            .parse::<u16>()
            .map_err(|_| bad_value("--blkio-weight-device", w, "the weight is a number"))?;
        r.blkio_weight_device.push(WeightDevice { path, weight });
    }
    for (flag, list, out, bytes) in [
        (
            "--device-read-bps",
            &f.device_read_bps,
            &mut r.blkio_device_read_bps,
            true,
        ),
        (
            "--device-write-bps",
            &f.device_write_bps,
            &mut r.blkio_device_write_bps,
            true,
        ),
        (
            "--device-read-iops",
            &f.device_read_iops,
            &mut r.blkio_device_read_iops,
            false,
        ),
        (
            "--device-write-iops",
            &f.device_write_iops,
            &mut r.blkio_device_write_iops,
            false,
        ),
    ] {
        for v in list {
            let (path, rate) = split_device(v, flag)?;
            let rate = if bytes {
                parse::size(&rate).ok().and_then(|n| u64::try_from(n).ok())
            } else {
                rate.parse::<u64>().ok()
            }
            .ok_or_else(|| bad_value(flag, v, "the rate is not a valid number or size"))?;
            out.push(ThrottleDevice { path, rate });
        }
    }
    for d in &f.devices {
        r.devices.push(parse_device(d)?);
    }
    r.device_cgroup_rules
        .extend(f.device_cgroup_rules.iter().cloned());
    let o = &mut h.options;
    if let Some(v) = &f.shm_size {
        o.shm_size = parse::size(v).map_err(EngineError::Parse)?;
    }
    if let Some(v) = f.oom_score_adj {
        o.oom_score_adj = v;
    }
    for (src, dst) in [
        (&f.ipc, &mut o.ipc_mode),
        (&f.pid, &mut o.pid_mode),
        (&f.uts, &mut o.uts_mode),
        (&f.userns, &mut o.userns_mode),
        (&f.cgroupns, &mut o.cgroupns_mode),
        (&f.cgroup_parent, &mut o.cgroup_parent),
        (&f.isolation, &mut o.isolation),
        (&f.runtime, &mut o.runtime),
    ] {
        if let Some(v) = src {
            *dst = v.clone();
        }
    }
    o.volumes_from.extend(f.volumes_from.iter().cloned());
    if !remote {
        for p in &f.label_files {
            for (k, v) in read_label_file(p)? {
                req.labels.insert(k, v);
            }
        }
    }
    Ok(())
}

/// `PATH:VALUE` of the block I/O flags; the path must be a device path (`/dev/...`).
fn split_device(v: &str, flag: &'static str) -> Result<(String, String), EngineError> {
    let (path, value) = v
        .rsplit_once(':')
        .ok_or_else(|| bad_value(flag, v, "expected PATH:VALUE"))?;
    if !path.starts_with("/dev/") {
        return Err(bad_value(flag, v, "the path must be a device below /dev/"));
    }
    Ok((path.to_string(), value.to_string()))
}

fn valid_permissions(p: &str) -> bool {
    !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b"rwm".contains(&b))
}

/// docker's `--device HOST[:CONTAINER][:PERMISSIONS]` (a second part that is a permission
/// string is the permissions).
pub fn parse_device(v: &str) -> Result<DeviceMapping, EngineError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if valid_permissions(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => {
            return Err(bad_value(
                "--device",
                v,
                "expected HOST[:CONTAINER][:PERMISSIONS]",
            ))
        }
    };
    if !valid_permissions(perms) {
        return Err(bad_value("--device", v, "permissions are a subset of rwm"));
    }
    let container_ok = container.starts_with("/dev/")
        && std::path::Path::new(container)
            .components()
            .skip(1)
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !host.starts_with('/') || !container_ok {
        return Err(bad_value(
            "--device",
            v,
            "the host path must be absolute and the container path below /dev/",
        ));
    }
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: container.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

/// docker's label file: one `key[=value]` per line, `#` comments and blank lines skipped.
pub fn read_label_file(p: &std::path::Path) -> Result<Vec<(String, String)>, EngineError> {
    let content = wharf_sys::fs::read_small_file(None, p, LABEL_FILE_MAX)
        .and_then(|c| c.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
        .map_err(|e| EngineError::io("open", p, e))?;
    let text = String::from_utf8_lossy(&content);
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect())
}

/// A kernel cpu list (`0-1,3`).
fn valid_cpu_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let num =
                |n: &str| !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit());
            match part.split_once('-') {
                Some((a, b)) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
                None => num(part),
            }
        })
}

/// docker's daemon-side checks of the resources and options (create, API and update),
/// with `hostname_given` for `--uts host`'s conflict. No I/O.
pub fn check(h: &HostConfig, hostname_given: bool) -> Result<(), EngineError> {
    let r = &h.resources;
    let o = &h.options;
    if r.memory_swap > 0 && h.memory <= 0 {
        return Err(bad_value(
            "--memory-swap",
            &r.memory_swap.to_string(),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if r.memory_swap > 0 && r.memory_swap < h.memory {
        return Err(bad_value(
            "--memory-swap",
            &r.memory_swap.to_string(),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if r.memory_swap < -1 {
        return Err(bad_value(
            "--memory-swap",
            &r.memory_swap.to_string(),
            "must be -1 or a size",
        ));
    }
    if r.memory_reservation < 0
        || (r.memory_reservation > 0 && r.memory_reservation < crate::validate::MIN_MEMORY)
    {
        return Err(bad_value(
            "--memory-reservation",
            &r.memory_reservation.to_string(),
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if h.memory > 0 && r.memory_reservation > h.memory {
        return Err(bad_value(
            "--memory-reservation",
            &r.memory_reservation.to_string(),
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if let Some(s) = r.memory_swappiness.filter(|s| !(-1..=100).contains(s)) {
        return Err(bad_value(
            "--memory-swappiness",
            &s.to_string(),
            "valid memory swappiness range is 0-100",
        ));
    }
    if r.cpu_shares < 0 || r.cpu_shares > 262_144 || (r.cpu_shares > 0 && r.cpu_shares < 2) {
        return Err(bad_value(
            "--cpu-shares",
            &r.cpu_shares.to_string(),
            "the range is 2-262144",
        ));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(bad_value(
            "--cpu-period",
            &r.cpu_period.to_string(),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)",
        ));
    }
    if r.cpu_quota != 0 && r.cpu_quota != -1 && r.cpu_quota < 1000 {
        return Err(bad_value(
            "--cpu-quota",
            &r.cpu_quota.to_string(),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if h.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(invalid(V::FlagConflict {
            what: "Nano CPUs and CPU Period cannot both be set",
        }));
    }
    if h.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(invalid(V::FlagConflict {
            what: "Nano CPUs and CPU Quota cannot both be set",
        }));
    }
    for (flag, list) in [
        ("--cpuset-cpus", &r.cpuset_cpus),
        ("--cpuset-mems", &r.cpuset_mems),
    ] {
        if !list.is_empty() && !valid_cpu_list(list) {
            return Err(bad_value(flag, list, "expected a list such as 0-3,5"));
        }
    }
    if r.blkio_weight != 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err(bad_value(
            "--blkio-weight",
            &r.blkio_weight.to_string(),
            "Range of blkio weight is from 10 to 1000",
        ));
    }
    for w in &r.blkio_weight_device {
        if !(10..=1000).contains(&w.weight) {
            return Err(bad_value(
                "--blkio-weight-device",
                &format!("{}:{}", w.path, w.weight),
                "Range of blkio weight is from 10 to 1000",
            ));
        }
    }
    for rule in &r.device_cgroup_rules {
        wharf_runtime::cgroup::check_device_rule(rule)
            .map_err(|e| bad_value("--device-cgroup-rule", rule, e.to_string()))?;
    }
    for d in &r.devices {
        let spec = format!(
            "{}:{}:{}",
            d.path_on_host, d.path_in_container, d.cgroup_permissions
        );
        parse_device(&spec)?;
    }
    if !(-1000..=1000).contains(&o.oom_score_adj) {
        return Err(bad_value(
            "--oom-score-adj",
            &o.oom_score_adj.to_string(),
            "range for oom score adj is [-1000, 1000]",
        ));
    }
    if o.shm_size < 0 {
        return Err(bad_value(
            "--shm-size",
            &o.shm_size.to_string(),
            "SHM size can not be less than 0",
        ));
    }
    check_modes(h, hostname_given)
}

fn refuse(flag: String, reason: &'static str) -> EngineError {
    invalid(V::FlagRefused { flag, reason })
}

/// The namespace, isolation and runtime modes wharf applies, refusing the others by name.
fn check_modes(h: &HostConfig, hostname_given: bool) -> Result<(), EngineError> {
    let o = &h.options;
    match o.ipc_mode.as_str() {
        "" | "private" | "shareable" | "host" => {}
        "none" => {
            return Err(refuse(
                "--ipc none".into(),
                "every container gets its /dev/shm",
            ))
        }
        m if m.strip_prefix("container:").is_some_and(|n| !n.is_empty()) => {}
        m => {
            return Err(bad_value(
                "--ipc",
                m,
                "expected private, shareable, host or container:NAME",
            ))
        }
    }
    // the IPC sysctls would be written into a namespace this container does not own
    if !matches!(o.ipc_mode.as_str(), "" | "private" | "shareable") {
        let ipc_key = h.sysctls.keys().find(|k| {
            wharf_types::sysctl::namespace_of(k) == Some(wharf_types::sysctl::Namespace::Ipc)
        });
        if let Some(k) = ipc_key {
            return Err(bad_value(
                "--sysctl",
                k,
                format!(
                    "not allowed with --ipc {}: the IPC namespace is not the container's own",
                    o.ipc_mode
                ),
            ));
        }
    }
    match o.pid_mode.as_str() {
        "" => {}
        "host" => {}
        m if m.starts_with("container:") => {
            return Err(refuse(
                format!("--pid {m}"),
                "sharing another container's PID namespace is not implemented",
            ))
        }
        m => return Err(bad_value("--pid", m, "expected host or container:NAME")),
    }
    match o.uts_mode.as_str() {
        "" => {}
        "host" if hostname_given => {
            return Err(invalid(V::FlagConflict {
                what: "hostname and the UTS mode",
            }))
        }
        "host" => {}
        m => return Err(bad_value("--uts", m, "expected host")),
    }
    match o.userns_mode.as_str() {
        "" | "host" => {}
        m => {
            return Err(refuse(
                format!("--userns {m}"),
                "wharf makes no user namespaces (the only mode is host)",
            ))
        }
    }
    match o.cgroupns_mode.as_str() {
        "" | "host" => {}
        "private" => {
            return Err(refuse(
                "--cgroupns private".into(),
                "wharf makes no cgroup namespaces; the container sees its own cgroup through its /sys/fs/cgroup view",
            ))
        }
        m => return Err(bad_value("--cgroupns", m, "expected host or private")),
    }
    if !o.cgroup_parent.is_empty() {
        return Err(refuse(
            "--cgroup-parent".into(),
            "every container's cgroup is wharf/<id> (the admin's layout)",
        ));
    }
    match o.isolation.as_str() {
        "" | "default" => {}
        m => {
            return Err(refuse(
                format!("--isolation {m}"),
                "the only isolation on Linux is default",
            ))
        }
    }
    match o.runtime.as_str() {
        "" | "runc" | "wharf" => {}
        m => {
            return Err(refuse(
                format!("--runtime {m}"),
                "wharf runs containers with its own runtime only (runc-compatible: runc, wharf)",
            ))
        }
    }
    Ok(())
}

/// A shareable container's /dev/shm: a tmpfs (docker's mode and size: 64 MiB unless
/// `--shm-size`) mounted at `dir` on the host side.
fn mount_shm(dir: &std::path::Path, size: i64) -> Result<(), EngineError> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(EngineError::io("mkdir", dir, e)),
    }
    let target = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|e| EngineError::io("open", dir, e))?;
    let size = if size > 0 {
        format!("{}k", (size as u64).div_ceil(1024))
    } else {
        "65536k".to_string()
    };
    wharf_sys::mount::mount_fs(
        "tmpfs",
        "shm",
        &[("mode", Some("1777")), ("size", Some(&size))],
        wharf_sys::mount::MountFlags {
            nosuid: true,
            nodev: true,
            noexec: true,
            ..Default::default()
        },
        target.as_fd(),
    )
    .map_err(|e| EngineError::io("mount /dev/shm tmpfs at", dir, e))
}

/// A host device node: (type `c`/`b`, major, minor, permission bits, uid, gid).
pub fn device_node(path: &str) -> Result<(char, u64, u64, u32, u32, u32), EngineError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| {
        bad_value(
            "--device",
            path,
            format!("error gathering device information: {e}"),
        )
    })?;
    let kind = if md.file_type().is_char_device() {
        'c'
    } else if md.file_type().is_block_device() {
        'b'
    } else {
        return Err(bad_value("--device", path, "not a device node"));
    };
    let rdev = md.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    Ok((kind, major, minor, md.mode() & 0o7777, md.uid(), md.gid()))
}

fn block_numbers(flag: &'static str, path: &str) -> Result<(u64, u64), EngineError> {
    match device_node(path) {
        Ok(('b', ma, mi, ..)) => Ok((ma, mi)),
        _ => Err(bad_value(flag, path, "not a block device")),
    }
}

/// The runtime's view of the resources: device numbers resolved from the host now (a
/// start after a reboot sees the current numbers), the cgroup rules for the devices.
pub fn runtime_resources(
    h: &HostConfig,
) -> Result<
    (
        wharf_runtime::spec::Resources,
        Vec<wharf_runtime::spec::Device>,
    ),
    EngineError,
> {
    let r = &h.resources;
    let pos = |v: i64| (v > 0).then_some(v);
    let mut out = wharf_runtime::spec::Resources {
        cpu_shares: pos(r.cpu_shares).map(|v| v as u64),
        cpu_period: pos(r.cpu_period).map(|v| v as u64),
        cpu_quota: (r.cpu_quota != 0).then_some(r.cpu_quota),
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        memory_swap: (r.memory_swap != 0).then_some(r.memory_swap),
        memory_reservation: pos(r.memory_reservation),
        memory_swappiness: r.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64),
        oom_kill_disable: r.oom_kill_disable == Some(true),
        blkio_weight: (r.blkio_weight > 0).then_some(r.blkio_weight),
        ..Default::default()
    };
    for w in &r.blkio_weight_device {
        let (ma, mi) = block_numbers("--blkio-weight-device", &w.path)?;
        out.blkio_weight_device.push((ma, mi, w.weight));
    }
    for (flag, list, dst) in [
        (
            "--device-read-bps",
            &r.blkio_device_read_bps,
            &mut out.read_bps,
        ),
        (
            "--device-write-bps",
            &r.blkio_device_write_bps,
            &mut out.write_bps,
        ),
        (
            "--device-read-iops",
            &r.blkio_device_read_iops,
            &mut out.read_iops,
        ),
        (
            "--device-write-iops",
            &r.blkio_device_write_iops,
            &mut out.write_iops,
        ),
    ] {
        for t in list {
            let (ma, mi) = block_numbers(flag, &t.path)?;
            dst.push((ma, mi, t.rate));
        }
    }
    let mut devices = Vec::new();
    for d in &r.devices {
        let (kind, major, minor, mode, uid, gid) = device_node(&d.path_on_host)?;
        out.devices
            .push(format!("{kind} {major}:{minor} {}", d.cgroup_permissions));
        devices.push(wharf_runtime::spec::Device {
            path: d.path_in_container.clone(),
            kind,
            major,
            minor,
            mode,
            uid,
            gid,
        });
    }
    out.devices.extend(r.device_cgroup_rules.iter().cloned());
    Ok((out, devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flag_as_docker_parses_it() {
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/fuse", "rwm")
        );
        let d = parse_device("/dev/null:r").unwrap();
        assert_eq!(d.cgroup_permissions, "r");
        let d = parse_device("/dev/null:/dev/x/null:rw").unwrap();
        assert_eq!(d.path_in_container, "/dev/x/null");
        for bad in [
            "rel",
            "/dev/null:/etc/x",
            "/dev/null:/dev/x:rwz",
            "/dev/null:/dev/../x",
            "a:b:c:d",
        ] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_resource_checks() {
        let h = |f: &dyn Fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            check(&h, false).map_err(|e| e.to_string())
        };
        assert!(h(&|_| {}).is_ok());
        assert!(h(&|h| h.resources.memory_swap = 1 << 30)
            .unwrap_err()
            .contains("always set the Memory limit"));
        assert!(h(&|h| {
            h.memory = 64 << 20;
            h.resources.memory_swap = 32 << 20
        })
        .is_err());
        assert!(h(&|h| h.resources.cpu_period = 500).is_err());
        assert!(h(&|h| {
            h.nano_cpus = 1_000_000_000;
            h.resources.cpu_quota = 50_000
        })
        .unwrap_err()
        .starts_with("Conflicting options"));
        assert!(h(&|h| h.resources.cpuset_cpus = "0-1,3".into()).is_ok());
        assert!(h(&|h| h.resources.cpuset_cpus = "1-0".into()).is_err());
        assert!(h(&|h| h.options.oom_score_adj = 1001).is_err());
        assert!(h(&|h| h.resources.blkio_weight = 5).is_err());
        assert!(h(&|h| h.options.pid_mode = "host".into()).is_ok());
        assert!(h(&|h| h.options.pid_mode = "container:x".into())
            .unwrap_err()
            .contains("--pid container:x is not supported"));
        assert!(h(&|h| h.options.uts_mode = "host".into()).is_ok());
        assert!(h(&|h| h.options.runtime = "kata".into()).is_err());
        assert!(h(&|h| h.options.runtime = "runc".into()).is_ok());
        let mut u = HostConfig::default();
        u.options.uts_mode = "host".into();
        assert!(check(&u, true).is_err());
    }
}

impl crate::Engine {
    /// `--ipc` at a start. `shareable`: the container's /dev/shm is a tmpfs mounted on the
    /// host side (`<container dir>/shm`, unmounted by `release_runtime` with everything
    /// below that directory), so that others can bind it; `container:X` joins X's namespace
    /// and that tmpfs (docker's rules: X runs and was made `--ipc shareable`).
    pub(crate) fn ipc_for_start(
        &self,
        rec: &wharf_types::container::ContainerRecord,
    ) -> Result<wharf_runtime::spec::Ipc, EngineError> {
        use crate::state::Status;
        use wharf_runtime::spec::Ipc;
        let h = &rec.host_config;
        let mode = h.options.ipc_mode.as_str();
        if mode == "host" {
            return Ok(Ipc::Host);
        }
        if mode == "shareable" {
            let shm = self.store.container_paths(&rec.id).dir.join("shm");
            mount_shm(&shm, h.options.shm_size)?;
            return Ok(Ipc::Shareable { shm });
        }
        let Some(name) = mode.strip_prefix("container:") else {
            return Ok(Ipc::Private);
        };
        let donor = self.container(name)?;
        let running = matches!(donor.state.status(), Status::Running | Status::Paused)
            && donor.state.pid > 0
            && donor.state.process_alive();
        if !running {
            return Err(invalid(V::IpcDonorNotRunning {
                name: name.to_string(),
            }));
        }
        if donor.record.host_config.options.ipc_mode != "shareable" {
            return Err(invalid(V::IpcDonorNotShareable));
        }
        Ok(Ipc::Join {
            pid: donor.state.pid,
            shm: self.store.container_paths(&donor.record.id).dir.join("shm"),
        })
    }

    /// `--volumes-from CONTAINER[:ro|rw]`: the volume and bind mounts of each named
    /// container, read-only with `:ro`, read-write with `:rw`, else as they were there; a
    /// destination this container already mounts is kept as the user gave it.
    pub(crate) fn volumes_from(
        &self,
        specs: &[String],
        own: &[wharf_types::container::MountConfig],
    ) -> Result<Vec<wharf_types::container::MountConfig>, EngineError> {
        use wharf_types::container::MountKind;
        let mut out: Vec<wharf_types::container::MountConfig> = Vec::new();
        for spec in specs {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m == "ro")),
                Some(_) => return Err(bad_value("--volumes-from", spec, "the mode is ro or rw")),
                None => (spec.as_str(), None),
            };
            let from = self.container(name)?;
            for m in &from.record.host_config.mounts {
                if !matches!(m.kind, MountKind::Volume | MountKind::Bind) {
                    continue;
                }
                if own.iter().chain(out.iter()).any(|o| o.target == m.target) {
                    continue;
                }
                let mut m = m.clone();
                if let Some(ro) = mode {
                    m.read_only = ro;
                }
                out.push(m);
            }
        }
        Ok(out)
    }
}

/// docker's detach key sequence (`ctrl-p,ctrl-q`, `ctrl-a`, single characters) as bytes.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, EngineError> {
    let bad = || bad_value("--detach-keys", spec, "Invalid detach keys provided");
    let mut out = Vec::new();
    for k in spec.split(',') {
        match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0].to_ascii_lowercase();
                out.push(match b {
                    b'a'..=b'z' => b - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad()),
                });
            }
            None if k.len() == 1 => out.push(k.as_bytes()[0]),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// How a `run` front end attaches, as the user asked (`-a`, `--sig-proxy`,
/// `--detach-keys`, `-d`, `-i`, `-t`).
#[derive(Debug, Clone, Default)]
pub struct AttachFlags {
    pub attach: Vec<String>,
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
}

/// docker's rules for the attach flags, and what a wharf foreground run can do: it
/// attaches stdout and stderr (and stdin with `-i`), proxies signals, and cannot detach.
pub fn check_attach(a: &AttachFlags) -> Result<(), EngineError> {
    for s in &a.attach {
        if !matches!(
            s.to_ascii_lowercase().as_str(),
            "stdin" | "stdout" | "stderr"
        ) {
            return Err(bad_value(
                "--attach",
                s,
                "valid streams are STDIN, STDOUT and STDERR",
            ));
        }
    }
    if a.detach && !a.attach.is_empty() {
        return Err(invalid(V::FlagConflict { what: "-a and -d" }));
    }
    if let Some(k) = &a.detach_keys {
        parse_detach_keys(k)?;
        if !a.detach && a.tty && a.interactive {
            return Err(refuse(
                "--detach-keys".into(),
                "a foreground run does not detach (use run -d, then attach --detach-keys)",
            ));
        }
    }
    if !a.attach.is_empty() {
        let has = |n: &str| a.attach.iter().any(|s| s.eq_ignore_ascii_case(n));
        if has("stdin") != a.interactive || !has("stdout") || !has("stderr") {
            return Err(refuse(
                format!("--attach {}", a.attach.join(",")),
                "a foreground run attaches stdout and stderr, and stdin exactly when -i is given",
            ));
        }
    }
    if !a.sig_proxy && !a.detach && !a.tty {
        return Err(refuse(
            "--sig-proxy=false".into(),
            "a foreground run always forwards signals to the container",
        ));
    }
    Ok(())
}
