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
use std::ffi::OsString;
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

/// A path of the image's merged tree: its `lstat` and its parent directory in the layer
/// that provides it.
struct Below {
    st: libc::stat,
    parent: OwnedFd,
}

/// The image's layers, topmost first.
struct Image {
    layers: Vec<OwnedFd>,
}

impl Image {
    /// `rel` in the merged tree of the layers, or None (absent or whited out).
    fn lookup(&self, rel: &Path) -> Result<Option<Below>, DiffError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let Some(name) = rel.file_name() else {
            return Ok(None);
        };
        for l in &self.layers {
            let pfd = match open_rel(l.as_fd(), parent, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(e) if missing(&e) => continue,
                Err(e) => return Err(io_err("reading the image at", rel)(e)),
            };
            match sfs::lstat_at(pfd.as_fd(), name) {
                Ok(st) if is_whiteout(&st) => return Ok(None),
                Ok(st) => return Ok(Some(Below { st, parent: pfd })),
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

    /// The names in directory `rel` of the merged tree of the layers.
    fn names(&self, rel: &Path) -> Result<BTreeSet<OsString>, DiffError> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeSet::new();
        for l in &self.layers {
            let (fd, entries) = match list(l.as_fd(), rel) {
                Ok(x) => x,
                Err(DiffError::Io { source, .. }) if missing(&source) => {
                    // a non-directory or whiteout here hides the layers below
                    match open_rel(l.as_fd(), rel, libc::O_PATH) {
                        Ok(_) => break,
                        Err(e) if missing(&e) => continue,
                        Err(e) => return Err(io_err("reading the image at", rel)(e)),
                    }
                }
                Err(e) => return Err(e),
            };
            for e in entries {
                if seen.insert(e.name.clone()) && !is_whiteout(&e.st) {
                    out.insert(e.name);
                }
            }
            drop(fd);
            if self.opaque_in(l.as_fd(), rel) {
                break;
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
        let mut deleted = BTreeSet::new();
        for (e, (cap, target, child_opaque)) in entries.iter().zip(facts) {
            let path = rel.join(&e.name);
            let below = if in_image {
                self.image.lookup(&path)?
            } else {
                None
            };
            if is_whiteout(&e.st) {
                if below.is_some() {
                    deleted.insert(e.name.clone());
                }
                continue;
            }
            self.entry(&path, e, below, (cap, target, child_opaque), depth)?;
        }
        if opaque && in_image {
            let here: BTreeSet<&OsString> = entries.iter().map(|e| &e.name).collect();
            for name in self.image.names(rel)? {
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
        below: Option<Below>,
        (cap, target, opaque): (Option<Vec<u8>>, Option<PathBuf>, bool),
        depth: usize,
    ) -> Result<(), DiffError> {
        let is_dir = file_type(&e.st) == S_IFDIR;
        let Some(b) = below else {
            self.out.push(change(ChangeKind::Added, path));
            if is_dir {
                self.dir(path, false, true, false, depth + 1)?;
            }
            return Ok(());
        };
        let name = path.file_name().unwrap_or_default();
        let mut modified = stat_different(&b.st, &e.st);
        if !modified && matches!(file_type(&e.st), S_IFDIR | libc::S_IFREG) {
            modified = xattr(b.parent.as_fd(), name, CAPABILITY, path)? != cap;
        }
        if !modified && file_type(&e.st) == S_IFLNK {
            let old =
                sfs::readlinkat(b.parent.as_fd(), name).map_err(io_err("reading link", path))?;
            modified = Some(old) != target;
        }
        if modified {
            self.out.push(change(ChangeKind::Modified, path));
        }
        if is_dir {
            let was_dir = file_type(&b.st) == S_IFDIR;
            self.dir(path, was_dir, modified, opaque, depth + 1)?;
        }
        Ok(())
    }
}
