//! docker's change list (`docker diff`) of a container, computed from its overlay upper dir
//! and its image's layers without mounting anything.
//!
//! The semantics are moby's `archive.ChangesDirs` (what docker's daemon runs on the
//! container's and the image's file systems): comparing the merged tree the container sees
//! with the merged tree of its image,
//! - a path only in the container's is `A`, and so is everything below a new directory;
//! - a path in both is `C` when mode, owner, device number, the symlink target or
//!   `security.capability` differ, or — not for directories — mtime or size;
//! - a path only in the image's is `D` (the top of a deleted tree only; a directory made
//!   opaque in the container lists each image entry it hides as `D`);
//! - a directory with any change below it is listed as `C` before those changes.
//!
//! Only paths in the upper dir can differ, so only it is walked; the image side is looked up
//! in the layers (topmost first: a whiteout hides, an opaque directory ends the search),
//! without following a symlink. Order: depth first, a directory's additions and changes by
//! name, then its deletions by name (docker's daemon emits the same groups, in Go map order).

use super::diff::{
    file_type, io_err, is_whiteout, list, open_rel, show, xattr, DiffError, Entry, CAPABILITY,
    MAX_DEPTH, OPAQUE,
};
use libc::{S_IFDIR, S_IFLNK};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use wharf_sys::fs as sfs;

/// One line of docker's `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`
    Modified,
    /// `A`
    Added,
    /// `D`
    Deleted,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// A change of a container relative to its image, docker's `{"Kind":..,"Path":..}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute, as docker prints it (`/etc/passwd`).
    pub path: String,
}

fn change(kind: ChangeKind, rel: &Path) -> Change {
    Change {
        kind,
        path: show(rel),
    }
}

fn open_dir(p: &Path) -> Result<OwnedFd, DiffError> {
    std::fs::File::open(p)
        .map(OwnedFd::from)
        .map_err(|source| DiffError::Io {
            op: "opening",
            path: p.display().to_string(),
            source,
        })
}

fn missing(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::EXDEV)
    )
}

/// A path of the image's merged tree: its `lstat` and which of the directory's layer fds
/// (see [`Image::dirs`]) provides it.
struct Below {
    st: libc::stat,
    layer: usize,
}

/// The image's layers, topmost first.
struct Image {
    layers: Vec<OwnedFd>,
}

impl Image {
    /// The layers' copies of directory `rel` that make up the image's merged directory,
    /// topmost first: a layer where `rel` is absent is passed over; one where it is not a
    /// directory (a file, a whiteout) hides the layers below, and so does an opaque one
    /// after itself. Opened once per directory walked, so a lookup is one `lstat` per layer.
    fn dirs(&self, rel: &Path) -> Result<Vec<OwnedFd>, DiffError> {
        let mut out = Vec::new();
        for l in &self.layers {
            match open_rel(l.as_fd(), rel, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(fd) => {
                    out.push(fd);
                    if self.opaque_in(l.as_fd(), rel) {
                        break;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) if missing(&e) => break,
                Err(e) => return Err(io_err("reading the image at", rel)(e)),
            }
        }
        Ok(out)
    }

    /// Entry `name` of the merged directory whose layer copies are `dirs`, or None (absent
    /// or whited out).
    fn lookup(dirs: &[OwnedFd], name: &OsStr, rel: &Path) -> Result<Option<Below>, DiffError> {
        for (layer, d) in dirs.iter().enumerate() {
            match sfs::lstat_at(d.as_fd(), name) {
                Ok(st) if is_whiteout(&st) => return Ok(None),
                Ok(st) => return Ok(Some(Below { st, layer })),
                Err(e) if missing(&e) => {}
                Err(e) => return Err(io_err("reading the image at", rel)(e)),
            }
        }
        Ok(None)
    }

    /// Whether directory `rel` of one layer is opaque (hides the layers below).
    fn opaque_in(&self, layer: BorrowedFd<'_>, rel: &Path) -> bool {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return false;
        };
        open_rel(layer, parent, libc::O_PATH | libc::O_DIRECTORY)
            .ok()
            .and_then(|p| sfs::lgetxattr_at(p.as_fd(), name, OPAQUE).ok().flatten())
            .as_deref()
            == Some(b"y")
    }

    /// The names in the merged directory whose layer copies are `dirs`.
    fn names(dirs: &[OwnedFd]) -> Result<BTreeSet<OsString>, DiffError> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeSet::new();
        for d in dirs {
            let (_, entries) = list(d.as_fd(), Path::new(""))?;
            for e in entries {
                if seen.insert(e.name.clone()) && !is_whiteout(&e.st) {
                    out.insert(e.name);
                }
            }
        }
        Ok(out)
    }
}

/// moby's `sameFsTime`: equal, or equal seconds with one side lacking nanoseconds.
fn same_time(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_mtime == b.st_mtime
        && (a.st_mtime_nsec == b.st_mtime_nsec || a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0)
}

/// moby's `statDifferent`.
fn stat_different(old: &libc::stat, new: &libc::stat) -> bool {
    old.st_mode != new.st_mode
        || old.st_uid != new.st_uid
        || old.st_gid != new.st_gid
        || old.st_rdev != new.st_rdev
        || (file_type(old) != S_IFDIR && (!same_time(old, new) || old.st_size != new.st_size))
}

/// docker's change list of an overlay upper dir against its image's layers (topmost
/// first); see the module docs. Paths in `skip` (relative) are left out with everything
/// below them.
pub fn changes(upper: &Path, lowers: &[PathBuf], skip: &[&Path]) -> Result<Vec<Change>, DiffError> {
    let root = open_dir(upper)?;
    let image = Image {
        layers: lowers
            .iter()
            .map(|p| open_dir(p))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut walk = Walk {
        root: root.as_fd(),
        image: &image,
        skip,
        out: Vec::new(),
    };
    walk.dir(Path::new(""), true, false, false, 0)?;
    Ok(walk.out)
}

struct Walk<'a> {
    root: BorrowedFd<'a>,
    image: &'a Image,
    skip: &'a [&'a Path],
    out: Vec<Change>,
}

impl Walk<'_> {
    /// The changes in directory `rel` of the upper dir. `in_image`: the image has `rel` as
    /// a directory (else everything here is new); `listed`: `rel` itself is already listed;
    /// `opaque`: the upper dir's `rel` hides the image's content.
    fn dir(
        &mut self,
        rel: &Path,
        in_image: bool,
        listed: bool,
        opaque: bool,
        depth: usize,
    ) -> Result<(), DiffError> {
        if depth > MAX_DEPTH {
            return Err(DiffError::TooDeep { path: show(rel) });
        }
        let at_entry = self.out.len();
        let (fd, mut entries) = list(self.root, rel)?;
        entries.retain(|e| !self.skip.contains(&rel.join(&e.name).as_path()));
        // what each entry needs from the upper side, read while the directory is open
        let mut facts = Vec::with_capacity(entries.len());
        for e in &entries {
            let path = rel.join(&e.name);
            let cap = match file_type(&e.st) {
                S_IFDIR | libc::S_IFREG => xattr(fd.as_fd(), &e.name, CAPABILITY, &path)?,
                _ => None,
            };
            let target = if file_type(&e.st) == S_IFLNK {
                Some(sfs::readlinkat(fd.as_fd(), &e.name).map_err(io_err("reading link", &path))?)
            } else {
                None
            };
            let opaque = file_type(&e.st) == S_IFDIR
                && xattr(fd.as_fd(), &e.name, OPAQUE, &path)?.as_deref() == Some(b"y");
            facts.push((cap, target, opaque));
        }
        drop(fd);
        let below_dirs = if in_image {
            self.image.dirs(rel)?
        } else {
            Vec::new()
        };
        let mut deleted = BTreeSet::new();
        for (e, (cap, target, child_opaque)) in entries.iter().zip(facts) {
            let path = rel.join(&e.name);
            let below = Image::lookup(&below_dirs, &e.name, &path)?;
            if is_whiteout(&e.st) {
                if below.is_some() {
                    deleted.insert(e.name.clone());
                }
                continue;
            }
            let below = below.map(|b| (b.st, &below_dirs[b.layer]));
            self.entry(&path, e, below, (cap, target, child_opaque), depth)?;
        }
        if opaque && in_image {
            let here: BTreeSet<&OsString> = entries.iter().map(|e| &e.name).collect();
            for name in Image::names(&below_dirs)? {
                if !here.contains(&name) {
                    deleted.insert(name);
                }
            }
        }
        for name in deleted {
            self.out.push(change(ChangeKind::Deleted, &rel.join(name)));
        }
        if self.out.len() > at_entry && !listed && !rel.as_os_str().is_empty() {
            self.out.insert(at_entry, change(ChangeKind::Modified, rel));
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &Path,
        e: &Entry,
        below: Option<(libc::stat, &OwnedFd)>,
        (cap, target, opaque): (Option<Vec<u8>>, Option<PathBuf>, bool),
        depth: usize,
    ) -> Result<(), DiffError> {
        let is_dir = file_type(&e.st) == S_IFDIR;
        let Some((b_st, b_dir)) = below else {
            self.out.push(change(ChangeKind::Added, path));
            if is_dir {
                self.dir(path, false, true, false, depth + 1)?;
            }
            return Ok(());
        };
        let name = path.file_name().unwrap_or_default();
        let mut modified = stat_different(&b_st, &e.st);
        if !modified && matches!(file_type(&e.st), S_IFDIR | libc::S_IFREG) {
            modified = xattr(b_dir.as_fd(), name, CAPABILITY, path)? != cap;
        }
        if !modified && file_type(&e.st) == S_IFLNK {
            let old = sfs::readlinkat(b_dir.as_fd(), name).map_err(io_err("reading link", path))?;
            modified = Some(old) != target;
        }
        if modified {
            self.out.push(change(ChangeKind::Modified, path));
        }
        if is_dir {
            let was_dir = file_type(&b_st) == S_IFDIR;
            self.dir(path, was_dir, modified, opaque, depth + 1)?;
        }
        Ok(())
    }
}
