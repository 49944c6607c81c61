//! Reading a container's writable layer back: the layer tar of an overlay upper dir (what
//! `commit` appends to an image), docker's change list (`diff`), and the plain tar of a
//! mounted tree (`export`).
//!
//! The walk is docker's: depth first, each directory's names sorted bytewise, so the same
//! tree always gives the same bytes (and so the same diff_id). Every path is opened below
//! the root fd with no symlink followed (`open_beneath_nofollow`): a container that swaps a
//! directory for a symlink while we walk makes the walk fail, never read outside its tree.
//! No directory fd is held across a recursion step, so a deep tree costs no fds.
//!
//! Layer mode (an overlay upper dir): a char device 0/0 is overlay's whiteout and becomes an
//! empty `.wh.<name>` file; a directory with `trusted.overlay.opaque=y` is followed by a
//! `.wh..wh..opq` entry; `trusted.overlay.redirect`/`metacopy` (overlay features wharf does
//! not mount with) are refused rather than producing a wrong layer. Both modes: sockets
//! skipped, other devices and FIFOs kept, hard links inside the tree kept as tar hard links,
//! `security.capability` kept as a PAX `SCHILY.xattr` record, uid/gid/mode/mtime (seconds,
//! as docker truncates) preserved, no user/group names.
//!
//! Must not: follow a symlink, trust a size it did not read.

use libc::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use wharf_sys::fs as sfs;
use wharf_types::error::{ErrorKind, HasKind};

pub(super) const OPAQUE: &str = "trusted.overlay.opaque";
const REDIRECT: &str = "trusted.overlay.redirect";
const METACOPY: &str = "trusted.overlay.metacopy";
pub(super) const CAPABILITY: &str = "security.capability";
/// Deeper than this cannot be opened by path anyway (PATH_MAX is 4096 bytes).
pub(super) const MAX_DEPTH: usize = 2048;

/// A failure while reading a tree back.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} carries overlay's {feature} attribute, which a layer cannot express: mount overlay without redirect_dir/metacopy")]
    OverlayFeature { path: String, feature: &'static str },
    #[error("{path:?} changed while it was read (expected {expected} bytes)")]
    Changed { path: String, expected: u64 },
    #[error("{path:?} is nested deeper than {MAX_DEPTH} directories")]
    TooDeep { path: String },
    #[error("writing the layer tar")]
    Write(#[source] io::Error),
}

impl HasKind for DiffError {
    fn kind(&self) -> ErrorKind {
        match self {
            DiffError::OverlayFeature { .. } => ErrorKind::NotImplemented,
            DiffError::Changed { .. } => ErrorKind::Conflict,
            DiffError::TooDeep { .. } => ErrorKind::InvalidArgument,
            DiffError::Io { source, .. } | DiffError::Write(source) => match source.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Internal,
            },
        }
    }
}

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> DiffError + 'a {
    move |source| DiffError::Io {
        op,
        path: show(path),
        source,
    }
}

/// `/`-rooted display form of a relative path.
pub(super) fn show(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// What kind of tree is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// An overlay upper dir: whiteouts and opaque dirs become OCI whiteout entries.
    OverlayUpper,
    /// A plain tree (a mounted root file system): entries as they are.
    Plain,
}

/// What a tar written by [`write_tar`] holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TarStats {
    pub entries: u64,
    pub whiteouts: u64,
    /// Sockets left out (a tar cannot carry them).
    pub sockets_skipped: u64,
}

/// One entry of a directory, as listed.
pub(super) struct Entry {
    pub(super) name: OsString,
    pub(super) st: libc::stat,
}

pub(super) fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & S_IFMT
}

pub(super) fn is_whiteout(st: &libc::stat) -> bool {
    file_type(st) == S_IFCHR && st.st_rdev == 0
}

/// Opens `rel` below `root` (no symlinks), `O_PATH` when `path_only`.
pub(super) fn open_rel(root: BorrowedFd<'_>, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    sfs::open_beneath_nofollow(root, rel, flags)
}

/// The entries of directory `rel`, sorted bytewise by name, with their `lstat`.
pub(super) fn list(root: BorrowedFd<'_>, rel: &Path) -> Result<(OwnedFd, Vec<Entry>), DiffError> {
    let fd = open_rel(root, rel, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(io_err("opening directory", rel))?;
    let mut names: Vec<OsString> = std::fs::read_dir(sfs::fd_path(fd.as_fd()))
        .map_err(io_err("reading directory", rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("reading directory", rel))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match sfs::lstat_at(fd.as_fd(), &name) {
            Ok(st) => out.push(Entry { name, st }),
            // removed since it was listed (a running container): it is not there
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &rel.join(&name))(e)),
        }
    }
    Ok((fd, out))
}

pub(super) fn xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &str,
    rel: &Path,
) -> Result<Option<Vec<u8>>, DiffError> {
    match sfs::lgetxattr_at(dir, name, attr) {
        Ok(v) => Ok(v),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EPERM)) => {
            Ok(None)
        }
        Err(e) => Err(io_err("reading attributes of", rel)(e)),
    }
}

/// Writes the tree below `root` as a tar to `out` (see the module docs), ending it with the
/// two zero blocks. The same tree gives the same bytes.
/// Paths in `skip` (relative, e.g. `etc/hosts`) are left out with everything below them.
pub fn write_tar<W: Write>(
    root: BorrowedFd<'_>,
    kind: TreeKind,
    skip: &[&Path],
    out: W,
) -> Result<TarStats, DiffError> {
    let mut w = TarWriter {
        root,
        kind,
        skip,
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        stats: TarStats::default(),
    };
    w.tar.mode(tar::HeaderMode::Complete);
    w.dir(Path::new(""), 0)?;
    w.tar.finish().map_err(DiffError::Write)?;
    Ok(w.stats)
}

struct TarWriter<'a, W: Write> {
    root: BorrowedFd<'a>,
    kind: TreeKind,
    skip: &'a [&'a Path],
    tar: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written → their tar path.
    links: HashMap<(u64, u64), PathBuf>,
    stats: TarStats,
}

fn header_for(st: &libc::stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

impl<W: Write> TarWriter<'_, W> {
    fn dir(&mut self, rel: &Path, depth: usize) -> Result<(), DiffError> {
        if depth > MAX_DEPTH {
            return Err(DiffError::TooDeep { path: show(rel) });
        }
        let (fd, entries) = list(self.root, rel)?;
        // Entries are written in order; a directory's subtree right after its own entry,
        // so the fd of this directory is dropped before recursing (collected first).
        let mut plan: Vec<(PathBuf, Entry, bool)> = Vec::with_capacity(entries.len());
        for e in entries {
            let path = rel.join(&e.name);
            if self.skip.contains(&path.as_path()) {
                continue;
            }
            let opaque = self.kind == TreeKind::OverlayUpper
                && file_type(&e.st) == S_IFDIR
                && xattr(fd.as_fd(), &e.name, OPAQUE, &path)?.as_deref() == Some(b"y");
            if self.kind == TreeKind::OverlayUpper {
                let feature = match file_type(&e.st) {
                    S_IFDIR => xattr(fd.as_fd(), &e.name, REDIRECT, &path)?.map(|_| "redirect"),
                    S_IFREG => xattr(fd.as_fd(), &e.name, METACOPY, &path)?.map(|_| "metacopy"),
                    _ => None,
                };
                if let Some(feature) = feature {
                    return Err(DiffError::OverlayFeature {
                        path: show(&path),
                        feature,
                    });
                }
            }
            plan.push((path, e, opaque));
        }
        let caps: Vec<Option<Vec<u8>>> = plan
            .iter()
            .map(|(path, e, _)| match file_type(&e.st) {
                S_IFREG | S_IFDIR => xattr(fd.as_fd(), &e.name, CAPABILITY, path),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        let targets: Vec<Option<PathBuf>> = plan
            .iter()
            .map(|(path, e, _)| {
                if file_type(&e.st) == S_IFLNK {
                    sfs::readlinkat(fd.as_fd(), &e.name)
                        .map(Some)
                        .map_err(io_err("reading link", path))
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_, _>>()?;
        drop(fd);
        for (((path, e, opaque), cap), target) in plan.into_iter().zip(caps).zip(targets) {
            self.entry(&path, &e, opaque, cap, target)?;
            if file_type(&e.st) == S_IFDIR {
                self.dir(&path, depth + 1)?;
            }
        }
        Ok(())
    }

    fn pax_caps(&mut self, cap: Option<Vec<u8>>) -> Result<(), DiffError> {
        if let Some(v) = cap {
            let key = format!("SCHILY.xattr.{CAPABILITY}");
            self.tar
                .append_pax_extensions([(key.as_str(), v.as_slice())])
                .map_err(DiffError::Write)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &Path,
        e: &Entry,
        opaque: bool,
        cap: Option<Vec<u8>>,
        target: Option<PathBuf>,
    ) -> Result<(), DiffError> {
        let st = &e.st;
        let ft = file_type(st);
        if self.kind == TreeKind::OverlayUpper && is_whiteout(st) {
            let name = path.file_name().unwrap_or_default();
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            let wpath = path.with_file_name(wh);
            let mut h = header_for(st, tar::EntryType::Regular);
            h.set_mode(0o600);
            self.tar
                .append_data(&mut h, &wpath, io::empty())
                .map_err(DiffError::Write)?;
            self.stats.whiteouts += 1;
            self.stats.entries += 1;
            return Ok(());
        }
        match ft {
            S_IFSOCK => {
                self.stats.sockets_skipped += 1;
                return Ok(());
            }
            S_IFDIR => {
                self.pax_caps(cap)?;
                let mut h = header_for(st, tar::EntryType::Directory);
                let mut p = path.as_os_str().to_owned();
                p.push("/");
                self.tar
                    .append_data(&mut h, Path::new(&p), io::empty())
                    .map_err(DiffError::Write)?;
                if opaque {
                    let mut h = header_for(st, tar::EntryType::Regular);
                    h.set_mode(0);
                    self.tar
                        .append_data(&mut h, path.join(".wh..wh..opq"), io::empty())
                        .map_err(DiffError::Write)?;
                    self.stats.whiteouts += 1;
                }
            }
            S_IFLNK => {
                let mut h = header_for(st, tar::EntryType::Symlink);
                let target = target.unwrap_or_default();
                self.tar
                    .append_link(&mut h, path, &target)
                    .map_err(DiffError::Write)?;
            }
            S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        let mut h = header_for(st, tar::EntryType::Link);
                        self.tar
                            .append_link(&mut h, path, &first)
                            .map_err(DiffError::Write)?;
                        self.stats.entries += 1;
                        return Ok(());
                    }
                    self.links.insert(key, path.to_path_buf());
                }
                self.pax_caps(cap)?;
                self.regular(path, st)?;
            }
            S_IFCHR | S_IFBLK | S_IFIFO => {
                let kind = match ft {
                    S_IFCHR => tar::EntryType::Char,
                    S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header_for(st, kind);
                if ft != S_IFIFO {
                    let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                    h.set_device_major(maj).map_err(DiffError::Write)?;
                    h.set_device_minor(min).map_err(DiffError::Write)?;
                }
                self.tar
                    .append_data(&mut h, path, io::empty())
                    .map_err(DiffError::Write)?;
            }
            _ => return Ok(()),
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// A regular file's entry with exactly the size `lstat` reported.
    fn regular(&mut self, path: &Path, st: &libc::stat) -> Result<(), DiffError> {
        let size = u64::try_from(st.st_size).unwrap_or(0);
        // O_NONBLOCK: a FIFO swapped in since the lstat must not block the open
        let f = open_rel(self.root, path, libc::O_RDONLY | libc::O_NONBLOCK)
            .map_err(io_err("opening", path))?;
        let now = sfs::fstat(f.as_fd()).map_err(io_err("reading", path))?;
        if file_type(&now) != S_IFREG || now.st_ino != st.st_ino || now.st_dev != st.st_dev {
            return Err(DiffError::Changed {
                path: show(path),
                expected: size,
            });
        }
        let mut h = header_for(st, tar::EntryType::Regular);
        h.set_size(size);
        let mut counted = Exact {
            inner: std::fs::File::from(f).take(size),
            left: size,
        };
        let r = self.tar.append_data(&mut h, path, &mut counted);
        match r {
            Ok(()) if counted.left == 0 => Ok(()),
            Ok(()) => Err(DiffError::Changed {
                path: show(path),
                expected: size,
            }),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(DiffError::Changed {
                path: show(path),
                expected: size,
            }),
            Err(e) => Err(DiffError::Write(e)),
        }
    }
}

/// A reader that fails with `UnexpectedEof` if it ends before `left` bytes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

pub use super::changes::{changes, Change, ChangeKind};

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
