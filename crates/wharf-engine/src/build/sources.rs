//! Where a build's inputs come from, and what the image records about them: the FROM images
//! (admin policy, then pulled through the engine's distribution service when missing or
//! with `--pull`), `--cache-from` images (docker's classic rule: a step is reused when a
//! cache image has the same parent chain and the same instruction next) and the provenance
//! labels (the Dockerfile's and the context's digests).
//!
//! Must not: print (pull progress goes to the build's sink as lines), or read outside the
//! context (the context digest walks it through `context::walk`).

use super::context::{self, Root};
use super::{BuildError, BuildProgress, BuildRequest, StageState};
use crate::distribution::PullPolicy;
use crate::images::ImageError;
use crate::Engine;
use sha2::{Digest as _, Sha256};
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

/// The context digest (see [`CONTEXT_LABEL`]).
pub(super) fn context_digest(root: &Root) -> Result<Digest, BuildError> {
    let mut h = Sha256::new();
    context::hash_source(root, Path::new(""), &mut h)?;
    Ok(Digest::from_hasher(h))
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
