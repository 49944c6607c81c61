//! `apply_layer`: unpack one OCI layer tar into `dest`, hostile-input safe.
//!
//! Every entry's parent directory is resolved exactly once, relative to a dir fd of `dest`,
//! with no symlink allowed anywhere on the way (`wharf_sys::fs::mkdir_all_beneath`); the final
//! component is then created with `*at()` calls on that parent fd, never following a symlink.
//! Entries with `..`, absolute paths, hardlinks whose target escapes or crosses a symlink (an
//! absolute hardlink target is relative to the layer root, as in docker and containerd),
//! unknown entry types and unknown `.wh.` names are rejected with an error naming the entry.
//! Nothing is ever written outside `dest` (invariant 2).
//!
//! Whiteouts: `.wh.<name>` becomes an overlayfs whiteout (char device 0:0 `<name>`),
//! `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. `trusted.overlay.*`
//! xattrs coming from the archive itself are dropped (a layer must not forge overlay
//! metadata). Metadata order per entry: chown, chmod (so setuid survives), xattrs (after
//! chown, which clears `security.capability`), mtime; directory mtimes are set at the end.
//! v3 file capabilities are fitted to the kernel (`fit_file_caps`).
//!
//! Must not: decompress or hash (the caller does), buffer file contents in memory, follow a
//! symlink from the archive, or resolve a path by string.

use super::tarsplit::{ApplyObserver, NoObserver};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tar::EntryType;
use wharf_sys::fs as sfs;
use wharf_types::error::{ErrorKind, HasKind};

const WH_PREFIX: &[u8] = b".wh.";
const WH_OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading layer archive")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?} rejected: {reason}")]
    Unsafe { path: String, reason: &'static str },
    /// A header field that does not parse (uid, gid, mode, mtime): the archive's fault.
    #[error("layer entry {path:?}: {op}")]
    Header {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?} has unsupported type {kind}")]
    Unsupported { path: String, kind: String },
    #[error("layer entry {path:?}: {op}")]
    Apply {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("opening layer destination {0}")]
    Dest(PathBuf, #[source] io::Error),
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Read(_)
            | LayerError::Unsafe { .. }
            | LayerError::Header { .. }
            | LayerError::Unsupported { .. } => ErrorKind::InvalidArgument,
            LayerError::Apply { source, .. } => match source.raw_os_error() {
                // a symlink or non-directory in the way: the archive is at fault
                Some(ELOOP | ENOTDIR | EXDEV) => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            LayerError::Dest(..) => ErrorKind::Internal,
        }
    }
}

use libc::{
    EEXIST, ELOOP, ENOTDIR, EOPNOTSUPP, EPERM, EXDEV, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT,
};

/// What was applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    pub whiteouts: u64,
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Splits an archive path into validated components (leading `./` and `/./` stripped).
fn components(raw: &[u8]) -> Result<Vec<&[u8]>, LayerError> {
    let unsafe_path = |reason| LayerError::Unsafe {
        path: show(raw),
        reason,
    };
    if raw.first() == Some(&b'/') {
        return Err(unsafe_path("absolute path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_path("path contains '..'")),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn rel(comps: &[&[u8]]) -> PathBuf {
    let mut p = PathBuf::new();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

struct Applier<'o> {
    root: File,
    obs: &'o mut dyn ApplyObserver,
    /// The most recent parent dir (components joined), reused for consecutive entries.
    cache: Option<(PathBuf, OwnedFd)>,
    dirs: Vec<(PathBuf, i64)>,
    stats: ApplyStats,
}

impl Applier<'_> {
    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    fn apply_err<'a>(
        path: &'a [u8],
        op: &'static str,
    ) -> impl FnOnce(io::Error) -> LayerError + 'a {
        move |source| match source.raw_os_error() {
            Some(ELOOP) | Some(ENOTDIR) | Some(EXDEV) => LayerError::Unsafe {
                path: show(path),
                reason: "path traverses a symlink or non-directory",
            },
            _ => LayerError::Apply {
                path: show(path),
                op,
                source,
            },
        }
    }

    /// Resolves (creating as needed) the parent directory of an entry, no symlinks allowed.
    fn parent(&mut self, raw: &[u8], parent: &Path) -> Result<&OwnedFd, LayerError> {
        let hit = matches!(&self.cache, Some((p, _)) if p == parent);
        if !hit {
            let fd = sfs::mkdir_all_beneath(self.root(), parent, 0o755)
                .map_err(Self::apply_err(raw, "resolving parent directory"))?;
            self.cache = Some((parent.to_path_buf(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd),
            None => Err(LayerError::Unsafe {
                path: show(raw),
                reason: "internal: no parent",
            }),
        }
    }

    /// Removes whatever is at `dir/name` unless both it and the new entry are directories.
    /// Returns true if a directory is already there and kept.
    fn clear(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        raw: &[u8],
        new_is_dir: bool,
    ) -> Result<bool, LayerError> {
        let st = match sfs::lstat_at(dir, name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Self::apply_err(raw, "inspecting existing entry")(e)),
        };
        let is_dir = st.st_mode & S_IFMT == S_IFDIR;
        if is_dir && new_is_dir {
            return Ok(true);
        }
        // Whatever is here came from this same layer: let a recorder save it first.
        self.obs
            .destroying()
            .map_err(Self::apply_err(raw, "recording the layer"))?;
        if is_dir {
            // std's remove_dir_all does not follow symlinks; the path goes through our dir fd.
            let p = sfs::fd_path(dir).join(name);
            std::fs::remove_dir_all(&p)
                .map_err(Self::apply_err(raw, "removing existing directory"))?;
            self.cache = None;
        } else {
            sfs::unlinkat(dir, name, false)
                .map_err(Self::apply_err(raw, "removing existing entry"))?;
        }
        Ok(false)
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<(), LayerError> {
        if e.header().entry_type() == EntryType::XGlobalHeader {
            return Ok(()); // pax global header: no file (its content is read past)
        }
        let raw = e.path_bytes().into_owned();
        let comps = components(&raw)?;
        let kind = e.header().entry_type();
        let hdr = e.header();
        let num = |r: io::Result<u64>, what: &'static str| {
            r.map_err(|source| LayerError::Header {
                path: show(&raw),
                op: what,
                source,
            })
        };
        let mode = hdr.mode().map_err(|source| LayerError::Header {
            path: show(&raw),
            op: "reading mode",
            source,
        })? & 0o7777;
        let uid = num(hdr.uid(), "reading uid")?;
        let gid = num(hdr.gid(), "reading gid")?;
        let mtime = num(hdr.mtime(), "reading mtime")? as i64;
        let (uid, gid) = match (u32::try_from(uid), u32::try_from(gid)) {
            (Ok(u), Ok(g)) => (u, g),
            _ => {
                return Err(LayerError::Unsafe {
                    path: show(&raw),
                    reason: "uid/gid out of range",
                })
            }
        };

        let Some((name, parents)) = comps.split_last() else {
            // "./": the layer root itself
            if kind.is_dir() {
                let dir = sfs::reopen_dir(self.root(), libc_o_path_dir())
                    .map_err(Self::apply_err(&raw, "opening root"))?;
                sfs::chown_fd(dir.as_fd(), uid, gid).map_err(Self::apply_err(&raw, "chown"))?;
                sfs::chmod_fd(dir.as_fd(), mode).map_err(Self::apply_err(&raw, "chmod"))?;
                self.dirs.push((PathBuf::new(), mtime));
                return Ok(());
            }
            return Err(LayerError::Unsafe {
                path: show(&raw),
                reason: "empty path",
            });
        };
        let name_os = OsStr::from_bytes(name);
        let parent_rel = rel(parents);

        // Whiteouts
        if let Some(rest) = name.strip_prefix(WH_PREFIX) {
            let pfd = self
                .parent(&raw, &parent_rel)?
                .try_clone()
                .map_err(Self::apply_err(&raw, "dup"))?;
            if *name == WH_OPAQUE {
                sfs::fsetxattr(pfd.as_fd(), OVERLAY_OPAQUE, b"y")
                    .map_err(Self::apply_err(&raw, "setting opaque xattr"))?;
            } else if rest.starts_with(WH_PREFIX)
                || rest.is_empty()
                || rest == b"."
                || rest == b".."
            {
                return Err(LayerError::Unsafe {
                    path: show(&raw),
                    reason: "unsupported whiteout name",
                });
            } else {
                let target = OsStr::from_bytes(rest);
                self.clear(pfd.as_fd(), target, &raw, false)?;
                sfs::mknodat(pfd.as_fd(), target, S_IFCHR, 0)
                    .map_err(Self::apply_err(&raw, "creating whiteout"))?;
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }

        let xattrs = xattrs(&mut e, &raw)?;
        let pfd = self
            .parent(&raw, &parent_rel)?
            .try_clone()
            .map_err(Self::apply_err(&raw, "dup"))?;
        let dir = pfd.as_fd();
        let exists_dir = self.clear(dir, name_os, &raw, kind.is_dir())?;
        let err = |op| Self::apply_err(&raw, op);
        match kind {
            EntryType::Directory => {
                if !exists_dir {
                    match sfs::mkdirat(dir, name_os, 0o700) {
                        Err(e) if e.raw_os_error() != Some(EEXIST) => return Err(err("mkdir")(e)),
                        _ => {}
                    }
                }
                self.dirs.push((parent_rel.join(name_os), mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let fd = sfs::openat_nofollow(dir, name_os, o_create_file(), 0o600)
                    .map_err(err("create"))?;
                let mut f = File::from(fd);
                let rel_path = parent_rel.join(name_os);
                self.obs
                    .file_content(
                        rel_path.as_os_str().as_bytes(),
                        e.size(),
                        e.raw_file_position(),
                    )
                    .map_err(err("recording the layer"))?;
                let n = io::copy(&mut e, &mut f).map_err(|source| match source.kind() {
                    io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput => LayerError::Read(source),
                    _ => LayerError::Apply {
                        path: show(&raw),
                        op: "writing",
                        source,
                    },
                })?;
                // on its way to the disk now; the snapshot's commit waits for it (syncfs)
                let _ = sfs::start_writeback(f.as_fd());
                self.stats.bytes += n;
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or(LayerError::Unsafe {
                        path: show(&raw),
                        reason: "symlink without target",
                    })?
                    .into_owned();
                if target.is_empty() {
                    return Err(LayerError::Unsafe {
                        path: show(&raw),
                        reason: "symlink without target",
                    });
                }
                sfs::symlinkat(Path::new(OsStr::from_bytes(&target)), dir, name_os)
                    .map_err(err("symlink"))?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or(LayerError::Unsafe {
                        path: show(&raw),
                        reason: "hardlink without target",
                    })?
                    .into_owned();
                // Hardlink names are relative to the layer root: docker and containerd strip
                // a leading `/` (Debian's perl ships `usr/bin/perlthanks` -> `/usr/bin/perlbug`).
                // `..` is still refused by `components`.
                let start = target.iter().take_while(|b| **b == b'/').count();
                let tcomps = components(&target[start..]).map_err(|_| LayerError::Unsafe {
                    path: show(&raw),
                    reason: "hardlink target escapes the layer",
                })?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(LayerError::Unsafe {
                        path: show(&raw),
                        reason: "hardlink to the layer root",
                    });
                };
                let tdir =
                    sfs::open_beneath_nofollow(self.root(), &rel(tparents), libc_o_path_dir())
                        .map_err(|e| match e.raw_os_error() {
                            Some(ELOOP) | Some(ENOTDIR) | Some(EXDEV) => LayerError::Unsafe {
                                path: show(&raw),
                                reason: "hardlink target traverses a symlink",
                            },
                            _ => LayerError::Apply {
                                path: show(&raw),
                                op: "resolving hardlink target",
                                source: e,
                            },
                        })?;
                sfs::linkat(tdir.as_fd(), OsStr::from_bytes(tname), dir, name_os)
                    .map_err(err("hardlink"))?;
                self.stats.entries += 1;
                return Ok(()); // shares the target's inode and metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ty = match kind {
                    EntryType::Char => S_IFCHR,
                    EntryType::Block => S_IFBLK,
                    _ => S_IFIFO,
                };
                let major = e.header().device_major().ok().flatten().unwrap_or(0);
                let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                let dev = nix::sys::stat::makedev(major as u64, minor as u64);
                sfs::mknodat(dir, name_os, ty | 0o600, dev).map_err(err("mknod"))?;
            }
            other => {
                return Err(LayerError::Unsupported {
                    path: show(&raw),
                    kind: format!("{other:?}"),
                });
            }
        }
        // Metadata: chown, chmod, xattrs, mtime (dirs: later).
        sfs::lchown_at(dir, name_os, uid, gid).map_err(err("chown"))?;
        if kind != EntryType::Symlink {
            sfs::lchmod_at(dir, name_os, mode).map_err(err("chmod"))?;
        }
        for (k, v) in &xattrs {
            match sfs::lsetxattr_at(dir, name_os, k, v) {
                Err(e)
                    if kind == EntryType::Symlink
                        && matches!(e.raw_os_error(), Some(EPERM) | Some(EOPNOTSUPP)) => {}
                r => r.map_err(err("setting xattr"))?,
            }
        }
        if !kind.is_dir() {
            sfs::lutimens_at(dir, name_os, (mtime, 0), (mtime, 0)).map_err(err("setting mtime"))?;
        }
        self.stats.entries += 1;
        Ok(())
    }
}

fn libc_o_path_dir() -> i32 {
    libc::O_PATH | libc::O_DIRECTORY
}

fn o_create_file() -> i32 {
    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY
}

/// `SCHILY.xattr.*` PAX records, minus `trusted.overlay.*`.
fn xattrs<R: Read>(
    e: &mut tar::Entry<'_, R>,
    raw: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, LayerError> {
    let mut out = Vec::new();
    let Some(exts) = e.pax_extensions().map_err(LayerError::Read)? else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(LayerError::Read)?;
        let Ok(key) = ext.key() else { continue };
        let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        if name.is_empty() || name.contains('\0') {
            return Err(LayerError::Unsafe {
                path: show(raw),
                reason: "invalid xattr name",
            });
        }
        let value = ext.value_bytes();
        if name == "security.capability" {
            if let Some(v) = fit_file_caps(value, kernel_has_v3_file_caps()) {
                out.push((name.to_string(), v));
            }
            continue;
        }
        out.push((name.to_string(), value.to_vec()));
    }
    Ok(out)
}

const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;

/// Namespaced (v3) file capabilities, Linux 4.14; `WHARF_DISABLE=filecapsv3` reads the
/// kernel as older.
fn kernel_has_v3_file_caps() -> bool {
    use wharf_sys::features::{force_disabled, kernel_version, Feature};
    kernel_version() >= (4, 14) && !force_disabled(Feature::FileCapsV3)
}

/// A layer's `security.capability` as this kernel can execute it. Images built on 4.14+
/// kernels may carry v3 values (v2 plus a root uid); an older kernel fails `execve` of such
/// a file with EINVAL. A v3 value for root uid 0 means exactly what v2 means in wharf's
/// containers (no user namespace), so it is written as v2 everywhere; one for another root
/// uid only applies inside a user namespace with that root — never here — so on a kernel
/// without v3 it is dropped (a newer kernel ignores it itself). Anything else is kept as is.
fn fit_file_caps(value: &[u8], kernel_has_v3: bool) -> Option<Vec<u8>> {
    let word = |at: usize| {
        value
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let (Some(magic), Some(rootid)) = (word(0), word(20)) else {
        return Some(value.to_vec());
    };
    if magic & VFS_CAP_REVISION_MASK != VFS_CAP_REVISION_3 || value.len() != 24 {
        return Some(value.to_vec());
    }
    if rootid == 0 {
        let mut v2 = value[..20].to_vec();
        let flags = magic & !VFS_CAP_REVISION_MASK;
        v2[..4].copy_from_slice(&(VFS_CAP_REVISION_2 | flags).to_le_bytes());
        return Some(v2);
    }
    kernel_has_v3.then(|| value.to_vec())
}

/// Unpacks the uncompressed layer tar `tar` into the existing directory `dest`.
/// On error, `dest` is left partially populated (the caller discards it); nothing outside
/// `dest` is touched in any case.
pub fn apply_layer(dest: &Path, tar: impl Read) -> Result<ApplyStats, LayerError> {
    apply_layer_observed(dest, tar, &mut NoObserver)
}

/// [`apply_layer`], telling `obs` where file contents are and before anything this layer
/// created is removed (see `tarsplit`).
pub(crate) fn apply_layer_observed(
    dest: &Path,
    tar: impl Read,
    obs: &mut dyn ApplyObserver,
) -> Result<ApplyStats, LayerError> {
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dest)
        .map_err(|e| LayerError::Dest(dest.to_path_buf(), e))?;
    let mut a = Applier {
        root,
        obs,
        cache: None,
        dirs: Vec::new(),
        stats: ApplyStats::default(),
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(LayerError::Read)? {
        let entry = entry.map_err(LayerError::Read)?;
        a.entry(entry)?;
    }
    // Directory mtimes last (creating entries inside changed them), deepest first.
    let dirs = std::mem::take(&mut a.dirs);
    for (p, mtime) in dirs.iter().rev() {
        let shown = p.as_os_str().as_bytes();
        match p.file_name() {
            None => {
                // the layer root: through its /proc/self/fd path
                let path = sfs::fd_path(a.root());
                let t = nix::sys::time::TimeSpec::new(*mtime, 0);
                nix::sys::stat::utimensat(
                    None,
                    &path,
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::FollowSymlink,
                )
                .map_err(|e| Applier::apply_err(shown, "setting mtime")(e.into()))?;
            }
            Some(name) => {
                let parent = p.parent().unwrap_or(Path::new(""));
                let pfd = sfs::open_beneath_nofollow(a.root(), parent, libc_o_path_dir())
                    .map_err(Applier::apply_err(shown, "reopening directory"))?;
                match sfs::lutimens_at(pfd.as_fd(), name, (*mtime, 0), (*mtime, 0)) {
                    // replaced by a non-directory or removed by a later entry: nothing to do
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    r => r.map_err(Applier::apply_err(shown, "setting mtime"))?,
                }
            }
        }
    }
    Ok(a.stats)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "apply_tests.rs"]
mod tests;
