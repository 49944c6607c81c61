//! `Store::save`: writes images as a docker-archive (docker ≥25 shape: `manifest.json` +
//! `repositories` + an OCI image layout) or as a plain OCI image layout. Either way the blobs
//! and manifests are the stored ones, byte for byte: compressed layers stay compressed (docker
//! 20.10, podman and skopeo decompress docker-archive layers by magic), uncompressed layers are
//! reassembled from snapshot + tar-split. So manifest digests survive, and `index.json` also
//! names every repo digest (`repo@sha256:…`) the image has, which `load` restores.
//! Every blob is hashed while written and checked against its digest and size, so a corrupt
//! store never produces a silently wrong archive.

use super::{platform_matches, ArchiveError, ArchiveFormat, ARCHIVE_META_CAP};
use crate::content::read_blob;
use crate::index::{ImageEntry, Index};
use crate::util::HashRead;
use crate::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
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

fn annotations(name: &str) -> Value {
    let r = ImageRef::parse(name).ok();
    let full = r
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_else(|| name.to_string());
    if r.as_ref().is_some_and(|r| r.digest().is_some()) {
        // a repo digest: containerd's image name only (no OCI ref.name tag)
        return json!({ "io.containerd.image.name": full });
    }
    let short = r
        .as_ref()
        .and_then(|r| r.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    json!({
        "io.containerd.image.name": full,
        "org.opencontainers.image.ref.name": short,
    })
}

/// One `index.json` entry per name (tags and repo digests); one without a name if none.
fn index_json(entries: &[(String, Digest, u64, Vec<String>)]) -> Value {
    let mut manifests = Vec::new();
    for (media_type, digest, size, names) in entries {
        if names.is_empty() {
            manifests.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        for n in names {
            manifests.push(
                json!({"mediaType": media_type, "digest": digest, "size": size,
                "annotations": annotations(n)}),
            );
        }
    }
    json!({"schemaVersion": 2, "mediaType": oci::MEDIA_OCI_INDEX, "manifests": manifests})
}

/// An image's stored manifest, parsed.
struct Stored {
    bytes: Vec<u8>,
    manifest: Manifest,
    media_type: String,
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
        let mut index_entries = Vec::new();
        let mut stored = Vec::new();
        for (e, tags, _) in &set {
            let s = self.stored_manifest(e)?;
            index_entries.push((
                s.media_type.clone(),
                e.manifest.clone(),
                s.bytes.len() as u64,
                Self::index_names(e, tags),
            ));
            stored.push(s);
        }
        t.bytes(
            "index.json",
            &to_json(&index_json(&index_entries), "index.json")?,
        )?;
        if opts.format == ArchiveFormat::Docker {
            Self::docker_files(&set, &stored, &mut t)?;
        }
        self.write_blobs(&set, &stored, &mut t)?;
        t.b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(ArchiveError::Write)
    }

    fn stored_manifest(&self, e: &ImageEntry) -> Result<Stored, ArchiveError> {
        let bytes = read_blob(&self.blobs, &e.manifest, ARCHIVE_META_CAP)?.ok_or_else(|| {
            crate::StoreError::ImageNotFound(format!("{} (manifest blob missing)", e.config))
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
                what: format!("stored manifest {}", e.manifest),
                source,
            })?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
        Ok(Stored {
            bytes,
            manifest,
            media_type,
        })
    }

    /// Names for `index.json`: the tags being saved, then the image's repo digests that name
    /// this very manifest.
    fn index_names(e: &ImageEntry, tags: &[String]) -> Vec<String> {
        let mut names = tags.to_vec();
        for rd in &e.repo_digests {
            if rd
                .rsplit_once('@')
                .is_some_and(|(_, d)| d == e.manifest.to_string())
            {
                names.push(rd.clone());
            }
        }
        names
    }

    /// The docker-archive extras: `manifest.json` and the legacy `repositories`.
    fn docker_files<W: Write>(
        set: &[SaveItem],
        stored: &[Stored],
        t: &mut TarOut<W>,
    ) -> Result<(), ArchiveError> {
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for ((e, tags, _), s) in set.iter().zip(stored) {
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", e.config.hex()),
                "RepoTags": tags,
                "Layers": s.manifest.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
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
            "manifest.json",
            &to_json(&docker_manifest, "manifest.json")?,
        )?;
        if !repositories.is_empty() {
            t.bytes("repositories", &to_json(&repositories, "repositories")?)?;
        }
        Ok(())
    }

    /// Manifests, configs and layers as `blobs/sha256/<hex>`, each once, each verified.
    fn write_blobs<W: Write>(
        &self,
        set: &[SaveItem],
        stored: &[Stored],
        t: &mut TarOut<W>,
    ) -> Result<(), ArchiveError> {
        for ((e, _, cfg), s) in set.iter().zip(stored) {
            t.blob_bytes(&e.manifest, &s.bytes)?;
            t.blob_bytes(&e.config, cfg)?;
            for l in &s.manifest.layers {
                if !t.written.insert(l.digest.hex().to_string()) {
                    continue;
                }
                let (r, len) = self.open_layer(&l.digest)?;
                if len != l.size {
                    return Err(ArchiveError::SizeMismatch {
                        what: format!("stored layer {}", l.digest),
                        expected: l.size,
                        actual: len,
                    });
                }
                let h = TarOut::<W>::header(
                    &format!("blobs/sha256/{}", l.digest.hex()),
                    l.size,
                    tar::EntryType::Regular,
                )?;
                let mut hr = HashRead::new(r.take(l.size));
                t.b.append(&h, &mut hr).map_err(ArchiveError::Write)?;
                let got = hr.digest();
                if hr.n != l.size || got != l.digest {
                    return Err(ArchiveError::DigestMismatch {
                        what: format!("stored layer {} ({} bytes)", l.digest, hr.n),
                        expected: l.digest.clone(),
                        actual: got,
                    });
                }
            }
        }
        Ok(())
    }
}
