//! wharf-store: the content and metadata store under one root (default `/var/lib/wharf`).
//!
//! ```text
//! wharf.json                 {"schema_version": 1}; a newer version is refused
//! lock, gc.lock              flock files (see `lock`)
//! blobs/sha256/<hex>         content-addressed blobs, committed only after verification
//! ingest/                    blobs/volumes being written; anything here is garbage to GC
//! snapshots/<diff_id hex>/   one unpacked layer each (whiteouts converted for overlayfs)
//! meta/images.json           image index: images (by config digest), layers, tags
//! meta/containers/<id>.json  container create-time records, written once
//! meta/names/<name>          container name → id (claimed atomically with link(2))
//! meta/signatures/<manifest hex>/<key id>.json   image signatures (`trust`)
//! containers/<id>/           upper/, work/, merged/, state.json (+ files the engine adds:
//!                            .commit-* / .export-* temporaries of commit and export)
//! volumes/<name>/            _data/, volume.json
//! ```
//!
//! Every metadata write is temp → fsync → rename → fsync(dir). Concurrency between `wharf`
//! processes (and threads): metadata read-modify-writes hold the exclusive meta lock; imports
//! hold `gc.lock` shared from first byte to index commit and GC holds it exclusive, so GC can
//! never delete what an in-flight import wrote. Readers take no lock.
//!
//! The hot path (`open`, `resolve_image`, `image_layers`, `create_container`) reads a few
//! small files and stats a few directories; it never hashes layers or walks trees.
//!
//! Owns: on-disk layout and its invariants. Must not: mount anything, depend on the runtime,
//! or trust bytes from an archive before they are verified.

pub mod archive;
pub mod bundle;
mod commit;
pub mod compress;
mod container;
mod content;
pub mod distribution;
mod error;
mod image;
mod index;
pub mod layer;
mod lock;
pub mod network;
mod reap;
pub mod trust;
mod util;
pub use util::tree_size;
mod volume;

pub use commit::{CommitOptions, HistoryItem, EMPTY_LAYER_DIFF_ID};
pub use container::ContainerPaths;
pub use error::StoreError;
pub use image::{GcReport, Image, ImageSummary, ImportOptions, RemoveEvent};
pub use volume::{valid_volume_name, Volume};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The on-disk schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SchemaFile {
    schema_version: u32,
}

/// A handle on a store root. Cheap to open; holds no fds or locks between calls.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
    snapshots: PathBuf,
    images_json: PathBuf,
    containers_meta: PathBuf,
    names: PathBuf,
    containers_dir: PathBuf,
    volumes: PathBuf,
    meta_lock: PathBuf,
    gc_lock: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating the layout on first use. Refuses a store written
    /// by a newer wharf (`FailedPrecondition`).
    /// Layers (`snapshots/`) and containers' upper dirs (`containers/`) are overlay layers:
    /// refuse a file system without d_type, as docker does, instead of silently losing
    /// whiteouts. One getdents per directory, no writes.
    fn check_dtype(&self) -> Result<(), StoreError> {
        for d in [&self.snapshots, &self.containers_dir] {
            match wharf_sys::fs::reports_dtype(d) {
                Ok(true) => {}
                Ok(false) => return Err(StoreError::NoDType { path: d.clone() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("read directory", d.as_path())(e)),
            }
        }
        Ok(())
    }

    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let s = Store {
            root: root.to_path_buf(),
            blobs: root.join("blobs/sha256"),
            ingest: root.join("ingest"),
            snapshots: root.join("snapshots"),
            images_json: root.join("meta/images.json"),
            containers_meta: root.join("meta/containers"),
            names: root.join("meta/names"),
            containers_dir: root.join("containers"),
            volumes: root.join("volumes"),
            meta_lock: root.join("lock"),
            gc_lock: root.join("gc.lock"),
        };
        let schema_path = root.join("wharf.json");
        match util::read_json::<SchemaFile>(&schema_path)? {
            Some(f) if f.schema_version > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    root: root.to_path_buf(),
                    found: f.schema_version,
                    supported: SCHEMA_VERSION,
                })
            }
            // Future migrations from older versions go here.
            Some(_) => {
                s.check_dtype()?;
                restrict_root(root)?;
                return Ok(s);
            }
            None => {}
        }
        for d in [&s.blobs, &s.ingest, &s.snapshots, &s.volumes] {
            util::mkdir_p(d)?;
        }
        restrict_root(root)?;
        s.ensure_container_dirs()?;
        s.check_dtype()?;
        util::write_json_atomic(
            &schema_path,
            "schema file",
            &SchemaFile {
                schema_version: SCHEMA_VERSION,
            },
        )?;
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The store is root's alone (docker's data root is 0710): images, container configs and
/// their logs, volumes. Non-root users reach the engine through the API socket, never these
/// files; a root looser than 0700 (an older store, a directory made by hand) is tightened.
fn restrict_root(root: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(root).map_err(StoreError::io("stat", root))?;
    if m.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .map_err(StoreError::io("chmod 0700", root))?;
    }
    Ok(())
}
