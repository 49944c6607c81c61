//! Store operations for the registry client (`pull`, `push`): which blobs exist, streaming a
//! layer from the network into `ingest/` while it is decompressed and unpacked (one pass),
//! resuming an interrupted download, and committing a pulled image atomically.
//!
//! A pull is a [`PullTxn`]: it holds `gc.lock` shared for its whole life. Each layer streams
//! through [`PullTxn::ingest_layer`]: compressed bytes are appended to
//! `ingest/pull-<blob hex>` (a stable name, so a killed pull leaves a partial file the next
//! pull continues with a Range request) and hashed, and the same bytes are decompressed
//! (gzip, zstd or none, by magic) and unpacked into `snapshots/tmp-*` while the diff_id is
//! hashed. Nothing is renamed into `blobs/` or `snapshots/` until [`PullTxn::commit`], after
//! every layer's blob digest, size and diff_id verified. A blob whose bytes did not verify is
//! deleted (never resumed from).
//!
//! Must not: talk HTTP (the client hands in readers), or trust a descriptor before verifying.

use crate::archive::{decompress, is_no_space, read_err, ArchiveError, CapExceeded, Capped};
use crate::content::{blob_path, write_blob};
use crate::error::StoreError;
use crate::index::{ImageEntry, Index, LayerEntry};
use crate::layer::apply_layer;
use crate::layer::source::TmpSnapshot;
use crate::lock::{EphemeralLock, Lock};
use crate::util::{fsync_dir, HashRead};
use crate::Store;
use sha2::{Digest as _, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::{Descriptor, ImageConfig, Manifest};
use wharf_types::Digest;

/// Failures of pull/push store operations.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "size mismatch for {what}: the registry sent {actual} bytes, the manifest says {expected}"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("reading {what} from the registry: {source}")]
    Network {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("image config {0} does not match the manifest: {1}")]
    BadConfig(Digest, String),
}

impl DistError {
    /// A full file system as one [`ArchiveError::NoSpace`] naming the store.
    fn on_store(self, root: &std::path::Path) -> DistError {
        match self {
            DistError::Archive(a) => DistError::Archive(a.on_store(root)),
            e if is_no_space(&e) => DistError::Archive(ArchiveError::NoSpace {
                store: root.to_path_buf(),
                free: None,
            }),
            e => e,
        }
    }
}

impl HasKind for DistError {
    fn kind(&self) -> ErrorKind {
        match self {
            DistError::Store(e) => e.kind(),
            DistError::Archive(e) => e.kind(),
            DistError::Network { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// A layer that verified and is ready to be committed.
pub struct PreparedLayer {
    entry: LayerEntry,
    /// Verified ingest file to rename into `blobs/` (None: the blob exists already).
    blob: Option<PathBuf>,
    /// Unpacked temp snapshot to rename (None: the snapshot exists already).
    snapshot: Option<TmpSnapshot>,
    _lock: Option<BlobLock>,
}

/// Exclusive right to download one blob into its `ingest/pull-<hex>` file (two concurrent
/// pulls of the same layer would otherwise append to the same file). Held until commit.
pub struct BlobLock {
    _l: EphemeralLock,
}

impl PreparedLayer {
    /// Uncompressed size of the layer.
    pub fn size(&self) -> u64 {
        self.entry.size
    }

    /// Drops the layer and its verified download (which a later pull would otherwise reuse):
    /// for a pull that failed because the store is full.
    pub fn discard(self) {
        if let Some(p) = &self.blob {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An open pull: holds `gc.lock` shared.
pub struct PullTxn<'a> {
    store: &'a Store,
    _gc: Lock,
}

/// What [`PullTxn::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub id: Digest,
    /// The tag already pointed at this image and the repo digest was known.
    pub up_to_date: bool,
}

/// Hashes, counts and (optionally) appends to the ingest file what it reads; the first
/// `resumed` bytes come from the partial file and are only hashed.
struct BlobReader<'r> {
    partial: Option<io::Take<File>>,
    net: &'r mut dyn Read,
    out: Option<File>,
    hasher: Sha256,
    size: u64,
    limit: u64,
    err: Option<DistError>,
    what: String,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = &mut self.partial {
            let n = p.read(buf)?;
            if n > 0 {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                return Ok(n);
            }
            self.partial = None;
        }
        let n = match self.net.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let msg = e.to_string();
                self.err.get_or_insert(DistError::Network {
                    what: self.what.clone(),
                    source: e,
                });
                return Err(io::Error::other(msg));
            }
        };
        if self.size + n as u64 > self.limit {
            self.err.get_or_insert(DistError::SizeMismatch {
                what: self.what.clone(),
                expected: self.limit,
                actual: self.size + n as u64,
            });
            return Err(io::Error::other("blob larger than its descriptor"));
        }
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if let Some(o) = &mut self.out {
            o.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

impl Store {
    /// Whether a verified blob with this digest is in the store.
    pub fn has_blob(&self, d: &Digest) -> bool {
        blob_path(&self.blobs, d).is_file()
    }

    /// Opens a committed blob for reading (push), with its size.
    pub fn open_blob(&self, d: &Digest) -> Result<(File, u64), StoreError> {
        let p = blob_path(&self.blobs, d);
        let f = File::open(&p).map_err(StoreError::io("opening blob", &p))?;
        let len = f.metadata().map_err(StoreError::io("stat blob", &p))?.len();
        Ok((f, len))
    }

    /// Reads a committed metadata-sized blob (manifest, config), verified, at most `cap` bytes.
    pub fn read_small_blob(&self, d: &Digest, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
        crate::content::read_blob(&self.blobs, d, cap)
    }

    /// For push: manifest digest and (blob descriptor) layers of an image, by id.
    pub fn image_manifest(&self, id: &Digest) -> Result<(Digest, Vec<Descriptor>), StoreError> {
        let idx = Index::load(&self.images_json)?;
        let e = idx
            .images
            .get(id.hex())
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        let layers = e
            .layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.blob.clone(),
                size: l.blob_size,
                annotations: None,
                platform: None,
            })
            .collect();
        Ok((e.manifest.clone(), layers))
    }

    /// Records `repo_digest` (`repo@sha256:…`) for image `id` after a push, replacing an older
    /// digest of the same repository.
    pub fn add_repo_digest(&self, id: &Digest, repo_digest: &str) -> Result<(), StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = Index::load(&self.images_json)?;
        let Some(e) = idx.images.get_mut(id.hex()) else {
            return Err(StoreError::ImageNotFound(id.to_string()));
        };
        let repo = repo_digest.split('@').next().unwrap_or_default();
        e.repo_digests
            .retain(|r| r.split('@').next().unwrap_or_default() != repo);
        e.repo_digests.push(repo_digest.to_string());
        idx.save(&self.images_json)
    }

    /// Starts a pull (takes `gc.lock` shared until the transaction is dropped).
    pub fn begin_pull(&self) -> Result<PullTxn<'_>, StoreError> {
        self.reap_stale_temps()?;
        Ok(PullTxn {
            store: self,
            _gc: Lock::shared(&self.gc_lock)?,
        })
    }
}

impl PullTxn<'_> {
    fn partial_path(&self, d: &Digest) -> PathBuf {
        self.store.ingest.join(format!("pull-{}", d.hex()))
    }

    /// A layer already committed together with its snapshot and index facts (no download).
    pub fn existing_layer(&self, blob: &Digest, diff_id: &Digest) -> Option<PreparedLayer> {
        if !self.store.has_blob(blob) || !self.store.snapshots.join(diff_id.hex()).is_dir() {
            return None;
        }
        let idx = Index::load(&self.store.images_json).ok()?;
        let e = idx
            .images
            .values()
            .flat_map(|e| e.layers.iter())
            .find(|l| &l.blob == blob && &l.diff_id == diff_id)?
            .clone();
        Some(PreparedLayer {
            entry: e,
            blob: None,
            snapshot: None,
            _lock: None,
        })
    }

    /// Whether the blob is committed in the store.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.store.has_blob(d)
    }

    /// Whether image `config` is indexed with all its layer blobs and snapshots, `tag` (if
    /// any) points at it and it carries `repo_digest`: a pull would change nothing.
    pub fn is_up_to_date(&self, config: &Digest, tag: Option<&str>, repo_digest: &str) -> bool {
        let Ok(idx) = Index::load(&self.store.images_json) else {
            return false;
        };
        let Some(e) = idx.images.get(config.hex()) else {
            return false;
        };
        e.repo_digests.iter().any(|r| r == repo_digest)
            && match tag {
                None => true,
                Some(t) => idx.tags.get(t) == Some(config),
            }
            && e.layers.iter().all(|l| {
                self.store.has_blob(&l.blob) && self.store.snapshots.join(l.diff_id.hex()).is_dir()
            })
    }

    /// Waits for and takes the download lock of `blob`; check [`has_blob`](Self::has_blob)
    /// and [`partial_len`](Self::partial_len) after taking it.
    pub fn lock_blob(&self, blob: &Digest) -> Result<BlobLock, StoreError> {
        let p = self.store.ingest.join(format!("pull-{}.lock", blob.hex()));
        Ok(BlobLock {
            _l: EphemeralLock::exclusive(&p)?,
        })
    }

    /// Bytes of an interrupted download of `blob` that can be resumed from (0 if none).
    pub fn partial_len(&self, blob: &Digest) -> u64 {
        std::fs::metadata(self.partial_path(blob))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Streams one layer: `body` yields the blob's bytes from offset `resume_from` (which must
    /// be what [`partial_len`](Self::partial_len) returned, or 0 to start over). Verifies the
    /// blob digest and size and the diff_id, unpacking into a temp snapshot on the way.
    ///
    /// On a full store the partial download is removed too (it would only make the next
    /// operation fail sooner) and the error is [`ArchiveError::NoSpace`].
    pub fn ingest_layer(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        body: &mut dyn Read,
        resume_from: u64,
        lock: BlobLock,
    ) -> Result<PreparedLayer, DistError> {
        let part = self.partial_path(&desc.digest);
        self.ingest_unmapped(desc, diff_id, body, resume_from, lock)
            .map_err(|e| {
                let e = e.on_store(&self.store.root);
                if matches!(e, DistError::Archive(ArchiveError::NoSpace { .. })) {
                    let _ = std::fs::remove_file(&part);
                }
                e
            })
    }

    fn ingest_unmapped(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        body: &mut dyn Read,
        resume_from: u64,
        lock: BlobLock,
    ) -> Result<PreparedLayer, DistError> {
        let what = format!("layer {}", desc.digest);
        let s = self.store;
        // A local blob (e.g. left by an earlier load) is read instead of downloaded.
        let local = s.has_blob(&desc.digest);
        let part = self.partial_path(&desc.digest);
        let (partial, out) = if local {
            let bp = blob_path(&s.blobs, &desc.digest);
            let f = File::open(&bp).map_err(StoreError::io("opening blob", &bp))?;
            (Some(f.take(u64::MAX)), None)
        } else {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&part)
                .map_err(StoreError::io("opening ingest file", &part))?;
            if resume_from == 0 {
                f.set_len(0)
                    .map_err(StoreError::io("truncating ingest file", &part))?;
                (None, Some(f))
            } else {
                let r = File::open(&part).map_err(StoreError::io("opening ingest file", &part))?;
                (Some(r.take(resume_from)), Some(f))
            }
        };
        let mut br = BlobReader {
            partial,
            net: body,
            out,
            hasher: Sha256::new(),
            size: 0,
            limit: desc.size,
            err: None,
            what: what.clone(),
        };
        let snap_dest = s.snapshots.join(diff_id.hex());
        let result = (|| -> Result<(Option<TmpSnapshot>, Digest, u64), DistError> {
            let dec = decompress(BufReader::with_capacity(256 << 10, &mut br), &what)?;
            // Decompression bombs: never unpack more than the file system can hold.
            let limit = nix::sys::statvfs::statvfs(&s.root)
                .map(|v| v.blocks_available().saturating_mul(v.fragment_size()))
                .unwrap_or(u64::MAX);
            let mut tee = HashRead::new(Capped::decoded(dec, limit));
            let snap = if snap_dest.is_dir() {
                None
            } else {
                let tmp = TmpSnapshot::new(&s.snapshots)?;
                let applied = apply_layer(&tmp.path, &mut tee);
                // The cap may surface as a write error of the entry being copied.
                if applied.is_err() && tee.inner.read > tee.inner.limit {
                    return Err(CapExceeded {
                        limit: tee.inner.limit,
                        compressed: tee.inner.compressed,
                    }
                    .error()
                    .into());
                }
                applied.map_err(|e| match e {
                    crate::layer::LayerError::Read(e) => match read_err(e) {
                        ArchiveError::Read(source) => ArchiveError::LayerRead {
                            layer: desc.digest.to_string(),
                            source,
                        },
                        capped => capped,
                    },
                    source => ArchiveError::Layer {
                        layer: desc.digest.to_string(),
                        source,
                    },
                })?;
                Some(tmp)
            };
            io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
            Ok((snap, tee.digest(), tee.n))
        })();
        // Trailing bytes after the compressed stream still count for the blob digest.
        let result = result.and_then(|r| {
            io::copy(&mut br, &mut io::sink()).map_err(read_err)?;
            Ok(r)
        });
        // Whatever failed to read inside this blob (a corrupt tar, a broken compressed
        // stream) is named by the blob's digest.
        let result = result.map_err(|e| match e {
            DistError::Archive(ArchiveError::Read(source)) => {
                DistError::Archive(ArchiveError::LayerRead {
                    layer: desc.digest.to_string(),
                    source,
                })
            }
            e => e,
        });
        // A layer that does not unpack may be a blob that changed on its way or at rest: read
        // the rest (capped at the manifest's size) so the blob's own digest is what is
        // reported when it does not match.
        if let Err(DistError::Archive(ArchiveError::LayerRead { .. })) = &result {
            if br.err.is_none() && io::copy(&mut br, &mut io::sink()).is_ok() {
                let got = Digest::from_hasher(br.hasher.clone());
                if br.err.is_none() && br.size == desc.size && got != desc.digest {
                    if !local {
                        let _ = std::fs::remove_file(&part);
                    }
                    return Err(DistError::DigestMismatch {
                        what,
                        expected: desc.digest.clone(),
                        actual: got,
                    });
                }
            }
        }
        // A failed download keeps its bytes for a Range resume, but an empty file is only
        // litter (the blob lock is still held, so no other pull is writing it).
        let drop_empty = || {
            if !local && std::fs::metadata(&part).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&part);
            }
        };
        if let Some(e) = br.err.take() {
            if matches!(e, DistError::SizeMismatch { .. }) {
                let _ = std::fs::remove_file(&part);
            }
            drop_empty();
            return Err(e);
        }
        let (snapshot, got_diff, tar_size) = result.inspect_err(|_| drop_empty())?;
        let got = Digest::from_hasher(br.hasher.clone());
        if br.size != desc.size || got != desc.digest {
            if !local {
                let _ = std::fs::remove_file(&part);
            }
            if got != desc.digest {
                return Err(DistError::DigestMismatch {
                    what,
                    expected: desc.digest.clone(),
                    actual: got,
                });
            }
            return Err(DistError::SizeMismatch {
                what,
                expected: desc.size,
                actual: br.size,
            });
        }
        if &got_diff != diff_id {
            if !local {
                let _ = std::fs::remove_file(&part);
            }
            return Err(DistError::DigestMismatch {
                what: format!("{what} (uncompressed, diff_id)"),
                expected: diff_id.clone(),
                actual: got_diff,
            });
        }
        if let Some(o) = &br.out {
            o.sync_all().map_err(StoreError::io("syncing", &part))?;
        }
        Ok(PreparedLayer {
            entry: LayerEntry {
                blob: desc.digest.clone(),
                blob_size: desc.size,
                media_type: desc.media_type.clone(),
                diff_id: diff_id.clone(),
                size: tar_size,
            },
            blob: (!local).then_some(part),
            snapshot,
            _lock: Some(lock),
        })
    }

    /// Verifies `config` against the manifest, then commits layers, config, manifest and the
    /// index entry (with `tag` and `repo_digest`) in that order. Returns the image id.
    pub fn commit(
        self,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        layers: Vec<PreparedLayer>,
        tag: Option<&str>,
        repo_digest: &str,
    ) -> Result<Committed, DistError> {
        let root = self.store.root.clone();
        self.commit_unmapped(manifest_bytes, config_bytes, layers, tag, repo_digest)
            .map_err(|e| e.on_store(&root))
    }

    fn commit_unmapped(
        self,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
        layers: Vec<PreparedLayer>,
        tag: Option<&str>,
        repo_digest: &str,
    ) -> Result<Committed, DistError> {
        let s = self.store;
        let m: Manifest = serde_json::from_slice(manifest_bytes).map_err(|e| {
            DistError::BadConfig(Digest::of(manifest_bytes), format!("manifest: {e}"))
        })?;
        let cfg_digest = Digest::of(config_bytes);
        if cfg_digest != m.config.digest || config_bytes.len() as u64 != m.config.size {
            return Err(DistError::DigestMismatch {
                what: "image config".to_string(),
                expected: m.config.digest,
                actual: cfg_digest,
            });
        }
        let cfg: ImageConfig = serde_json::from_slice(config_bytes)
            .map_err(|e| DistError::BadConfig(cfg_digest.clone(), e.to_string()))?;
        let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.entry.diff_id).collect();
        if cfg.rootfs.diff_ids.iter().collect::<Vec<_>>() != diff_ids {
            return Err(DistError::BadConfig(
                cfg_digest,
                "rootfs.diff_ids do not match the layers".to_string(),
            ));
        }
        let mut entries = Vec::with_capacity(layers.len());
        for mut l in layers {
            if let Some(p) = l.blob.take() {
                let dest = blob_path(&s.blobs, &l.entry.blob);
                if !dest.exists() {
                    std::fs::rename(&p, &dest).map_err(StoreError::io("committing blob", &dest))?;
                    fsync_dir(&s.blobs)?;
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
            if let Some(t) = l.snapshot.take() {
                t.commit(&s.snapshots.join(l.entry.diff_id.hex()))?;
            }
            entries.push(l.entry);
        }
        write_blob(&s.blobs, &s.ingest, config_bytes)?;
        let (man_digest, _) = write_blob(&s.blobs, &s.ingest, manifest_bytes)?;
        let _meta = Lock::exclusive(&s.meta_lock)?;
        let mut idx = Index::load(&s.images_json)?;
        let mut up_to_date = true;
        let e = idx
            .images
            .entry(cfg_digest.hex().to_string())
            .or_insert_with(|| {
                up_to_date = false;
                ImageEntry {
                    manifest: man_digest,
                    config: cfg_digest.clone(),
                    layers: entries,
                    created: cfg.created.clone().unwrap_or_else(crate::util::now_rfc3339),
                    repo_digests: Vec::new(),
                }
            });
        if !e.repo_digests.iter().any(|r| r == repo_digest) {
            up_to_date = false;
            let repo = repo_digest.split('@').next().unwrap_or_default();
            e.repo_digests
                .retain(|r| r.split('@').next().unwrap_or_default() != repo);
            e.repo_digests.push(repo_digest.to_string());
        }
        if let Some(t) = tag {
            if idx.tags.get(t) != Some(&cfg_digest) {
                up_to_date = false;
            }
            idx.tags.insert(t.to_string(), cfg_digest.clone());
        }
        idx.save(&s.images_json)?;
        Ok(Committed {
            id: cfg_digest,
            up_to_date,
        })
    }
}
