//! Path resolution inside untrusted trees (invariant 2) and the `*at()` primitives layer
//! application needs.
//!
//! Owns: resolving a path relative to a directory fd exactly once, in two flavours:
//! - *beneath, no symlinks* (`open_beneath_nofollow`, `mkdir_all_beneath`): every component
//!   must be a real directory/file below the root; any symlink fails with `ELOOP`, any `..`
//!   or absolute path with `EXDEV`. Used when unpacking a layer.
//! - *in root* (`open_in_root`, `mkdir_all_in_root`, `create_file_in_root`): chroot-like;
//!   symlinks are followed but absolute targets and `..` are clamped to the root. Used when
//!   preparing mount targets inside a container rootfs.
//!
//! Each uses `openat2(2)` when the kernel has it (see [`crate::openat2::available`]) and a
//! component-by-component walk otherwise. The walks open one component at a time with
//! `O_NOFOLLOW` relative to the fd of the directory they are in, read symlinks with
//! `readlinkat` and interpret them themselves, and implement `..` by popping their own stack
//! of directory fds, so they never look anything up by string outside the root, even if the
//! tree is modified concurrently (a race can only make them fail). They are `pub` so callers'
//! tests can force them (`*_fallback`).
//!
//! Must not: take raw fd integers, follow a symlink it did not read itself, or re-resolve a
//! path by string from `/`.

use crate::openat2::{
    self, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};
use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before giving up with `ELOOP` (the kernel's limit).
pub const MAX_SYMLINKS: u32 = 40;

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| err(libc::EINVAL))
}

/// A single path component: non-empty, no `/`, not `.` or `..`.
fn name_cstring(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(err(libc::EINVAL));
    }
    cstring(name)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `/proc/self/fd/N`: a path naming the object an fd refers to (for mount targets and for
/// operations that have no fd variant usable with `O_PATH`).
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn raw_openat(dir: BorrowedFd<'_>, name: &CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is a live fd borrowed
        // for the duration of the call. The result, if non-negative, is a new fd we own.
        let r = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if r >= 0 {
            // SAFETY: openat returned a fresh descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Re-opens the directory `dir` itself (`openat(dir, ".")`) with `flags`.
pub fn reopen_dir(dir: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    raw_openat(dir, &cstring(OsStr::new("."))?, flags, 0)
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)` for a single component `name`.
pub fn openat_nofollow(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    raw_openat(dir, &name_cstring(name)?, flags | libc::O_NOFOLLOW, mode)
}

/// `mkdirat(dir, name, mode)` (mode is subject to the umask; chmod afterwards if it matters).
pub fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = name_cstring(name)?;
    // SAFETY: valid NUL-terminated name and a live dir fd; the kernel only reads them.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `mknodat(dir, name, mode, dev)`; `mode` includes the file type (`S_IFCHR`, `S_IFIFO`, ...).
pub fn mknodat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, dev: u64) -> io::Result<()> {
    let c = name_cstring(name)?;
    // SAFETY: valid NUL-terminated name and a live dir fd; the kernel only reads them.
    cvt(unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            c.as_ptr(),
            mode as libc::mode_t,
            dev as libc::dev_t,
        )
    })
    .map(drop)
}

/// `symlinkat(target, dir, name)`. The target is stored verbatim, never resolved here.
pub fn symlinkat(target: &Path, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = name_cstring(name)?;
    let t = cstring(target.as_os_str())?;
    // SAFETY: both strings are NUL-terminated; `dir` is live; the kernel only reads them.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) }).map(drop)
}

/// `linkat(olddir, oldname, newdir, newname, 0)`: never follows a symlink at `oldname`.
pub fn linkat(
    olddir: BorrowedFd<'_>,
    oldname: &OsStr,
    newdir: BorrowedFd<'_>,
    newname: &OsStr,
) -> io::Result<()> {
    let o = name_cstring(oldname)?;
    let n = name_cstring(newname)?;
    // SAFETY: NUL-terminated names and live dir fds; the kernel only reads them.
    cvt(unsafe {
        libc::linkat(
            olddir.as_raw_fd(),
            o.as_ptr(),
            newdir.as_raw_fd(),
            n.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// `unlinkat(dir, name, AT_REMOVEDIR if dir_flag)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &OsStr, remove_dir: bool) -> io::Result<()> {
    let c = name_cstring(name)?;
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: NUL-terminated name and a live dir fd; the kernel only reads them.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let c = name_cstring(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer of the right type; name/dir as above.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it fully initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstat(fd)` (works on `O_PATH` fds).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer; `fd` is live.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it fully initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// `readlinkat(dir, name)`; `EINVAL` if `name` is not a symlink.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<PathBuf> {
    let c = name_cstring(name)?;
    readlink_raw(dir, &c)
}

fn readlink_raw(dir: BorrowedFd<'_>, c: &CString) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes; name/dir as above.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(OsString::from_vec(buf)));
        }
        if buf.len() >= 65536 {
            return Err(err(libc::ENAMETOOLONG));
        }
        let l = buf.len() * 2;
        buf.resize(l, 0);
    }
}

/// Reads the target of an `O_PATH|O_NOFOLLOW` fd that refers to a symlink.
fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    readlink_raw(fd, &cstring(OsStr::new(""))?)
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`.
pub fn lchown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let c = name_cstring(name)?;
    // SAFETY: NUL-terminated name and a live dir fd; the kernel only reads them.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// chown of the object `fd` refers to (also works on `O_PATH` fds, via `AT_EMPTY_PATH`).
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let empty = cstring(OsStr::new(""))?;
    // SAFETY: empty NUL-terminated name with AT_EMPTY_PATH operates on `fd` itself.
    cvt(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            empty.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// chmod of the object `fd` refers to; `fchmod` for ordinary fds, `/proc/self/fd/N` for
/// `O_PATH` fds (which `fchmod` rejects). Never call it on an fd referring to a symlink.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: `fd` is live; fchmod only reads its arguments.
    let r = unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EBADF) {
        return Err(e);
    }
    let p = cstring(fd_path(fd).as_os_str())?;
    // SAFETY: NUL-terminated path; chmod follows the /proc magic link to `fd`'s inode.
    cvt(unsafe { libc::chmod(p.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// chmod of `dir/name` without following a symlink at `name`: `fchmodat2(AT_SYMLINK_NOFOLLOW)`
/// (Linux 6.6) or, before that, open `O_PATH|O_NOFOLLOW` + [`chmod_fd`]. On a symlink this
/// fails with `EOPNOTSUPP` (Linux has no symlink modes).
pub fn lchmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = name_cstring(name)?;
    // fchmodat2 has the same number on every architecture (asm-generic table, Linux 6.6).
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: NUL-terminated name and a live dir fd; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
            c.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) {
        return Err(e);
    }
    let fd = raw_openat(dir, &c, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let st = fstat(fd.as_fd())?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(err(libc::EOPNOTSUPP));
    }
    chmod_fd(fd.as_fd(), mode)
}

/// `utimensat(dir, name, [atime, mtime], AT_SYMLINK_NOFOLLOW)`; times are (seconds, nanos).
pub fn lutimens_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    atime: (i64, i64),
    mtime: (i64, i64),
) -> io::Result<()> {
    let c = name_cstring(name)?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0 as libc::time_t,
            tv_nsec: atime.1 as _,
        },
        libc::timespec {
            tv_sec: mtime.0 as libc::time_t,
            tv_nsec: mtime.1 as _,
        },
    ];
    // SAFETY: `ts` is an array of two valid timespecs; name/dir as above.
    cvt(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

fn xattr_name(attr: &str) -> io::Result<CString> {
    CString::new(attr).map_err(|_| err(libc::EINVAL))
}

/// Path `/proc/self/fd/<dir>/<name>`: resolving it follows the magic link to `dir` and then
/// looks up the single component `name` there.
fn at_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    name_cstring(name)?;
    let mut p = fd_path(dir).into_os_string();
    p.push("/");
    p.push(name);
    cstring(&p)
}

/// `lsetxattr` on `dir/name` (does not follow a symlink at `name`).
pub fn lsetxattr_at(dir: BorrowedFd<'_>, name: &OsStr, attr: &str, value: &[u8]) -> io::Result<()> {
    let p = at_path(dir, name)?;
    let a = xattr_name(attr)?;
    // SAFETY: path and attr are NUL-terminated; `value` is readable for its length.
    cvt(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            a.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// `lgetxattr` on `dir/name`; `Ok(None)` when the attribute is absent.
pub fn lgetxattr_at(dir: BorrowedFd<'_>, name: &OsStr, attr: &str) -> io::Result<Option<Vec<u8>>> {
    let p = at_path(dir, name)?;
    let a = xattr_name(attr)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is writable for its length; path/attr are NUL-terminated.
        let n =
            unsafe { libc::lgetxattr(p.as_ptr(), a.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 65536 => {
                let l = buf.len() * 4;
                buf.resize(l, 0);
            }
            _ => return Err(e),
        }
    }
}

/// `fsetxattr(fd)`, or `setxattr(/proc/self/fd/N)` for `O_PATH` fds.
pub fn fsetxattr(fd: BorrowedFd<'_>, attr: &str, value: &[u8]) -> io::Result<()> {
    let a = xattr_name(attr)?;
    // SAFETY: attr is NUL-terminated; `value` is readable for its length; `fd` is live.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            a.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EBADF) {
        return Err(e);
    }
    let p = cstring(fd_path(fd).as_os_str())?;
    // SAFETY: as above; the path is the /proc magic link for `fd`.
    cvt(unsafe {
        libc::setxattr(
            p.as_ptr(),
            a.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

// ---------------------------------------------------------------------------------------
// Beneath, no symlinks.

/// The normal components of a relative path; `..`/absolute → `EXDEV` (as openat2 reports an
/// escape), `.` skipped.
fn beneath_components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut v = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => v.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(err(libc::EXDEV))
            }
        }
    }
    Ok(v)
}

fn is_symlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    lstat_at(dir, name)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        .unwrap_or(false)
}

/// Opens a directory component with `O_PATH|O_DIRECTORY|O_NOFOLLOW`; a symlink → `ELOOP`.
fn open_dir_component(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    match openat_nofollow(dir, name, libc::O_PATH | libc::O_DIRECTORY, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && is_symlink_at(dir, name) => {
            Err(err(libc::ELOOP))
        }
        r => r,
    }
}

fn utf8(p: &Path) -> Option<&str> {
    p.to_str()
}

/// Opens `rel` (relative; no `..`) below `root` with `flags`, failing with `ELOOP` if any
/// component, including the last, is a symlink. `O_CREAT` is not supported (`EINVAL`): open
/// the parent with [`mkdir_all_beneath`] and create with [`openat_nofollow`].
pub fn open_beneath_nofollow(root: BorrowedFd<'_>, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    if flags & libc::O_CREAT != 0 {
        return Err(err(libc::EINVAL));
    }
    let comps = beneath_components(rel)?;
    if comps.is_empty() {
        return reopen_dir(root, flags);
    }
    if let Some(s) = utf8(rel) {
        if let Some(fd) = openat2::openat2(
            root,
            s,
            flags,
            0,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        )? {
            return Ok(fd);
        }
    }
    open_beneath_nofollow_fallback(root, rel, flags)
}

/// The component walk behind [`open_beneath_nofollow`] (used when openat2 is unavailable).
pub fn open_beneath_nofollow_fallback(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: i32,
) -> io::Result<OwnedFd> {
    if flags & libc::O_CREAT != 0 {
        return Err(err(libc::EINVAL));
    }
    let comps = beneath_components(rel)?;
    let Some((last, parents)) = comps.split_last() else {
        return reopen_dir(root, flags);
    };
    let mut cur: Option<OwnedFd> = None;
    for c in parents {
        let dir = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
        cur = Some(open_dir_component(dir, c)?);
    }
    let dir = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
    match openat_nofollow(dir, last, flags, 0) {
        Ok(fd) => {
            // O_PATH|O_NOFOLLOW hands back the symlink itself instead of failing.
            if flags & libc::O_PATH != 0
                && fstat(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK
            {
                return Err(err(libc::ELOOP));
            }
            Ok(fd)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && is_symlink_at(dir, last) => {
            Err(err(libc::ELOOP))
        }
        Err(e) => Err(e),
    }
}

/// Creates the directories of `rel` below `root` as needed (like `mkdir -p`, `mode` subject to
/// the umask) and returns an `O_PATH|O_DIRECTORY` fd of the last one. Any symlink component →
/// `ELOOP`; an existing non-directory → `ENOTDIR`. The returned fd works as the dir fd of
/// `*at()` calls and, via [`fd_path`], as a path.
pub fn mkdir_all_beneath(root: BorrowedFd<'_>, rel: &Path, mode: u32) -> io::Result<OwnedFd> {
    let comps = beneath_components(rel)?;
    if comps.is_empty() {
        return reopen_dir(root, libc::O_PATH | libc::O_DIRECTORY);
    }
    if let Some(s) = utf8(rel) {
        match openat2::openat2(
            root,
            s,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(Some(fd)) => return Ok(fd),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    mkdir_all_beneath_fallback(root, rel, mode)
}

/// The component walk behind [`mkdir_all_beneath`].
pub fn mkdir_all_beneath_fallback(
    root: BorrowedFd<'_>,
    rel: &Path,
    mode: u32,
) -> io::Result<OwnedFd> {
    let comps = beneath_components(rel)?;
    let mut cur: Option<OwnedFd> = None;
    for c in comps {
        let dir = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
        let fd = match open_dir_component(dir, c) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match mkdirat(dir, c, mode) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                    _ => {}
                }
                open_dir_component(dir, c)?
            }
            r => r?,
        };
        cur = Some(fd);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => reopen_dir(root, libc::O_PATH | libc::O_DIRECTORY),
    }
}

// ---------------------------------------------------------------------------------------
// In root (chroot-like).

fn in_root_queue(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Walk state: the fds of the directories from the root down to the current one.
struct Walk<'a> {
    root: BorrowedFd<'a>,
    stack: Vec<OwnedFd>,
    queue: VecDeque<OsString>,
    links: u32,
}

impl<'a> Walk<'a> {
    fn cur(&self) -> BorrowedFd<'_> {
        self.stack.last().map(|f| f.as_fd()).unwrap_or(self.root)
    }

    /// Queues the components of a symlink target in front of the remaining ones; an absolute
    /// target restarts at the root.
    fn follow(&mut self, target: &Path) -> io::Result<()> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(err(libc::ELOOP));
        }
        if target.as_os_str().is_empty() {
            return Err(err(libc::ENOENT));
        }
        if target.is_absolute() {
            self.stack.clear();
        }
        for c in in_root_queue(target).into_iter().rev() {
            self.queue.push_front(c);
        }
        Ok(())
    }

    /// Descends into directory component `c`, following symlinks; `mkdir`: create if missing.
    fn enter_dir(&mut self, c: OsString, mkdir: Option<u32>) -> io::Result<()> {
        let mut created = false;
        loop {
            let dir = self.cur();
            match openat_nofollow(dir, &c, libc::O_PATH | libc::O_DIRECTORY, 0) {
                Ok(fd) => {
                    self.stack.push(fd);
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => match readlinkat(dir, &c) {
                    Ok(target) => return self.follow(&target),
                    Err(le) if le.raw_os_error() == Some(libc::EINVAL) => return Err(e),
                    Err(le) => return Err(le),
                },
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && mkdir.is_some() && !created => {
                    match mkdirat(dir, &c, mkdir.unwrap_or(0o755)) {
                        Err(me) if me.raw_os_error() != Some(libc::EEXIST) => return Err(me),
                        _ => created = true,
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens `path` inside `root` as if `root` were `/`: symlinks are followed, but absolute
/// targets and `..` never leave `root`. `path` may be absolute (relative to `root`).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    open_in_root_mode(root, path, flags, 0o644)
}

fn open_in_root_mode(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    if let Some(s) = utf8(path) {
        let s = if s.is_empty() { "." } else { s };
        // openat2 rejects a non-zero mode without O_CREAT/O_TMPFILE.
        let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
        let mode = if creates { mode } else { 0 };
        if let Some(fd) = openat2::openat2(
            root,
            s,
            flags,
            mode,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )? {
            return Ok(fd);
        }
    }
    in_root_fallback(root, path, flags, mode, None)
}

/// The component walk behind [`open_in_root`].
pub fn open_in_root_fallback(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    in_root_fallback(root, path, flags, 0o644, None)
}

fn in_root_fallback(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    mkdir: Option<u32>,
) -> io::Result<OwnedFd> {
    let mut w = Walk {
        root,
        stack: Vec::new(),
        queue: in_root_queue(path),
        links: 0,
    };
    let follow_last = flags & libc::O_NOFOLLOW == 0;
    while let Some(c) = w.queue.pop_front() {
        if c == ".." {
            w.stack.pop();
            continue;
        }
        if !w.queue.is_empty() || mkdir.is_some() {
            w.enter_dir(c, mkdir)?;
            continue;
        }
        // Last component: open with the caller's flags, never following a symlink blindly.
        let dir = w.cur();
        match openat_nofollow(dir, &c, flags, mode) {
            Ok(fd) => {
                if flags & libc::O_PATH != 0 && follow_last {
                    let st = fstat(fd.as_fd())?;
                    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                        let target = readlink_fd(fd.as_fd())?;
                        w.follow(&target)?;
                        continue;
                    }
                }
                return Ok(fd);
            }
            Err(e)
                if follow_last
                    && matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) =>
            {
                match readlinkat(dir, &c) {
                    Ok(target) => w.follow(&target)?,
                    Err(le) if le.raw_os_error() == Some(libc::EINVAL) => return Err(e),
                    Err(le) => return Err(le),
                }
            }
            Err(e) => return Err(e),
        }
    }
    // Path ended on a directory (root, `..`, `.`, or a symlink to a directory in mkdir mode).
    let fl = if mkdir.is_some() {
        libc::O_PATH | libc::O_DIRECTORY
    } else {
        flags & !libc::O_CREAT
    };
    match w.stack.pop() {
        Some(fd) if mkdir.is_some() => Ok(fd),
        Some(fd) => reopen_dir(fd.as_fd(), fl),
        None => reopen_dir(root, fl),
    }
}

/// Like `mkdir -p` inside `root` with [`open_in_root`] semantics (symlinks followed, clamped
/// to `root`; dangling ones get their target created). Returns an `O_PATH|O_DIRECTORY` fd of
/// the final directory, usable as a mount target through [`fd_path`].
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    if let Some(s) = utf8(path) {
        let s = if s.is_empty() { "." } else { s };
        match openat2::openat2(
            root,
            s,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(Some(fd)) => return Ok(fd),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    mkdir_all_in_root_fallback(root, path, mode)
}

/// The component walk behind [`mkdir_all_in_root`].
pub fn mkdir_all_in_root_fallback(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
) -> io::Result<OwnedFd> {
    in_root_fallback(root, path, libc::O_PATH | libc::O_DIRECTORY, 0, Some(mode))
}

/// Makes sure `path` inside `root` (open_in_root semantics) is an existing non-directory,
/// creating parents (0755) and an empty regular file (`mode`) if it is missing. Returns an
/// `O_PATH` fd of it, usable as a bind-mount target through [`fd_path`]. `EISDIR` if it is a
/// directory. Never opens an existing file for reading (no FIFO/device side effects).
pub fn create_file_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    create_file_in_root_impl(root, path, mode, false)
}

fn create_file_in_root_impl(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    force_fallback: bool,
) -> io::Result<OwnedFd> {
    let open = |flags: i32, mode: u32| {
        if force_fallback {
            in_root_fallback(root, path, flags, mode, None)
        } else {
            open_in_root_mode(root, path, flags, mode)
        }
    };
    let check = |fd: OwnedFd| -> io::Result<OwnedFd> {
        if fstat(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(err(libc::EISDIR));
        }
        Ok(fd)
    };
    match open(libc::O_PATH, 0) {
        Ok(fd) => return check(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            if force_fallback {
                mkdir_all_in_root_fallback(root, parent, 0o755)?;
            } else {
                mkdir_all_in_root(root, parent, 0o755)?;
            }
        }
    }
    drop(open(
        libc::O_CREAT | libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        mode,
    )?);
    check(open(libc::O_PATH, 0)?)
}

/// The walk variant of [`create_file_in_root`].
pub fn create_file_in_root_fallback(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
) -> io::Result<OwnedFd> {
    create_file_in_root_impl(root, path, mode, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    type OpenFn = fn(BorrowedFd<'_>, &Path, i32) -> io::Result<OwnedFd>;
    type MkdirFn = fn(BorrowedFd<'_>, &Path, u32) -> io::Result<OwnedFd>;

    const BENEATH: [(OpenFn, MkdirFn); 2] = [
        (open_beneath_nofollow, mkdir_all_beneath),
        (open_beneath_nofollow_fallback, mkdir_all_beneath_fallback),
    ];
    const IN_ROOT: [(OpenFn, MkdirFn, MkdirFn); 2] = [
        (open_in_root, mkdir_all_in_root, create_file_in_root),
        (
            open_in_root_fallback,
            mkdir_all_in_root_fallback,
            create_file_in_root_fallback,
        ),
    ];

    /// tmp/{root/{d/f, l -> d, esc -> /etc, up -> ../../.., hostabs -> <tmp>/outside},
    /// outside/secret}
    struct Fixture {
        tmp: tempfile::TempDir,
        root: std::fs::File,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let r = tmp.path().join("root");
            std::fs::create_dir_all(r.join("d")).unwrap();
            std::fs::write(r.join("d/f"), b"inside").unwrap();
            std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
            std::fs::write(tmp.path().join("outside/secret"), b"secret").unwrap();
            symlink("d", r.join("l")).unwrap();
            symlink("/etc", r.join("esc")).unwrap();
            symlink("../../..", r.join("up")).unwrap();
            symlink(tmp.path().join("outside"), r.join("hostabs")).unwrap();
            symlink("loop2", r.join("loop1")).unwrap();
            symlink("loop1", r.join("loop2")).unwrap();
            let root = std::fs::File::open(&r).unwrap();
            Fixture { tmp, root }
        }
        fn root(&self) -> BorrowedFd<'_> {
            self.root.as_fd()
        }
        fn rpath(&self, p: &str) -> PathBuf {
            self.tmp.path().join("root").join(p)
        }
        fn outside_untouched(&self) {
            let names: Vec<_> = std::fs::read_dir(self.tmp.path().join("outside"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![OsString::from("secret")]);
        }
    }

    fn ino(fd: BorrowedFd<'_>) -> (u64, u64) {
        let st = fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    }

    fn ino_path(p: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.dev(), m.ino())
    }

    fn code(r: io::Result<OwnedFd>) -> i32 {
        r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
    }

    #[test]
    fn beneath_opens_plain_paths() {
        for (open, _) in BENEATH {
            let fx = Fixture::new();
            let fd = open(fx.root(), Path::new("d/f"), libc::O_RDONLY).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d/f")));
            let fd = open(
                fx.root(),
                Path::new("./d"),
                libc::O_PATH | libc::O_DIRECTORY,
            )
            .unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
            let fd = open(fx.root(), Path::new(""), libc::O_PATH).unwrap();
            assert_eq!(ino(fd.as_fd()), ino(fx.root()));
        }
    }

    #[test]
    fn beneath_rejects_any_symlink_and_dotdot() {
        for (open, _) in BENEATH {
            let fx = Fixture::new();
            for p in [
                "l/f",
                "esc/passwd",
                "up/etc/passwd",
                "hostabs/secret",
                "l",
                "loop1",
                "loop1/x",
            ] {
                for flags in [
                    libc::O_RDONLY,
                    libc::O_PATH,
                    libc::O_PATH | libc::O_DIRECTORY,
                ] {
                    let c = code(open(fx.root(), Path::new(p), flags));
                    assert!(
                        c == libc::ELOOP || c == libc::ENOTDIR,
                        "{p} flags {flags:#x}: errno {c}"
                    );
                }
            }
            assert_eq!(
                code(open(fx.root(), Path::new("../root/d/f"), libc::O_RDONLY)),
                libc::EXDEV
            );
            assert_eq!(
                code(open(fx.root(), Path::new("d/../d/f"), libc::O_RDONLY)),
                libc::EXDEV
            );
            assert_eq!(
                code(open(fx.root(), Path::new("/etc/passwd"), libc::O_RDONLY)),
                libc::EXDEV
            );
            assert_eq!(
                code(open(
                    fx.root(),
                    Path::new("d/f"),
                    libc::O_CREAT | libc::O_WRONLY
                )),
                libc::EINVAL
            );
            fx.outside_untouched();
        }
    }

    #[test]
    fn mkdir_beneath_creates_and_refuses_symlinks() {
        for (_, mkdir) in BENEATH {
            let fx = Fixture::new();
            let fd = mkdir(fx.root(), Path::new("a/b/c"), 0o755).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("a/b/c")));
            // existing: same dir again
            let fd2 = mkdir(fx.root(), Path::new("a/b/c"), 0o755).unwrap();
            assert_eq!(ino(fd2.as_fd()), ino(fd.as_fd()));
            // the returned fd is usable as an *at() dir fd
            mkdirat(fd.as_fd(), OsStr::new("x"), 0o700).unwrap();
            assert!(fx.rpath("a/b/c/x").is_dir());
            for p in ["l/new", "hostabs/new", "up/new", "esc/new", "l"] {
                let c = code(mkdir(fx.root(), Path::new(p), 0o755));
                assert!(c == libc::ELOOP || c == libc::ENOTDIR, "{p}: {c}");
            }
            assert_eq!(
                code(mkdir(fx.root(), Path::new("d/f/x"), 0o755)),
                libc::ENOTDIR
            );
            assert_eq!(
                code(mkdir(fx.root(), Path::new("../evil"), 0o755)),
                libc::EXDEV
            );
            assert!(!fx.rpath("d/new").exists());
            assert!(!fx.tmp.path().join("evil").exists());
            fx.outside_untouched();
        }
    }

    #[test]
    fn in_root_follows_but_clamps() {
        for (open, _, _) in IN_ROOT {
            let fx = Fixture::new();
            let want = ino_path(&fx.rpath("d/f"));
            for p in [
                "d/f",
                "/d/f",
                "l/f",
                "/l/../d/f",
                "../../d/f",
                "up/d/f",
                "up/up/l/f",
                "d/../../../d/f",
            ] {
                let fd = open(fx.root(), Path::new(p), libc::O_RDONLY)
                    .unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(ino(fd.as_fd()), want, "{p}");
            }
            // absolute link target and `..` escapes resolve inside root, where these don't exist
            assert_eq!(
                code(open(fx.root(), Path::new("esc/passwd"), libc::O_RDONLY)),
                libc::ENOENT
            );
            assert_eq!(
                code(open(fx.root(), Path::new("hostabs/secret"), libc::O_RDONLY)),
                libc::ENOENT
            );
            assert_eq!(
                code(open(
                    fx.root(),
                    Path::new("up/outside/secret"),
                    libc::O_RDONLY
                )),
                libc::ENOENT
            );
            // `..` and `/` and `up` at the top are the root itself
            for p in ["..", "/", "up", "", "d/../.."] {
                let fd = open(fx.root(), Path::new(p), libc::O_PATH | libc::O_DIRECTORY)
                    .unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(ino(fd.as_fd()), ino(fx.root()), "{p}");
            }
            // a trailing symlink to a dir, O_PATH: the dir, not the link
            let fd = open(fx.root(), Path::new("l"), libc::O_PATH).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
            // O_NOFOLLOW|O_PATH on the link gives the link
            let fd = open(fx.root(), Path::new("l"), libc::O_PATH | libc::O_NOFOLLOW).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("l")));
            assert_eq!(
                code(open(fx.root(), Path::new("loop1"), libc::O_RDONLY)),
                libc::ELOOP
            );
            assert_eq!(
                code(open(fx.root(), Path::new("loop1/x"), libc::O_PATH)),
                libc::ELOOP
            );
            fx.outside_untouched();
        }
    }

    #[test]
    fn mkdir_in_root_creates_inside_only() {
        for (_, mkdir, _) in IN_ROOT {
            let fx = Fixture::new();
            let fd = mkdir(fx.root(), Path::new("/x/y"), 0o755).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("x/y")));
            // through an absolute host-path symlink: created under root/<that path>
            mkdir(fx.root(), Path::new("hostabs/newdir"), 0o755).unwrap();
            let host_outside = fx.tmp.path().join("outside");
            let inside = fx.rpath(host_outside.strip_prefix("/").unwrap().to_str().unwrap());
            assert!(inside.join("newdir").is_dir());
            // `esc -> /etc` (dangling inside root): root/etc/sub
            mkdir(fx.root(), Path::new("esc/sub"), 0o755).unwrap();
            assert!(fx.rpath("etc/sub").is_dir());
            mkdir(fx.root(), Path::new("up/../../z"), 0o755).unwrap();
            assert!(fx.rpath("z").is_dir());
            // existing via symlink
            let fd = mkdir(fx.root(), Path::new("l"), 0o755).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
            assert_eq!(
                code(mkdir(fx.root(), Path::new("loop1/a"), 0o755)),
                libc::ELOOP
            );
            assert_eq!(
                code(mkdir(fx.root(), Path::new("d/f/a"), 0o755)),
                libc::ENOTDIR
            );
            // usable as a mount-target path
            assert!(fd_path(fd.as_fd()).is_dir());
            fx.outside_untouched();
            assert!(!fx.tmp.path().join("z").exists());
        }
    }

    #[test]
    fn create_file_in_root_works_and_clamps() {
        for (_, _, create) in IN_ROOT {
            let fx = Fixture::new();
            let fd = create(fx.root(), Path::new("/etc/hosts"), 0o644).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("etc/hosts")));
            assert!(fx.rpath("etc/hosts").is_file());
            // existing file: same inode, content kept
            let fd = create(fx.root(), Path::new("d/f"), 0o644).unwrap();
            assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d/f")));
            assert_eq!(std::fs::read(fx.rpath("d/f")).unwrap(), b"inside");
            // dangling symlink to an absolute host path: created inside root
            symlink("/new-top", fx.rpath("dangling")).unwrap();
            create(fx.root(), Path::new("dangling"), 0o644).unwrap();
            assert!(fx.rpath("new-top").is_file());
            // ... and through a symlinked parent pointing at a host path
            create(fx.root(), Path::new("hostabs/new"), 0o644).unwrap();
            fx.outside_untouched();
            assert_eq!(code(create(fx.root(), Path::new("d"), 0o644)), libc::EISDIR);
            // a FIFO target is returned without being opened for I/O (would block)
            mknodat(fx.root(), OsStr::new("fifo"), libc::S_IFIFO | 0o644, 0).unwrap();
            create(fx.root(), Path::new("fifo"), 0o644).unwrap();
        }
    }

    #[test]
    fn at_primitives() {
        let fx = Fixture::new();
        let d = open_beneath_nofollow(fx.root(), Path::new("d"), libc::O_PATH | libc::O_DIRECTORY)
            .unwrap();
        // char device 0:0 (overlay whiteout) + chmod/chown/times
        mknodat(d.as_fd(), OsStr::new("wh"), libc::S_IFCHR, 0).unwrap();
        let st = lstat_at(d.as_fd(), OsStr::new("wh")).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFCHR);
        assert_eq!(st.st_rdev, 0);
        // chown clears setuid, so chmod comes after it (as in layer apply)
        lchown_at(d.as_fd(), OsStr::new("wh"), 1000, 1001).unwrap();
        lchmod_at(d.as_fd(), OsStr::new("wh"), 0o4755).unwrap();
        lutimens_at(d.as_fd(), OsStr::new("wh"), (5, 0), (1_000_000, 7)).unwrap();
        let st = lstat_at(d.as_fd(), OsStr::new("wh")).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o4755);
        assert_eq!((st.st_uid, st.st_gid), (1000, 1001));
        assert_eq!((st.st_mtime, st.st_mtime_nsec), (1_000_000, 7));
        // symlinks: created verbatim, times without following, chmod refused
        symlinkat(Path::new("/nonexistent"), d.as_fd(), OsStr::new("sl")).unwrap();
        assert_eq!(
            readlinkat(d.as_fd(), OsStr::new("sl")).unwrap(),
            PathBuf::from("/nonexistent")
        );
        lutimens_at(d.as_fd(), OsStr::new("sl"), (1, 0), (2, 0)).unwrap();
        assert_eq!(lstat_at(d.as_fd(), OsStr::new("sl")).unwrap().st_mtime, 2);
        assert!(lchmod_at(d.as_fd(), OsStr::new("sl"), 0o600).is_err());
        // xattrs on dir entries and on O_PATH fds
        lsetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.overlay.opaque", b"y").unwrap();
        assert_eq!(
            lgetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            lgetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.nope").unwrap(),
            None
        );
        fsetxattr(d.as_fd(), "trusted.x", b"1").unwrap();
        assert_eq!(
            lgetxattr_at(fx.root(), OsStr::new("d"), "trusted.x").unwrap(),
            Some(b"1".to_vec())
        );
        // hardlink, unlink, names must be single components
        linkat(d.as_fd(), OsStr::new("f"), fx.root(), OsStr::new("hl")).unwrap();
        assert_eq!(ino_path(&fx.rpath("hl")), ino_path(&fx.rpath("d/f")));
        unlinkat(fx.root(), OsStr::new("hl"), false).unwrap();
        for bad in ["", ".", "..", "a/b", "/x"] {
            assert_eq!(
                mkdirat(d.as_fd(), OsStr::new(bad), 0o755)
                    .unwrap_err()
                    .raw_os_error(),
                Some(libc::EINVAL)
            );
        }
        let f = openat_nofollow(
            d.as_fd(),
            OsStr::new("new"),
            libc::O_CREAT | libc::O_WRONLY,
            0o600,
        )
        .unwrap();
        chown_fd(f.as_fd(), 7, 8).unwrap();
        chmod_fd(f.as_fd(), 0o640).unwrap();
        let st = lstat_at(d.as_fd(), OsStr::new("new")).unwrap();
        assert_eq!((st.st_uid, st.st_gid, st.st_mode & 0o7777), (7, 8, 0o640));
        assert_eq!(
            code(openat_nofollow(
                d.as_fd(),
                OsStr::new("sl"),
                libc::O_RDONLY,
                0
            )),
            libc::ELOOP
        );
    }

    /// Run in a child process with WHARF_DISABLE=openat2 (feature detection is cached per
    /// process, so the parent cannot flip it).
    #[test]
    fn disabled_child() {
        if std::env::var("WHARF_DISABLE").ok().as_deref() != Some("openat2") {
            return;
        }
        assert!(!openat2::available());
        // the public entry points work through the walk
        let fx = Fixture::new();
        assert_eq!(
            code(open_in_root(
                fx.root(),
                Path::new("esc/passwd"),
                libc::O_RDONLY
            )),
            libc::ENOENT
        );
        assert!(open_beneath_nofollow(fx.root(), Path::new("l/f"), libc::O_RDONLY).is_err());
        println!("WHARF-DISABLED-CHECKED");
    }

    #[test]
    fn wharf_disable_turns_openat2_off() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "fs::tests::disabled_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WHARF_DISABLE", "openat2")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("WHARF-DISABLED-CHECKED"), "{stdout}");
    }
}
