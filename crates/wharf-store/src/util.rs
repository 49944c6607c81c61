//! Small file-system helpers for the store's OWN (trusted) layout: atomic writes
//! (temp → fsync → rename → fsync dir), capped reads, random names, timestamps.
//! Must not be used inside untrusted trees (layers, rootfs): that is `wharf_sys::fs`.

use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Cap on any metadata file read into memory (invariant 3).
pub(crate) const META_CAP: u64 = 64 << 20;

/// 32 random bytes as 64 hex digits.
pub(crate) fn random_hex() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(StoreError::io("reading", "/dev/urandom"))?;
    Ok(hex::encode(b))
}

/// A short random suffix for temp names.
pub(crate) fn random_suffix() -> Result<String, StoreError> {
    Ok(random_hex()?[..16].to_string())
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("syncing directory", dir))
}

/// Writes `data` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_suffix()?));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(StoreError::io("creating", &tmp))?;
        f.write_all(data)
            .and_then(|_| f.sync_all())
            .map_err(StoreError::io("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(StoreError::io("renaming into place", path))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    fsync_dir(dir)
}

pub(crate) fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    what: &'static str,
    v: &T,
) -> Result<(), StoreError> {
    let data = serde_json::to_vec(v).map_err(|source| StoreError::Encode { what, source })?;
    write_atomic(path, &data)
}

/// Reads at most `cap` bytes; `Ok(None)` if the file does not exist.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("opening", path)(e)),
    };
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(StoreError::io("reading", path))?;
    if buf.len() as u64 > cap {
        return Err(StoreError::TooLarge {
            path: path.to_path_buf(),
            limit: cap,
        });
    }
    Ok(Some(buf))
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match read_capped(path, META_CAP)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
    }
}

pub(crate) fn mkdir_p(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(StoreError::io("creating directory", path))
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Removes a directory tree (std's implementation does not follow symlinks), treating
/// "already gone" as success.
pub(crate) fn remove_tree_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Hashes (sha256) and counts what is read through it.
pub(crate) struct HashRead<R> {
    pub inner: R,
    pub hasher: sha2::Sha256,
    pub n: u64,
}

impl<R> HashRead<R> {
    pub fn new(inner: R) -> HashRead<R> {
        HashRead {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            n: 0,
        }
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> wharf_types::Digest {
        wharf_types::Digest::from_hasher(self.hasher.clone())
    }
}

impl<R: std::io::Read> std::io::Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Worker threads for CPU-bound store work: the available cores, 1 to 8.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}
