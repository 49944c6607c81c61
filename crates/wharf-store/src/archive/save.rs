//! `Store::save`: writes images as a docker-archive (docker ≥25 shape: `manifest.json` +
//! `repositories` + an OCI layout with UNCOMPRESSED layer blobs named by diff_id, which docker
//! 20.10 loads as well) or as an OCI image layout (blobs and manifests byte-for-byte as
//! stored). Streams every blob; layers are decompressed while written and their diff_id and
//! size re-checked, so a corrupt store never produces a silently wrong archive.

use super::{decompress, platform_matches, ArchiveError, ArchiveFormat, ARCHIVE_META_CAP};
use crate::content::{blob_path, read_blob};
use crate::index::{ImageEntry, Index};
use crate::Store;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, Read, Write};
use wharf_types::oci::{self, Manifest, Platform};
use wharf_types::{Digest, ImageRef};

/// An image to save: index entry, tags to record, config bytes.
type SaveItem = (ImageEntry, Vec<String>, Vec<u8>);

/// Options of [`Store::save`].
#[derive(Debug, Clone)]
pub struct SaveOptions {
    pub format: ArchiveFormat,
    /// Refuse images whose config is for another platform.
    pub platform: Option<Platform>,
}

struct HashRead<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
    written: BTreeSet<String>,
}

impl<W: Write> TarOut<W> {
    fn header(name: &str, size: u64, kind: tar::EntryType) -> Result<tar::Header, ArchiveError> {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).map_err(ArchiveError::Write)?;
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.set_cksum();
        Ok(h)
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        let h = Self::header(name, 0, tar::EntryType::Directory)?;
        self.b.append(&h, io::empty()).map_err(ArchiveError::Write)
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let h = Self::header(name, data.len() as u64, tar::EntryType::Regular)?;
        self.b.append(&h, data).map_err(ArchiveError::Write)
    }

    /// Writes a blob once per archive.
    fn blob_bytes(&mut self, d: &Digest, data: &[u8]) -> Result<(), ArchiveError> {
        if self.written.insert(d.hex().to_string()) {
            self.bytes(&format!("blobs/sha256/{}", d.hex()), data)?;
        }
        Ok(())
    }
}

fn to_json(v: &impl serde::Serialize, what: &'static str) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(v)
        .map_err(|source| ArchiveError::Store(crate::StoreError::Encode { what, source }))
}

fn annotations(tag: &str) -> Value {
    let r = ImageRef::parse(tag).ok();
    let short = r
        .as_ref()
        .and_then(|r| r.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    let full = r.map(|r| r.to_string()).unwrap_or_else(|| tag.to_string());
    json!({
        "io.containerd.image.name": full,
        "org.opencontainers.image.ref.name": short,
    })
}

fn index_json(entries: &[(String, Digest, u64, Vec<String>)]) -> Value {
    let mut manifests = Vec::new();
    for (media_type, digest, size, tags) in entries {
        if tags.is_empty() {
            manifests.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        for t in tags {
            manifests.push(
                json!({"mediaType": media_type, "digest": digest, "size": size,
                "annotations": annotations(t)}),
            );
        }
    }
    json!({"schemaVersion": 2, "mediaType": oci::MEDIA_OCI_INDEX, "manifests": manifests})
}

impl Store {
    /// Resolves `names` to (index entry, tags to record), deduplicated, in order.
    fn save_set(
        &self,
        names: &[String],
        platform: Option<&Platform>,
    ) -> Result<Vec<SaveItem>, ArchiveError> {
        let idx = Index::load(&self.images_json)?;
        let mut out: Vec<SaveItem> = Vec::new();
        for name in names {
            let img = self.resolve_image(name)?;
            if let Some(p) = platform {
                let c = &img.config;
                if !platform_matches(p, &c.os, &c.architecture, c.variant.as_deref()) {
                    return Err(ArchiveError::PlatformMismatch {
                        image: name.clone(),
                        platform: format!("{}/{}", p.os, p.architecture),
                    });
                }
            }
            let tag = ImageRef::parse(name)
                .ok()
                .filter(|r| r.digest().is_none())
                .map(|r| r.familiar())
                .filter(|t| idx.tags.get(t) == Some(&img.id));
            let entry = idx
                .images
                .get(img.id.hex())
                .cloned()
                .ok_or_else(|| crate::StoreError::ImageNotFound(name.clone()))?;
            if let Some(pos) = out.iter().position(|(e, _, _)| e.config == img.id) {
                if let Some(t) = tag {
                    if !out[pos].1.contains(&t) {
                        out[pos].1.push(t);
                    }
                }
                continue;
            }
            let cfg =
                read_blob(&self.blobs, &entry.config, ARCHIVE_META_CAP)?.ok_or_else(|| {
                    crate::StoreError::ImageNotFound(format!("{name} (config blob missing)"))
                })?;
            out.push((entry, tag.into_iter().collect(), cfg));
        }
        Ok(out)
    }

    /// Writes `names` as an archive of `opts.format` to `out`.
    pub fn save(
        &self,
        names: &[String],
        opts: &SaveOptions,
        out: impl Write,
    ) -> Result<(), ArchiveError> {
        let set = self.save_set(names, opts.platform.as_ref())?;
        let mut t = TarOut {
            b: tar::Builder::new(out),
            written: BTreeSet::new(),
        };
        t.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        t.dir("blobs/")?;
        t.dir("blobs/sha256/")?;
        match opts.format {
            ArchiveFormat::Docker => self.save_docker(&set, &mut t)?,
            ArchiveFormat::Oci => self.save_oci(&set, &mut t)?,
        }
        t.b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(ArchiveError::Write)
    }

    fn save_docker<W: Write>(
        &self,
        set: &[SaveItem],
        t: &mut TarOut<W>,
    ) -> Result<(), ArchiveError> {
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut index_entries = Vec::new();
        let mut manifests = Vec::new();
        for (e, tags, cfg) in set {
            let m = Manifest {
                schema_version: 2,
                media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
                config: oci::Descriptor {
                    media_type: oci::MEDIA_OCI_CONFIG.to_string(),
                    digest: e.config.clone(),
                    size: cfg.len() as u64,
                    annotations: None,
                    platform: None,
                },
                layers: e
                    .layers
                    .iter()
                    .map(|l| oci::Descriptor {
                        media_type: oci::MEDIA_OCI_LAYER.to_string(),
                        digest: l.diff_id.clone(),
                        size: l.size,
                        annotations: None,
                        platform: None,
                    })
                    .collect(),
                annotations: None,
            };
            let mb = to_json(&m, "manifest")?;
            let md = Digest::of(&mb);
            index_entries.push((
                oci::MEDIA_OCI_MANIFEST.to_string(),
                md.clone(),
                mb.len() as u64,
                tags.clone(),
            ));
            manifests.push((md, mb));
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", e.config.hex()),
                "RepoTags": tags,
                "Layers": e.layers.iter().map(|l| format!("blobs/sha256/{}", l.diff_id.hex())).collect::<Vec<_>>(),
            }));
            if let Some(top) = e.layers.last() {
                for tag in tags {
                    if let Some((repo, tg)) = tag.rsplit_once(':') {
                        repositories
                            .entry(repo.to_string())
                            .or_default()
                            .insert(tg.to_string(), top.diff_id.hex().to_string());
                    }
                }
            }
        }
        t.bytes(
            "index.json",
            &to_json(&index_json(&index_entries), "index.json")?,
        )?;
        t.bytes(
            "manifest.json",
            &to_json(&docker_manifest, "manifest.json")?,
        )?;
        if !repositories.is_empty() {
            t.bytes("repositories", &to_json(&repositories, "repositories")?)?;
        }
        for ((e, _, cfg), (md, mb)) in set.iter().zip(&manifests) {
            t.blob_bytes(&e.config, cfg)?;
            t.blob_bytes(md, mb)?;
            for l in &e.layers {
                if !t.written.insert(l.diff_id.hex().to_string()) {
                    continue;
                }
                let p = blob_path(&self.blobs, &l.blob);
                let f =
                    std::fs::File::open(&p).map_err(ArchiveError::io("opening layer blob", &p))?;
                let mut dec =
                    decompress(BufReader::with_capacity(128 << 10, f), &l.blob.to_string())?;
                let h = TarOut::<W>::header(
                    &format!("blobs/sha256/{}", l.diff_id.hex()),
                    l.size,
                    tar::EntryType::Regular,
                )?;
                let mut hr = HashRead {
                    inner: (&mut dec).take(l.size),
                    hasher: Sha256::new(),
                    n: 0,
                };
                t.b.append(&h, &mut hr).map_err(ArchiveError::Write)?;
                let (hn, got) = (hr.n, Digest::from_hasher(hr.hasher));
                let mut extra = [0u8; 1];
                let more = dec.read(&mut extra).map_err(ArchiveError::Read)?;
                let n = hn + more as u64;
                if n != l.size {
                    return Err(ArchiveError::SizeMismatch {
                        what: format!("stored layer {}", l.blob),
                        expected: l.size,
                        actual: n,
                    });
                }
                if got != l.diff_id {
                    return Err(ArchiveError::DigestMismatch {
                        what: format!("stored layer {}", l.blob),
                        expected: l.diff_id.clone(),
                        actual: got,
                    });
                }
            }
        }
        Ok(())
    }

    fn save_oci<W: Write>(&self, set: &[SaveItem], t: &mut TarOut<W>) -> Result<(), ArchiveError> {
        let mut index_entries = Vec::new();
        let mut manifests = Vec::new();
        for (e, tags, _) in set {
            let mb = read_blob(&self.blobs, &e.manifest, ARCHIVE_META_CAP)?.ok_or_else(|| {
                crate::StoreError::ImageNotFound(format!("{} (manifest blob missing)", e.config))
            })?;
            let m: Manifest = serde_json::from_slice(&mb).map_err(|source| ArchiveError::Json {
                what: format!("stored manifest {}", e.manifest),
                source,
            })?;
            let mt = m
                .media_type
                .clone()
                .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
            index_entries.push((mt, e.manifest.clone(), mb.len() as u64, tags.clone()));
            manifests.push((m, mb));
        }
        t.bytes(
            "index.json",
            &to_json(&index_json(&index_entries), "index.json")?,
        )?;
        for ((e, _, cfg), (m, mb)) in set.iter().zip(&manifests) {
            t.blob_bytes(&e.manifest, mb)?;
            t.blob_bytes(&e.config, cfg)?;
            for l in &m.layers {
                if !t.written.insert(l.digest.hex().to_string()) {
                    continue;
                }
                let p = blob_path(&self.blobs, &l.digest);
                let f =
                    std::fs::File::open(&p).map_err(ArchiveError::io("opening layer blob", &p))?;
                let h = TarOut::<W>::header(
                    &format!("blobs/sha256/{}", l.digest.hex()),
                    l.size,
                    tar::EntryType::Regular,
                )?;
                let mut hr = HashRead {
                    inner: f.take(l.size),
                    hasher: Sha256::new(),
                    n: 0,
                };
                t.b.append(&h, &mut hr).map_err(ArchiveError::Write)?;
                let got = Digest::from_hasher(hr.hasher);
                if hr.n != l.size || got != l.digest {
                    return Err(ArchiveError::DigestMismatch {
                        what: format!("stored blob {p:?} ({} bytes)", hr.n),
                        expected: l.digest.clone(),
                        actual: got,
                    });
                }
            }
        }
        Ok(())
    }
}
