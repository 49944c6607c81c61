//! Layers as blobs: unpacking an uncompressed layer while recording its tar-split
//! (`tarsplit/<diff_id hex>` next to `snapshots/<diff_id hex>/`), committing the result, and
//! reading any layer back as the blob its manifest names — the committed blob file, or the
//! uncompressed tar reassembled from snapshot + record and verified against its digest.
//!
//! Why: an uncompressed layer (from `docker save`, `import`, OCI layouts) is kept once, as
//! the snapshot containers use, instead of a second full-size (or slowly re-gzipped) copy.

use super::apply_layer_observed;
use super::tarsplit::{Reassembler, SplitOutcome, TarSplit};
use super::LayerError;
use crate::content::blob_path;
use crate::error::StoreError;
use crate::index::Index;
use crate::util::{fsync_dir, random_suffix};
use crate::Store;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use wharf_types::Digest;

/// A temp snapshot directory, removed on drop unless [`TmpSnapshot::keep`] was called.
pub(crate) struct TmpSnapshot {
    pub(crate) path: PathBuf,
    armed: bool,
}

impl TmpSnapshot {
    pub(crate) fn new(snapshots: &Path) -> Result<TmpSnapshot, StoreError> {
        // each layer's tree in a block group of its own (see `set_topdir`); a hint: a file
        // system without the flag, or a failure to set it, changes nothing but speed
        let _ = wharf_sys::fs::set_topdir(snapshots);
        let path = snapshots.join(format!("tmp-{}", random_suffix()?));
        std::fs::create_dir(&path).map_err(StoreError::io("creating snapshot", &path))?;
        Ok(TmpSnapshot { path, armed: true })
    }

    /// Renames it to `dest` unless that exists (then it is identical and ours is dropped).
    pub(crate) fn commit(mut self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Ok(());
        }
        // temp → sync → rename, as for every store write: a snapshot that an image names must
        // survive a power cut with its files' contents (containerd#8895, moby#49784: layers of
        // zero-byte files, on hosts that cannot re-pull). One syncfs covers the whole tree and
        // any other layer written meanwhile; apply started each file's write-back early.
        let dir = File::open(&self.path).map_err(StoreError::io("opening", &self.path))?;
        wharf_sys::fs::syncfs(dir.as_fd()).map_err(StoreError::io("syncing", &self.path))?;
        match std::fs::rename(&self.path, dest) {
            Ok(()) => {
                self.armed = false;
                if let Some(parent) = dest.parent() {
                    fsync_dir(parent)?;
                }
                Ok(())
            }
            Err(e) if dest.exists() => {
                drop(e);
                Ok(())
            }
            Err(e) => Err(StoreError::io("committing snapshot", dest)(e)),
        }
    }
}

impl Drop for TmpSnapshot {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// An uncompressed layer unpacked and recorded, not yet committed.
/// Dropping it removes the temp snapshot and record.
pub(crate) struct RecordedLayer {
    snapshot: Option<TmpSnapshot>,
    outcome: Option<SplitOutcome>,
}

impl Drop for RecordedLayer {
    fn drop(&mut self) {
        if let Some(SplitOutcome::Record(p) | SplitOutcome::Raw(p)) = &self.outcome {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Store {
    pub(crate) fn tarsplit_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("tarsplit").join(diff_id.hex())
    }

    /// Unpacks the uncompressed layer stream `r` into a fresh temp snapshot, recording its
    /// tar-split; reads `r` to its end (trailing bytes are part of the layer).
    pub(crate) fn unpack_recorded(&self, r: impl Read) -> Result<RecordedLayer, StoreError> {
        let snapshot = TmpSnapshot::new(&self.snapshots)?;
        let split = TarSplit::new(&snapshot.path, &self.ingest)
            .map_err(StoreError::io("creating tar-split record", &self.ingest))?;
        let mut rec = split.reader(r);
        apply_layer_observed(&snapshot.path, &mut rec, &mut split.observer())?;
        io::copy(&mut rec, &mut io::sink()).map_err(LayerError::Read)?;
        drop(rec);
        let outcome = split
            .finish()
            .map_err(StoreError::io("writing tar-split record", &self.ingest))?;
        Ok(RecordedLayer {
            snapshot: Some(snapshot),
            outcome: Some(outcome),
        })
    }

    /// Commits a verified recorded layer whose tar has digest `diff_id`: the snapshot, and
    /// either its record (`tarsplit/`) or, for a layer that rewrote itself, its raw tar as
    /// the blob `blobs/sha256/<diff_id>`.
    pub(crate) fn commit_recorded(
        &self,
        mut layer: RecordedLayer,
        diff_id: &Digest,
    ) -> Result<(), StoreError> {
        let (dir, dest, src) = match &layer.outcome {
            Some(SplitOutcome::Record(p)) => (
                self.root.join("tarsplit"),
                self.tarsplit_path(diff_id),
                p.clone(),
            ),
            Some(SplitOutcome::Raw(p)) => (
                self.blobs.clone(),
                blob_path(&self.blobs, diff_id),
                p.clone(),
            ),
            None => return Ok(()),
        };
        crate::util::mkdir_p(&dir)?;
        if !dest.exists() {
            std::fs::rename(&src, &dest).map_err(StoreError::io("committing layer", &dest))?;
            layer.outcome = None;
            fsync_dir(&dir)?;
        }
        match layer.snapshot.take() {
            Some(s) => s.commit(&self.snapshots.join(diff_id.hex())),
            None => Ok(()),
        }
    }

    /// Whether [`Store::open_layer`] can produce blob `blob`.
    pub fn has_layer(&self, blob: &Digest) -> bool {
        blob_path(&self.blobs, blob).is_file()
            || (self.tarsplit_path(blob).is_file() && self.snapshots.join(blob.hex()).is_dir())
    }

    /// The bytes of layer blob `blob` (the digest its manifest names) and their length: the
    /// blob file, or the uncompressed tar reassembled from snapshot and tar-split record,
    /// verified while read (a mismatch is an `InvalidData` read error at the end).
    pub fn open_layer(&self, blob: &Digest) -> Result<(Box<dyn Read + Send>, u64), StoreError> {
        let p = blob_path(&self.blobs, blob);
        match File::open(&p) {
            Ok(f) => {
                let len = f.metadata().map_err(StoreError::io("stat blob", &p))?.len();
                return Ok((Box::new(f), len));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("opening layer blob", &p)(e)),
        }
        let rec = self.tarsplit_path(blob);
        if !rec.is_file() {
            return Err(StoreError::io("opening layer blob", &p)(io::Error::from(
                io::ErrorKind::NotFound,
            )));
        }
        let idx = Index::load(&self.images_json)?;
        let size = idx
            .images
            .values()
            .flat_map(|e| e.layers.iter())
            .find(|l| &l.blob == blob && &l.diff_id == blob)
            .map(|l| l.size)
            .ok_or_else(|| StoreError::ImageNotFound(format!("layer {blob}")))?;
        let snap = self.snapshots.join(blob.hex());
        let r = Reassembler::open(&rec, &snap, Some((blob.clone(), size)))
            .map_err(StoreError::io("reassembling layer", &snap))?;
        Ok((Box::new(r), size))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "source_tests.rs"]
mod tests;
