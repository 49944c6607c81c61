//! Appending a layer to an image (`commit`) and reading an image's history (`history`).
//!
//! `commit_layer` streams the layer tar (made by `layer::diff::write_tar` from a container's
//! upper dir) through import's path: sha256 while read (the diff_id), unpacked into a temp
//! snapshot with its tar-split record, committed, then the new config (the base's
//! `rootfs.diff_ids` and history plus one entry), manifest and index entry through
//! `write_image`. A failure anywhere leaves no image, tag or visible snapshot; an empty
//! layer (docker's: a tar of only the end blocks) adds a history entry with `empty_layer`
//! and no layer, as docker's commit does.
//!
//! Must not: read the container's tree itself (the caller hands in the tar).

use crate::content::read_blob;
use crate::error::StoreError;
use crate::index::LayerEntry;
use crate::lock::Lock;
use crate::util::HashRead;
use crate::Store;
use std::io::{BufReader, Read};
use wharf_types::oci::{self, History, ImageConfig, RunConfig};
use wharf_types::{Digest, ImageRef};

/// Cap for config blobs read into memory.
const CONFIG_CAP: u64 = 8 << 20;

/// sha256 of an empty tar (two 512-byte zero blocks): docker's `EmptyLayer` diff_id.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What [`Store::commit_layer`] writes besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` to tag the new image with.
    pub reference: Option<ImageRef>,
    /// The new image's container defaults (already merged with `--change`).
    pub config: RunConfig,
    /// `--author`
    pub author: Option<String>,
    /// `--message`
    pub comment: Option<String>,
    /// The history entry's `created_by` (docker: the container's command).
    pub created_by: String,
}

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The local image this entry is the top of (the image itself for the first row, a
    /// base image when it is in the store), else None (docker's `<missing>`).
    pub image: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
    /// Uncompressed size of the entry's layer (0 for an empty one).
    pub size: u64,
    pub tags: Vec<String>,
}

impl Store {
    fn image_config(&self, config: &Digest) -> Result<ImageConfig, StoreError> {
        let data = read_blob(&self.blobs, config, CONFIG_CAP)?
            .ok_or_else(|| StoreError::ImageNotFound(format!("{config} (config blob missing)")))?;
        serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt {
            path: crate::content::blob_path(&self.blobs, config),
            source,
        })
    }

    /// Makes a new image: `base` plus the layer read from `layer_tar` (uncompressed).
    /// Returns the new image id.
    pub fn commit_layer(
        &self,
        base: &Digest,
        layer_tar: impl Read,
        opts: &CommitOptions,
    ) -> Result<Digest, StoreError> {
        if let Some(r) = &opts.reference {
            if r.digest().is_some() || r.tag().is_none() {
                return Err(StoreError::TagRequired(r.to_string()));
            }
        }
        self.reap_stale_temps()?;
        let _gc = Lock::shared(&self.gc_lock)?;
        let entry = self
            .load_index()?
            .images
            .get(base.hex())
            .cloned()
            .ok_or_else(|| StoreError::ImageNotFound(base.to_string()))?;
        let base_config = self.image_config(&entry.config)?;

        let mut hr = HashRead::new(BufReader::with_capacity(128 << 10, layer_tar));
        let recorded = self.unpack_recorded(&mut hr)?;
        let diff_id = hr.digest();
        let size = hr.n;
        let empty = hr.n == 0 || diff_id.to_string() == EMPTY_LAYER_DIFF_ID;
        let mut layers = entry.layers.clone();
        let mut config = base_config;
        if empty {
            drop(recorded);
        } else {
            self.commit_recorded(recorded, &diff_id)?;
            layers.push(LayerEntry {
                blob: diff_id.clone(),
                blob_size: size,
                media_type: oci::MEDIA_OCI_LAYER.to_string(),
                diff_id: diff_id.clone(),
                size,
            });
            config.rootfs.diff_ids.push(diff_id);
        }
        let created = crate::util::now_rfc3339();
        config.created = Some(created.clone());
        config.author = opts.author.clone().filter(|a| !a.is_empty());
        config.config = opts.config.clone();
        config.history.push(History {
            created: Some(created),
            created_by: Some(opts.created_by.clone()),
            comment: opts.comment.clone().filter(|c| !c.is_empty()),
            empty_layer: empty,
        });
        self.write_image(layers, &config, opts.reference.as_ref())
    }

    /// A build step's image (`wharf build`): `base` (None: `scratch`) plus, when given, the
    /// layer read from `layer_tar` (uncompressed), with `config` and the `history` entries
    /// appended (the metadata steps since the last layer, then the step's own). A layer that
    /// turns out empty adds no layer and marks the last entry `empty_layer`, as docker does.
    /// Returns the new image id; untagged (the caller tags the final image).
    pub fn build_step(
        &self,
        base: Option<&Digest>,
        layer_tar: Option<&mut dyn Read>,
        config: &RunConfig,
        mut history: Vec<History>,
    ) -> Result<Digest, StoreError> {
        self.reap_stale_temps()?;
        let _gc = Lock::shared(&self.gc_lock)?;
        let (mut layers, mut image) = match base {
            Some(base) => {
                let entry = self
                    .load_index()?
                    .images
                    .get(base.hex())
                    .cloned()
                    .ok_or_else(|| StoreError::ImageNotFound(base.to_string()))?;
                let config = self.image_config(&entry.config)?;
                (entry.layers, config)
            }
            None => (
                Vec::new(),
                ImageConfig {
                    created: None,
                    author: None,
                    architecture: oci::host_architecture().to_string(),
                    os: "linux".to_string(),
                    variant: None,
                    config: RunConfig::default(),
                    rootfs: oci::RootFs {
                        kind: "layers".to_string(),
                        diff_ids: Vec::new(),
                    },
                    history: Vec::new(),
                },
            ),
        };
        if let Some(tar) = layer_tar {
            let mut hr = HashRead::new(BufReader::with_capacity(128 << 10, tar));
            let recorded = self.unpack_recorded(&mut hr)?;
            let diff_id = hr.digest();
            let size = hr.n;
            if hr.n == 0 || diff_id.to_string() == EMPTY_LAYER_DIFF_ID {
                drop(recorded);
                if let Some(h) = history.last_mut() {
                    h.empty_layer = true;
                }
            } else {
                self.commit_recorded(recorded, &diff_id)?;
                layers.push(LayerEntry {
                    blob: diff_id.clone(),
                    blob_size: size,
                    media_type: oci::MEDIA_OCI_LAYER.to_string(),
                    diff_id: diff_id.clone(),
                    size,
                });
                image.rootfs.diff_ids.push(diff_id);
            }
        }
        let created = crate::util::now_rfc3339();
        for h in &mut history {
            h.created.get_or_insert_with(|| created.clone());
        }
        image.created = Some(created);
        image.author = None;
        image.config = config.clone();
        image.history.extend(history);
        self.write_image(layers, &image, None)
    }

    /// A build step taken from a `--cache-from` image (docker's classic `restoreCachedImage`):
    /// `base` (None: scratch) plus, when given, `source`'s layer number `layer` (already in
    /// the store: nothing is unpacked or hashed again), with `config` and `history` appended.
    pub fn build_step_reuse(
        &self,
        base: Option<&Digest>,
        source: &Digest,
        layer: Option<usize>,
        config: &RunConfig,
        history: Vec<History>,
    ) -> Result<Digest, StoreError> {
        let _gc = Lock::shared(&self.gc_lock)?;
        let idx = self.load_index()?;
        let src = idx
            .images
            .get(source.hex())
            .ok_or_else(|| StoreError::ImageNotFound(source.to_string()))?;
        let (mut layers, mut image) = match base {
            Some(base) => {
                let entry = idx
                    .images
                    .get(base.hex())
                    .ok_or_else(|| StoreError::ImageNotFound(base.to_string()))?;
                (entry.layers.clone(), self.image_config(&entry.config)?)
            }
            None => {
                let mut c = self.image_config(&src.config)?;
                c.rootfs.diff_ids.clear();
                c.history.clear();
                (Vec::new(), c)
            }
        };
        if let Some(i) = layer {
            let entry = src
                .layers
                .get(i)
                .cloned()
                .ok_or_else(|| StoreError::ImageNotFound(format!("{source} layer {i}")))?;
            image.rootfs.diff_ids.push(entry.diff_id.clone());
            layers.push(entry);
        }
        let created = crate::util::now_rfc3339();
        image.created = history
            .last()
            .and_then(|h| h.created.clone())
            .or(Some(created));
        image.author = None;
        image.config = config.clone();
        image.history.extend(history);
        self.write_image(layers, &image, None)
    }

    /// docker's `history`: the image's history entries newest first, each with its layer's
    /// size and, where a local image ends at that entry, that image.
    pub fn history(&self, id: &Digest) -> Result<Vec<HistoryItem>, StoreError> {
        let idx = self.load_index()?;
        let entry = idx
            .images
            .get(id.hex())
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        let config = self.image_config(&entry.config)?;
        // Local images that could be an ancestor: fewer history entries, same layer prefix.
        let mut ancestors: Vec<(Digest, ImageConfig)> = Vec::new();
        for (hex, e) in &idx.images {
            if hex == id.hex() || e.layers.len() > entry.layers.len() {
                continue;
            }
            if e.layers
                .iter()
                .zip(&entry.layers)
                .any(|(a, b)| a.diff_id != b.diff_id)
            {
                continue;
            }
            if let Ok(c) = self.image_config(&e.config) {
                if c.history.len() < config.history.len()
                    && c.history[..] == config.history[..c.history.len()]
                {
                    ancestors.push((e.config.clone(), c));
                }
            }
        }
        let mut layer_sizes = entry.layers.iter().map(|l| l.size);
        let mut rows = Vec::with_capacity(config.history.len());
        for (i, h) in config.history.iter().enumerate() {
            let size = if h.empty_layer {
                0
            } else {
                layer_sizes.next().unwrap_or(0)
            };
            let image = if i + 1 == config.history.len() {
                Some(id.clone())
            } else {
                ancestors
                    .iter()
                    .filter(|(_, c)| c.history.len() == i + 1)
                    .map(|(d, _)| d.clone())
                    .min_by_key(|d| d.to_string())
            };
            let tags = image.as_ref().map(|d| idx.tags_of(d)).unwrap_or_default();
            rows.push(HistoryItem {
                image,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
                size,
                tags,
            });
        }
        rows.reverse();
        Ok(rows)
    }
}
