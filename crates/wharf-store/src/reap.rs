//! Temporaries that killed operations leave behind: `snapshots/tmp-*` (half-unpacked layers),
//! `ingest/load-*/` (archive staging), `ingest/tarsplit-*`, `ingest/layer-*`, `ingest/blob-*`,
//! `ingest/gz-*`, empty `ingest/pull-*` partials and their `.lock` files; atomic-writer temps
//! (`.NAME.tmp-*`) in `meta/` and `meta/signatures/<manifest>/` (written under `lock`); and
//! what killed container creates and removals left (`Store::sweep_orphan_containers`).
//!
//! Every operation that creates such a temporary holds `gc.lock` SHARED for its whole life
//! (pull, load, bundle apply, import, re-unpack, push compression; see `lock`), and the
//! operations that use `ingest/` under the meta lock (volumes) hold `lock`. So a temporary
//! that exists while `gc.lock` can be taken EXCLUSIVE, with `lock` held too, belongs to no live
//! operation: it is stale. [`Store::reap_stale_temps`] runs at the start of every
//! store-writing operation and removes them only in that case (a non-blocking try: with a
//! live operation it does nothing and the next command tries again); GC does the same under
//! its blocking locks.
//!
//! Kept: a non-empty `ingest/pull-<blob hex>`, the verified prefix a later pull resumes with
//! `Range` (GC removes those too).
//!
//! Must not: wait for a lock, or remove anything while an operation that may own it is live.

use crate::error::StoreError;
use crate::lock::Lock;
use crate::util::{random_suffix, remove_file_if_exists, remove_tree_if_exists};
use crate::Store;
use std::io;
use std::path::{Path, PathBuf};

/// What to do with resumable download partials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partials {
    Keep,
    Remove,
}

pub(crate) fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io("listing", dir)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(StoreError::io("listing", dir))?;
        if let Some(n) = ent.file_name().to_str() {
            out.push((n.to_string(), ent.path()));
        }
    }
    Ok(out)
}

impl Store {
    /// Removes stale temporaries if no operation is live (see the module docs). Returns how
    /// many entries it removed (0 also when it could not take the locks).
    pub fn reap_stale_temps(&self) -> Result<usize, StoreError> {
        let Some(_gc) = Lock::try_exclusive(&self.gc_lock)? else {
            return Ok(0);
        };
        let Some(_meta) = Lock::try_exclusive(&self.meta_lock)? else {
            return Ok(0);
        };
        self.remove_temps(Partials::Keep)
    }

    /// Removes `snapshots/tmp-*` and what `ingest/` holds. The caller holds `gc.lock` and
    /// `lock` exclusive.
    pub(crate) fn remove_temps(&self, partials: Partials) -> Result<usize, StoreError> {
        let mut n = 0;
        for (name, path) in list_dir(&self.snapshots)? {
            if name.starts_with("tmp-") {
                // rename first so a half-deleted tree never has a name anything looks for
                let doomed = self.ingest.join(format!("del-{}", random_suffix()?));
                std::fs::rename(&path, &doomed)
                    .map_err(StoreError::io("removing snapshot", &path))?;
                remove_tree_if_exists(&doomed)?;
                n += 1;
            }
        }
        self.sweep_orphan_containers()?;
        // atomic-writer temps of `meta/` files (images.json and friends: written under the
        // metadata lock, which we hold) a killed writer left
        if let Some(meta) = self.images_json.parent() {
            // and of image signatures (`meta/signatures/<manifest>/`, also written under it)
            let mut dirs = vec![meta.to_path_buf()];
            dirs.extend(
                list_dir(&meta.join("signatures"))?
                    .into_iter()
                    .map(|(_, p)| p)
                    .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())),
            );
            for dir in dirs {
                for (name, path) in list_dir(&dir)? {
                    if name.starts_with('.') && name.contains(".tmp-") {
                        remove_file_if_exists(&path)?;
                        n += 1;
                    }
                }
            }
        }
        for (name, path) in list_dir(&self.ingest)? {
            let resumable = name.starts_with("pull-")
                && !name.ends_with(".lock")
                && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() > 0);
            if resumable && partials == Partials::Keep {
                continue;
            }
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                remove_tree_if_exists(&path)?;
            } else {
                remove_file_if_exists(&path)?;
            }
            n += 1;
        }
        Ok(n)
    }
}
