//! `cp` between a container and the host, hostile-safe (docker CVE-2018-15664 class).
//!
//! Every path inside the container is resolved once, relative to an fd of the container's root
//! (`/proc/<pid>/root` of a running container — which also sees its volumes — or, for a
//! stopped one, its overlay mounted by a short-lived helper in a private mount namespace, see
//! `wharf_runtime::exec::open_detached_rootfs`), with `open_in_root` semantics: symlinks are
//! followed but clamped to the container's root. Below the resolved endpoints the copy walks
//! both trees by single components with `O_NOFOLLOW` on directory fds, so a symlink (even one
//! swapped in concurrently) is copied as a symlink and never followed on either side.
//!
//! Must not: build a container path by string concatenation with a host path, follow a symlink
//! that came from the container when writing on the host, or leave anything mounted on the host.

use crate::refusal::ValidationError;
use crate::{Engine, EngineError};
use nix::libc;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use wharf_sys::fs as sfs;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpEndpoint {
    Host(PathBuf),
    Container { container: String, path: String },
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-a`: keep uid/gid (otherwise files belong to the user doing the copy: root).
    pub archive: bool,
    /// `-L`: follow a symlink given as the source.
    pub follow_link: bool,
    /// Refuse to replace a non-directory with a directory (the Engine API's
    /// `noOverwriteDirNonDir`; a directory is never replaced by a non-directory anyway).
    pub no_replace_non_dir: bool,
}

/// A resolved copy endpoint: the directory holding the entry and its name.
pub(crate) struct Entry {
    pub(crate) dir: OwnedFd,
    pub(crate) name: OsString,
}

fn is_dir(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

fn io_err<'a>(what: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> EngineError + 'a {
    move |e| EngineError::io(what, path, e)
}

/// Split `p` (inside the container, absolute or relative to its root) into parent and name.
fn split_container(p: &str) -> (PathBuf, Option<OsString>) {
    let path = Path::new(p);
    let mut comps: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => comps.push(n),
            std::path::Component::ParentDir => {
                comps.pop();
            }
            _ => {}
        }
    }
    match comps.pop() {
        Some(name) => {
            let parent: PathBuf = std::iter::once(OsStr::new("/")).chain(comps).collect();
            (parent, Some(name.to_os_string()))
        }
        None => (PathBuf::from("/"), None),
    }
}

const O_PATH_DIR: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;

fn open_host_dir(p: &Path) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(p)?;
    Ok(OwnedFd::from(f))
}

/// A container's root fd: /proc/<pid>/root while running, else its overlay and bind mounts
/// mounted privately (by a helper that lives as long as this value).
pub(crate) struct ContainerRoot {
    root: Root,
    name: String,
}

enum Root {
    Running(OwnedFd),
    Stopped(wharf_runtime::exec::DetachedRootfs),
}

impl ContainerRoot {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match &self.root {
            Root::Running(fd) => fd.as_fd(),
            Root::Stopped(d) => d.fd(),
        }
    }
}

impl Engine {
    pub(crate) fn container_root(&self, name: &str) -> Result<ContainerRoot, EngineError> {
        let info = self.container(name)?;
        if info.state.process_alive() {
            let p = format!("/proc/{}/root", info.state.pid);
            if let Ok(fd) = open_host_dir(Path::new(&p)) {
                // The pid may have been recycled between the check and the open.
                if info.state.process_alive() {
                    return Ok(ContainerRoot {
                        root: Root::Running(fd),
                        name: name.to_string(),
                    });
                }
            }
        }
        // The container's whole view, as its start would build it: rootfs, /etc files,
        // volumes and binds (docker's cp sees them too).
        let paths = self.store.container_paths(&info.record.id);
        let spec = self.runtime_spec(&info.record, &paths)?;
        let rootfs = wharf_runtime::spec::RootfsSpec {
            readonly: false,
            ..spec.rootfs
        };
        let d =
            wharf_runtime::exec::open_detached_rootfs(&rootfs, &spec.mounts).map_err(|error| {
                EngineError::ContainerFs {
                    name: name.to_string(),
                    error,
                }
            })?;
        Ok(ContainerRoot {
            root: Root::Stopped(d),
            name: name.to_string(),
        })
    }

    /// `docker cp SRC DST`; exactly one side must be a container.
    pub fn copy(
        &self,
        src: &CpEndpoint,
        dst: &CpEndpoint,
        opts: CpOptions,
    ) -> Result<(), EngineError> {
        match (src, dst) {
            (CpEndpoint::Container { container, path }, CpEndpoint::Host(h)) => {
                let root = self.container_root(container)?;
                let (entry, contents) = container_source(&root, path, opts.follow_link)?;
                let st =
                    sfs::lstat_at(entry.dir.as_fd(), &entry.name).map_err(io_err("stat", path))?;
                let target = host_destination(h, &entry.name, is_dir(st.st_mode), contents)?;
                copy_top(&entry, contents, &target, opts, path)
            }
            (CpEndpoint::Host(h), CpEndpoint::Container { container, path }) => {
                let (entry, contents) = host_source(h, opts.follow_link)?;
                let hs = h.display().to_string();
                let st =
                    sfs::lstat_at(entry.dir.as_fd(), &entry.name).map_err(io_err("stat", &hs))?;
                let root = self.container_root(container)?;
                let target =
                    container_destination(&root, path, &entry.name, is_dir(st.st_mode), contents)?;
                copy_top(&entry, contents, &target, opts, &hs)
            }
            _ => Err(ValidationError::CpSides.into()),
        }
    }
}

/// Resolve a source inside the container. Returns the entry and whether only the contents of
/// a directory are copied (`path/.`).
pub(crate) fn container_source(
    root: &ContainerRoot,
    path: &str,
    follow: bool,
) -> Result<(Entry, bool), EngineError> {
    let not_found = || {
        EngineError::from(ValidationError::CpNotFound {
            path: path.to_string(),
            container: root.name.clone(),
        })
    };
    let contents = path.ends_with("/.") || path == ".";
    let mut cur = path.to_string();
    for _ in 0..=sfs::MAX_SYMLINKS {
        let (parent, name) = split_container(&cur);
        let Some(name) = name else {
            // the root itself: copy its contents
            let dir = sfs::reopen_dir(root.fd(), O_PATH_DIR).map_err(|_| not_found())?;
            return Ok((
                Entry {
                    dir,
                    name: OsString::from("."),
                },
                true,
            ));
        };
        let dir = sfs::open_in_root(root.fd(), &parent, O_PATH_DIR).map_err(|_| not_found())?;
        let st = sfs::lstat_at(dir.as_fd(), &name).map_err(|_| not_found())?;
        let link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        // `dir/.` means the directory a symlink points to, too
        if link && (follow || contents) {
            let target = sfs::readlinkat(dir.as_fd(), &name).map_err(|_| not_found())?;
            cur = if target.is_absolute() {
                target.display().to_string()
            } else {
                parent.join(target).display().to_string()
            };
            continue;
        }
        return Ok((Entry { dir, name }, contents && is_dir(st.st_mode)));
    }
    Err(ValidationError::CpSymlinkLoop {
        path: path.to_string(),
        container: root.name.clone(),
    }
    .into())
}

fn host_source(h: &Path, follow: bool) -> Result<(Entry, bool), EngineError> {
    let hs = h.display().to_string();
    let contents = hs.ends_with("/.") || hs == ".";
    let mut p = h.to_path_buf();
    let meta = std::fs::symlink_metadata(&p).map_err(io_err("stat", &hs))?;
    if (follow || contents) && meta.file_type().is_symlink() {
        p = std::fs::canonicalize(&p).map_err(io_err("resolve", &hs))?;
    }
    let p = if contents {
        std::fs::canonicalize(&p).map_err(io_err("resolve", &hs))?
    } else {
        p
    };
    let (parent, name) = match (p.parent(), p.file_name()) {
        (Some(par), Some(n)) => (
            if par.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                par.to_path_buf()
            },
            n.to_os_string(),
        ),
        _ => (p.clone(), OsString::from(".")),
    };
    let dir = open_host_dir(&parent).map_err(io_err("open", &hs))?;
    let is_d = std::fs::metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
    Ok((Entry { dir, name }, contents && is_d))
}

/// Where a copy lands: an existing directory receives the source's name; otherwise the
/// destination path names the new entry (its parent must exist).
fn host_destination(
    h: &Path,
    src_name: &OsStr,
    src_is_dir: bool,
    contents: bool,
) -> Result<Entry, EngineError> {
    let hs = h.display().to_string();
    if h.as_os_str() == "-" {
        return Err(ValidationError::CpStreamUnsupported.into());
    }
    match std::fs::metadata(h) {
        Ok(m) if m.is_dir() && !contents => Ok(Entry {
            dir: open_host_dir(h).map_err(io_err("open", &hs))?,
            name: src_name.to_os_string(),
        }),
        Ok(m) if m.is_dir() => {
            let parent = h.parent().filter(|p| !p.as_os_str().is_empty());
            Ok(Entry {
                dir: open_host_dir(parent.unwrap_or(Path::new(".")))
                    .map_err(io_err("open", &hs))?,
                name: h
                    .file_name()
                    .map_or(OsString::from("."), |n| n.to_os_string()),
            })
        }
        Ok(_) if src_is_dir => Err(ValidationError::CpDirectoryToFile { path: hs }.into()),
        _ if hs.ends_with('/') && !h.exists() => {
            Err(ValidationError::CpDestinationMissing { path: hs }.into())
        }
        _ => {
            let parent = h.parent().filter(|p| !p.as_os_str().is_empty());
            let name = h
                .file_name()
                .ok_or_else(|| ValidationError::CpDestination { path: hs.clone() })?;
            Ok(Entry {
                dir: open_host_dir(parent.unwrap_or(Path::new(".")))
                    .map_err(io_err("open", &hs))?,
                name: name.to_os_string(),
            })
        }
    }
}

fn container_destination(
    root: &ContainerRoot,
    path: &str,
    src_name: &OsStr,
    src_is_dir: bool,
    contents: bool,
) -> Result<Entry, EngineError> {
    let no_dir = |p: &Path| {
        EngineError::from(ValidationError::CpNotFound {
            path: p.display().to_string(),
            container: root.name.clone(),
        })
    };
    let full = Path::new(path);
    match sfs::open_in_root(root.fd(), full, libc::O_PATH | libc::O_CLOEXEC) {
        Ok(fd) => {
            let st = sfs::fstat(fd.as_fd()).map_err(io_err("stat", path))?;
            if is_dir(st.st_mode) && !contents {
                return Ok(Entry {
                    dir: fd,
                    name: src_name.to_os_string(),
                });
            }
            if src_is_dir && !is_dir(st.st_mode) {
                return Err(ValidationError::CpDirectoryToFile { path: path.into() }.into());
            }
        }
        Err(_) if path.ends_with('/') => return Err(no_dir(full)),
        Err(_) => {}
    }
    let (parent, name) = split_container(path);
    let name = name.ok_or_else(|| no_dir(full))?;
    let dir = sfs::open_in_root(root.fd(), &parent, O_PATH_DIR).map_err(|_| no_dir(&parent))?;
    Ok(Entry { dir, name })
}

/// Copy `src` (or, with `contents`, the entries of the directory `src`) to `dst`.
fn copy_top(
    src: &Entry,
    contents: bool,
    dst: &Entry,
    opts: CpOptions,
    shown: &str,
) -> Result<(), EngineError> {
    let r = if contents {
        let sdir = sfs::openat_nofollow(src.dir.as_fd(), &src.name, O_PATH_DIR, 0)
            .or_else(|_| sfs::reopen_dir(src.dir.as_fd(), O_PATH_DIR));
        sdir.and_then(|sdir| {
            let st = sfs::fstat(sdir.as_fd())?;
            let ddir = ensure_dir(dst.dir.as_fd(), &dst.name, st.st_mode & 0o7777, opts)?;
            copy_children(sdir.as_fd(), ddir.as_fd(), opts)
        })
    } else {
        copy_entry(src.dir.as_fd(), &src.name, dst.dir.as_fd(), &dst.name, opts)
    };
    r.map_err(|e| {
        // a directory over a non-directory or the reverse: the request's fault
        if e.kind() == io::ErrorKind::AlreadyExists && e.raw_os_error().is_none() {
            ValidationError::CpOverwrite {
                detail: e.to_string(),
            }
            .into()
        } else {
            EngineError::io("copy", shown, e)
        }
    })
}

/// Make `dir/name` a directory (reusing one, replacing a non-directory) and open it.
fn ensure_dir(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mode: u32,
    opts: CpOptions,
) -> io::Result<OwnedFd> {
    match sfs::lstat_at(dir, name) {
        Ok(st) if is_dir(st.st_mode) => {}
        Ok(_) if opts.no_replace_non_dir => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "cannot overwrite non-directory {:?} with directory",
                    name.to_string_lossy()
                ),
            ))
        }
        Ok(_) => {
            sfs::unlinkat(dir, name, false)?;
            sfs::mkdirat(dir, name, 0o700)?;
            let fd = sfs::openat_nofollow(dir, name, O_PATH_DIR, 0)?;
            sfs::chmod_fd(fd.as_fd(), mode)?;
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            sfs::mkdirat(dir, name, 0o700)?;
            let fd = sfs::openat_nofollow(dir, name, O_PATH_DIR, 0)?;
            sfs::chmod_fd(fd.as_fd(), mode)?;
        }
        Err(e) => return Err(e),
    }
    sfs::openat_nofollow(dir, name, O_PATH_DIR, 0)
}

fn copy_children(sdir: BorrowedFd<'_>, ddir: BorrowedFd<'_>, opts: CpOptions) -> io::Result<()> {
    // Listing through /proc/self/fd/N reads the directory the fd refers to (no re-resolution).
    let mut names: Vec<OsString> = std::fs::read_dir(sfs::fd_path(sdir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        copy_entry(sdir, &n, ddir, &n, opts)?;
    }
    Ok(())
}

/// Copy one entry without following symlinks on either side.
fn copy_entry(
    sdir: BorrowedFd<'_>,
    sname: &OsStr,
    ddir: BorrowedFd<'_>,
    dname: &OsStr,
    opts: CpOptions,
) -> io::Result<()> {
    if sname.as_bytes().contains(&b'/') || dname.as_bytes().contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let st = sfs::lstat_at(sdir, sname)?;
    let mode = st.st_mode & 0o7777;
    let fmt = st.st_mode & libc::S_IFMT;
    let times = (
        (st.st_atime, st.st_atime_nsec),
        (st.st_mtime, st.st_mtime_nsec),
    );
    if fmt == libc::S_IFDIR {
        let s = sfs::openat_nofollow(sdir, sname, O_PATH_DIR, 0)?;
        let d = ensure_dir(ddir, dname, mode, opts)?;
        copy_children(s.as_fd(), d.as_fd(), opts)?;
    } else {
        // Replace whatever non-directory is there (never write through it).
        match sfs::lstat_at(ddir, dname) {
            Ok(dst) if is_dir(dst.st_mode) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "cannot overwrite directory {:?} with non-directory",
                        dname.to_string_lossy()
                    ),
                ))
            }
            Ok(_) => sfs::unlinkat(ddir, dname, false)?,
            Err(_) => {}
        }
        match fmt {
            libc::S_IFREG => {
                // The tree may belong to a running container that swaps the file for a FIFO
                // after the lstat: open without blocking and check again on the fd.
                let s = sfs::openat_nofollow(
                    sdir,
                    sname,
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
                    0,
                )?;
                if sfs::fstat(s.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{:?} stopped being a regular file while it was copied",
                            sname.to_string_lossy()
                        ),
                    ));
                }
                let d = sfs::openat_nofollow(
                    ddir,
                    dname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o600,
                )?;
                let mut sf = std::fs::File::from(s);
                let mut df = std::fs::File::from(d);
                io::copy(&mut sf, &mut df)?;
                sfs::chmod_fd(df.as_fd(), mode)?;
            }
            libc::S_IFLNK => {
                let target = sfs::readlinkat(sdir, sname)?;
                sfs::symlinkat(&target, ddir, dname)?;
            }
            libc::S_IFIFO => sfs::mknodat(ddir, dname, libc::S_IFIFO | mode, 0)?,
            // Device nodes and sockets are not copied (docker's tar would need CAP_MKNOD in
            // the destination too); skipping is the safe choice.
            _ => return Ok(()),
        }
    }
    if opts.archive {
        sfs::lchown_at(ddir, dname, st.st_uid, st.st_gid)?;
        if fmt != libc::S_IFLNK && mode & 0o6000 != 0 {
            // chown clears setuid/setgid: restore them
            sfs::lchmod_at(ddir, dname, mode)?;
        }
    }
    let _ = sfs::lutimens_at(ddir, dname, times.0, times.1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_lexically() {
        assert_eq!(
            split_container("/etc/hostname"),
            (PathBuf::from("/etc"), Some(OsString::from("hostname")))
        );
        assert_eq!(
            split_container("tmp/../../x/"),
            (PathBuf::from("/"), Some(OsString::from("x")))
        );
        assert_eq!(split_container("/"), (PathBuf::from("/"), None));
    }
}
