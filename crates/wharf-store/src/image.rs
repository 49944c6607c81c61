//! Images: import (rootfs tar → layer blob + snapshot + config + manifest + index entry),
//! listing, reference/id resolution, layers for overlay, tag, rmi with Docker's rules, GC.
//!
//! Import streams the input once: (gzip-decode) → sha256 of the tar (diff_id) → gzip-encode
//! into an ingest file (layer blob digest/size) and, on the same bytes, `apply_layer` into
//! `snapshots/tmp-<random>`. Nothing becomes visible until the input was fully and
//! successfully read: then the blob is renamed into `blobs/`, the snapshot to
//! `snapshots/<diff_id hex>` (an existing one from a concurrent import of the same layer
//! wins; ours is discarded), config and manifest blobs are written and finally the index
//! entry is added under the meta lock. See `lock` for the GC scheme.

use crate::content::{blob_path, read_blob, write_blob};
use crate::error::StoreError;
use crate::index::{ImageEntry, Index, LayerEntry};
use crate::layer::apply_layer;
use crate::layer::source::TmpSnapshot;
use crate::lock::Lock;
use crate::reap::{list_dir, Partials};
use crate::util::{random_suffix, remove_tree_if_exists, HashRead};
use crate::Store;
use flate2::read::MultiGzDecoder;
use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use wharf_types::oci::{self, Descriptor, History, ImageConfig, Manifest, RootFs, RunConfig};
use wharf_types::{ContainerId, Digest, ImageRef};

/// Cap for config and manifest blobs read into memory.
const CONFIG_CAP: u64 = 8 << 20;

/// Options of [`Store::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag to give the image (`docker import x.tar busybox:1`).
    pub reference: Option<ImageRef>,
    /// Container defaults (`--change`).
    pub config: RunConfig,
    /// History comment (`--message`).
    pub message: Option<String>,
}

/// One line of `wharf images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar `repo:tag`, sorted.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// Sum of uncompressed layer sizes.
    pub size: u64,
}

/// A resolved image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub config: ImageConfig,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    pub created: String,
}

/// What `rmi` did, in order (`Untagged: busybox:latest`, `Deleted: sha256:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(Digest),
}

/// What [`Store::gc`] removed (`bytes_freed`: blobs and unpacked layers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: Vec<Digest>,
    pub bytes_freed: u64,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How a user string matched an image.
struct Found {
    id: Digest,
    /// The tag key if it matched a tag (`busybox:latest`), None for ids/prefixes/digests.
    tag: Option<String>,
}

impl Store {
    pub(crate) fn load_index(&self) -> Result<Index, StoreError> {
        Index::load(&self.images_json)
    }

    /// Imports a rootfs tarball (plain or gzip) as a one-layer image. Returns the image id.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<Digest, StoreError> {
        // a full file system says so, whichever write hit it (not "invalid layer archive")
        self.import_unmapped(input, opts).map_err(|e| {
            if crate::archive::is_no_space(&e) {
                StoreError::NoSpace {
                    store: self.root.clone(),
                }
            } else {
                e
            }
        })
    }

    fn import_unmapped(
        &self,
        input: impl Read,
        opts: &ImportOptions,
    ) -> Result<Digest, StoreError> {
        if let Some(r) = &opts.reference {
            if r.digest().is_some() || r.tag().is_none() {
                return Err(StoreError::TagRequired(r.to_string()));
            }
        }
        self.reap_stale_temps()?;
        let _gc = Lock::shared(&self.gc_lock)?;
        let mut br = BufReader::with_capacity(128 << 10, input);
        let head = br
            .fill_buf()
            .map_err(|e| StoreError::Layer(crate::layer::LayerError::Read(e)))?;
        if head.is_empty() {
            return Err(StoreError::EmptyArchive);
        }
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let src: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(br))
        } else {
            Box::new(br)
        };
        let mut hr = HashRead::new(src);
        let recorded = self.unpack_recorded(&mut hr)?;
        if hr.n == 0 {
            return Err(StoreError::EmptyArchive);
        }
        let diff_id = hr.digest();
        let tar_size = hr.n;
        self.commit_recorded(recorded, &diff_id)?;
        // The layer is kept uncompressed (snapshot + tar-split); `push` compresses it.
        let (blob_digest, blob_size) = (diff_id.clone(), tar_size);

        let created = crate::util::now_rfc3339();
        let config = ImageConfig {
            created: Some(created.clone()),
            author: None,
            architecture: oci::host_architecture().to_string(),
            os: "linux".to_string(),
            variant: None,
            config: opts.config.clone(),
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![History {
                created: Some(created.clone()),
                created_by: Some("wharf import".to_string()),
                comment: opts.message.clone(),
                empty_layer: false,
            }],
        };
        let layers = vec![LayerEntry {
            blob: blob_digest,
            blob_size,
            media_type: oci::MEDIA_OCI_LAYER.to_string(),
            diff_id,
            size: tar_size,
        }];
        self.write_image(layers, &config, opts.reference.as_ref())
    }

    /// The last step of every image this store makes itself (import, commit): config and
    /// manifest blobs through the verified blob writer, then the index entry and the tag
    /// under the meta lock. The layers must already be committed (snapshot or blob) and the
    /// caller must hold `gc.lock` shared. Returns the image id (config digest).
    pub(crate) fn write_image(
        &self,
        layers: Vec<LayerEntry>,
        config: &ImageConfig,
        reference: Option<&ImageRef>,
    ) -> Result<Digest, StoreError> {
        let cfg_bytes = serde_json::to_vec(config).map_err(|source| StoreError::Encode {
            what: "image config",
            source,
        })?;
        let (cfg_digest, cfg_size) = write_blob(&self.blobs, &self.ingest, &cfg_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: oci::MEDIA_OCI_CONFIG.to_string(),
                digest: cfg_digest.clone(),
                size: cfg_size,
                annotations: None,
                platform: None,
            },
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.blob.clone(),
                    size: l.blob_size,
                    annotations: None,
                    platform: None,
                })
                .collect(),
            annotations: None,
        };
        let man_bytes = serde_json::to_vec(&manifest).map_err(|source| StoreError::Encode {
            what: "manifest",
            source,
        })?;
        let (man_digest, _) = write_blob(&self.blobs, &self.ingest, &man_bytes)?;

        let entry = ImageEntry {
            manifest: man_digest,
            config: cfg_digest.clone(),
            layers,
            created: config
                .created
                .clone()
                .unwrap_or_else(crate::util::now_rfc3339),
            repo_digests: Vec::new(),
        };
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = self.load_index()?;
        idx.images
            .entry(cfg_digest.hex().to_string())
            .or_insert(entry);
        if let Some(r) = reference {
            idx.tags.insert(r.familiar(), cfg_digest.clone());
        }
        idx.save(&self.images_json)?;
        Ok(cfg_digest)
    }

    /// All images, newest first.
    pub fn images(&self) -> Result<Vec<ImageSummary>, StoreError> {
        let idx = self.load_index()?;
        let mut v: Vec<ImageSummary> = idx
            .images
            .values()
            .map(|e| ImageSummary {
                id: e.config.clone(),
                repo_tags: idx.tags_of(&e.config),
                repo_digests: e.repo_digests.clone(),
                created: e.created.clone(),
                size: e.size(),
            })
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    fn by_prefix(idx: &Index, prefix: &str, shown: &str) -> Result<Found, StoreError> {
        let mut it = idx
            .images
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix));
        match (it.next(), it.next()) {
            (Some((_, e)), None) => Ok(Found {
                id: e.config.clone(),
                tag: None,
            }),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(prefix.to_string())),
            _ => Err(StoreError::ImageNotFound(shown.to_string())),
        }
    }

    /// Docker's lookup order: `sha256:<hex or prefix>`, full 64-hex id, `repo[:tag]`,
    /// `repo@digest`, then a unique id prefix.
    fn lookup(idx: &Index, s: &str) -> Result<Found, StoreError> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            if !is_hex(hex) {
                return Err(StoreError::ImageNotFound(s.to_string()));
            }
            return Self::by_prefix(idx, hex, s);
        }
        if s.len() == 64 && is_hex(s) {
            return match idx.images.get(s) {
                Some(e) => Ok(Found {
                    id: e.config.clone(),
                    tag: None,
                }),
                None => Err(StoreError::ImageNotFound(s.to_string())),
            };
        }
        let parsed = ImageRef::parse(s);
        let shown = match &parsed {
            Ok(r) => {
                if r.digest().is_some() {
                    let key = r.familiar();
                    if let Some(e) = idx.images.values().find(|e| e.repo_digests.contains(&key)) {
                        return Ok(Found {
                            id: e.config.clone(),
                            tag: None,
                        });
                    }
                } else if let Some(id) = idx.tags.get(&r.familiar()) {
                    return Ok(Found {
                        id: id.clone(),
                        tag: Some(r.familiar()),
                    });
                }
                r.familiar()
            }
            Err(_) => s.to_string(),
        };
        if is_hex(s) {
            return Self::by_prefix(idx, s, &shown);
        }
        match parsed {
            Ok(_) => Err(StoreError::ImageNotFound(shown)),
            Err(e) => Err(StoreError::Reference(e)),
        }
    }

    /// Resolves a name, reference, id or unique id prefix to an image.
    pub fn resolve_image(&self, s: &str) -> Result<Image, StoreError> {
        let idx = self.load_index()?;
        let found = Self::lookup(&idx, s)?;
        let entry = idx
            .images
            .get(found.id.hex())
            .ok_or_else(|| StoreError::ImageNotFound(s.to_string()))?;
        let data = read_blob(&self.blobs, &entry.config, CONFIG_CAP)?.ok_or_else(|| {
            StoreError::ImageNotFound(format!("{s} (config blob {} missing)", entry.config))
        })?;
        let config: ImageConfig =
            serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt {
                path: blob_path(&self.blobs, &entry.config),
                source,
            })?;
        Ok(Image {
            id: entry.config.clone(),
            manifest_digest: entry.manifest.clone(),
            config,
            repo_tags: idx.tags_of(&entry.config),
            repo_digests: entry.repo_digests.clone(),
            size: entry.size(),
            created: entry.created.clone(),
        })
    }

    /// The snapshot directories of an image, TOPMOST FIRST (overlay `lowerdir` order).
    /// A missing snapshot is re-created from its blob (verifying the diff_id). A layer the
    /// image holds twice (two steps with the same diff) is listed once, at its topmost
    /// place: overlay refuses a lowerdir given twice (ELOOP), and the lower copy is wholly
    /// shadowed by the upper one (its files, whiteouts and opaque dirs are the same).
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<PathBuf>, StoreError> {
        let idx = self.load_index()?;
        let entry = idx
            .images
            .get(id.hex())
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        let mut out = Vec::with_capacity(entry.layers.len());
        for l in entry.layers.iter().rev() {
            let p = self.snapshots.join(l.diff_id.hex());
            if p.is_dir() {
                out.push(p);
            } else if blob_path(&self.blobs, &l.blob).is_file() {
                out.push(self.unpack_from_blob(l)?);
            } else {
                return Err(StoreError::ImageNotFound(format!(
                    "{id}: layer {} is missing from the store; remove the image and load or pull it again",
                    l.diff_id
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| seen.insert(p.clone()));
        Ok(out)
    }

    fn unpack_from_blob(&self, l: &LayerEntry) -> Result<PathBuf, StoreError> {
        let _gc = Lock::shared(&self.gc_lock)?;
        let p = blob_path(&self.blobs, &l.blob);
        let f = std::fs::File::open(&p).map_err(StoreError::io("opening layer blob", &p))?;
        let mut br = BufReader::with_capacity(128 << 10, f);
        let gzip = br
            .fill_buf()
            .map_err(StoreError::io("reading layer blob", &p))?
            .starts_with(&[0x1f, 0x8b]);
        let src: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(br))
        } else {
            Box::new(br)
        };
        let mut hr = HashRead::new(src);
        let tmp = TmpSnapshot::new(&self.snapshots)?;
        apply_layer(&tmp.path, &mut hr)?;
        io::copy(&mut hr, &mut io::sink()).map_err(crate::layer::LayerError::Read)?;
        let got = hr.digest();
        if got != l.diff_id {
            return Err(StoreError::DigestMismatch {
                what: format!("layer {}", l.blob),
                expected: l.diff_id.clone(),
                actual: got,
            });
        }
        let dest = self.snapshots.join(l.diff_id.hex());
        tmp.commit(&dest)?;
        Ok(dest)
    }

    /// Points `target` (a `repo:tag`) at the image `image` resolves to, moving the tag if it
    /// pointed elsewhere (the old image may become dangling).
    pub fn tag(&self, image: &str, target: &ImageRef) -> Result<(), StoreError> {
        if target.digest().is_some() || target.tag().is_none() {
            return Err(StoreError::TagRequired(target.to_string()));
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = self.load_index()?;
        let found = Self::lookup(&idx, image)?;
        idx.tags.insert(target.familiar(), found.id);
        idx.save(&self.images_json)
    }

    /// Container ids whose record references image `id`.
    fn image_users(&self, id: &Digest) -> Result<Vec<ContainerId>, StoreError> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.image == *id)
            .map(|c| c.id)
            .collect())
    }

    /// `docker rmi` semantics (see the crate docs); GC runs after an image was deleted.
    /// Every container using the image counts as stopped: see [`Store::remove_image_with`].
    pub fn remove_image(&self, s: &str, force: bool) -> Result<Vec<RemoveEvent>, StoreError> {
        self.remove_image_with(s, force, &|_| false)
    }

    /// [`Store::remove_image`], told by the caller (the engine, which owns container state)
    /// which containers are running: deleting an image by id that a running container uses
    /// cannot be forced; one that only stopped containers use must be. `running` is called
    /// under the metadata lock: it must not take it.
    pub fn remove_image_with(
        &self,
        s: &str,
        force: bool,
        running: &dyn Fn(&ContainerId) -> bool,
    ) -> Result<Vec<RemoveEvent>, StoreError> {
        let mut events = Vec::new();
        let mut deleted = false;
        {
            let _meta = Lock::exclusive(&self.meta_lock)?;
            let mut idx = self.load_index()?;
            let found = Self::lookup(&idx, s)?;
            let id = found.id;
            let users = self.image_users(&id)?;
            let tags = idx.tags_of(&id);
            let short = &id.hex()[..12];
            let untag_all = match &found.tag {
                Some(key) if tags.len() > 1 => {
                    idx.tags.remove(key);
                    events.push(RemoveEvent::Untagged(key.clone()));
                    false
                }
                Some(_) => {
                    if let (Some(c), false) = (users.first(), force) {
                        return Err(StoreError::ImageInUse(format!(
                            "conflict: unable to remove repository reference \"{s}\" (must force) - container {} is using its referenced image {short}",
                            c.short()
                        )));
                    }
                    true
                }
                None => {
                    if let Some(c) = users.iter().find(|c| running(c)) {
                        return Err(StoreError::ImageInUse(format!(
                            "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                            c.short()
                        )));
                    }
                    if let (Some(c), false) = (users.first(), force) {
                        return Err(StoreError::ImageInUse(format!(
                            "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                            c.short()
                        )));
                    }
                    if tags.len() > 1 && !force {
                        return Err(StoreError::ImageInUse(format!(
                            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                        )));
                    }
                    true
                }
            };
            if untag_all {
                for t in tags {
                    idx.tags.remove(&t);
                    events.push(RemoveEvent::Untagged(t));
                }
                if users.is_empty() {
                    // docker: the repository digests go with the image, each said untagged
                    if let Some(e) = idx.images.remove(id.hex()) {
                        events.extend(e.repo_digests.into_iter().map(RemoveEvent::Untagged));
                    }
                    events.push(RemoveEvent::Deleted(id));
                    deleted = true;
                }
            }
            idx.save(&self.images_json)?;
        }
        if deleted {
            self.gc()?;
        }
        Ok(events)
    }

    /// Each layer of an image (diff id) with its uncompressed size, for `system df`.
    pub fn image_layer_sizes(&self, id: &Digest) -> Result<Vec<(Digest, u64)>, StoreError> {
        let idx = self.load_index()?;
        let entry = idx
            .images
            .get(id.hex())
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        Ok(entry
            .layers
            .iter()
            .map(|l| (l.diff_id.clone(), l.size))
            .collect())
    }

    /// `image prune`: removes the image `id` with all its tags if no container record uses
    /// it — checked under the metadata lock, so a container created meanwhile keeps it. No
    /// GC here: the caller runs [`Store::gc`] once after a batch. `None` when the image is in
    /// use or already gone.
    pub fn remove_unused_image(&self, id: &Digest) -> Result<Option<Vec<RemoveEvent>>, StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = self.load_index()?;
        if !idx.images.contains_key(id.hex()) || !self.image_users(id)?.is_empty() {
            return Ok(None);
        }
        let mut events = Vec::new();
        for t in idx.tags_of(id) {
            idx.tags.remove(&t);
            events.push(RemoveEvent::Untagged(t));
        }
        idx.images.remove(id.hex());
        events.push(RemoveEvent::Deleted(id.clone()));
        idx.save(&self.images_json)?;
        Ok(Some(events))
    }

    /// Removes blobs and snapshots no indexed image references, plus ingest leftovers.
    /// Waits for in-flight imports (exclusive `gc.lock`).
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _gc = Lock::exclusive(&self.gc_lock)?;
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let idx = self.load_index()?;
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        for e in idx.images.values() {
            blobs.insert(e.manifest.hex().to_string());
            blobs.insert(e.config.hex().to_string());
            for l in &e.layers {
                blobs.insert(l.blob.hex().to_string());
                snaps.insert(l.diff_id.hex().to_string());
                if let Some(c) = idx.compressed.get(l.diff_id.hex()) {
                    blobs.insert(c.blob.hex().to_string());
                }
            }
        }
        let manifests = idx
            .images
            .values()
            .map(|e| e.manifest.hex().to_string())
            .collect();
        self.gc_signatures(&manifests)?;
        let mut report = GcReport::default();
        for (name, path) in list_dir(&self.blobs)? {
            let Ok(d) = Digest::from_hex(&name) else {
                continue;
            };
            if !blobs.contains(&name) {
                let size = std::fs::symlink_metadata(&path)
                    .map(|m| m.len())
                    .unwrap_or(0);
                crate::util::remove_file_if_exists(&path)?;
                report.bytes_freed += size;
                report.blobs_removed.push(d);
            }
        }
        for (name, path) in list_dir(&self.snapshots)? {
            let Ok(digest) = Digest::from_hex(&name) else {
                continue;
            };
            if !snaps.contains(&name) {
                report.bytes_freed = report
                    .bytes_freed
                    .saturating_add(crate::util::tree_size(&path, 1_000_000));
                // rename first so a half-deleted snapshot is never visible under its name
                let doomed = self.ingest.join(format!("del-{}", random_suffix()?));
                std::fs::rename(&path, &doomed)
                    .map_err(StoreError::io("removing snapshot", &path))?;
                remove_tree_if_exists(&doomed)?;
                report.snapshots_removed.push(digest);
            }
        }
        for (name, path) in list_dir(&self.root.join("tarsplit"))? {
            if Digest::from_hex(&name).is_ok() && !snaps.contains(&name) {
                crate::util::remove_file_if_exists(&path)?;
            }
        }
        self.remove_temps(Partials::Remove)?;
        Ok(report)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn idx_with(ids: &[&str], tags: &[(&str, usize)]) -> Index {
        let mut idx = Index::default();
        let mut digests = Vec::new();
        for s in ids {
            let d = Digest::of(s.as_bytes());
            digests.push(d.clone());
            idx.images.insert(
                d.hex().to_string(),
                ImageEntry {
                    manifest: d.clone(),
                    config: d,
                    layers: vec![],
                    created: String::new(),
                    repo_digests: vec![],
                },
            );
        }
        for (t, i) in tags {
            idx.tags.insert(t.to_string(), digests[*i].clone());
        }
        idx
    }

    #[test]
    fn lookup_rules() {
        let idx = idx_with(
            &["a", "b"],
            &[
                ("busybox:latest", 0),
                ("busybox:1", 1),
                ("registry.local:5000/app:v2", 1),
            ],
        );
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let l = |s: &str| Store::lookup(&idx, s);
        for s in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "library/busybox",
        ] {
            let f = l(s).unwrap();
            assert_eq!(
                (f.id, f.tag.as_deref()),
                (a.clone(), Some("busybox:latest")),
                "{s}"
            );
        }
        assert_eq!(l("busybox:1").unwrap().id, b);
        assert_eq!(l("registry.local:5000/app:v2").unwrap().id, b);
        assert_eq!(l(&a.to_string()).unwrap().id, a);
        assert_eq!(l(a.hex()).unwrap().id, a);
        assert!(l(a.hex()).unwrap().tag.is_none());
        assert_eq!(l(&a.hex()[..4]).unwrap().id, a);
        assert_eq!(l(&format!("sha256:{}", &b.hex()[..6])).unwrap().id, b);
        match l("busybox:2") {
            Err(StoreError::ImageNotFound(m)) => assert_eq!(m, "busybox:2"),
            other => panic!("{:?}", other.map(|f| f.id)),
        }
        assert_eq!(
            l("nginx").err().unwrap().to_string(),
            "No such image: nginx:latest"
        );
        assert!(matches!(l("Busy"), Err(StoreError::Reference(_))));
        assert!(matches!(
            l(&"0".repeat(64)),
            Err(StoreError::ImageNotFound(_))
        ));
        assert!(matches!(l("sha256:zz"), Err(StoreError::ImageNotFound(_))));
    }

    #[test]
    fn ambiguous_prefix() {
        // find two ids sharing a first hex digit
        let mut ids = Vec::new();
        let mut i = 0;
        while ids.len() < 2 {
            let s = format!("x{i}");
            let d = Digest::of(s.as_bytes());
            if d.hex().starts_with('a') {
                ids.push(s);
            }
            i += 1;
        }
        let idx = idx_with(&[&ids[0], &ids[1]], &[]);
        assert!(matches!(
            Store::lookup(&idx, "a"),
            Err(StoreError::Ambiguous(_))
        ));
    }
}
