//! `meta/images.json`: the image index — which images exist (by config digest), their
//! manifest, layers (blob digest/size, diff_id, uncompressed size) and the tag → image map.
//! Keeping layer facts here lets the hot path (`resolve_image`, `image_layers`) avoid
//! reading manifests. Read without a lock (atomic renames make every version complete);
//! modified only under the exclusive meta lock.

use crate::error::StoreError;
use crate::util::{read_json, write_json_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use wharf_types::Digest;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerEntry {
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    /// Uncompressed tar size.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ImageEntry {
    pub manifest: Digest,
    pub config: Digest,
    /// Bottom layer first (config `rootfs.diff_ids` order).
    pub layers: Vec<LayerEntry>,
    pub created: String,
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

impl ImageEntry {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    /// Keyed by image id hex (config digest).
    #[serde(default)]
    pub images: BTreeMap<String, ImageEntry>,
    /// Familiar `repo:tag` → image id.
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    /// Compressed twins of uncompressed layers (diff_id hex → gzip blob), made once by
    /// `push` so a re-push does not compress again. Kept by GC while an image uses the layer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compressed: BTreeMap<String, LayerEntry>,
}

impl Index {
    pub fn load(path: &Path) -> Result<Index, StoreError> {
        Ok(read_json(path)?.unwrap_or_default())
    }

    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        write_json_atomic(path, "image index", self)
    }

    /// Tags pointing at `id`, sorted.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}
