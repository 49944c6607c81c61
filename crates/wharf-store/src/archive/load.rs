//! `Store::load`: one streaming pass stores every regular tar member in a private staging dir
//! (by index: archive names never touch the file system; links become name aliases that must
//! resolve inside the archive), then `manifest.json` (docker-archive) or `index.json` (OCI
//! layout) is resolved, every blob verified and every layer unpacked into a temp snapshot.
//! Commit happens only after all images verified.

use super::{decompress, platform_matches, read_err, ArchiveError, Capped, ARCHIVE_META_CAP};
use crate::content::{blob_path, write_blob, IngestWriter};
use crate::index::{ImageEntry, Index, LayerEntry};
use crate::layer::{apply_layer, LayerError};
use crate::lock::Lock;
use crate::util::{fsync_dir, random_suffix, read_capped};
use crate::Store;
use flate2::write::GzEncoder;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
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
}

struct Member {
    file: PathBuf,
    size: u64,
    digest: Digest,
}

enum Node {
    File(Member),
    Link(String),
}

/// The staging dir under `ingest/`; removed on drop.
struct Staging {
    dir: PathBuf,
    nodes: HashMap<String, Node>,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct TmpSnap(PathBuf, bool);
impl Drop for TmpSnap {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

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

fn is_gzip_layer(mt: &str) -> bool {
    mt == oci::MEDIA_OCI_LAYER_GZIP || mt == oci::MEDIA_DOCKER_LAYER_GZIP
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

enum LayerSrc {
    /// Member name (docker-archive path or `blobs/sha256/<hex>`), re-compressed to gzip.
    Recompress(String),
    /// A gzip blob kept byte-for-byte (its manifest is kept too).
    Keep(Descriptor),
}

struct Plan {
    config: Vec<u8>,
    config_digest: Digest,
    cfg: ImageConfig,
    layers: Vec<LayerSrc>,
    manifest: Option<Vec<u8>>,
    tags: Vec<String>,
}

enum BlobSrc {
    Existing,
    Member(PathBuf),
    Ingest(IngestWriter),
}

struct Prepared {
    entry: LayerEntry,
    blob: BlobSrc,
    snapshot: Option<TmpSnap>,
}

fn parse_json<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(b).map_err(|source| ArchiveError::Json {
        what: what.to_string(),
        source,
    })
}

fn parse_tag(t: &str) -> Result<String, ArchiveError> {
    let r = ImageRef::parse(t).map_err(|source| ArchiveError::BadTag {
        tag: t.to_string(),
        source,
    })?;
    if r.digest().is_some() {
        return Ok(String::new());
    }
    Ok(r.familiar())
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
        let b = read_capped(&m.file, ARCHIVE_META_CAP)?.ok_or_else(|| ArchiveError::Missing {
            from: from.to_string(),
            name: name.to_string(),
        })?;
        Ok((b, m.digest.clone()))
    }

    fn has(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// A blob of an OCI layout, verified against its descriptor.
    fn blob(&self, d: &Descriptor, from: &str) -> Result<&Member, ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        let m = self.member(&name, from)?;
        if m.digest != d.digest {
            return Err(ArchiveError::DigestMismatch {
                what: name,
                expected: d.digest.clone(),
                actual: m.digest.clone(),
            });
        }
        if m.size != d.size {
            return Err(ArchiveError::SizeMismatch {
                what: name,
                expected: d.size,
                actual: m.size,
            });
        }
        Ok(m)
    }

    fn blob_bytes(&self, d: &Descriptor, from: &str) -> Result<Vec<u8>, ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        self.blob(d, from)?;
        Ok(self.read(&name, from)?.0)
    }
}

/// Hashes what passes through and copies it to an optional gzip encoder.
struct Tee<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
    out: Option<GzEncoder<IngestWriter>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if let Some(o) = &mut self.out {
            o.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

fn layer_err(layer: &str, e: LayerError) -> ArchiveError {
    match e {
        LayerError::Read(e) => read_err(e),
        source => ArchiveError::Layer {
            layer: layer.to_string(),
            source,
        },
    }
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
        let mut prepared: HashMap<String, Prepared> = HashMap::new();
        let mut entries = Vec::new();
        for p in &plans {
            let mut layers = Vec::new();
            for (i, src) in p.layers.iter().enumerate() {
                let diff_id = &p.cfg.rootfs.diff_ids[i];
                let key = match src {
                    LayerSrc::Recompress(n) => format!("r:{n}:{diff_id}"),
                    LayerSrc::Keep(d) => format!("k:{}:{diff_id}", d.digest),
                };
                if !prepared.contains_key(&key) {
                    let pr =
                        self.prepare_layer(&staging, src, diff_id, &idx, limit, store_blobs)?;
                    prepared.insert(key.clone(), pr);
                }
                if let Some(pr) = prepared.get(&key) {
                    layers.push(pr.entry.clone());
                }
            }
            entries.push(layers);
        }
        // Everything verified: commit blobs, snapshots, configs, manifests, then the index.
        for pr in prepared.into_values() {
            match pr.blob {
                BlobSrc::Existing => {}
                BlobSrc::Ingest(w) => {
                    w.commit(&self.blobs, Some((&pr.entry.blob, pr.entry.blob_size)))?;
                }
                BlobSrc::Member(path) => self.commit_member(&path, &pr.entry.blob)?,
            }
            if let Some(mut s) = pr.snapshot {
                let dest = self.snapshots.join(pr.entry.diff_id.hex());
                if !dest.exists() {
                    match std::fs::rename(&s.0, &dest) {
                        Ok(()) => s.1 = false,
                        Err(e) if dest.exists() => drop(e),
                        Err(e) => return Err(ArchiveError::io("committing snapshot", &dest)(e)),
                    }
                }
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
                        ArchiveError::Store(crate::StoreError::Encode {
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
                repo_digests: Vec::new(),
            });
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = Index::load(&self.images_json)?;
        let mut out = Vec::new();
        for (p, e) in plans.iter().zip(new_entries) {
            idx.images
                .entry(p.config_digest.hex().to_string())
                .or_insert(e);
            for t in &p.tags {
                idx.tags.insert(t.clone(), p.config_digest.clone());
            }
            out.push(LoadedImage {
                id: p.config_digest.clone(),
                tags: p.tags.clone(),
            });
        }
        idx.save(&self.images_json)?;
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

    /// Streams the archive once into a staging dir.
    fn stage(&self, input: impl Read, limit: u64) -> Result<Staging, ArchiveError> {
        let dir = self.ingest.join(format!("load-{}", random_suffix()?));
        std::fs::create_dir(&dir).map_err(ArchiveError::io("creating staging dir", &dir))?;
        let mut st = Staging {
            dir,
            nodes: HashMap::new(),
        };
        let br = BufReader::with_capacity(256 << 10, input);
        let dec = decompress(br, "archive")?;
        let mut ar = tar::Archive::new(Capped {
            inner: dec,
            limit,
            read: 0,
        });
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
                    let file = st.dir.join(n.to_string());
                    let mut f = File::create(&file).map_err(ArchiveError::io("creating", &file))?;
                    let mut h = Sha256::new();
                    let mut size = 0u64;
                    loop {
                        let k = ent.read(&mut buf).map_err(read_err)?;
                        if k == 0 {
                            break;
                        }
                        h.update(&buf[..k]);
                        size += k as u64;
                        f.write_all(&buf[..k])
                            .map_err(ArchiveError::io("writing", &file))?;
                    }
                    let digest = Digest::from_hasher(h);
                    st.nodes
                        .insert(name, Node::File(Member { file, size, digest }));
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

    /// The file holding layer blob `d`: the archive member or, with `store_blobs` and when
    /// the archive does not carry it, the committed store blob (`true` = from the store).
    fn layer_file(
        &self,
        st: &Staging,
        d: &Descriptor,
        from: &str,
        store_blobs: bool,
    ) -> Result<(PathBuf, bool), ArchiveError> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        if store_blobs && !st.has(&name) {
            let p = blob_path(&self.blobs, &d.digest);
            let len = std::fs::metadata(&p)
                .map_err(|_| ArchiveError::Missing {
                    from: from.to_string(),
                    name: format!("{name} (neither carried nor in the store)"),
                })?
                .len();
            if len != d.size {
                return Err(ArchiveError::SizeMismatch {
                    what: format!("store blob {}", d.digest),
                    expected: d.size,
                    actual: len,
                });
            }
            return Ok((p, true));
        }
        Ok((st.blob(d, from)?.file.clone(), false))
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
            } else {
                plans.push(p);
            }
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
                for l in &e.layers {
                    st.member(l, "manifest.json")?;
                }
                if !fits(&cfg) {
                    continue;
                }
                let mut tags = Vec::new();
                for t in e.repo_tags.unwrap_or_default() {
                    let t = parse_tag(&t)?;
                    if !t.is_empty() {
                        tags.push(t);
                    }
                }
                let layers = e.layers.into_iter().map(LayerSrc::Recompress).collect();
                push(
                    &mut plans,
                    Plan {
                        config,
                        config_digest: digest,
                        cfg,
                        layers,
                        manifest: None,
                        tags,
                    },
                );
            }
            return Ok(plans);
        }
        if !st.has("index.json") {
            return Err(ArchiveError::NotAnArchive);
        }
        let (b, _) = st.read("index.json", "archive")?;
        let top: OciIndex = parse_json(&b, "index.json")?;
        let host = Platform {
            os: "linux".to_string(),
            architecture: oci::host_architecture().to_string(),
            variant: None,
        };
        let mut stack: Vec<(Descriptor, Vec<String>, u8)> = Vec::new();
        for d in top.manifests {
            let ann = d.annotations.clone().unwrap_or_default();
            let name = ann.get("io.containerd.image.name").cloned().or_else(|| {
                ann.get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains(':') || n.contains('/'))
                    .cloned()
            });
            let tags = match name {
                Some(n) => vec![parse_tag(&n)?]
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect(),
                None => Vec::new(),
            };
            stack.push((d, tags, 0));
        }
        stack.reverse();
        while let Some((d, tags, depth)) = stack.pop() {
            let mt = d.media_type.as_str();
            if mt == oci::MEDIA_OCI_INDEX || mt == oci::MEDIA_DOCKER_LIST {
                if depth > 3 {
                    return Err(ArchiveError::MediaType(format!("{mt} nested too deep")));
                }
                let ib = st.blob_bytes(&d, "index.json")?;
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
            let m: Manifest = parse_json(&mb, &format!("manifest {}", d.digest))?;
            let from = format!("manifest {}", d.digest);
            let config = st.blob_bytes(&m.config, &from)?;
            let cfg: ImageConfig = parse_json(&config, &format!("config {}", m.config.digest))?;
            if cfg.rootfs.diff_ids.len() != m.layers.len() {
                return Err(ArchiveError::LayerCount {
                    config: m.config.digest.clone(),
                    diff_ids: cfg.rootfs.diff_ids.len(),
                    layers: m.layers.len(),
                });
            }
            for l in &m.layers {
                self.layer_file(st, l, &from, store_blobs)?;
            }
            if !fits(&cfg) {
                continue;
            }
            let keep = m.layers.iter().all(|l| is_gzip_layer(&l.media_type));
            let layers = m
                .layers
                .iter()
                .map(|l| {
                    if keep {
                        LayerSrc::Keep(l.clone())
                    } else {
                        LayerSrc::Recompress(format!("blobs/sha256/{}", l.digest.hex()))
                    }
                })
                .collect();
            push(
                &mut plans,
                Plan {
                    config,
                    config_digest: m.config.digest.clone(),
                    cfg,
                    layers,
                    manifest: keep.then_some(mb),
                    tags,
                },
            );
        }
        Ok(plans)
    }

    /// Verifies one layer's diff_id, unpacks it (unless its snapshot exists) and prepares its
    /// blob (the kept archive blob, an existing store blob, or a fresh gzip in `ingest/`).
    fn prepare_layer(
        &self,
        st: &Staging,
        src: &LayerSrc,
        diff_id: &Digest,
        idx: &Index,
        limit: u64,
        store_blobs: bool,
    ) -> Result<Prepared, ArchiveError> {
        let (name, member_file) = match src {
            LayerSrc::Recompress(n) => (n.clone(), st.member(n, "manifest")?.file.clone()),
            LayerSrc::Keep(d) => (
                d.digest.to_string(),
                self.layer_file(st, d, "manifest", store_blobs)?.0,
            ),
        };
        let existing = match src {
            LayerSrc::Keep(_) => None,
            LayerSrc::Recompress(_) => idx
                .images
                .values()
                .flat_map(|e| e.layers.iter())
                .find(|l| &l.diff_id == diff_id && blob_path(&self.blobs, &l.blob).exists())
                .cloned(),
        };
        let out = match (src, &existing) {
            (LayerSrc::Recompress(_), None) => Some(GzEncoder::new(
                IngestWriter::new(&self.ingest)?,
                flate2::Compression::fast(),
            )),
            _ => None,
        };
        let f = File::open(&member_file).map_err(ArchiveError::io("opening", &member_file))?;
        let dec = decompress(BufReader::with_capacity(128 << 10, f), &name)?;
        let mut tee = Tee {
            inner: Capped {
                inner: dec,
                limit,
                read: 0,
            },
            hasher: Sha256::new(),
            size: 0,
            out,
        };
        let snap_dest = self.snapshots.join(diff_id.hex());
        let snapshot = if snap_dest.is_dir() {
            io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
            None
        } else {
            let tmp = TmpSnap(
                self.snapshots.join(format!("tmp-{}", random_suffix()?)),
                true,
            );
            std::fs::create_dir(&tmp.0).map_err(ArchiveError::io("creating snapshot", &tmp.0))?;
            apply_layer(&tmp.0, &mut tee).map_err(|e| layer_err(&name, e))?;
            io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
            Some(tmp)
        };
        let got = Digest::from_hasher(tee.hasher.clone());
        if &got != diff_id {
            return Err(ArchiveError::DigestMismatch {
                what: format!("layer {name} (diff_id)"),
                expected: diff_id.clone(),
                actual: got,
            });
        }
        let (blob, entry) = match (src, existing, tee.out.take()) {
            (_, Some(l), _) => (
                BlobSrc::Existing,
                LayerEntry {
                    size: tee.size,
                    ..l
                },
            ),
            (LayerSrc::Keep(d), None, _) => {
                let blob = if blob_path(&self.blobs, &d.digest).exists() {
                    BlobSrc::Existing
                } else {
                    BlobSrc::Member(member_file.clone())
                };
                let e = LayerEntry {
                    blob: d.digest.clone(),
                    blob_size: d.size,
                    media_type: d.media_type.clone(),
                    diff_id: got,
                    size: tee.size,
                };
                (blob, e)
            }
            (LayerSrc::Recompress(_), None, Some(enc)) => {
                let w = enc
                    .finish()
                    .map_err(ArchiveError::io("writing layer blob", &self.ingest))?;
                let (bd, bs) = w.digest();
                let e = LayerEntry {
                    blob: bd,
                    blob_size: bs,
                    media_type: oci::MEDIA_OCI_LAYER_GZIP.to_string(),
                    diff_id: got,
                    size: tee.size,
                };
                (BlobSrc::Ingest(w), e)
            }
            (LayerSrc::Recompress(_), None, None) => {
                return Err(ArchiveError::Missing {
                    from: "manifest".to_string(),
                    name,
                })
            }
        };
        Ok(Prepared {
            entry,
            blob,
            snapshot,
        })
    }
}
