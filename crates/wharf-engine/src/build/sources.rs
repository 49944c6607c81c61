//! Where a build's inputs come from, and what the image records about them: the FROM images
//! (admin policy, then pulled through the engine's distribution service when missing or
//! with `--pull`), `--cache-from` images (docker's classic rule: a step is reused when a
//! cache image has the same parent chain and the same instruction next) and the provenance
//! labels (the Dockerfile's and the context's digests).
//!
//! Must not: print (pull progress goes to the build's sink as lines), or read outside the
//! context (the context digest walks it through `context::walk`).

use super::context::{self, Kind, Root};
use super::{BuildError, BuildProgress, BuildRequest, StageState};
use crate::distribution::PullPolicy;
use crate::images::ImageError;
use crate::Engine;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use wharf_build::stages::{Base, Plan};
use wharf_registry::client::Progress;
use wharf_types::oci::{History, ImageConfig};
use wharf_types::Digest;

/// Label: sha256 of the Dockerfile's bytes as read.
pub const DOCKERFILE_LABEL: &str = "org.wharf.build.dockerfile-digest";
/// Label: the context digest (every file sent after `.dockerignore`: names, modes, owners,
/// sizes, bytes, link targets, in name order).
pub const CONTEXT_LABEL: &str = "org.wharf.build.context-digest";

/// A `--cache-from` image: its id and config (history, diff ids).
pub(super) struct CacheImage {
    id: Digest,
    config: ImageConfig,
}

/// Two history entries describe the same step (timestamps differ between builds).
fn same_step(a: &History, b: &History) -> bool {
    a.created_by == b.created_by && a.empty_layer == b.empty_layer && a.comment == b.comment
}

/// The layer-number of history entry `i` (how many non-empty entries precede it).
fn layer_index(history: &[History], i: usize) -> usize {
    history[..i].iter().filter(|h| !h.empty_layer).count()
}

/// The per-file digest cache of a directory context is at most this large (else unused).
const FILE_CACHE_MAX: u64 = 64 << 20;

/// What identifies a file's bytes without reading them: device, inode, size, mtime and
/// ctime to the nanosecond (any write changes the ctime, which no user can set back).
fn stat_key(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

fn load_file_cache(path: &Path) -> HashMap<String, String> {
    let Ok(Some(bytes)) = wharf_sys::fs::read_small_file(None, path, FILE_CACHE_MAX) else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect()
}

/// docker's pull line for one progress event (byte counts left out: a build log is plain).
fn pull_line(p: Progress<'_>) -> Option<String> {
    match p {
        Progress::Line(l) => Some(l.to_string()),
        Progress::Layer { id, status, .. } => {
            (!matches!(status, "Downloading" | "Extracting")).then(|| format!("{id}: {status}"))
        }
    }
}

impl Engine {
    /// The context digest (see [`CONTEXT_LABEL`]): one walk of the context after
    /// `.dockerignore`, each file's bytes as their sha256. For a directory context the
    /// per-file digests are remembered by [`stat_key`] in `build-cache/context-<sha256 of
    /// its path>`, so an unchanged file is not read again (a rebuild of a large context
    /// costs a stat per file, as BuildKit's); a context unpacked from a tar has new inodes
    /// every time and keeps no such file.
    pub(super) fn context_digest(
        &self,
        root: &Root,
        context_dir: &Path,
    ) -> Result<Digest, BuildError> {
        let cache_path = (!context_dir.starts_with(self.root().join("build-tmp"))).then(|| {
            let abs = std::fs::canonicalize(context_dir).unwrap_or(context_dir.to_path_buf());
            self.cache_dir().join(format!(
                "context-{}",
                Digest::of(abs.as_os_str().as_encoded_bytes()).hex()
            ))
        });
        let old = cache_path
            .as_deref()
            .map(load_file_cache)
            .unwrap_or_default();
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut h = Sha256::new();
        context::walk(root, Path::new(""), &mut |e, file| {
            h.update(format!(
                "\n{}\0{:o}\0{}\0{}\0{}\0",
                e.rel.display(),
                e.mode,
                e.uid,
                e.gid,
                e.size
            ));
            match (&e.kind, file) {
                (Kind::Symlink(t), _) => h.update(t.as_os_str().as_encoded_bytes()),
                (Kind::Dir, _) => h.update(b"d"),
                (Kind::File, Some(mut f)) => {
                    // the stat before the read: a write during the read changes the ctime
                    let key = f
                        .metadata()
                        .map(|m| stat_key(&m))
                        .map_err(|err| BuildError::io("stat", &e.rel, err))?;
                    let digest = match old.get(&key) {
                        Some(d) => d.clone(),
                        None => {
                            let mut fh = Sha256::new();
                            std::io::copy(&mut f, &mut fh)
                                .map_err(|err| BuildError::io("read", &e.rel, err))?;
                            Digest::from_hasher(fh).hex().to_string()
                        }
                    };
                    h.update(digest.as_bytes());
                    seen.insert(key, digest);
                }
                (Kind::File, None) => {}
            }
            Ok(())
        })?;
        if let Some(path) = cache_path.filter(|_| seen != old) {
            let mut text = String::new();
            for (k, d) in &seen {
                text.push_str(&format!("{k} {d}\n"));
            }
            // a cache: a failed write only costs the next build a read
            let _ = std::fs::create_dir_all(self.cache_dir());
            let _ = wharf_sys::atomic::write_file(&path, text.as_bytes(), 0o600);
        }
        Ok(Digest::from_hasher(h))
    }

    /// The FROM images of the stages built: each checked by the admin policy as `run`'s
    /// image is, then present in the store (pulled when missing; with `--pull` always),
    /// before any step runs. `scratch` and earlier stages are not images.
    pub(super) fn ensure_bases(
        &self,
        req: &BuildRequest,
        plan: &Plan,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<(), BuildError> {
        let mut names: Vec<&str> = Vec::new();
        for &si in &plan.order {
            if let Base::Image(name) = &plan.stages[si].base {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        for name in &names {
            self.policy_image("build", name, false)?;
        }
        let policy = if req.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        for name in names {
            let lines = Mutex::new(Vec::new());
            let res = self.ensure_image(name, policy, None, &|p| {
                if let (Some(l), Ok(mut v)) = (pull_line(p), lines.lock()) {
                    v.push(l);
                }
            });
            for l in lines.into_inner().unwrap_or_default() {
                progress(BuildProgress::Pull(l));
            }
            match res {
                Ok(_) => {}
                Err(ImageError::Store(wharf_store::StoreError::ImageNotFound(_))) => {
                    return Err(BuildError::BaseNotFound(name.to_string()))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The `--cache-from` images that are in the store (each checked by the policy's
    /// `[registries]` as a build input); a missing one is a warning, as with docker.
    pub(super) fn cache_images(
        &self,
        req: &BuildRequest,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<Vec<CacheImage>, BuildError> {
        let mut out = Vec::new();
        if req.no_cache {
            return Ok(out);
        }
        for name in &req.cache_from {
            match self.store.resolve_image(name) {
                Ok(img) => {
                    self.policy_image("build", name, true)?;
                    out.push(CacheImage {
                        id: img.id,
                        config: img.config,
                    });
                }
                Err(_) => progress(BuildProgress::Warning(format!(
                    "cache-from image {name:?} not found in the store: not used"
                ))),
            }
        }
        Ok(out)
    }

    /// The step about to run (its history text `created_by`) taken from a `--cache-from`
    /// image: one whose layers and history start with the stage's image, continue with the
    /// pending metadata steps and then this step. The step's image is made from that image's
    /// layer (nothing runs) and recorded in the local cache.
    pub(super) fn cache_from_step(
        &self,
        images: &[CacheImage],
        st: &mut StageState,
        created_by: &str,
    ) -> Result<bool, BuildError> {
        if images.is_empty() {
            return Ok(false);
        }
        let parent = match &st.image {
            Some(id) => Some(
                self.store
                    .resolve_image(&id.to_string())
                    .map_err(ImageError::from)?
                    .config,
            ),
            None => None,
        };
        let (p_hist, p_diffs): (&[History], &[Digest]) = match &parent {
            Some(c) => (&c.history, &c.rootfs.diff_ids),
            None => (&[], &[]),
        };
        let want = p_hist.len() + st.pending.len() + 1;
        for img in images {
            let t = &img.config;
            if t.history.len() < want
                || !t.rootfs.diff_ids.starts_with(p_diffs)
                || !p_hist.iter().zip(&t.history).all(|(a, b)| same_step(a, b))
                || !st
                    .pending
                    .iter()
                    .zip(&t.history[p_hist.len()..])
                    .all(|(a, b)| same_step(a, b))
            {
                continue;
            }
            let step = &t.history[want - 1];
            if step.created_by.as_deref() != Some(created_by) {
                continue;
            }
            let layer = (!step.empty_layer).then(|| layer_index(&t.history, want - 1));
            if layer.is_some_and(|i| i != p_diffs.len() || i >= t.rootfs.diff_ids.len()) {
                continue;
            }
            let id = self
                .store
                .build_step_reuse(
                    st.image.as_ref(),
                    &img.id,
                    layer,
                    &st.config,
                    t.history[p_hist.len()..want].to_vec(),
                )
                .map_err(ImageError::from)?;
            self.cache_put(&st.key, &id)?;
            st.image = Some(id);
            st.pending.clear();
            return Ok(true);
        }
        Ok(false)
    }
}
