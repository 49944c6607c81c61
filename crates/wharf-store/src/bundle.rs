//! Air-gap bundles: `inventory` (what this store holds), `create` (an OCI image layout tar
//! carrying only the layer blobs the target lacks, split into fixed-size parts, plus a small
//! signed wharf index), `verify` and `apply` (see `bundle/apply.rs`). The format is documented
//! in `docs/bundles.md`.
//!
//! ```text
//! NAME.index.json   wharf index: images, tags, every layer (carried or expected on the
//!                   target), every payload part's name, size and sha256
//! NAME.index.sig    optional: base64 ed25519 signature over the exact bytes of NAME.index.json
//! NAME | NAME.000…  the payload (an uncompressed OCI image layout tar), whole or split
//! ```
//!
//! Applying streams the parts (in index order, each re-hashed) through the archive loader,
//! which is told that layer blobs missing from the layout may be satisfied by the store; so a
//! bundle gets every verification and the atomic commit of `load`.
//!
//! Owns: the bundle format, inventory, part/signature checks. Must not: make anything visible
//! before `load`'s verification, or trust a part, name or digest before checking it.

mod apply;
pub mod keys;

pub use apply::{VerifyPolicy, VerifyReport};
pub use keys::{generate_key, read_signing_key, read_verifying_key};

use crate::archive::ArchiveError;
use crate::content::{blob_path, read_blob};
use crate::error::StoreError;
use crate::index::Index;
use crate::lock::Lock;
use crate::util::HashRead;
use crate::Store;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::{self, Manifest};
use wharf_types::Digest;

/// `format` of an inventory file.
pub const INVENTORY_FORMAT: &str = "wharf-inventory";
/// `format` of a bundle index.
pub const BUNDLE_FORMAT: &str = "wharf-bundle";
/// Version written (and the highest read) for both.
pub const FORMAT_VERSION: u32 = 1;
/// Cap on an index or inventory file read into memory.
pub(crate) const INDEX_CAP: u64 = 16 << 20;

/// What a host holds (`wharf inventory`), the input of `bundle create --have`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inventory {
    pub format: String,
    pub version: u32,
    pub images: Vec<InventoryImage>,
    /// Every layer: compressed blob digest, diff_id, blob size.
    pub layers: Vec<InventoryLayer>,
    /// Every blob digest held (layers, configs, manifests), sorted.
    pub blobs: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InventoryImage {
    pub id: Digest,
    pub manifest: Digest,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct InventoryLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
}

/// The signed wharf index of a bundle (`NAME.index.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleIndex {
    pub format: String,
    pub version: u32,
    /// Random; ties the index to its parts in messages.
    pub bundle_id: String,
    pub created: String,
    pub images: Vec<BundleImage>,
    pub payload: Payload,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleImage {
    /// Image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
    pub config: Digest,
    pub tags: Vec<String>,
    /// Bottom layer first.
    pub layers: Vec<BundleLayer>,
    /// Signatures of `manifest` carried to the target (`trust`): the image's stored ones and,
    /// for a bundle created with a signing key, one by that key. Stored by `apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<crate::trust::ImageSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleLayer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    /// In the payload; otherwise the target must already hold the blob.
    pub carried: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    /// Always `oci-layout-tar`: an uncompressed tar of an OCI image layout.
    pub media_type: String,
    pub size: u64,
    pub sha256: Digest,
    /// In concatenation order.
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// File name (no directory), e.g. `release-7.003`.
    pub name: String,
    pub size: u64,
    pub sha256: Digest,
}

/// Options of [`Store::bundle_create`].
#[derive(Default)]
pub struct CreateOptions {
    /// The target's inventory: blobs it holds are not carried.
    pub have: Option<Inventory>,
    /// Part size in bytes (`None`: one payload file named NAME).
    pub split: Option<u64>,
    pub sign: Option<SigningKey>,
}

/// What [`Store::bundle_create`] wrote.
#[derive(Debug, Clone)]
pub struct CreateReport {
    pub index_path: PathBuf,
    pub signature_path: Option<PathBuf>,
    pub part_paths: Vec<PathBuf>,
    pub payload_size: u64,
    /// Compressed bytes of the layers carried / left to the target.
    pub carried_layer_bytes: u64,
    pub skipped_layer_bytes: u64,
    pub index: BundleIndex,
}

/// Progress callback: (phase, bytes done, bytes total).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid key file {path}: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("invalid {what} {path}")]
    Json {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not a {expected} file (format {found:?} version {version})")]
    Format {
        path: PathBuf,
        expected: &'static str,
        found: String,
        version: u32,
    },
    #[error("invalid size {0:?}: expected a number with an optional k/M/G/T suffix, at least 4k")]
    BadSize(String),
    #[error("no bundle index among the parts (expected NAME.index.json next to NAME.000)")]
    NoIndex,
    #[error("more than one bundle index given: {0} and {1}")]
    TwoIndexes(PathBuf, PathBuf),
    #[error("bundle {bundle} is not signed ({path} missing) and a signature is required")]
    Unsigned { bundle: String, path: PathBuf },
    #[error("signature {path} of bundle {bundle} does not verify with {keys}")]
    BadSignature {
        bundle: String,
        path: PathBuf,
        keys: String,
    },
    #[error("a signature is required but no key to check it with was given (--key or bundle-trusted-keys)")]
    NoKey,
    #[error("part {name} of bundle {bundle} is missing")]
    PartMissing { bundle: String, name: String },
    #[error("part {name} ({path}) is corrupt: {reason}")]
    PartCorrupt {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{path} is not a part of bundle {bundle}")]
    ForeignPart { bundle: String, path: PathBuf },
    #[error("bundle does not carry layer {layer} of image {image} and this host does not have it")]
    LayerAbsent { layer: Digest, image: String },
    #[error("bundle index lists image {image} but the payload {problem}")]
    Inconsistent { image: String, problem: String },
}

impl BundleError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> BundleError {
        let path = path.into();
        move |source| BundleError::Io { op, path, source }
    }
}

impl HasKind for BundleError {
    fn kind(&self) -> ErrorKind {
        match self {
            BundleError::Store(e) => e.kind(),
            BundleError::Archive(e) => e.kind(),
            BundleError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            BundleError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
                ErrorKind::AlreadyExists
            }
            BundleError::Io { .. } => ErrorKind::Internal,
            BundleError::Unsigned { .. } | BundleError::BadSignature { .. } => {
                ErrorKind::PermissionDenied
            }
            BundleError::NoKey | BundleError::LayerAbsent { .. } => ErrorKind::FailedPrecondition,
            BundleError::PartMissing { .. } | BundleError::NoIndex => ErrorKind::NotFound,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Parses `4G`, `700M`, `64k`, `1048576` (powers of 1024: `wharf_types::parse::size`), at
/// least 4096 bytes.
pub fn parse_size(s: &str) -> Result<u64, BundleError> {
    wharf_types::parse::size(s.trim())
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v >= 4096)
        .ok_or_else(|| BundleError::BadSize(s.to_string()))
}

/// Reads and parses a small JSON file (inventory or index), checking format and version.
pub(crate) fn read_format_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    expected: &'static str,
) -> Result<(T, Vec<u8>), BundleError> {
    let data = crate::util::read_capped(path, INDEX_CAP)?.ok_or_else(|| BundleError::Io {
        op: "reading",
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        format: String,
        #[serde(default)]
        version: u32,
    }
    let head: Head = serde_json::from_slice(&data).map_err(|source| BundleError::Json {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if head.format != expected || head.version == 0 || head.version > FORMAT_VERSION {
        return Err(BundleError::Format {
            path: path.to_path_buf(),
            expected,
            found: head.format,
            version: head.version,
        });
    }
    let v = serde_json::from_slice(&data).map_err(|source| BundleError::Json {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    Ok((v, data))
}

/// Reads an inventory file written by `wharf inventory`.
pub fn read_inventory(path: &Path) -> Result<Inventory, BundleError> {
    Ok(read_format_json(path, "inventory", INVENTORY_FORMAT)?.0)
}

/// Writes payload bytes into NAME or NAME.000, NAME.001, … of `split` bytes each, hashing.
struct PartWriter {
    dir: PathBuf,
    stem: String,
    split: Option<u64>,
    cur: Option<(File, Sha256, u64, String)>,
    parts: Vec<Part>,
    paths: Vec<PathBuf>,
    total: Sha256,
    size: u64,
}

impl PartWriter {
    fn open_next(&mut self) -> io::Result<()> {
        let name = match self.split {
            Some(_) => format!("{}.{:03}", self.stem, self.parts.len()),
            None => self.stem.clone(),
        };
        let path = self.dir.join(&name);
        let f = File::create(&path)?;
        self.paths.push(path);
        self.cur = Some((f, Sha256::new(), 0, name));
        Ok(())
    }

    fn close_cur(&mut self) -> io::Result<()> {
        if let Some((f, h, n, name)) = self.cur.take() {
            f.sync_all()?;
            self.parts.push(Part {
                name,
                size: n,
                sha256: Digest::from_hasher(h),
            });
        }
        Ok(())
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.cur.is_none() {
            self.open_next()?;
        }
        let room = match (&self.cur, self.split) {
            (Some((_, _, n, _)), Some(s)) => (s - n) as usize,
            _ => buf.len(),
        };
        let take = buf.len().min(room);
        let Some((f, h, n, _)) = self.cur.as_mut() else {
            return Err(io::Error::other("no open part"));
        };
        let k = f.write(&buf[..take])?;
        h.update(&buf[..k]);
        *n += k as u64;
        self.total.update(&buf[..k]);
        self.size += k as u64;
        if Some(*n) == self.split {
            self.close_cur()?;
        }
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.cur {
            Some((f, ..)) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Counts bytes written and reports progress.
struct Counting<'a, W> {
    inner: W,
    done: u64,
    total: u64,
    progress: Progress<'a>,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        (self.progress)("writing", self.done, self.total);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(name: &str, size: u64, dir: bool) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h)
}

/// An image to bundle: index entry facts, manifest bytes, config bytes.
struct Item {
    image: BundleImage,
    manifest: Vec<u8>,
    manifest_media_type: String,
    config: Vec<u8>,
}

impl Store {
    /// What this store holds, for `bundle create --have` on another host.
    pub fn inventory(&self) -> Result<Inventory, BundleError> {
        let idx = Index::load(&self.images_json)?;
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        let mut images = Vec::new();
        for e in idx.images.values() {
            images.push(InventoryImage {
                id: e.config.clone(),
                manifest: e.manifest.clone(),
                tags: idx.tags_of(&e.config),
            });
            blobs.insert(e.config.clone());
            blobs.insert(e.manifest.clone());
            for l in &e.layers {
                if self.has_layer(&l.blob) {
                    blobs.insert(l.blob.clone());
                    layers.insert(InventoryLayer {
                        digest: l.blob.clone(),
                        diff_id: l.diff_id.clone(),
                        size: l.blob_size,
                    });
                }
            }
        }
        Ok(Inventory {
            format: INVENTORY_FORMAT.to_string(),
            version: FORMAT_VERSION,
            images,
            layers: layers.into_iter().collect(),
            blobs: blobs.into_iter().collect(),
        })
    }

    fn bundle_items(
        &self,
        names: &[String],
        have: &BTreeSet<&Digest>,
    ) -> Result<Vec<Item>, BundleError> {
        let idx = Index::load(&self.images_json)?;
        let mut out: Vec<Item> = Vec::new();
        for name in names {
            let img = self.resolve_image(name)?;
            let tag = wharf_types::ImageRef::parse(name)
                .ok()
                .filter(|r| r.digest().is_none())
                .map(|r| r.familiar())
                .filter(|t| idx.tags.get(t) == Some(&img.id));
            if let Some(it) = out.iter_mut().find(|i| i.image.id == img.id) {
                if let Some(t) = tag.filter(|t| !it.image.tags.contains(t)) {
                    it.image.tags.push(t);
                }
                continue;
            }
            let entry = idx
                .images
                .get(img.id.hex())
                .ok_or_else(|| StoreError::ImageNotFound(name.clone()))?;
            let missing =
                |what: &str| StoreError::ImageNotFound(format!("{name} ({what} missing)"));
            let manifest = read_blob(&self.blobs, &entry.manifest, INDEX_CAP)?
                .ok_or_else(|| missing("manifest blob"))?;
            let config = read_blob(&self.blobs, &entry.config, INDEX_CAP)?
                .ok_or_else(|| missing("config blob"))?;
            let m: Manifest =
                serde_json::from_slice(&manifest).map_err(|source| BundleError::Json {
                    what: "stored manifest",
                    path: blob_path(&self.blobs, &entry.manifest),
                    source,
                })?;
            if m.layers.len() != entry.layers.len() {
                return Err(BundleError::Inconsistent {
                    image: name.clone(),
                    problem: "manifest and index disagree on the layer count".to_string(),
                });
            }
            // The loader keeps manifests and layer blobs byte-for-byte, so a layer the target
            // holds (same blob digest) need not be carried.
            let layers = m
                .layers
                .iter()
                .zip(&entry.layers)
                .map(|(d, l)| BundleLayer {
                    digest: d.digest.clone(),
                    size: d.size,
                    media_type: d.media_type.clone(),
                    diff_id: l.diff_id.clone(),
                    carried: !have.contains(&d.digest),
                })
                .collect();
            out.push(Item {
                image: BundleImage {
                    id: img.id.clone(),
                    manifest: entry.manifest.clone(),
                    config: entry.config.clone(),
                    tags: tag.into_iter().collect(),
                    layers,
                    signatures: Vec::new(),
                },
                manifest_media_type: m
                    .media_type
                    .clone()
                    .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string()),
                manifest,
                config,
            });
        }
        Ok(out)
    }

    /// Writes a bundle of `names` as `out` (+ `.index.json`, `.index.sig`, `.NNN` parts).
    pub fn bundle_create(
        &self,
        names: &[String],
        out: &Path,
        opts: &CreateOptions,
        progress: Progress<'_>,
    ) -> Result<CreateReport, BundleError> {
        let _gc = Lock::shared(&self.gc_lock)?;
        let have: BTreeSet<&Digest> = opts
            .have
            .iter()
            .flat_map(|h| h.blobs.iter().chain(h.layers.iter().map(|l| &l.digest)))
            .collect();
        let mut items = self.bundle_items(names, &have)?;
        for it in &mut items {
            it.image.signatures = self.bundle_signatures(&it.image, opts.sign.as_ref())?;
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| BundleError::BadSize(out.display().to_string()))?;
        let index_path = dir.join(format!("{stem}.index.json"));
        let sig_path = dir.join(format!("{stem}.index.sig"));
        // A half-written bundle must never look complete: the old index goes first.
        for p in [&index_path, &sig_path] {
            crate::util::remove_file_if_exists(p)?;
        }
        let mut carried_bytes = 0u64;
        let mut skipped_bytes = 0u64;
        let mut seen = BTreeSet::new();
        for it in &items {
            for l in &it.image.layers {
                if seen.insert(l.digest.clone()) {
                    if l.carried {
                        carried_bytes += l.size;
                    } else {
                        skipped_bytes += l.size;
                    }
                }
            }
        }
        let mut pw = PartWriter {
            dir: dir.clone(),
            stem: stem.clone(),
            split: opts.split,
            cur: None,
            parts: Vec::new(),
            paths: Vec::new(),
            total: Sha256::new(),
            size: 0,
        };
        let res = self.write_payload(&items, &mut pw, carried_bytes, progress);
        let res = res.and_then(|()| pw.close_cur().map_err(BundleError::io("writing", &dir)));
        if let Err(e) = res {
            for p in &pw.paths {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        let index = BundleIndex {
            format: BUNDLE_FORMAT.to_string(),
            version: FORMAT_VERSION,
            bundle_id: crate::util::random_suffix()?,
            created: crate::util::now_rfc3339(),
            images: items.into_iter().map(|i| i.image).collect(),
            payload: Payload {
                media_type: "oci-layout-tar".to_string(),
                size: pw.size,
                sha256: Digest::from_hasher(pw.total.clone()),
                parts: pw.parts.clone(),
            },
        };
        let data = serde_json::to_vec_pretty(&index).map_err(|source| StoreError::Encode {
            what: "bundle index",
            source,
        })?;
        let signature_path = match &opts.sign {
            Some(k) => {
                crate::util::write_atomic(&sig_path, keys::sign(k, &data).as_bytes())?;
                Some(sig_path)
            }
            None => None,
        };
        crate::util::write_atomic(&index_path, &data)?;
        Ok(CreateReport {
            index_path,
            signature_path,
            part_paths: pw.paths,
            payload_size: pw.size,
            carried_layer_bytes: carried_bytes,
            skipped_layer_bytes: skipped_bytes,
            index,
        })
    }

    /// The signatures a bundle carries for `img`: its stored ones that check against their
    /// own key (a broken file is left behind) and, with a signing key, a new one by it
    /// (replacing a stored one by the same key).
    fn bundle_signatures(
        &self,
        img: &BundleImage,
        sign: Option<&SigningKey>,
    ) -> Result<Vec<crate::trust::ImageSignature>, BundleError> {
        let mut out: Vec<crate::trust::ImageSignature> = self
            .image_signatures(&img.manifest)?
            .into_iter()
            .filter_map(|s| s.signature.ok())
            .filter(|s| s.check_self(&img.manifest).is_ok())
            .collect();
        if let Some(k) = sign {
            let reference = img
                .tags
                .first()
                .cloned()
                .unwrap_or_else(|| img.id.to_string());
            let reference = wharf_types::ImageRef::parse(&reference)
                .map(|r| r.to_string())
                .unwrap_or(reference);
            let sig =
                crate::trust::ImageSignature::sign(k, &img.manifest, &reference).map_err(|e| {
                    StoreError::InvalidSignature {
                        what: format!("signature of {reference}"),
                        reason: e.to_string(),
                    }
                })?;
            out.retain(|s| s.key_id != sig.key_id);
            out.push(sig);
        }
        Ok(out)
    }

    fn write_payload(
        &self,
        items: &[Item],
        pw: &mut PartWriter,
        total: u64,
        progress: Progress<'_>,
    ) -> Result<(), BundleError> {
        let w = io::BufWriter::with_capacity(1 << 20, pw);
        let mut b = tar::Builder::new(Counting {
            inner: w,
            done: 0,
            total,
            progress,
        });
        let werr = |e: io::Error| BundleError::Archive(ArchiveError::Write(e));
        let put = |b: &mut tar::Builder<_>, name: &str, data: &[u8]| -> Result<(), BundleError> {
            let h = header(name, data.len() as u64, false).map_err(werr)?;
            b.append(&h, data).map_err(werr)
        };
        put(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut manifests = Vec::new();
        for it in items {
            let base = serde_json::json!({
                "mediaType": it.manifest_media_type,
                "digest": it.image.manifest,
                "size": it.manifest.len(),
            });
            if it.image.tags.is_empty() {
                manifests.push(base.clone());
            }
            for t in &it.image.tags {
                let mut d = base.clone();
                d["annotations"] = serde_json::json!({
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": t.rsplit_once(':').map(|x| x.1).unwrap_or("latest"),
                });
                manifests.push(d);
            }
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::MEDIA_OCI_INDEX,
            "manifests": manifests,
        });
        let ib = serde_json::to_vec(&index).map_err(|source| StoreError::Encode {
            what: "index.json",
            source,
        })?;
        put(&mut b, "index.json", &ib)?;
        for d in ["blobs/", "blobs/sha256/"] {
            let h = header(d, 0, true).map_err(werr)?;
            b.append(&h, io::empty()).map_err(werr)?;
        }
        let mut written: BTreeMap<String, ()> = BTreeMap::new();
        for it in items {
            for (d, data) in [
                (&it.image.manifest, &it.manifest),
                (&it.image.config, &it.config),
            ] {
                if written.insert(d.hex().to_string(), ()).is_none() {
                    put(&mut b, &format!("blobs/sha256/{}", d.hex()), data)?;
                }
            }
            for l in it.image.layers.iter().filter(|l| l.carried) {
                if written.insert(l.digest.hex().to_string(), ()).is_some() {
                    continue;
                }
                let (f, _) = self.open_layer(&l.digest)?;
                let h = header(&format!("blobs/sha256/{}", l.digest.hex()), l.size, false)
                    .map_err(werr)?;
                let mut hr = HashRead::new(f.take(l.size));
                b.append(&h, &mut hr).map_err(werr)?;
                let got = hr.digest();
                if hr.n != l.size || got != l.digest {
                    return Err(ArchiveError::DigestMismatch {
                        what: format!("stored layer {} ({} bytes)", l.digest, hr.n),
                        expected: l.digest.clone(),
                        actual: got,
                    }
                    .into());
                }
            }
        }
        let c = b.into_inner().map_err(werr)?;
        let mut w = c.inner;
        w.flush().map_err(werr)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("700M").unwrap(), 700 << 20);
        assert_eq!(parse_size("8192").unwrap(), 8192);
        for bad in [
            "",
            "1",
            "x",
            "4X",
            "-1k",
            "99999999999999999999T",
            "1e400",
            "NaN",
            "4095",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
