//! Content-addressed blobs (`blobs/sha256/<hex>`) and the ingest area (`ingest/`).
//!
//! A blob is written to a uniquely named file in `ingest/` while its sha256 and size are
//! computed, fsynced, checked against the expected digest/size if one is known, and only then
//! renamed into `blobs/` (invariant 3: a blob is invisible until committed). Dropping an
//! uncommitted writer removes its temp file. Must not: expose a path to an uncommitted blob.

use crate::error::StoreError;
use crate::util::{fsync_dir, random_suffix, read_capped};
use sha2::{Digest as _, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use wharf_types::Digest;

pub(crate) fn blob_path(blobs: &Path, d: &Digest) -> PathBuf {
    blobs.join(d.hex())
}

/// An in-progress blob in `ingest/`.
pub(crate) struct IngestWriter {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    committed: bool,
}

impl IngestWriter {
    pub(crate) fn new(ingest: &Path) -> Result<IngestWriter, StoreError> {
        let path = ingest.join(format!("blob-{}", random_suffix()?));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(StoreError::io("creating ingest file", &path))?;
        Ok(IngestWriter {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
            committed: false,
        })
    }

    /// fsync, verify against `expected` (digest, size) if given, rename into `blobs`.
    pub(crate) fn commit(
        mut self,
        blobs: &Path,
        expected: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64), StoreError> {
        self.file
            .sync_all()
            .map_err(StoreError::io("syncing", &self.path))?;
        let digest = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some((want, want_size)) = expected {
            if *want != digest || want_size != self.size {
                return Err(StoreError::DigestMismatch {
                    what: format!("blob ({} bytes, expected {want_size})", self.size),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        let dest = blob_path(blobs, &digest);
        if dest.exists() {
            // Same content committed by someone else; ours is identical.
            let _ = std::fs::remove_file(&self.path);
        } else {
            std::fs::rename(&self.path, &dest).map_err(StoreError::io("committing blob", &dest))?;
            fsync_dir(blobs)?;
        }
        self.committed = true;
        Ok((digest, self.size))
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Stores `data` as a blob; returns its digest and size.
pub(crate) fn write_blob(
    blobs: &Path,
    ingest: &Path,
    data: &[u8],
) -> Result<(Digest, u64), StoreError> {
    let d = Digest::of(data);
    if blob_path(blobs, &d).exists() {
        return Ok((d, data.len() as u64));
    }
    let mut w = IngestWriter::new(ingest)?;
    w.write_all(data)
        .map_err(StoreError::io("writing ingest file", &w.path))?;
    w.commit(blobs, Some((&d, data.len() as u64)))
}

/// Reads a small blob (at most `cap` bytes) and verifies its digest.
pub(crate) fn read_blob(blobs: &Path, d: &Digest, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let p = blob_path(blobs, d);
    let Some(data) = read_capped(&p, cap)? else {
        return Ok(None);
    };
    let got = Digest::of(&data);
    if got != *d {
        return Err(StoreError::DigestMismatch {
            what: p.display().to_string(),
            expected: d.clone(),
            actual: got,
        });
    }
    Ok(Some(data))
}
