//! `Store::load`: one streaming pass over the archive. Members that are uncompressed layer
//! tars (sniffed: a valid tar header, ≥ 64 KiB) are unpacked right away into temp snapshots
//! while their tar-split is recorded and their sha256 taken — no copy of them is ever
//! written. Every other regular member (JSON, compressed layers) is stored in a private
//! staging dir (by index: archive names never touch the file system; links become name
//! aliases that must resolve inside the archive). Then `manifest.json` (docker-archive) or
//! `index.json` (OCI layout) is resolved, every blob and diff_id verified, and the staged
//! compressed layers are decompressed and unpacked on all cores. Compressed blobs are kept
//! byte-for-byte, and so are manifests, so manifest digests (and repo digests recorded in
//! `index.json`) survive. Commit happens only after every image verified.

use super::{decompress, platform_matches, read_err, ArchiveError, Capped, ARCHIVE_META_CAP};
use super::{sniff, Compression};
use crate::content::{blob_path, write_blob};
use crate::index::{ImageEntry, Index, LayerEntry};
use crate::layer::source::{RecordedLayer, TmpSnapshot};
use crate::layer::{apply_layer, LayerError};
use crate::lock::Lock;
use crate::util::{
    cores, fsync_dir, random_suffix, read_ahead, read_capped, Growing, GrowingReader, HashRead,
    Slots,
};
use crate::{Store, StoreError};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wharf_types::oci::{self, Descriptor, ImageConfig, Manifest, Platform};
use wharf_types::{Digest, ImageRef};

/// Options of [`Store::load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Load only images for this platform.
    pub platform: Option<Platform>,
    /// Cap on decompressed bytes (default: free space of the store's file system).
    pub max_bytes: Option<u64>,
}

/// One image the archive contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    /// Familiar `repo:tag`s.
    pub tags: Vec<String>,
    /// Tags that named another image before this load, with that image's id (docker reports
    /// "renaming the old one ... to empty string").
    pub retagged: Vec<(String, Digest)>,
}

struct Member {
    /// The staged copy (None: an uncompressed layer unpacked while streaming).
    file: Option<PathBuf>,
    size: u64,
    digest: Digest,
    /// Member number, keys [`Staging::spec`].
    no: u64,
}

enum Node {
    File(Member),
    Link(String),
}

/// A staged compressed layer, decompressed and unpacked by a worker thread.
struct Unpacked {
    /// None: the snapshot existed, the layer was only verified.
    snapshot: Option<TmpSnapshot>,
    diff_id: Digest,
    size: u64,
    comp: Compression,
}

/// What happened to a member unpacked while streaming (or right after it was staged).
enum Spec {
    Recorded(RecordedLayer),
    /// Its snapshot and blob were in the store already: only hashed.
    Existing,
    /// Unpacking failed; reported if an image uses it.
    Failed(ArchiveError),
    /// A compressed member being unpacked in the background (while it is still staged).
    Worker(
        std::thread::JoinHandle<Result<Unpacked, ArchiveError>>,
        Arc<Growing>,
    ),
}

fn join(
    h: std::thread::JoinHandle<Result<Unpacked, ArchiveError>>,
) -> Result<Unpacked, ArchiveError> {
    h.join().unwrap_or_else(|_| {
        Err(ArchiveError::Read(io::Error::other(
            "layer worker panicked",
        )))
    })
}

/// A staged member's [`Growing`] while the archive streams it: abandoned (its worker stops
/// with an error) if staging ends before the member's end.
struct Feed(Arc<Growing>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

fn specs(st: &mut Staging) -> &mut HashMap<u64, Spec> {
    st.spec.get_mut().unwrap_or_else(|e| e.into_inner())
}

/// The staging dir under `ingest/`; removed on drop.
struct Staging {
    dir: PathBuf,
    nodes: HashMap<String, Node>,
    spec: Mutex<HashMap<u64, Spec>>,
}

impl Drop for Staging {
    fn drop(&mut self) {
        // unreferenced background unpacks: wait, so their temp snapshots are removed now
        if let Ok(mut spec) = self.spec.lock() {
            for (_, s) in spec.drain() {
                if let Spec::Worker(h, growing) = s {
                    growing.abandon();
                    let _ = h.join();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Uncompressed members at least this large that start with a valid tar header are unpacked
/// while streaming instead of being staged.
const STREAM_UNPACK_MIN: u64 = 64 << 10;

/// Normalises an archive-relative name; `Err(reason)` for absolute or escaping names.
fn normalize(name: &str) -> Result<String, &'static str> {
    if name.contains('\0') {
        return Err("NUL in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path traversal (..)"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target relative to the link's directory, staying inside the archive.
fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// A 512-byte block with a valid tar header checksum (and not the end-of-archive block).
fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() != 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let stored = &block[148..156];
    let digits: Vec<u8> = stored
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let Ok(want) = u32::from_str_radix(std::str::from_utf8(&digits).unwrap_or(""), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == want
}

fn media_for(c: Compression) -> &'static str {
    match c {
        Compression::None => oci::MEDIA_OCI_LAYER,
        Compression::Gzip => oci::MEDIA_OCI_LAYER_GZIP,
        Compression::Zstd => oci::MEDIA_OCI_LAYER_ZSTD,
    }
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Clone)]
enum LayerSrc {
    /// A docker-archive member, with the descriptor of a kept manifest if there is one.
    Member(String, Option<Descriptor>),
    /// A blob of an OCI layout (with `store_blobs`, possibly held by the store instead).
    Blob(Descriptor),
}

struct Plan {
    config: Vec<u8>,
    config_digest: Digest,
    cfg: ImageConfig,
    layers: Vec<LayerSrc>,
    /// Kept byte-for-byte (None: one is written from the layers).
    manifest: Option<Vec<u8>>,
    tags: Vec<String>,
    repo_digests: Vec<String>,
}

enum BlobSrc {
    Existing,
    Member(PathBuf),
    Recorded(RecordedLayer),
}

struct Prepared {
    entry: LayerEntry,
    blob: BlobSrc,
    snapshot: Option<TmpSnapshot>,
}

fn parse_json<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(b).map_err(|source| ArchiveError::Json {
        what: what.to_string(),
        source,
    })
}

/// A name of an archive's index: a familiar tag, or a repo digest (`repo@sha256:…`).
enum Name {
    Tag(String),
    Digest(String, Digest),
}

fn parse_name(t: &str) -> Result<Name, ArchiveError> {
    let r = ImageRef::parse(t).map_err(|source| ArchiveError::BadTag {
        tag: t.to_string(),
        source,
    })?;
    Ok(match r.digest() {
        Some(d) => Name::Digest(format!("{}@{d}", r.familiar_repository()), d.clone()),
        None => Name::Tag(r.familiar()),
    })
}

/// The image name an OCI index entry carries, if any.
fn index_name(d: &Descriptor) -> Option<String> {
    let ann = d.annotations.as_ref()?;
    ann.get("io.containerd.image.name").cloned().or_else(|| {
        ann.get("org.opencontainers.image.ref.name")
            .filter(|n| n.contains(':') || n.contains('/'))
            .cloned()
    })
}

impl Staging {
    fn member(&self, name: &str, from: &str) -> Result<&Member, ArchiveError> {
        let norm = normalize(name).map_err(|_| ArchiveError::Outside {
            from: from.to_string(),
            name: name.to_string(),
        })?;
        let mut cur = norm;
        for _ in 0..16 {
            match self.nodes.get(&cur) {
                Some(Node::File(m)) => return Ok(m),
                Some(Node::Link(t)) => cur = t.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing {
            from: from.to_string(),
            name: name.to_string(),
        })
    }

    fn read(&self, name: &str, from: &str) -> Result<(Vec<u8>, Digest), ArchiveError> {
        let m = self.member(name, from)?;
        if m.size > ARCHIVE_META_CAP {
            return Err(ArchiveError::TooLarge {
                name: name.to_string(),
                limit: ARCHIVE_META_CAP,
            });
        }
        let missing = || ArchiveError::Missing {
            from: from.to_string(),
            name: name.to_string(),
        };
        let file = m.file.as_ref().ok_or_else(missing)?;
        let b = read_capped(file, ARCHIVE_META_CAP)?.ok_or_else(missing)?;
        Ok((b, m.digest.clone()))
    }

    fn has(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// A blob of an OCI layout, verified against its descriptor.
    fn blob(&self, d: &Descriptor, from: &str) -> Result<&Member, ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        let m = self.member(&name, from)?;
        check_member(m, d, &name)?;
        Ok(m)
    }

    fn blob_bytes(&self, d: &Descriptor, from: &str) -> Result<Vec<u8>, ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        self.blob(d, from)?;
        Ok(self.read(&name, from)?.0)
    }

    fn take_spec(&self, no: u64) -> Option<Spec> {
        self.spec.lock().ok()?.remove(&no)
    }

    /// The result of member `no`'s background unpack, if it had one (waits for it).
    fn take_unpacked(&self, no: u64) -> Option<Result<Unpacked, ArchiveError>> {
        let mut spec = self.spec.lock().ok()?;
        if !matches!(spec.get(&no), Some(Spec::Worker(..))) {
            return None;
        }
        match spec.remove(&no)? {
            Spec::Worker(h, _) => {
                drop(spec);
                Some(join(h))
            }
            _ => None,
        }
    }

    /// Names in `index.json`: (manifest digest, names), if the archive has one.
    fn index_names(&self) -> Result<Vec<(Descriptor, Vec<Name>)>, ArchiveError> {
        if !self.has("index.json") {
            return Ok(Vec::new());
        }
        let (b, _) = self.read("index.json", "archive")?;
        check_document(&b, oci::MEDIA_OCI_INDEX, "index.json")?;
        let top: OciIndex = parse_json(&b, "index.json")?;
        let mut out = Vec::new();
        for d in top.manifests {
            let names = match index_name(&d) {
                Some(n) => vec![parse_name(&n)?],
                None => Vec::new(),
            };
            out.push((d, names));
        }
        Ok(out)
    }
}

/// A manifest or index must be unambiguous and of the kind its descriptor says (containerd).
fn check_document(b: &[u8], declared: &str, what: &str) -> Result<(), ArchiveError> {
    oci::document_kind(b, Some(declared))
        .map(drop)
        .map_err(|source| ArchiveError::Document {
            what: what.to_string(),
            source,
        })
}

fn check_member(m: &Member, d: &Descriptor, name: &str) -> Result<(), ArchiveError> {
    if m.digest != d.digest {
        return Err(ArchiveError::DigestMismatch {
            what: name.to_string(),
            expected: d.digest.clone(),
            actual: m.digest.clone(),
        });
    }
    if m.size != d.size {
        return Err(ArchiveError::SizeMismatch {
            what: name.to_string(),
            expected: d.size,
            actual: m.size,
        });
    }
    Ok(())
}

fn layer_err(layer: &str, e: LayerError) -> ArchiveError {
    match e {
        LayerError::Read(e) => layer_read_err(layer, e),
        source => ArchiveError::Layer {
            layer: layer.to_string(),
            source,
        },
    }
}

/// A read error inside layer member `layer`: the cap's own error (bomb, no space) when a
/// [`Capped`] reader stopped it, else the failure named by the member (and so its digest).
fn layer_read_err(layer: &str, e: io::Error) -> ArchiveError {
    match read_err(e) {
        ArchiveError::Read(source) => ArchiveError::LayerRead {
            layer: layer.to_string(),
            source,
        },
        capped => capped,
    }
}

fn store_layer_err(layer: &str, e: StoreError) -> ArchiveError {
    match e {
        StoreError::Layer(l) => layer_err(layer, l),
        e => ArchiveError::Store(e),
    }
}

/// Reads up to `buf.len()` bytes (fewer only at EOF).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Store {
    /// Loads every image of a docker-archive or OCI-layout tar (plain, gzip or zstd).
    pub fn load(
        &self,
        input: impl Read,
        opts: &LoadOptions,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        self.load_inner(input, opts, false)
    }

    /// [`Store::load`]; with `store_blobs`, an OCI layout may omit layer blobs this store
    /// already holds (bundles carry only what the target lacks). Such a layer is still
    /// checked: its size against the descriptor and its diff_id against the config.
    pub(crate) fn load_inner(
        &self,
        input: impl Read,
        opts: &LoadOptions,
        store_blobs: bool,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        self.load_unmapped(input, opts, store_blobs)
            .map_err(|e| e.on_store(&self.root))
    }

    fn load_unmapped(
        &self,
        input: impl Read,
        opts: &LoadOptions,
        store_blobs: bool,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        self.reap_stale_temps()?;
        let _gc = Lock::shared(&self.gc_lock)?;
        let limit = match opts.max_bytes {
            Some(l) => l,
            None => nix::sys::statvfs::statvfs(&self.root)
                .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
                .map_err(|e| ArchiveError::io("statvfs", &self.root)(e.into()))?,
        };
        let staging = self.stage(input, limit)?;
        let plans = self.plan(&staging, opts, store_blobs)?;
        if plans.is_empty() {
            if let Some(p) = &opts.platform {
                return Err(ArchiveError::NoPlatform(format!(
                    "{}/{}",
                    p.os, p.architecture
                )));
            }
            return Err(ArchiveError::NotAnArchive);
        }
        let idx = Index::load(&self.images_json)?;
        // Unique layers, in order; each is verified and unpacked once.
        let mut keys: Vec<(String, LayerSrc, Digest)> = Vec::new();
        let mut image_keys = Vec::new();
        for p in &plans {
            let mut ks = Vec::new();
            for (i, src) in p.layers.iter().enumerate() {
                let diff_id = &p.cfg.rootfs.diff_ids[i];
                let key = match src {
                    LayerSrc::Member(n, _) => {
                        format!("m{}:{diff_id}", staging.member(n, "manifest.json")?.no)
                    }
                    LayerSrc::Blob(d) => {
                        let name = format!("blobs/sha256/{}", d.digest.hex());
                        match staging.member(&name, "manifest") {
                            Ok(m) => format!("m{}:{diff_id}", m.no),
                            Err(_) => format!("s{}:{diff_id}", d.digest),
                        }
                    }
                };
                if !keys.iter().any(|(k, _, _)| *k == key) {
                    keys.push((key.clone(), src.clone(), diff_id.clone()));
                }
                ks.push(key);
            }
            image_keys.push(ks);
        }
        let prepared = self.prepare_all(&staging, &keys, &idx, limit, store_blobs)?;
        let mut entries = Vec::new();
        for ks in &image_keys {
            let mut layers = Vec::new();
            for k in ks {
                if let Some(pr) = prepared.get(k) {
                    layers.push(pr.entry.clone());
                }
            }
            entries.push(layers);
        }
        // Everything verified: commit blobs, snapshots, configs, manifests, then the index.
        for pr in prepared.into_values() {
            match pr.blob {
                BlobSrc::Existing => {}
                BlobSrc::Member(path) => self.commit_member(&path, &pr.entry.blob)?,
                BlobSrc::Recorded(rec) => self.commit_recorded(rec, &pr.entry.diff_id)?,
            }
            if let Some(s) = pr.snapshot {
                s.commit(&self.snapshots.join(pr.entry.diff_id.hex()))?;
            }
        }
        let mut new_entries = Vec::new();
        for (p, layers) in plans.iter().zip(entries) {
            write_blob(&self.blobs, &self.ingest, &p.config)?;
            let mb = match &p.manifest {
                Some(b) => b.clone(),
                None => {
                    let m = Manifest {
                        schema_version: 2,
                        media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
                        config: Descriptor {
                            media_type: oci::MEDIA_OCI_CONFIG.to_string(),
                            digest: p.config_digest.clone(),
                            size: p.config.len() as u64,
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
                    serde_json::to_vec(&m).map_err(|source| {
                        ArchiveError::Store(StoreError::Encode {
                            what: "manifest",
                            source,
                        })
                    })?
                }
            };
            let (md, _) = write_blob(&self.blobs, &self.ingest, &mb)?;
            new_entries.push(ImageEntry {
                manifest: md,
                config: p.config_digest.clone(),
                layers,
                created: p
                    .cfg
                    .created
                    .clone()
                    .unwrap_or_else(crate::util::now_rfc3339),
                repo_digests: p.repo_digests.clone(),
            });
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = Index::load(&self.images_json)?;
        let mut out = Vec::new();
        for (p, e) in plans.iter().zip(new_entries) {
            let entry = idx
                .images
                .entry(p.config_digest.hex().to_string())
                .or_insert_with(|| e.clone());
            for rd in &e.repo_digests {
                if !entry.repo_digests.contains(rd) && entry.manifest == e.manifest {
                    entry.repo_digests.push(rd.clone());
                }
            }
            let mut retagged = Vec::new();
            for t in &p.tags {
                if let Some(old) = idx.tags.insert(t.clone(), p.config_digest.clone()) {
                    if old != p.config_digest {
                        retagged.push((t.clone(), old));
                    }
                }
            }
            out.push(LoadedImage {
                id: p.config_digest.clone(),
                tags: p.tags.clone(),
                retagged,
            });
        }
        idx.save(&self.images_json)?;
        Ok(out)
    }

    /// Prepares every unique layer on all cores; the first failure (in layer order) wins.
    fn prepare_all(
        &self,
        st: &Staging,
        keys: &[(String, LayerSrc, Digest)],
        idx: &Index,
        limit: u64,
        store_blobs: bool,
    ) -> Result<HashMap<String, Prepared>, ArchiveError> {
        let workers = cores().min(keys.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Prepared, ArchiveError>>>> =
            Mutex::new((0..keys.len()).map(|_| None).collect());
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, src, diff_id)) = keys.get(i) else {
                        break;
                    };
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let r = self.prepare_layer(st, src, diff_id, idx, limit, store_blobs);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                });
            }
        });
        let results = results
            .into_inner()
            .map_err(|_| ArchiveError::Read(io::Error::other("layer worker panicked")))?;
        let mut out = HashMap::new();
        for ((key, _, _), r) in keys.iter().zip(results) {
            match r {
                Some(Ok(p)) => {
                    out.insert(key.clone(), p);
                }
                Some(Err(e)) => return Err(e),
                None => {} // skipped after another layer failed; that error is below
            }
        }
        if out.len() != keys.len() {
            return Err(ArchiveError::Read(io::Error::other(
                "a layer worker stopped without a result",
            )));
        }
        Ok(out)
    }

    fn commit_member(&self, path: &Path, d: &Digest) -> Result<(), ArchiveError> {
        let dest = blob_path(&self.blobs, d);
        if dest.exists() {
            return Ok(());
        }
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(ArchiveError::io("syncing", path))?;
        std::fs::rename(path, &dest).map_err(ArchiveError::io("committing blob", &dest))?;
        fsync_dir(&self.blobs)?;
        Ok(())
    }

    /// Streams the archive once: uncompressed layers are unpacked on the way, everything
    /// else is staged.
    fn stage(&self, input: impl Read, limit: u64) -> Result<Staging, ArchiveError> {
        let dir = self.ingest.join(format!("load-{}", random_suffix()?));
        std::fs::create_dir(&dir).map_err(ArchiveError::io("creating staging dir", &dir))?;
        let mut st = Staging {
            dir,
            nodes: HashMap::new(),
            spec: Mutex::new(HashMap::new()),
        };
        // Background unpacks of compressed layers, each started as its member begins to
        // stream and following the staged file as it grows. Each is a two-thread pipeline
        // (inflate | hash + unpack) whose halves are unequal; running more of them than cores
        // keeps every core busy up to the end instead of leaving the last, often largest
        // layer alone on one core.
        let slots = Slots::new(2 * cores() + 1);
        let br = BufReader::with_capacity(256 << 10, input);
        let dec = decompress(br, "archive")?;
        let mut ar = tar::Archive::new(Capped::decoded(dec, limit));
        let mut n = 0u64;
        let mut buf = vec![0u8; 128 << 10];
        for ent in ar.entries().map_err(read_err)? {
            let mut ent = ent.map_err(read_err)?;
            let raw = String::from_utf8_lossy(&ent.path_bytes()).into_owned();
            let kind = ent.header().entry_type();
            if kind == tar::EntryType::XGlobalHeader || kind == tar::EntryType::Directory {
                continue;
            }
            let name = normalize(&raw).map_err(|reason| ArchiveError::UnsafeMember {
                name: raw.clone(),
                reason,
            })?;
            if name.is_empty() {
                continue;
            }
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    n += 1;
                    let size = ent.size();
                    let big = size >= STREAM_UNPACK_MIN;
                    let mut head = [0u8; 512];
                    let k = read_full(&mut ent, &mut head).map_err(read_err)?;
                    let mut hr = HashRead::new(io::Cursor::new(&head[..k]).chain(&mut ent));
                    let stream = big && looks_like_tar(&head[..k]);
                    let file = if stream {
                        let s = self.unpack_streamed(&name, &mut hr)?;
                        specs(&mut st).insert(n, s);
                        None
                    } else {
                        let file = st.dir.join(n.to_string());
                        let mut f =
                            File::create(&file).map_err(ArchiveError::io("creating", &file))?;
                        let feed = if big && Compression::of(&head[..k]) != Compression::None {
                            // unpacked on other cores while it is staged and the archive
                            // streams on
                            let growing = Growing::new();
                            let h = self.spawn_unpack(&file, &name, limit, &slots, &growing)?;
                            specs(&mut st).insert(n, Spec::Worker(h, growing.clone()));
                            Some(Feed(growing))
                        } else {
                            None
                        };
                        loop {
                            let k = hr.read(&mut buf).map_err(read_err)?;
                            if k == 0 {
                                break;
                            }
                            f.write_all(&buf[..k])
                                .map_err(ArchiveError::io("writing", &file))?;
                            if let Some(feed) = &feed {
                                feed.0.wrote(hr.n);
                            }
                        }
                        if hr.n == size {
                            if let Some(feed) = feed {
                                feed.0.done();
                            }
                        }
                        Some(file)
                    };
                    if hr.n != size {
                        return Err(ArchiveError::Truncated {
                            name: raw,
                            got: hr.n,
                            size,
                        });
                    }
                    let digest = hr.digest();
                    let member = Member {
                        file,
                        size: hr.n,
                        digest,
                        no: n,
                    };
                    st.nodes.insert(name, Node::File(member));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = ent
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let resolved = if kind == tar::EntryType::Symlink {
                        resolve_link(&name, &target)
                    } else {
                        normalize(&target).ok()
                    };
                    let Some(t) = resolved.filter(|t| !t.is_empty()) else {
                        return Err(ArchiveError::UnsafeMember {
                            name: raw,
                            reason: "link target outside the archive",
                        });
                    };
                    st.nodes.insert(name, Node::Link(t));
                }
                _ => {
                    return Err(ArchiveError::UnsafeMember {
                        name: raw,
                        reason: "unsupported member type",
                    })
                }
            }
        }
        Ok(st)
    }

    /// Starts the background unpack of the staged member `file` (once a slot is free), reading
    /// it as it grows; the stager reports progress through `growing`.
    fn spawn_unpack(
        &self,
        file: &Path,
        name: &str,
        limit: u64,
        slots: &Arc<Slots>,
        growing: &Arc<Growing>,
    ) -> Result<std::thread::JoinHandle<Result<Unpacked, ArchiveError>>, ArchiveError> {
        let slot = slots.acquire();
        let rd = File::open(file).map_err(ArchiveError::io("opening", file))?;
        let (store, path, name, growing) = (
            self.clone(),
            file.to_path_buf(),
            name.to_string(),
            growing.clone(),
        );
        Ok(std::thread::spawn(move || {
            let _slot = slot;
            let u = store.unpack_staged(GrowingReader::new(rd, growing), &name, limit, true)?;
            // The staged blob will be committed: flush it now, on this core, in parallel with
            // the other layers.
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(ArchiveError::io("syncing", &path))?;
            Ok(u)
        }))
    }

    /// Decompresses a staged layer member (on one core), hashing the tar — its diff_id — and
    /// unpacking it into a temp snapshot (on another) unless `unpack` is false (the snapshot
    /// exists: only verify).
    fn unpack_staged(
        &self,
        input: impl Read + Send,
        name: &str,
        limit: u64,
        unpack: bool,
    ) -> Result<Unpacked, ArchiveError> {
        let mut br = BufReader::with_capacity(256 << 10, input);
        let comp = sniff(&mut br).map_err(ArchiveError::Read)?;
        let dec = Capped::decoded(decompress(br, name)?, limit);
        read_ahead(dec, |r| {
            let mut hr = HashRead::new(r);
            let snapshot = if unpack {
                let tmp = TmpSnapshot::new(&self.snapshots)?;
                apply_layer(&tmp.path, &mut hr).map_err(|e| layer_err(name, e))?;
                Some(tmp)
            } else {
                None
            };
            io::copy(&mut hr, &mut io::sink()).map_err(read_err)?;
            Ok(Unpacked {
                snapshot,
                diff_id: hr.digest(),
                size: hr.n,
                comp,
            })
        })
    }

    /// Unpacks (and records) an uncompressed layer member while it streams by; reads it to
    /// its end. A member named `blobs/sha256/<hex>` whose snapshot and blob the store has is
    /// only hashed.
    fn unpack_streamed(&self, name: &str, r: &mut impl Read) -> Result<Spec, ArchiveError> {
        let known = name
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok())
            .filter(|d| self.snapshots.join(d.hex()).is_dir() && self.has_layer(d));
        if known.is_some() {
            io::copy(r, &mut io::sink()).map_err(read_err)?;
            return Ok(Spec::Existing);
        }
        match self.unpack_recorded(&mut *r) {
            Ok(rec) => Ok(Spec::Recorded(rec)),
            Err(StoreError::Layer(LayerError::Read(e))) => Err(layer_read_err(name, e)),
            Err(e) => {
                // Not necessarily a layer any image uses: report it only if one does.
                io::copy(r, &mut io::sink()).map_err(read_err)?;
                Ok(Spec::Failed(store_layer_err(name, e)))
            }
        }
    }

    /// The file holding layer blob `d`: the archive member or, with `store_blobs` and when
    /// the archive does not carry it, `None` (the store must hold it; checked when prepared).
    fn layer_member<'s>(
        &self,
        st: &'s Staging,
        d: &Descriptor,
        from: &str,
        store_blobs: bool,
    ) -> Result<Option<&'s Member>, ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        if store_blobs && !st.has(&name) {
            if !self.has_layer(&d.digest) {
                return Err(ArchiveError::Missing {
                    from: from.to_string(),
                    name: format!("{name} (neither carried nor in the store)"),
                });
            }
            return Ok(None);
        }
        Ok(Some(st.blob(d, from)?))
    }

    fn plan(
        &self,
        st: &Staging,
        opts: &LoadOptions,
        store_blobs: bool,
    ) -> Result<Vec<Plan>, ArchiveError> {
        let mut plans: Vec<Plan> = Vec::new();
        let want = opts.platform.as_ref();
        let fits = |cfg: &ImageConfig| {
            want.is_none_or(|p| {
                platform_matches(p, &cfg.os, &cfg.architecture, cfg.variant.as_deref())
            })
        };
        let push = |plans: &mut Vec<Plan>, p: Plan| {
            if let Some(q) = plans
                .iter_mut()
                .find(|q| q.config_digest == p.config_digest)
            {
                for t in p.tags {
                    if !q.tags.contains(&t) {
                        q.tags.push(t);
                    }
                }
                for r in p.repo_digests {
                    if !q.repo_digests.contains(&r) && q.manifest.is_some() {
                        q.repo_digests.push(r);
                    }
                }
            } else {
                plans.push(p);
            }
        };
        let names = st.index_names()?;
        // Repo digests recorded for manifest `d`: only names whose digest IS that manifest's
        // (verified content), never a claim about some other digest.
        let repo_digests_of = |d: &Digest| -> Vec<String> {
            names
                .iter()
                .flat_map(|(_, ns)| ns.iter())
                .filter_map(|n| match n {
                    Name::Digest(rd, dd) if dd == d => Some(rd.clone()),
                    _ => None,
                })
                .fold(Vec::new(), |mut v, rd| {
                    if !v.contains(&rd) {
                        v.push(rd);
                    }
                    v
                })
        };
        if st.has("manifest.json") {
            let (b, _) = st.read("manifest.json", "archive")?;
            let list: Vec<DockerEntry> = parse_json(&b, "manifest.json")?;
            for e in list {
                let (config, digest) = st.read(&e.config, "manifest.json")?;
                let stem = e.config.rsplit('/').next().unwrap_or("");
                let stem = stem.strip_suffix(".json").unwrap_or(stem);
                if let Ok(named) = Digest::from_hex(stem) {
                    if named != digest {
                        return Err(ArchiveError::DigestMismatch {
                            what: format!("config {}", e.config),
                            expected: named,
                            actual: digest,
                        });
                    }
                }
                let cfg: ImageConfig = parse_json(&config, &format!("config {}", e.config))?;
                if cfg.rootfs.diff_ids.len() != e.layers.len() {
                    return Err(ArchiveError::LayerCount {
                        config: digest,
                        diff_ids: cfg.rootfs.diff_ids.len(),
                        layers: e.layers.len(),
                    });
                }
                let mut members = Vec::new();
                for l in &e.layers {
                    members.push(st.member(l, "manifest.json")?);
                }
                if !fits(&cfg) {
                    continue;
                }
                let mut tags = Vec::new();
                for t in e.repo_tags.unwrap_or_default() {
                    if let Name::Tag(t) = parse_name(&t)? {
                        tags.push(t);
                    }
                }
                // An OCI manifest in index.json describing exactly these blobs is kept, so
                // the manifest digest (and repo digests naming it) survive.
                let kept = names.iter().find_map(|(d, _)| {
                    let mb = st.blob_bytes(d, "index.json").ok()?;
                    oci::document_kind(&mb, Some(&d.media_type)).ok()?;
                    let m: Manifest = serde_json::from_slice(&mb).ok()?;
                    let same = m.config.digest == digest
                        && m.layers.len() == members.len()
                        && m.layers
                            .iter()
                            .zip(&members)
                            .all(|(l, mm)| l.digest == mm.digest && l.size == mm.size);
                    same.then_some((d.digest.clone(), mb, m))
                });
                let (manifest, layers, repo_digests) = match kept {
                    Some((md, mb, m)) => (
                        Some(mb),
                        e.layers
                            .into_iter()
                            .zip(m.layers)
                            .map(|(n, d)| LayerSrc::Member(n, Some(d)))
                            .collect(),
                        repo_digests_of(&md),
                    ),
                    None => (
                        None,
                        e.layers
                            .into_iter()
                            .map(|n| LayerSrc::Member(n, None))
                            .collect(),
                        Vec::new(),
                    ),
                };
                push(
                    &mut plans,
                    Plan {
                        config,
                        config_digest: digest,
                        cfg,
                        layers,
                        manifest,
                        tags,
                        repo_digests,
                    },
                );
            }
            return Ok(plans);
        }
        if !st.has("index.json") {
            return Err(ArchiveError::NotAnArchive);
        }
        let host = Platform {
            os: "linux".to_string(),
            architecture: oci::host_architecture().to_string(),
            variant: None,
        };
        let mut stack: Vec<(Descriptor, Vec<String>, u8)> = Vec::new();
        for (d, ns) in &names {
            let tags = ns
                .iter()
                .filter_map(|n| match n {
                    Name::Tag(t) => Some(t.clone()),
                    Name::Digest(..) => None,
                })
                .collect();
            stack.push((d.clone(), tags, 0));
        }
        stack.reverse();
        while let Some((d, tags, depth)) = stack.pop() {
            let mt = d.media_type.as_str();
            if mt == oci::MEDIA_OCI_INDEX || mt == oci::MEDIA_DOCKER_LIST {
                if depth > 3 {
                    return Err(ArchiveError::MediaType(format!("{mt} nested too deep")));
                }
                let ib = st.blob_bytes(&d, "index.json")?;
                check_document(&ib, mt, &format!("index {}", d.digest))?;
                let sub: OciIndex = parse_json(&ib, &format!("index {}", d.digest))?;
                let p = want.unwrap_or(&host);
                let pick = sub.manifests.into_iter().find(|m| {
                    m.platform.as_ref().is_none_or(|mp| {
                        platform_matches(p, &mp.os, &mp.architecture, mp.variant.as_deref())
                    })
                });
                if let Some(m) = pick {
                    stack.push((m, tags, depth + 1));
                }
                continue;
            }
            if mt != oci::MEDIA_OCI_MANIFEST && mt != oci::MEDIA_DOCKER_MANIFEST {
                return Err(ArchiveError::MediaType(mt.to_string()));
            }
            let mb = st.blob_bytes(&d, "index.json")?;
            let from = format!("manifest {}", d.digest);
            check_document(&mb, mt, &from)?;
            let m: Manifest = parse_json(&mb, &from)?;
            let config = st.blob_bytes(&m.config, &from)?;
            let cfg: ImageConfig = parse_json(&config, &format!("config {}", m.config.digest))?;
            if let Some(p) = &d.platform {
                oci::check_config_platform(p, &cfg).map_err(|source| ArchiveError::Document {
                    what: from.clone(),
                    source,
                })?;
            }
            if cfg.rootfs.diff_ids.len() != m.layers.len() {
                return Err(ArchiveError::LayerCount {
                    config: m.config.digest.clone(),
                    diff_ids: cfg.rootfs.diff_ids.len(),
                    layers: m.layers.len(),
                });
            }
            for l in &m.layers {
                self.layer_member(st, l, &from, store_blobs)?;
            }
            if !fits(&cfg) {
                continue;
            }
            push(
                &mut plans,
                Plan {
                    config,
                    config_digest: m.config.digest.clone(),
                    cfg,
                    layers: m.layers.iter().cloned().map(LayerSrc::Blob).collect(),
                    manifest: Some(mb),
                    tags,
                    repo_digests: repo_digests_of(&d.digest),
                },
            );
        }
        Ok(plans)
    }

    /// Verifies one layer's diff_id and readies its snapshot and blob: the streamed unpack,
    /// the staged member (decompressed and unpacked here unless its snapshot exists), or —
    /// for bundles — the store's own copy, whose diff_id the index records.
    fn prepare_layer(
        &self,
        st: &Staging,
        src: &LayerSrc,
        diff_id: &Digest,
        idx: &Index,
        limit: u64,
        store_blobs: bool,
    ) -> Result<Prepared, ArchiveError> {
        let (name, desc, m) = match src {
            LayerSrc::Member(n, d) => {
                let m = st.member(n, "manifest.json")?;
                if let Some(d) = d {
                    check_member(m, d, n)?;
                }
                (n.clone(), d.clone(), m)
            }
            LayerSrc::Blob(d) => match self.layer_member(st, d, "manifest", store_blobs)? {
                Some(m) => (
                    format!("blobs/sha256/{}", d.digest.hex()),
                    Some(d.clone()),
                    m,
                ),
                None => return self.prepare_from_store(d, diff_id, idx),
            },
        };
        let mismatch = |got: &Digest| ArchiveError::DigestMismatch {
            what: format!("layer {name} (diff_id)"),
            expected: diff_id.clone(),
            actual: got.clone(),
        };
        let entry = |media: &str, size: u64| LayerEntry {
            blob: m.digest.clone(),
            blob_size: m.size,
            media_type: desc
                .as_ref()
                .map(|d| d.media_type.clone())
                .unwrap_or_else(|| media.to_string()),
            diff_id: diff_id.clone(),
            size,
        };
        // staged and unpacked by a background worker (a compressed member)?
        let unpacked = st.take_unpacked(m.no);
        if let (None, Some(spec)) = (&unpacked, st.take_spec(m.no)) {
            // streamed: an uncompressed tar, so its digest is its diff_id
            if &m.digest != diff_id {
                return Err(mismatch(&m.digest));
            }
            let blob = match spec {
                Spec::Failed(e) => return Err(e),
                Spec::Existing => BlobSrc::Existing,
                Spec::Worker(..) => {
                    return Err(ArchiveError::Missing {
                        from: "manifest".to_string(),
                        name,
                    })
                }
                Spec::Recorded(r) => BlobSrc::Recorded(r),
            };
            return Ok(Prepared {
                entry: entry(oci::MEDIA_OCI_LAYER, m.size),
                blob,
                snapshot: None,
            });
        }
        let Some(file) = &m.file else {
            return Err(ArchiveError::Missing {
                from: "manifest".to_string(),
                name,
            });
        };
        // staged: unpacked by a background worker already, or here
        let u = match unpacked {
            Some(r) => r?,
            None => {
                let unpack = !self.snapshots.join(diff_id.hex()).is_dir();
                let f = File::open(file).map_err(ArchiveError::io("opening", file))?;
                self.unpack_staged(f, &name, limit, unpack)?
            }
        };
        if &u.diff_id != diff_id {
            return Err(mismatch(&u.diff_id));
        }
        let blob = if self.has_layer(&m.digest) {
            BlobSrc::Existing
        } else {
            BlobSrc::Member(file.clone())
        };
        Ok(Prepared {
            entry: entry(media_for(u.comp), u.size),
            blob,
            snapshot: u.snapshot,
        })
    }

    /// A layer a bundle relies on the store for: the index must record that blob with the
    /// diff_id the image's config names, and the store must be able to produce it.
    fn prepare_from_store(
        &self,
        d: &Descriptor,
        diff_id: &Digest,
        idx: &Index,
    ) -> Result<Prepared, ArchiveError> {
        let known = idx
            .images
            .values()
            .flat_map(|e| e.layers.iter())
            .chain(idx.compressed.values())
            .find(|l| l.blob == d.digest);
        let Some(l) = known else {
            return Err(ArchiveError::Missing {
                from: "bundle".to_string(),
                name: format!("layer {} (neither carried nor in the store)", d.digest),
            });
        };
        if &l.diff_id != diff_id {
            return Err(ArchiveError::DigestMismatch {
                what: format!("store layer {} (diff_id)", d.digest),
                expected: diff_id.clone(),
                actual: l.diff_id.clone(),
            });
        }
        if l.blob_size != d.size {
            return Err(ArchiveError::SizeMismatch {
                what: format!("store blob {}", d.digest),
                expected: d.size,
                actual: l.blob_size,
            });
        }
        Ok(Prepared {
            entry: LayerEntry {
                media_type: d.media_type.clone(),
                ..l.clone()
            },
            blob: BlobSrc::Existing,
            snapshot: None,
        })
    }
}
