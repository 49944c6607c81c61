//! The container's mount table, built inside its own mount namespace: overlay rootfs, /proc,
//! /sys, a tmpfs /dev with Docker's device nodes, devpts, /dev/shm, /dev/mqueue, the spec's
//! bind and tmpfs mounts, masked and read-only paths, then pivot_root.
//!
//! Invariant 2: every target inside the rootfs is resolved once with
//! `wharf_sys::fs::{open,mkdir_all,create_file}_in_root` relative to the rootfs fd, and the
//! mount goes onto that fd — never onto a re-resolved string path.

use super::{fail, Ctx, InitError};
use crate::spec::{ContainerSpec, Mount, MountKind};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use wharf_sys::fs;
use wharf_sys::mount::{self, MountFlags};

const O_PATH_DIR: i32 = nix::libc::O_PATH | nix::libc::O_DIRECTORY;

fn nsne() -> MountFlags {
    MountFlags {
        nosuid: true,
        nodev: true,
        noexec: true,
        ..Default::default()
    }
}

fn mkdir_target(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd, InitError> {
    fs::mkdir_all_in_root(root, Path::new(path), 0o755).ctx(|| format!("create mount point {path}"))
}

fn is_dir(fd: BorrowedFd<'_>) -> Result<bool, InitError> {
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).ctx(|| "fstat".into())?;
    Ok(
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFDIR,
    )
}

/// Builds the rootfs and pivots into it. With sysctls to write, returns the container's
/// `/proc/sys` opened before it was made read-only: init writes them through it once the
/// network is configured (as runc, which writes them before its read-only paths).
pub(super) fn setup_rootfs(spec: &ContainerSpec) -> Result<Option<OwnedFd>, InitError> {
    mount::make_root_rprivate().ctx(|| "make / rprivate".into())?;
    let r = &spec.rootfs;
    mount::mount_overlay(&r.lower, &r.upper, &r.work, &r.target)
        .ctx(|| format!("mount overlay rootfs at {}", r.target.display()))?;
    let root: OwnedFd = std::fs::File::open(&r.target)
        .ctx(|| format!("open rootfs {}", r.target.display()))?
        .into();
    let root = root.as_fd();
    if r.nosuid {
        mount::remount_nosuid(root).ctx(|| "remount rootfs nosuid".into())?;
    }
    let privileged = spec.security.privileged;

    let t = mkdir_target(root, "/proc")?;
    mount::mount_fs("proc", "proc", &[], nsne(), t.as_fd()).ctx(|| "mount /proc".into())?;
    let t = mkdir_target(root, "/sys")?;
    let sys_flags = MountFlags {
        readonly: !privileged,
        ..nsne()
    };
    mount::mount_fs("sysfs", "sysfs", &[], sys_flags, t.as_fd()).ctx(|| "mount /sys".into())?;
    cgroup_view(root, spec)?;
    setup_dev(root, spec)?;
    let proc_sys = if spec.sysctl.is_empty() {
        None
    } else {
        let flags = nix::libc::O_RDONLY | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC;
        Some(
            fs::open_in_root(root, Path::new("/proc/sys"), flags)
                .ctx(|| "open /proc/sys".into())?,
        )
    };

    for m in &spec.mounts {
        user_mount(root, m)?;
    }
    if !privileged {
        for p in &spec.security.masked_paths {
            mask_path(root, p)?;
        }
        for p in &spec.security.readonly_paths {
            readonly_path(root, p)?;
        }
    }
    mount::pivot_root_into(root).ctx(|| format!("pivot_root into {}", r.target.display()))?;
    Ok(proc_sys)
}

/// cgroup v1 (and hybrid) hosts: like runc, a tmpfs at /sys/fs/cgroup with, per hierarchy,
/// a bind mount of the container's own cgroup directory (so tools read their limits from
/// the usual files and see no other cgroup), co-mounted controllers as symlinks; read-only
/// unless privileged. Pure v2: nothing is mounted (the sysfs directory stays empty).
fn cgroup_view(root: BorrowedFd<'_>, spec: &ContainerSpec) -> Result<(), InitError> {
    let views = crate::cgroup::Cgroup::open(&spec.cgroup.path).v1_views();
    if views.is_empty() {
        return Ok(());
    }
    let readonly = !spec.security.privileged;
    let t = mkdir_target(root, "/sys/fs/cgroup")?;
    mount::mount_fs(
        "tmpfs",
        "tmpfs",
        &[("mode", Some("755")), ("size", Some("64k"))],
        nsne(),
        t.as_fd(),
    )
    .ctx(|| "mount tmpfs on /sys/fs/cgroup".into())?;
    // Re-resolved, the path lands on the fresh tmpfs: nothing in it is container-controlled,
    // so single-component *at() calls are safe.
    let cg = fs::open_in_root(root, Path::new("/sys/fs/cgroup"), O_PATH_DIR)
        .ctx(|| "open /sys/fs/cgroup".into())?;
    let cg = cg.as_fd();
    for v in &views {
        let name = OsStr::new(&v.name);
        fs::mkdirat(cg, name, 0o555).ctx(|| format!("mkdir /sys/fs/cgroup/{}", v.name))?;
        let target = fs::openat_nofollow(cg, name, O_PATH_DIR, 0)
            .ctx(|| format!("open /sys/fs/cgroup/{}", v.name))?;
        let src: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_path()
            .open(&v.dir)
            .ctx(|| format!("open cgroup {}", v.dir.display()))?
            .into();
        let reopen = || fs::openat_nofollow(cg, name, nix::libc::O_PATH, 0);
        mount::bind_mount(src.as_fd(), target.as_fd(), false, readonly, &reopen)
            .ctx(|| format!("bind {} on /sys/fs/cgroup/{}", v.dir.display(), v.name))?;
        for l in &v.links {
            fs::symlinkat(Path::new(&v.name), cg, OsStr::new(l))
                .ctx(|| format!("symlink /sys/fs/cgroup/{l}"))?;
        }
    }
    if readonly {
        let top = fs::open_in_root(root, Path::new("/sys/fs/cgroup"), nix::libc::O_PATH)
            .ctx(|| "open /sys/fs/cgroup".into())?;
        mount::remount_readonly(top.as_fd()).ctx(|| "make /sys/fs/cgroup read-only".into())?;
    }
    Ok(())
}

fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

fn setup_dev(root: BorrowedFd<'_>, spec: &ContainerSpec) -> Result<(), InitError> {
    let t = mkdir_target(root, "/dev")?;
    let flags = MountFlags {
        nosuid: true,
        strictatime: true,
        ..Default::default()
    };
    mount::mount_fs(
        "tmpfs",
        "tmpfs",
        &[("mode", Some("755")), ("size", Some("65536k"))],
        flags,
        t.as_fd(),
    )
    .ctx(|| "mount /dev".into())?;
    // Fresh tmpfs: nothing in it is container-controlled, so single-component *at() calls are safe.
    let dev = fs::open_in_root(root, Path::new("/dev"), O_PATH_DIR).ctx(|| "open /dev".into())?;
    let dev = dev.as_fd();
    const S_IFCHR: u32 = 0o020000;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        fs::mknodat(
            dev,
            OsStr::new(name),
            S_IFCHR | 0o666,
            makedev(major, minor),
        )
        .ctx(|| format!("mknod /dev/{name}"))?;
    }
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
        ("/proc/kcore", "core"),
    ] {
        fs::symlinkat(Path::new(target), dev, OsStr::new(name))
            .ctx(|| format!("symlink /dev/{name}"))?;
    }
    let sub = |name: &str, mode: u32| -> Result<OwnedFd, InitError> {
        fs::mkdirat(dev, OsStr::new(name), mode).ctx(|| format!("mkdir /dev/{name}"))?;
        fs::openat_nofollow(dev, OsStr::new(name), O_PATH_DIR, 0)
            .ctx(|| format!("open /dev/{name}"))
    };
    let pts = sub("pts", 0o755)?;
    mount::mount_fs(
        "devpts",
        "devpts",
        &[
            ("newinstance", None),
            ("ptmxmode", Some("0666")),
            ("mode", Some("0620")),
            ("gid", Some("5")),
        ],
        MountFlags {
            nosuid: true,
            noexec: true,
            ..Default::default()
        },
        pts.as_fd(),
    )
    .ctx(|| "mount /dev/pts".into())?;
    make_devices(dev, &spec.devices)?;
    let shm = sub("shm", 0o1777)?;
    let host_shm = match &spec.ipc {
        crate::spec::Ipc::Private => None,
        crate::spec::Ipc::Host => Some(Path::new("/dev/shm")),
        crate::spec::Ipc::Shareable { shm } | crate::spec::Ipc::Join { shm, .. } => {
            Some(shm.as_path())
        }
    };
    if let Some(host_shm) = host_shm {
        // a host path (the host's /dev/shm, or a tmpfs the engine mounted for a shareable
        // container): bound, so every member of the IPC namespace sees the same files
        use std::os::unix::fs::OpenOptionsExt;
        let src: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_PATH_DIR | nix::libc::O_NOFOLLOW)
            .open(host_shm)
            .ctx(|| format!("open {}", host_shm.display()))?
            .into();
        let never = || Err(std::io::Error::from_raw_os_error(nix::libc::EINVAL));
        mount::bind_mount(src.as_fd(), shm.as_fd(), false, false, &never)
            .ctx(|| format!("bind {} at /dev/shm", host_shm.display()))?;
        return mqueue(dev);
    }
    let shm_size = match spec.shm_size {
        Some(bytes) => format!("{}k", bytes.div_ceil(1024)),
        None => "65536k".to_string(),
    };
    mount::mount_fs(
        "tmpfs",
        "shm",
        &[("mode", Some("1777")), ("size", Some(&shm_size))],
        nsne(),
        shm.as_fd(),
    )
    .ctx(|| "mount /dev/shm".into())?;
    mqueue(dev)
}

/// /dev/mqueue for the container's IPC namespace (mounted after it was joined).
fn mqueue(dev: BorrowedFd<'_>) -> Result<(), InitError> {
    fs::mkdirat(dev, OsStr::new("mqueue"), 0o755).ctx(|| "mkdir /dev/mqueue".into())?;
    let mq = fs::openat_nofollow(dev, OsStr::new("mqueue"), O_PATH_DIR, 0)
        .ctx(|| "open /dev/mqueue".into())?;
    mount::mount_fs("mqueue", "mqueue", &[], nsne(), mq.as_fd())
        .ctx(|| "mount /dev/mqueue".into())?;
    Ok(())
}

/// `--device`: each node re-created below the fresh /dev tmpfs (parents made as
/// directories), with the host node's numbers, mode and owner. The path was checked by the
/// engine (absolute, below /dev, no `..`); it is checked again here.
fn make_devices(dev: BorrowedFd<'_>, devices: &[crate::spec::Device]) -> Result<(), InitError> {
    const S_IFCHR: u32 = 0o020000;
    const S_IFBLK: u32 = 0o060000;
    for d in devices {
        let rel = d
            .path
            .strip_prefix("/dev/")
            .filter(|r| {
                !r.is_empty()
                    && Path::new(r)
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .ok_or_else(|| super::fail(format!("device path {:?} is not below /dev", d.path)))?;
        let kind = match d.kind {
            'c' => S_IFCHR,
            'b' => S_IFBLK,
            k => {
                return Err(super::fail(format!(
                    "device {}: unknown type {k:?}",
                    d.path
                )))
            }
        };
        let mut parent: OwnedFd = fs::reopen_dir(dev, O_PATH_DIR).ctx(|| "open /dev".into())?;
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        let (name, dirs) = comps
            .split_last()
            .ok_or_else(|| super::fail(format!("device path {:?} has no name", d.path)))?;
        for c in dirs {
            match fs::mkdirat(parent.as_fd(), OsStr::new(c), 0o755) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).ctx(|| format!("mkdir for device {}", d.path)),
            }
            parent = fs::openat_nofollow(parent.as_fd(), OsStr::new(c), O_PATH_DIR, 0)
                .ctx(|| format!("open directory for device {}", d.path))?;
        }
        let _ = fs::unlinkat(parent.as_fd(), OsStr::new(name), false);
        fs::mknodat(
            parent.as_fd(),
            OsStr::new(name),
            kind | (d.mode & 0o7777),
            makedev(d.major, d.minor),
        )
        .ctx(|| format!("mknod {}", d.path))?;
        fs::lchown_at(parent.as_fd(), OsStr::new(name), d.uid, d.gid)
            .ctx(|| format!("chown {}", d.path))?;
    }
    Ok(())
}

pub(crate) fn user_mount(root: BorrowedFd<'_>, m: &Mount) -> Result<(), InitError> {
    let dest = Path::new(&m.destination);
    match m.kind {
        MountKind::Bind => {
            let src: OwnedFd = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_path()
                .open(&m.source)
                .ctx(|| format!("bind source {}", m.source.display()))?
                .into();
            let target = if is_dir(src.as_fd())? {
                mkdir_target(root, &m.destination)?
            } else {
                if let Some(parent) = dest.parent() {
                    fs::mkdir_all_in_root(root, parent, 0o755)
                        .ctx(|| format!("create mount point parent of {}", m.destination))?;
                }
                fs::create_file_in_root(root, dest, 0o644)
                    .ctx(|| format!("create mount point {}", m.destination))?
            };
            let reopen = || fs::open_in_root(root, dest, nix::libc::O_PATH);
            mount::bind_mount(src.as_fd(), target.as_fd(), true, m.readonly, &reopen)
                .ctx(|| format!("bind mount {} on {}", m.source.display(), m.destination))
        }
        MountKind::Tmpfs => {
            let target = mkdir_target(root, &m.destination)?;
            let mut flags = MountFlags {
                readonly: m.readonly,
                ..nsne()
            };
            let mut opts: Vec<(&str, Option<&str>)> = Vec::new();
            for o in m.options.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => flags.readonly = true,
                    "rw" => flags.readonly = false,
                    "suid" => flags.nosuid = false,
                    "nosuid" => flags.nosuid = true,
                    "dev" => flags.nodev = false,
                    "nodev" => flags.nodev = true,
                    "exec" => flags.noexec = false,
                    "noexec" => flags.noexec = true,
                    _ => opts.push(match o.split_once('=') {
                        Some((k, v)) => (k, Some(v)),
                        None => (o, None),
                    }),
                }
            }
            mount::mount_fs("tmpfs", "tmpfs", &opts, flags, target.as_fd())
                .ctx(|| format!("mount tmpfs on {} ({})", m.destination, m.options))
        }
    }
}

trait PathFlag {
    fn custom_flags_path(&mut self) -> &mut Self;
}
impl PathFlag for std::fs::OpenOptions {
    fn custom_flags_path(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(nix::libc::O_PATH)
    }
}

fn open_existing(root: BorrowedFd<'_>, p: &str) -> Result<Option<OwnedFd>, InitError> {
    match fs::open_in_root(root, Path::new(p), nix::libc::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(None),
        Err(e) => Err(fail(format!("open {p}: {e}"))),
    }
}

/// Files get /dev/null bound over them, directories a read-only empty tmpfs.
fn mask_path(root: BorrowedFd<'_>, p: &str) -> Result<(), InitError> {
    let Some(fd) = open_existing(root, p)? else {
        return Ok(());
    };
    if is_dir(fd.as_fd())? {
        let flags = MountFlags {
            readonly: true,
            ..Default::default()
        };
        mount::mount_fs("tmpfs", "tmpfs", &[], flags, fd.as_fd()).ctx(|| format!("mask {p}"))
    } else {
        let null = fs::open_in_root(root, Path::new("/dev/null"), nix::libc::O_PATH)
            .ctx(|| "open /dev/null".into())?;
        let never = || Err(std::io::Error::from_raw_os_error(nix::libc::EINVAL));
        mount::bind_mount(null.as_fd(), fd.as_fd(), false, false, &never)
            .ctx(|| format!("mask {p}"))
    }
}

fn readonly_path(root: BorrowedFd<'_>, p: &str) -> Result<(), InitError> {
    let Some(fd) = open_existing(root, p)? else {
        return Ok(());
    };
    let reopen = || fs::open_in_root(root, Path::new(p), nix::libc::O_PATH);
    mount::bind_mount(fd.as_fd(), fd.as_fd(), true, true, &reopen)
        .ctx(|| format!("make {p} read-only"))
}
