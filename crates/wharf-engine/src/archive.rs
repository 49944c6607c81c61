//! A container path as a tar stream and a tar stream into a container directory: the
//! Engine API's `/containers/{id}/archive` (what `docker cp` sends through a socket).
//!
//! Both directions reuse `cp`'s hostile-safe copy (paths resolved once inside the
//! container's root, symlinks never followed below it) through a private staging directory
//! next to the container's files: out, the path is copied into the stage and the stage
//! written as a tar (`wharf_store`'s tar writer); in, the tar is unpacked into the stage by
//! the layer applier (no `..`, no absolute paths, no link escapes, nothing written outside
//! it), its bytes capped, and each top-level entry copied into the container directory.
//!
//! Must not: resolve a container path by string, unpack into the container directly, read an
//! unbounded archive, or leave its stage behind.

use crate::commit::{unique, TempDir};
use crate::cp::{container_source, CpEndpoint, CpOptions};
use crate::refusal::ValidationError;
use crate::{Engine, EngineError};
use nix::libc;
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use wharf_store::layer::diff::{self, TreeKind};
use wharf_store::StoreError;
use wharf_sys::fs as sfs;

/// docker's `X-Docker-Container-Path-Stat` (a `container.PathStat`): `mode` is a Go
/// `os.FileMode` (permission bits plus type bits in the high word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    pub link_target: String,
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
#[derive(Debug, Clone, Default)]
pub struct ExtractRequest {
    pub container: String,
    /// An existing directory inside the container.
    pub path: String,
    /// Refuse to replace a non-directory with a directory.
    pub no_overwrite_dir_non_dir: bool,
    /// Keep the archive's uid/gid (otherwise everything belongs to root, as with docker).
    pub copy_uid_gid: bool,
    /// The most archive bytes read.
    pub max_bytes: u64,
}

/// A Unix mode as Go's `os.FileMode` (what docker's CLI decodes).
pub fn go_file_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => DIR,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFIFO => NAMED_PIPE,
        libc::S_IFSOCK => SOCKET,
        libc::S_IFBLK => DEVICE,
        libc::S_IFCHR => DEVICE | CHAR_DEVICE,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, SETUID),
        (libc::S_ISGID, SETGID),
        (libc::S_ISVTX, STICKY),
    ] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(ns)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| crate::state::ZERO_TIME.to_string())
}

/// A reader that fails once more than `limit` bytes came through (and says so in `over`).
struct Capped<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    over: &'a Cell<bool>,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.over.set(true);
            return Err(std::io::Error::other("archive over its size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl Engine {
    /// `HEAD /containers/{id}/archive?path=`: what `path` is (not followed when it is a
    /// symlink; its target is `link_target`).
    pub fn container_path_stat(
        &self,
        container: &str,
        path: &str,
    ) -> Result<PathStat, EngineError> {
        let root = self.container_root(container)?;
        let (entry, _) = container_source(&root, path, false)?;
        let shown = |e| EngineError::io("stat", path, e);
        let st = if entry.name == "." {
            sfs::fstat(entry.dir.as_fd()).map_err(shown)?
        } else {
            sfs::lstat_at(entry.dir.as_fd(), &entry.name).map_err(shown)?
        };
        let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            sfs::readlinkat(entry.dir.as_fd(), &entry.name)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let name = if entry.name == "." {
            "/".to_string()
        } else {
            entry.name.to_string_lossy().into_owned()
        };
        Ok(PathStat {
            name,
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
            link_target,
        })
    }

    /// `GET /containers/{id}/archive?path=`: `path` (a directory with everything below it)
    /// as a tar written to `out`, its entries named from the path's last component, owners
    /// kept. A path ending in `/.` gives the directory's entries.
    pub fn archive_container_path(
        &self,
        container: &str,
        path: &str,
        out: &mut dyn Write,
    ) -> Result<(), EngineError> {
        let info = self.container(container)?;
        let dir = self.store.container_paths(&info.record.id).dir;
        let stage = TempDir(unique(&dir, ".cp-out-"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&stage.0)
            .map_err(|e| EngineError::io("create", &stage.0, e))?;
        self.copy(
            &CpEndpoint::Container {
                container: container.to_string(),
                path: path.to_string(),
            },
            &CpEndpoint::Host(stage.0.clone()),
            CpOptions {
                archive: true,
                ..CpOptions::default()
            },
        )?;
        let fd = std::fs::File::open(&stage.0).map_err(|e| EngineError::io("open", &stage.0, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
        diff::write_tar(fd.as_fd(), TreeKind::Plain, &[], &mut w).map_err(StoreError::from)?;
        w.flush()
            .map_err(|e| EngineError::io("write archive of", path, e))?;
        self.emit_container(&info.record, "archive-path", &[]);
        Ok(())
    }

    /// `PUT /containers/{id}/archive?path=`: the tar `input` (at most `max_bytes`) unpacked
    /// into the directory `path` of the container.
    pub fn extract_to_container(
        &self,
        req: &ExtractRequest,
        input: &mut dyn Read,
    ) -> Result<(), EngineError> {
        let info = self.container(&req.container)?;
        {
            let root = self.container_root(&req.container)?;
            let not_found = || {
                EngineError::from(ValidationError::CpNotFound {
                    path: req.path.clone(),
                    container: req.container.clone(),
                })
            };
            let fd = sfs::open_in_root(
                root.fd(),
                Path::new(&req.path),
                libc::O_PATH | libc::O_CLOEXEC,
            )
            .map_err(|_| not_found())?;
            let st = sfs::fstat(fd.as_fd()).map_err(|e| EngineError::io("stat", &req.path, e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(ValidationError::CpExtractNotDir {
                    path: req.path.clone(),
                    container: req.container.clone(),
                }
                .into());
            }
        }
        let dir = self.store.container_paths(&info.record.id).dir;
        let stage = TempDir(unique(&dir, ".cp-in-"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&stage.0)
            .map_err(|e| EngineError::io("create", &stage.0, e))?;
        let over = Cell::new(false);
        let capped = Capped {
            inner: input,
            left: req.max_bytes,
            over: &over,
        };
        if let Err(e) = wharf_store::layer::apply_layer(&stage.0, capped) {
            if over.get() {
                return Err(ValidationError::CpArchiveTooLarge {
                    path: req.path.clone(),
                    container: req.container.clone(),
                    limit: req.max_bytes,
                }
                .into());
            }
            return Err(StoreError::from(e).into());
        }
        let mut names: Vec<_> = std::fs::read_dir(&stage.0)
            .map_err(|e| EngineError::io("list", &stage.0, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::io("list", &stage.0, e))?;
        names.sort();
        let opts = CpOptions {
            archive: req.copy_uid_gid,
            follow_link: false,
            no_replace_non_dir: req.no_overwrite_dir_non_dir,
        };
        for n in names {
            self.copy(
                &CpEndpoint::Host(stage.0.join(n)),
                &CpEndpoint::Container {
                    container: req.container.clone(),
                    path: req.path.clone(),
                },
                opts,
            )?;
        }
        self.emit_container(&info.record, "extract-to-dir", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_modes() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFCHR | 0o600),
            (1 << 26) | (1 << 21) | 0o600
        );
    }

    #[test]
    fn capped_reader_stops_at_its_limit() {
        let data = vec![0u8; 100];
        let over = Cell::new(false);
        let mut src: &[u8] = &data;
        let mut r = Capped {
            inner: &mut src,
            left: 10,
            over: &over,
        };
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(over.get());
    }
}
