//! Parsing and validation of `-v`, `--mount` and `--tmpfs`: the ONE place where host paths
//! enter a container. The admin-policy issue will refuse bind mounts here.

use crate::refusal::ValidationError as V;
use crate::EngineError;
use std::path::Path;
use wharf_types::container::{MountConfig, MountKind};

fn invalid(e: V) -> EngineError {
    EngineError::Invalid(e)
}

/// `/proc` files a bind mount may replace (runc's `checkProcMount` list: what lxcfs provides).
const PROC_BIND_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
];

/// `target` with empty and `.` components dropped (`//proc/./x/` → `/proc/x`); `..` is
/// refused before this is used.
fn clean(target: &str) -> String {
    let parts: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Checks a user mount's destination: absolute, not `/`, no `..`; not `/proc` or anything
/// below it (a mount there would replace the container's procfs and uncover what its masked
/// and read-only paths hide), except bind mounts onto the few `/proc` files runc allows for
/// lxcfs; not `/sys` itself, nor a `/sys` path at, above or below a masked or read-only path
/// (`/sys/firmware`, `/sys/devices`, ...). Other `/sys` paths stay mountable, as with docker
/// (`-v /sys/fs/cgroup:/sys/fs/cgroup:ro` for systemd in a container).
pub fn check_destination(spec: &str, kind: &MountKind, target: &str) -> Result<(), EngineError> {
    if !target.starts_with('/') {
        return Err(invalid(V::MountTargetNotAbsolute { spec: spec.into() }));
    }
    if target.split('/').any(|c| c == "..") {
        return Err(invalid(V::MountTargetDotDot { spec: spec.into() }));
    }
    let cleaned = clean(target);
    if cleaned == "/" {
        return Err(invalid(V::MountTargetRoot { spec: spec.into() }));
    }
    let at_or_below = |top: &str| cleaned == top || cleaned.starts_with(&format!("{top}/"));
    let refuse = |top: &str, what: &'static str| {
        Err(invalid(V::MountOverKernelFs {
            spec: spec.into(),
            target: cleaned.clone(),
            what,
            fs: if top == "/proc" { "procfs" } else { "sysfs" },
        }))
    };
    if at_or_below("/proc")
        && !(*kind == MountKind::Bind && PROC_BIND_ALLOWED.contains(&cleaned.as_str()))
    {
        return refuse("/proc", "/proc and everything below it");
    }
    if cleaned == "/sys" {
        return refuse("/sys", "/sys and its masked and read-only paths");
    }
    if at_or_below("/sys") {
        let protected = wharf_runtime::defaults::masked_paths()
            .into_iter()
            .chain(wharf_runtime::defaults::readonly_paths())
            .filter(|p| p.starts_with("/sys/"));
        for p in protected {
            if at_or_below(&p) || p.starts_with(&format!("{cleaned}/")) {
                return refuse("/sys", "/sys and its masked and read-only paths");
            }
        }
    }
    Ok(())
}

/// Parses `-v SRC:DST[:OPTS]` / `-v DST` (an anonymous volume, source left empty). A host
/// path must be absolute; see [`parse_volume_flag_from`] for relative ones.
pub fn parse_volume_flag(spec: &str) -> Result<MountConfig, EngineError> {
    parse_volume(spec, None)
}

/// [`parse_volume_flag`], with a source starting with `.` (`./data`, `../x`, `.`) taken
/// relative to `cwd` and cleaned lexically, as docker 23+ does.
pub fn parse_volume_flag_from(spec: &str, cwd: &Path) -> Result<MountConfig, EngineError> {
    parse_volume(spec, Some(cwd))
}

/// `cwd` joined with `rel`, `.` and `..` resolved lexically (never above `/`).
fn absolute_from(cwd: &Path, rel: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let joined = format!("{}/{rel}", cwd.display());
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c.to_string()),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parse_volume(spec: &str, cwd: Option<&Path>) -> Result<MountConfig, EngineError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(invalid(V::VolumeSpec { spec: spec.into() })),
    };
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // SELinux relabel and propagation options: accepted and ignored (no SELinux here,
            // wharf mounts are private).
            "z" | "Z" | "private" | "rprivate" | "nocopy" => {}
            other => {
                return Err(invalid(V::VolumeOption {
                    spec: spec.into(),
                    option: other.into(),
                }))
            }
        }
    }
    let resolved;
    let source = match cwd {
        Some(cwd) if source.starts_with('.') && cwd.is_absolute() => {
            resolved = absolute_from(cwd, source);
            resolved.as_str()
        }
        _ => source,
    };
    let kind = if source.is_empty() {
        MountKind::Volume
    } else if source.starts_with('/') {
        MountKind::Bind
    } else if source.starts_with('.') || source.contains('/') {
        return Err(invalid(V::VolumeHostPathRelative { spec: spec.into() }));
    } else {
        if !wharf_types::id::validate_container_name(source) {
            return Err(invalid(V::VolumeName {
                name: source.into(),
            }));
        }
        MountKind::Volume
    };
    check_destination(spec, &kind, target)?;
    if kind == MountKind::Bind && source.split('/').any(|c| c == "..") {
        return Err(invalid(V::VolumeHostPathDotDot { spec: spec.into() }));
    }
    Ok(MountConfig {
        kind,
        source: source.to_string(),
        target: target.to_string(),
        read_only,
        options: String::new(),
        create_mountpoint: true,
    })
}

/// Parses `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly]`.
pub fn parse_mount_flag(spec: &str) -> Result<MountConfig, EngineError> {
    let mut kind = None;
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut opts = Vec::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (k, v) {
            ("type", Some(t)) => {
                kind = Some(match t {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    other => return Err(invalid(V::MountType { kind: other.into() })),
                })
            }
            ("source" | "src", Some(s)) => source = s.to_string(),
            ("target" | "destination" | "dst", Some(t)) => target = t.to_string(),
            ("readonly" | "ro", None) => read_only = true,
            ("readonly" | "ro", Some(v)) => read_only = matches!(v, "true" | "1"),
            ("tmpfs-size", Some(v)) => opts.push(format!("size={v}")),
            ("tmpfs-mode", Some(v)) => opts.push(format!("mode={v}")),
            _ => {
                return Err(invalid(V::MountField {
                    field: field.into(),
                    spec: spec.into(),
                }))
            }
        }
    }
    let kind = kind.unwrap_or(MountKind::Volume);
    check_destination(spec, &kind, &target)?;
    if kind == MountKind::Bind && !source.starts_with('/') {
        return Err(invalid(V::BindSourceNotAbsolute { spec: spec.into() }));
    }
    let options = validate_tmpfs_options(spec, &opts.join(","))?;
    Ok(MountConfig {
        kind,
        source,
        target,
        read_only,
        options,
        create_mountpoint: false,
    })
}

/// A mount given as a typed object (the Engine API's `Mount`: `Type`, `Source`, `Target`,
/// `ReadOnly`, `TmpfsOptions`), checked as `--mount` is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs` (anything else is refused).
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `TmpfsOptions.SizeBytes` (0: none), `TmpfsOptions.Mode` (0: none).
    pub tmpfs_size: i64,
    pub tmpfs_mode: u32,
}

/// [`MountSpec`] → the record's mount, with `--mount`'s checks (destination, absolute bind
/// source, tmpfs options); a missing bind source is refused later, as with `--mount`.
pub fn from_spec(m: &MountSpec) -> Result<MountConfig, EngineError> {
    let spec = format!("type={},source={},target={}", m.kind, m.source, m.target);
    let kind = match m.kind.as_str() {
        "bind" => MountKind::Bind,
        "volume" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        other => return Err(invalid(V::MountType { kind: other.into() })),
    };
    check_destination(&spec, &kind, &m.target)?;
    if kind == MountKind::Bind && !m.source.starts_with('/') {
        return Err(invalid(V::BindSourceNotAbsolute { spec }));
    }
    if kind == MountKind::Volume && m.source.contains('/') {
        return Err(invalid(V::VolumeName {
            name: m.source.clone(),
        }));
    }
    let mut opts = Vec::new();
    if m.tmpfs_size < 0 {
        return Err(invalid(V::TmpfsOption {
            option: format!("size={}", m.tmpfs_size),
            spec,
        }));
    }
    if m.tmpfs_size > 0 {
        opts.push(format!("size={}", m.tmpfs_size));
    }
    if m.tmpfs_mode != 0 {
        opts.push(format!("mode={:o}", m.tmpfs_mode & 0o7777));
    }
    if kind != MountKind::Tmpfs && !opts.is_empty() {
        return Err(invalid(V::MountField {
            field: "TmpfsOptions".into(),
            spec,
        }));
    }
    let options = validate_tmpfs_options(&spec, &opts.join(","))?;
    Ok(MountConfig {
        kind,
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        options,
        create_mountpoint: false,
    })
}

/// Parses `--tmpfs /path[:opts]`.
pub fn parse_tmpfs_flag(spec: &str) -> Result<MountConfig, EngineError> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    check_destination(spec, &MountKind::Tmpfs, target)?;
    let mut read_only = false;
    let mut keep = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            other => keep.push(other.to_string()),
        }
    }
    let options = validate_tmpfs_options(spec, &keep.join(","))?;
    Ok(MountConfig {
        kind: MountKind::Tmpfs,
        source: String::new(),
        target: target.to_string(),
        read_only,
        create_mountpoint: false,
        options,
    })
}

/// Only options tmpfs understands and that cannot smuggle anything: size, mode, uid, gid,
/// nr_inodes, nosuid, nodev, noexec, exec, suid, dev.
fn validate_tmpfs_options(spec: &str, opts: &str) -> Result<String, EngineError> {
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        let ok = match k {
            "size" | "nr_inodes" => {
                !v.is_empty()
                    && v.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G', '%'])
                        .bytes()
                        .all(|c| c.is_ascii_digit())
            }
            "mode" => {
                !v.is_empty() && v.len() <= 4 && v.bytes().all(|c| (b'0'..=b'7').contains(&c))
            }
            "uid" | "gid" => !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()),
            "nosuid" | "nodev" | "noexec" | "exec" | "suid" | "dev" => v.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(invalid(V::TmpfsOption {
                option: o.into(),
                spec: spec.into(),
            }));
        }
    }
    Ok(opts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let m = parse_volume_flag("/srv:/data:ro").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.read_only);
        let m = parse_volume_flag("cache:/cache").unwrap();
        assert_eq!(m.kind, MountKind::Volume);
        assert_eq!(m.source, "cache");
        let cwd = Path::new("/home/u/proj");
        for (spec, src) in [
            ("./data:/x", "/home/u/proj/data"),
            (".:/x", "/home/u/proj"),
            ("../other/./d:/x", "/home/u/other/d"),
            ("../../../../..:/x", "/"),
            ("/abs:/x", "/abs"),
        ] {
            let m = parse_volume_flag_from(spec, cwd).unwrap();
            assert_eq!(
                (m.kind, m.source.as_str()),
                (MountKind::Bind, src),
                "{spec}"
            );
            assert!(m.create_mountpoint);
        }
        assert_eq!(
            parse_volume_flag_from("named:/x", cwd).unwrap().kind,
            MountKind::Volume
        );
        assert!(parse_volume_flag("./data:/x").is_err());
        assert!(
            !parse_mount_flag("type=bind,src=/a,dst=/b")
                .unwrap()
                .create_mountpoint
        );
        let m = parse_volume_flag("/anon").unwrap();
        assert_eq!(m.kind, MountKind::Volume);
        assert!(m.source.is_empty());
        for bad in [
            "rel/path:/x",
            "/a:relative",
            "/a:/",
            "/a:/b:bogus",
            "a:b:c:d",
            "/x/../y:/z",
            "/a:/b/../c",
        ] {
            assert!(parse_volume_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_flags() {
        let m = parse_tmpfs_flag("/run:size=64m,mode=1777").unwrap();
        assert_eq!(m.options, "size=64m,mode=1777");
        assert!(parse_tmpfs_flag("/run:size=64m,uid=0,context=x").is_err());
        assert!(parse_tmpfs_flag("relative").is_err());
    }

    #[test]
    fn mount_flags() {
        let m = parse_mount_flag("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.read_only);
        assert!(parse_mount_flag("type=bind,source=a,target=/b").is_err());
        assert!(parse_mount_flag("type=weird,target=/b").is_err());
    }

    #[test]
    fn proc_and_sys_are_not_mount_targets() {
        for t in [
            "/proc",
            "/proc/",
            "//proc",
            "/./proc",
            "/proc/.",
            "/proc/sys",
            "/proc/self/fd",
            "/sys",
            "//sys/./firmware",
            "/sys/firmware/efi",
            "/sys/devices",
            "/sys/devices/virtual",
            "/sys/devices/virtual/powercap/x",
            "/proc/cpuinfo",
        ] {
            assert!(parse_tmpfs_flag(t).is_err(), "--tmpfs {t}");
            assert!(
                parse_mount_flag(&format!("type=tmpfs,target={t}")).is_err(),
                "--mount {t}"
            );
            assert!(
                parse_volume_flag(&format!("vol:{t}")).is_err(),
                "-v vol:{t}"
            );
        }
        for t in [
            "/proc",
            "/proc/kcore",
            "/sys/firmware",
            "/proc/self/../cpuinfo",
        ] {
            assert!(
                parse_volume_flag(&format!("/srv:{t}")).is_err(),
                "-v /srv:{t}"
            );
        }
        let e = parse_tmpfs_flag("//proc/./sys").unwrap_err().to_string();
        assert!(e.contains("/proc/sys cannot be mounted over"), "{e}");
        // lxcfs: binds onto those few /proc files only
        for t in [
            "/proc/cpuinfo",
            "/proc//meminfo",
            "/proc/net/dev",
            "/proc/uptime",
        ] {
            assert!(
                parse_volume_flag(&format!("/var/lib/lxcfs{t}:{t}:ro")).is_ok(),
                "{t}"
            );
        }
        assert!(parse_mount_flag("type=bind,source=/x,target=/proc/stat").is_ok());
        // names that only start like /proc or /sys are fine, and /sys paths that hide nothing
        // masked (systemd in a container: -v /sys/fs/cgroup:/sys/fs/cgroup:ro)
        for t in [
            "/procs",
            "/system",
            "/srv/proc",
            "/sysroot/x",
            "/sys/fs/cgroup",
            "/sys/kernel/security",
        ] {
            assert!(parse_tmpfs_flag(t).is_ok(), "{t}");
        }
    }
}
