//! Mounting for the container init: the new mount API (fsopen/fsconfig/fsmount/move_mount/
//! open_tree/mount_setattr, Linux 5.2+/5.12+) with legacy mount(2) fallback, overlay rootfs,
//! pivot_root. Every target inside a container rootfs is an already-resolved fd (invariant 2):
//! the new API moves the mount onto the fd, the legacy path mounts onto `/proc/self/fd/<n>`.
//!
//! Must not: resolve container paths by string, or decide what to mount (wharf-runtime does).

use crate::features::{force_disabled, Feature};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// Per-mount flags, shared by both APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    pub strictatime: bool,
}

impl MountFlags {
    fn attr(self) -> u64 {
        let mut a = 0;
        if self.readonly {
            a |= MOUNT_ATTR_RDONLY;
        }
        if self.nosuid {
            a |= MOUNT_ATTR_NOSUID;
        }
        if self.nodev {
            a |= MOUNT_ATTR_NODEV;
        }
        if self.noexec {
            a |= MOUNT_ATTR_NOEXEC;
        }
        if self.strictatime {
            a |= MOUNT_ATTR_STRICTATIME;
        }
        a
    }
    fn ms(self) -> libc::c_ulong {
        let mut m = 0;
        if self.readonly {
            m |= libc::MS_RDONLY;
        }
        if self.nosuid {
            m |= libc::MS_NOSUID;
        }
        if self.nodev {
            m |= libc::MS_NODEV;
        }
        if self.noexec {
            m |= libc::MS_NOEXEC;
        }
        if self.strictatime {
            m |= libc::MS_STRICTATIME;
        }
        m
    }
}

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fd_path(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

fn owned(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt(r)? as RawFd;
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the new mount API can be used (kernel has it and `WHARF_DISABLE` does not name
/// `mountapi`).
pub fn mount_api_available() -> bool {
    static AVAIL: OnceLock<bool> = OnceLock::new();
    if force_disabled(Feature::MountApi) {
        return false;
    }
    *AVAIL.get_or_init(|| match fsopen("tmpfs") {
        Ok(_) => true,
        Err(e) => e.raw_os_error() != Some(libc::ENOSYS),
    })
}

fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let t = cstr(fstype)?;
    // SAFETY: valid C string; returns a new fd.
    owned(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })
}

fn fsconfig(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> io::Result<()> {
    let k = cstr(key)?;
    let v = value.map(cstr).transpose()?;
    let (cmd, vp) = match &v {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: valid fd and C strings (or NULL value for a flag); the kernel only reads them.
    cvt(unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, k.as_ptr(), vp, 0) })
        .map(|_| ())
}

fn fs_create_and_mount(fs: BorrowedFd<'_>, attr: u64) -> io::Result<OwnedFd> {
    // SAFETY: valid fd, NULL key/value for CMD_CREATE.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: valid fs context fd; returns a new mount fd.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attr) })
}

fn move_mount_to(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both fds valid, empty paths with the *_EMPTY_PATH flags.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(|_| ())
}

fn legacy_mount(
    source: Option<&CString>,
    target: &CString,
    fstype: Option<&CString>,
    flags: libc::c_ulong,
    data: Option<&CString>,
) -> io::Result<()> {
    // SAFETY: all pointers are valid C strings or NULL; the kernel copies them.
    cvt(unsafe {
        libc::mount(
            source.map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |s| s.as_ptr() as *const libc::c_void),
        )
    } as libc::c_long)
    .map(|_| ())
}

/// Mount a new filesystem instance of `fstype` onto the directory `target` (an O_PATH fd
/// resolved inside the rootfs). `opts` are `key=value` (Some) or flag (None) options.
pub fn mount_fs(
    fstype: &str,
    source: &str,
    opts: &[(&str, Option<&str>)],
    flags: MountFlags,
    target: BorrowedFd<'_>,
) -> io::Result<()> {
    if mount_api_available() {
        let fs = fsopen(fstype)?;
        let fsb = borrow(&fs);
        fsconfig(fsb, "source", Some(source))?;
        for (k, v) in opts {
            fsconfig(fsb, k, *v)?;
        }
        let m = fs_create_and_mount(fsb, flags.attr())?;
        return move_mount_to(borrow(&m), target);
    }
    let data: Vec<String> = opts
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => (*k).to_string(),
        })
        .collect();
    let data = cstr(&data.join(","))?;
    legacy_mount(
        Some(&cstr(source)?),
        &fd_path(target),
        Some(&cstr(fstype)?),
        flags.ms(),
        Some(&data),
    )
}

fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// Bind `source` (an O_PATH fd of a file or directory) onto `target` (an O_PATH fd resolved in
/// the rootfs). With `readonly`, the new mount is made read-only: atomically before it becomes
/// visible with mount_setattr, otherwise by a remount of the fd `reopen` returns (the target
/// re-resolved inside the rootfs, which now lands on the new mount).
pub fn bind_mount(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    readonly: bool,
    reopen: &dyn Fn() -> io::Result<OwnedFd>,
) -> io::Result<()> {
    if mount_api_available() {
        let empty = c"";
        let mut flags =
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
        if recursive {
            flags |= AT_RECURSIVE;
        }
        // SAFETY: valid fd and empty path with AT_EMPTY_PATH; returns a new detached tree fd.
        let tree = owned(unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                source.as_raw_fd(),
                empty.as_ptr(),
                flags,
            )
        })?;
        let mut need_remount = false;
        if readonly {
            match setattr(borrow(&tree), MOUNT_ATTR_RDONLY, recursive) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => need_remount = true,
                Err(e) => return Err(e),
            }
        }
        move_mount_to(borrow(&tree), target)?;
        if need_remount {
            remount_readonly(borrow(&tree))?;
        }
        return Ok(());
    }
    let mut ms = libc::MS_BIND;
    if recursive {
        ms |= libc::MS_REC;
    }
    legacy_mount(Some(&fd_path(source)), &fd_path(target), None, ms, None)?;
    if readonly {
        let fd = reopen()?;
        remount_readonly(borrow(&fd))?;
    }
    Ok(())
}

/// A read-only, detached bind mount of the file `path` resolves to (magic links such as
/// `/proc/self/exe` included), as an `O_PATH` fd. The mount is in no namespace and lives as long
/// as the fd (or a process executing through it); opening the file through it for writing fails
/// with EROFS, and only CAP_SYS_ADMIN in the initial user namespace could make it writable.
/// Needs open_tree (5.2) and mount_setattr (5.12); `WHARF_DISABLE=mountapi` refuses it.
pub fn readonly_file_view(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    if force_disabled(Feature::MountApi) {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: valid NUL-terminated path; returns a new detached tree fd that we own.
    let tree =
        owned(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })?;
    setattr(borrow(&tree), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV, false)?;
    Ok(tree)
}

fn setattr(tree: BorrowedFd<'_>, attr_set: u64, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let empty = c"";
    // SAFETY: valid fd, empty path, and a mount_attr struct of the size we pass.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(|_| ())
}

/// The per-mount flags a legacy `MS_BIND|MS_REMOUNT` must repeat to keep them.
const KEPT_ON_REMOUNT: libc::c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME;

/// Bind-remounts the mount `target` names (whose current flags statvfs gave as `current`)
/// adding `add`, keeping the flags it already has.
fn remount_adding(
    target: &CString,
    current: nix::Result<nix::sys::statvfs::Statvfs>,
    add: libc::c_ulong,
) -> io::Result<()> {
    let keep = current.map_or(0, |s| s.flags().bits() as libc::c_ulong) & KEPT_ON_REMOUNT;
    legacy_mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | add | keep,
        None,
    )
}

/// Remount the mount whose root `fd` refers to read-only, keeping its nosuid/nodev/noexec/atime
/// flags (legacy MS_BIND|MS_REMOUNT; the fd must be the mount's root, e.g. freshly re-resolved).
pub fn remount_readonly(fd: BorrowedFd<'_>) -> io::Result<()> {
    remount_adding(
        &fd_path(fd),
        nix::sys::statvfs::fstatvfs(fd),
        libc::MS_RDONLY,
    )
}

/// Remount the mount whose root `fd` refers to `nosuid`, keeping its other flags (the admin
/// policy's `nosuid` rootfs; the fd must be the mount's root).
pub fn remount_nosuid(fd: BorrowedFd<'_>) -> io::Result<()> {
    remount_adding(
        &fd_path(fd),
        nix::sys::statvfs::fstatvfs(fd),
        libc::MS_NOSUID,
    )
}

/// Remount `/` read-only (after pivot_root; `--read-only`).
pub fn remount_root_readonly() -> io::Result<()> {
    remount_adding(
        &cstr("/")?,
        nix::sys::statvfs::statvfs("/"),
        libc::MS_RDONLY,
    )
}

/// `mount --make-rprivate /`: nothing we mount propagates back to the host.
pub fn make_root_rprivate() -> io::Result<()> {
    legacy_mount(
        None,
        &cstr("/")?,
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
}

fn check_overlay_path(p: &Path) -> io::Result<&str> {
    let s = p
        .to_str()
        .filter(|s| s.starts_with('/') && !s.contains([',', ':', '\\', '\n']))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "overlay layer path {} must be absolute and free of ',' ':' '\\'",
                    p.display()
                ),
            )
        })?;
    Ok(s)
}

/// Mount an overlay (`lower` topmost first) at `target`. New API first (one `lowerdir+` per layer
/// on Linux 6.8+, else one `lowerdir` when it fits fsconfig's 256-byte value limit), otherwise
/// mount(2); when its options exceed a page, lowerdirs are made relative to their common parent
/// (which becomes the working directory for the call).
pub fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    if lower.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay needs at least one lower layer",
        ));
    }
    let lowers = lower
        .iter()
        .map(|p| check_overlay_path(p))
        .collect::<io::Result<Vec<_>>>()?;
    let upper_s = check_overlay_path(upper)?;
    let work_s = check_overlay_path(work)?;
    let target_c = cpath(target)?;
    if mount_api_available() && upper_s.len() < 256 && work_s.len() < 256 {
        if let Some(()) = overlay_new_api(&lowers, upper_s, work_s, &target_c)? {
            return Ok(());
        }
    }
    let data = format!(
        "lowerdir={},upperdir={upper_s},workdir={work_s}",
        lowers.join(":")
    );
    let ovl = cstr("overlay")?;
    if data.len() < 4096 {
        return legacy_mount(Some(&ovl), &target_c, Some(&ovl), 0, Some(&cstr(&data)?));
    }
    // Too long for one page: use paths relative to the deepest common parent.
    let mut common = PathBuf::from(lowers[0]);
    while !lowers.iter().all(|l| Path::new(l).starts_with(&common)) {
        if !common.pop() {
            break;
        }
    }
    let rel: Vec<String> = lowers
        .iter()
        .map(|l| {
            Path::new(l)
                .strip_prefix(&common)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let data = format!(
        "lowerdir={},upperdir={upper_s},workdir={work_s}",
        rel.join(":")
    );
    if data.len() >= 4096 || rel.iter().any(|r| r.is_empty()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options too long ({} bytes, {} layers) for mount(2)",
                data.len(),
                lowers.len()
            ),
        ));
    }
    let old = std::env::current_dir()?;
    std::env::set_current_dir(&common)?;
    let r = legacy_mount(Some(&ovl), &target_c, Some(&ovl), 0, Some(&cstr(&data)?));
    std::env::set_current_dir(old)?;
    r
}

/// `Ok(None)`: the new API cannot express this overlay (old kernel), use mount(2).
fn overlay_new_api(
    lowers: &[&str],
    upper: &str,
    work: &str,
    target: &CString,
) -> io::Result<Option<()>> {
    let fs = fsopen("overlay")?;
    let fsb = borrow(&fs);
    fsconfig(fsb, "source", Some("overlay"))?;
    match fsconfig(fsb, "lowerdir+", Some(lowers[0])) {
        Ok(()) => {
            for l in &lowers[1..] {
                fsconfig(fsb, "lowerdir+", Some(l))?;
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let joined = lowers.join(":");
            if joined.len() >= 256 {
                return Ok(None);
            }
            fsconfig(fsb, "lowerdir", Some(&joined))?;
        }
        Err(e) => return Err(e),
    }
    fsconfig(fsb, "upperdir", Some(upper))?;
    fsconfig(fsb, "workdir", Some(work))?;
    let m = fs_create_and_mount(fsb, 0)?;
    let empty = c"";
    // SAFETY: valid mount fd, empty source path with F_EMPTY_PATH, valid C string target.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            m.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(Some(()))
}

/// pivot_root into the directory `new_root` (a mount point): `pivot_root(".", ".")` then lazily
/// detach the old root stacked on top, leaving the process at `/` of the new root.
pub fn pivot_root_into(new_root: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fchdir(new_root.as_raw_fd())?;
    nix::unistd::pivot_root(".", ".")?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Lazily unmount `path` (test cleanup, error paths).
pub fn umount_detach(path: &Path) -> io::Result<()> {
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
}
