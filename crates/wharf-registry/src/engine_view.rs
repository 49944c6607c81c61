//! Engine mode (`wharf registry serve --engine-store`): a read-only view of the ENGINE's
//! content store as distribution repositories, so other hosts can pull what this host has
//! without copying anything.
//!
//! Mapping: every engine tag (`busybox:latest`, `registry.local:5000/app:1.4`) puts its image
//! in repository `ImageRef::path()` (`library/busybox`, `app`) under its tag; a docker.io
//! official image is also reachable without `library/` (`busybox`), so
//! `docker pull host:port/busybox` works. A repo digest the engine recorded
//! (`busybox@sha256:…`) puts the image in that repository too (pullable by digest only).
//! When two engine references land on the same repository and tag, docker.io wins over
//! other domains, an exact path over the `library/` alias, then the smaller familiar name.
//!
//! A repository serves only the blobs its images reference: their manifests, configs and
//! layers (as the own-storage mode's per-repository links do). Layer bytes come from
//! `Store::open_layer` (a blob file, or an uncompressed tar reassembled from the snapshot and
//! verified while streamed). This module owns the mapping only: it never writes to the
//! store, parses no HTTP, and re-reads the engine's index on every call (no cached copy to
//! go stale while the engine pulls, tags or removes images).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use wharf_store::{Store, StoreError};
use wharf_types::oci::MEDIA_OCI_MANIFEST;
use wharf_types::reference::DEFAULT_DOMAIN;
use wharf_types::{Digest, ImageRef};

/// The bytes of a blob served from the engine store.
pub enum BlobData {
    /// A committed blob file (seekable).
    File(File),
    /// A layer reassembled on the fly (read once, front to back).
    Stream(Box<dyn Read + Send>),
}

/// A manifest served from the engine store.
pub struct ManifestData {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A manifest reference: a tag or a digest.
pub enum Reference<'a> {
    Tag(&'a str),
    Digest(&'a Digest),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineOpenError {
    #[error("engine store {path} does not exist (set the engine root with `wharf --root DIR` or WHARF_ROOT)")]
    Missing { path: PathBuf },
    #[error("engine store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

impl wharf_types::error::HasKind for EngineOpenError {
    fn kind(&self) -> wharf_types::ErrorKind {
        match self {
            EngineOpenError::Missing { .. } => wharf_types::ErrorKind::NotFound,
            EngineOpenError::Store { source, .. } => source.kind(),
        }
    }
}

/// A read-only view of an engine store.
pub struct EngineView {
    store: Store,
}

/// The images one repository name reaches.
#[derive(Default)]
struct RepoView {
    /// tag → (rank, familiar reference, image id); the lowest (rank, familiar) wins.
    tags: BTreeMap<String, (u8, String, Digest)>,
    images: BTreeSet<Digest>,
}

/// How well engine reference `r` matches repository `name` (lower is better), or None.
fn rank(r: &ImageRef, name: &str) -> Option<u8> {
    let hub = r.domain() == DEFAULT_DOMAIN;
    if r.path() == name {
        Some(if hub { 0 } else { 1 })
    } else if hub && r.path().strip_prefix("library/") == Some(name) {
        Some(2)
    } else {
        None
    }
}

fn is_not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::ImageNotFound(_))
}

impl EngineView {
    /// Opens the engine store at `root` (which must exist; its layout is not created here
    /// beyond what `Store::open` does for an existing root).
    pub fn open(root: &Path) -> Result<EngineView, EngineOpenError> {
        if !root.is_dir() {
            return Err(EngineOpenError::Missing {
                path: root.to_path_buf(),
            });
        }
        let store = Store::open(root).map_err(|source| EngineOpenError::Store {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(EngineView { store })
    }

    fn repo(&self, name: &str) -> Result<RepoView, StoreError> {
        let mut v = RepoView::default();
        for img in self.store.images()? {
            for t in &img.repo_tags {
                let Ok(r) = ImageRef::parse(t) else { continue };
                let (Some(k), Some(tag)) = (rank(&r, name), r.tag()) else {
                    continue;
                };
                v.images.insert(img.id.clone());
                let cand = (k, t.clone(), img.id.clone());
                match v.tags.get(tag) {
                    Some(old) if (old.0, &old.1) <= (cand.0, &cand.1) => {}
                    _ => {
                        v.tags.insert(tag.to_string(), cand);
                    }
                }
            }
            for d in &img.repo_digests {
                let Ok(r) = ImageRef::parse(d) else { continue };
                if rank(&r, name).is_some() {
                    v.images.insert(img.id.clone());
                }
            }
        }
        Ok(v)
    }

    /// Repository names (sorted): the paths of the engine's references, `library/busybox`
    /// style (the short docker.io alias is accepted but not listed).
    pub fn catalog(&self) -> Result<Vec<String>, StoreError> {
        let mut names = BTreeSet::new();
        for img in self.store.images()? {
            for s in img.repo_tags.iter().chain(img.repo_digests.iter()) {
                if let Ok(r) = ImageRef::parse(s) {
                    if crate::names::valid_name(r.path()) {
                        names.insert(r.path().to_string());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Tags of repository `name` (sorted), None when the engine has nothing there.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        let v = self.repo(name)?;
        if v.images.is_empty() {
            return Ok(None);
        }
        Ok(Some(v.tags.into_keys().collect()))
    }

    /// The manifest `reference` names in repository `name`, byte-for-byte as the engine
    /// stored it (at most `cap` bytes), or None.
    pub fn manifest(
        &self,
        name: &str,
        reference: Reference<'_>,
        cap: u64,
    ) -> Result<Option<ManifestData>, StoreError> {
        let v = self.repo(name)?;
        let found = match reference {
            Reference::Tag(t) => match v.tags.get(t) {
                Some((_, _, id)) => match self.store.image_manifest(id) {
                    Ok((m, _)) => Some(m),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            },
            Reference::Digest(d) => {
                let mut hit = None;
                for id in &v.images {
                    match self.store.image_manifest(id) {
                        Ok((m, _)) if &m == d => {
                            hit = Some(m);
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                hit
            }
        };
        let Some(digest) = found else {
            return Ok(None);
        };
        let Some(bytes) = self.store.read_small_blob(&digest, cap)? else {
            return Ok(None);
        };
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        Ok(Some(ManifestData {
            digest,
            media_type,
            bytes,
        }))
    }

    /// Blob `d` if an image of repository `name` references it (its manifest, config or a
    /// layer), with its size; None otherwise.
    pub fn blob(&self, name: &str, d: &Digest) -> Result<Option<(BlobData, u64)>, StoreError> {
        let v = self.repo(name)?;
        for id in &v.images {
            let (manifest, layers) = match self.store.image_manifest(id) {
                Ok(x) => x,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            if d == id || d == &manifest {
                if !self.store.has_blob(d) {
                    return Ok(None);
                }
                let (f, len) = self.store.open_blob(d)?;
                return Ok(Some((BlobData::File(f), len)));
            }
            if layers.iter().any(|l| &l.digest == d) {
                if self.store.has_blob(d) {
                    let (f, len) = self.store.open_blob(d)?;
                    return Ok(Some((BlobData::File(f), len)));
                }
                if !self.store.has_layer(d) {
                    return Ok(None);
                }
                let (r, len) = self.store.open_layer(d)?;
                return Ok(Some((BlobData::Stream(r), len)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks() {
        let r = |s: &str| ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(rank(&r("busybox:latest"), "library/busybox"), Some(0));
        assert_eq!(rank(&r("busybox:latest"), "busybox"), Some(2));
        assert_eq!(rank(&r("localhost:5000/busybox:1"), "busybox"), Some(1));
        assert_eq!(rank(&r("quay.io/library/busybox:1"), "busybox"), None);
        assert_eq!(rank(&r("registry.local:5000/app:1.4"), "app"), Some(1));
        assert_eq!(rank(&r("busybox:latest"), "other"), None);
    }
}
