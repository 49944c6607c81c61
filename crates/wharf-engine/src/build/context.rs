//! COPY/ADD sources: a path resolved inside its root (the build context, or an earlier
//! stage's mounted file system), hashed for the step cache, and copied into a staging tree
//! that becomes the step's layer.
//!
//! A source is cleaned lexically; one that climbs out of its root (`../x`) is refused, and
//! so is one whose symlinks (any component) point outside it. The file is then opened with
//! `open_in_root` on the root's fd (symlinks clamped to the root), and a directory is walked
//! with `*at` calls on directory fds, never following a symlink (symlinks inside a copied
//! directory are copied as symlinks). `.dockerignore` applies to the context only.
//!
//! Must not: read outside the root, or read a file unbounded into memory.

use super::BuildError;
use nix::libc;
use sha2::{Digest as _, Sha256};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use wharf_build::dockerignore::Dockerignore;

/// Symlink hops allowed while resolving one source (Linux's own limit).
const MAX_HOPS: usize = 40;
/// Entries allowed below one source (a hostile context cannot make the walk unbounded).
const MAX_ENTRIES: usize = 1_000_000;

/// A root sources are resolved in.
pub(super) struct Root<'a> {
    pub fd: BorrowedFd<'a>,
    /// What error messages call it ("build context", "stage builder").
    pub name: String,
    /// `.dockerignore` (the context only).
    pub ignore: Option<&'a Dockerignore>,
}

/// `path` cleaned to a relative path inside the root; `None` when `..` climbs out.
pub(super) fn clean_inside(path: &str) -> Option<PathBuf> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out.iter().collect())
}

/// The source `path` resolved inside `root`: refused when `..` or a symlink on the way
/// leads out of it. Returns the cleaned relative path (after in-root symlinks).
pub(super) fn resolve(root: &Root, path: &str) -> Result<PathBuf, BuildError> {
    let escape = || BuildError::ContextEscape {
        path: path.to_string(),
        root: root.name.clone(),
    };
    let mut rest: Vec<PathBuf> = vec![clean_inside(path).ok_or_else(escape)?];
    let mut done = PathBuf::new();
    let mut hops = 0;
    while let Some(p) = rest.pop() {
        let mut comps: Vec<PathBuf> = p.iter().map(PathBuf::from).collect();
        comps.reverse();
        while let Some(c) = comps.pop() {
            let cand = done.join(&c);
            let parent = wharf_sys::fs::open_beneath_nofollow(
                root.fd,
                if done.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    &done
                },
                libc::O_PATH | libc::O_DIRECTORY,
            );
            let Ok(parent) = parent else {
                return Err(BuildError::SourceNotFound {
                    path: path.to_string(),
                    root: root.name.clone(),
                });
            };
            let st = match wharf_sys::fs::lstat_at(parent.as_fd(), c.as_os_str()) {
                Ok(st) => st,
                Err(_) => {
                    return Err(BuildError::SourceNotFound {
                        path: path.to_string(),
                        root: root.name.clone(),
                    })
                }
            };
            if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
                done = cand;
                continue;
            }
            hops += 1;
            if hops > MAX_HOPS {
                return Err(escape());
            }
            let target = wharf_sys::fs::readlinkat(parent.as_fd(), c.as_os_str())
                .map_err(|e| BuildError::io("readlink", &cand, e))?;
            // an absolute target or one climbing above the root leaves it
            if target.is_absolute() {
                return Err(escape());
            }
            let joined = clean_inside(&done.join(&target).to_string_lossy()).ok_or_else(escape)?;
            let remaining: PathBuf = comps.iter().rev().collect();
            comps.clear();
            done = PathBuf::new();
            rest.push(joined.join(remaining));
            break;
        }
    }
    Ok(done)
}

fn open_at(root: &Root, rel: &Path, flags: i32) -> Result<OwnedFd, BuildError> {
    let p = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    wharf_sys::fs::open_beneath_nofollow(root.fd, p, flags)
        .map_err(|e| BuildError::io("open", rel, e))
}

/// What [`walk`] calls for each entry (with an open fd of a regular file).
pub(super) type Visitor<'a> = dyn FnMut(&Entry, Option<File>) -> Result<(), BuildError> + 'a;

/// One entry of a source, found by [`walk`].
pub(super) struct Entry {
    /// Relative to the source (empty: the source itself).
    pub rel: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Every entry of the source at `rel` (resolved), parents before children, names sorted;
/// with `f` called with an open fd of each regular file.
pub(super) fn walk(root: &Root, rel: &Path, f: &mut Visitor<'_>) -> Result<(), BuildError> {
    let fd = open_at(root, rel, libc::O_PATH)?;
    let st = wharf_sys::fs::fstat(fd.as_fd()).map_err(|e| BuildError::io("stat", rel, e))?;
    let mut count = 0usize;
    visit(root, rel, Path::new(""), st, &mut count, f)
}

fn entry_of(rel: &Path, st: &libc::stat, kind: Kind) -> Entry {
    Entry {
        rel: rel.to_path_buf(),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: st.st_mtime,
        kind,
    }
}

fn visit(
    root: &Root,
    base: &Path,
    rel: &Path,
    st: libc::stat,
    count: &mut usize,
    f: &mut Visitor<'_>,
) -> Result<(), BuildError> {
    *count += 1;
    if *count > MAX_ENTRIES {
        return Err(BuildError::TooManyEntries {
            path: base.display().to_string(),
        });
    }
    let full = if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            f(&entry_of(rel, &st, Kind::Dir), None)?;
            let dir = open_at(root, &full, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let mut names: Vec<std::ffi::OsString> =
                std::fs::read_dir(wharf_sys::fs::fd_path(dir.as_fd()))
                    .map_err(|e| BuildError::io("read", &full, e))?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BuildError::io("read", &full, e))?;
            names.sort();
            for n in names {
                let child = full.join(&n);
                if let Some(ig) = root.ignore {
                    let s = child.to_string_lossy();
                    let cst = wharf_sys::fs::lstat_at(dir.as_fd(), &n)
                        .map_err(|e| BuildError::io("stat", &child, e))?;
                    let is_dir = cst.st_mode & libc::S_IFMT == libc::S_IFDIR;
                    if ig.excluded(&s) && !(is_dir && ig.may_include_under(&s)) {
                        continue;
                    }
                }
                let cst = wharf_sys::fs::lstat_at(dir.as_fd(), &n)
                    .map_err(|e| BuildError::io("stat", &child, e))?;
                visit(root, base, &rel.join(&n), cst, count, f)?;
            }
            Ok(())
        }
        libc::S_IFREG => {
            if let Some(ig) = root.ignore {
                if !rel.as_os_str().is_empty() && ig.excluded(&full.to_string_lossy()) {
                    return Ok(());
                }
            }
            let fd = open_at(root, &full, libc::O_RDONLY)?;
            f(&entry_of(rel, &st, Kind::File), Some(File::from(fd)))
        }
        libc::S_IFLNK => {
            let (parent, name) = match (full.parent(), full.file_name()) {
                (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
                _ => return Ok(()),
            };
            let pfd = open_at(root, &parent, libc::O_PATH | libc::O_DIRECTORY)?;
            let target = wharf_sys::fs::readlinkat(pfd.as_fd(), &name)
                .map_err(|e| BuildError::io("readlink", &full, e))?;
            f(&entry_of(rel, &st, Kind::Symlink(target)), None)
        }
        // devices, fifos, sockets: docker's COPY skips nothing, but a context has no business
        // holding them; left out
        _ => Ok(()),
    }
}

/// Content hash of a source (names, modes, owners, sizes, bytes, link targets): the COPY
/// step's cache key part.
pub(super) fn hash_source(root: &Root, rel: &Path, h: &mut Sha256) -> Result<(), BuildError> {
    h.update(rel.as_os_str().as_encoded_bytes());
    walk(root, rel, &mut |e, file| {
        h.update(format!(
            "\n{}\0{:o}\0{}\0{}\0{}\0",
            e.rel.display(),
            e.mode,
            e.uid,
            e.gid,
            e.size
        ));
        match &e.kind {
            Kind::Symlink(t) => h.update(t.as_os_str().as_encoded_bytes()),
            Kind::Dir => h.update(b"d"),
            Kind::File => {
                if let Some(mut f) = file {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = f
                            .read(&mut buf)
                            .map_err(|err| BuildError::io("read", &e.rel, err))?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
            }
        }
        Ok(())
    })
}

/// How copied entries are owned and moded (`--chown`, `--chmod`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Owner {
    pub uid_gid: Option<(u32, u32)>,
    pub chmod: Option<u32>,
}

/// Copies the source at `rel` to `dest` (a path in the staging tree, which the caller made
/// the parent of): a directory's contents go into `dest`, anything else becomes `dest`.
pub(super) fn copy_source(
    root: &Root,
    rel: &Path,
    dest: &Path,
    owner: Owner,
) -> Result<(), BuildError> {
    walk(root, rel, &mut |e, file| {
        let to = if e.rel.as_os_str().is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(&e.rel)
        };
        let (uid, gid) = owner.uid_gid.unwrap_or((e.uid, e.gid));
        let mode = owner.chmod.unwrap_or(e.mode);
        match &e.kind {
            Kind::Dir => {
                match std::fs::create_dir(&to) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && to.is_dir() => {}
                    Err(err) => return Err(BuildError::io("create", &to, err)),
                }
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                    .map_err(|err| BuildError::io("chmod", &to, err))?;
            }
            Kind::File => {
                let _ = std::fs::remove_file(&to);
                let mut out =
                    File::create(&to).map_err(|err| BuildError::io("create", &to, err))?;
                if let Some(mut f) = file {
                    std::io::copy(&mut f, &mut out)
                        .map_err(|err| BuildError::io("copy", &to, err))?;
                }
                out.flush()
                    .map_err(|err| BuildError::io("write", &to, err))?;
                out.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|err| BuildError::io("chmod", &to, err))?;
                let mtime = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(u64::try_from(e.mtime).unwrap_or(0));
                let _ = out.set_modified(mtime);
            }
            Kind::Symlink(t) => {
                let _ = std::fs::remove_file(&to);
                std::os::unix::fs::symlink(t, &to)
                    .map_err(|err| BuildError::io("symlink", &to, err))?;
            }
        }
        std::os::unix::fs::lchown(&to, Some(uid), Some(gid))
            .map_err(|err| BuildError::io("chown", &to, err))
    })
}

/// Whether the file starts like a tar archive (`ustar` magic at 257): ADD extracts those.
pub(super) fn is_tar(f: &mut File) -> bool {
    let mut head = [0u8; 263];
    let ok = f.read_exact(&mut head).is_ok() && &head[257..262] == b"ustar";
    let _ = std::io::Seek::rewind(f);
    ok
}

/// A context tar as clients send it, made whole: docker's CLI ends the tar it rewrites
/// for a Dockerfile outside the context (`.dockerfile.<random>`) right after the last
/// file's bytes, without the padding to 512 bytes or the end-of-archive blocks (Go's reader
/// and dockerd accept that). After the source's end this reader adds the missing padding
/// and two zero blocks; a tar that was already whole gets zero blocks after its end, which
/// readers never look at.
pub(super) struct TarEnd<R> {
    inner: R,
    read: u64,
    /// Zero bytes still to give after the source's end (`None`: not at the end yet).
    tail: Option<u64>,
}

impl<R: Read> TarEnd<R> {
    pub fn new(inner: R) -> TarEnd<R> {
        TarEnd {
            inner,
            read: 0,
            tail: None,
        }
    }
}

impl<R: Read> Read for TarEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            let pad = (512 - self.read % 512) % 512;
            self.tail = Some(pad + 1024);
        }
        let left = self.tail.unwrap_or(0);
        let n = (buf.len() as u64).min(left) as usize;
        buf[..n].fill(0);
        self.tail = Some(left - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_end_pads_a_truncated_tar() {
        let mut out = Vec::new();
        TarEnd::new(&[1u8; 700][..]).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 1024 + 1024);
        assert!(out[..700].iter().all(|b| *b == 1) && out[700..].iter().all(|b| *b == 0));
        let mut out = Vec::new();
        TarEnd::new(&[1u8; 1024][..]).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2048);
    }

    #[test]
    fn clean_refuses_climbing_out() {
        assert_eq!(clean_inside("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(clean_inside("/a/./b/"), Some(PathBuf::from("a/b")));
        assert_eq!(clean_inside("../x"), None);
        assert_eq!(clean_inside("a/../../x"), None);
        assert_eq!(clean_inside("."), Some(PathBuf::new()));
    }
}
