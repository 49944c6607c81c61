//! Reclaiming space as docker does: `image prune [-a]`, `container prune`, `system prune
//! [-a] [--volumes]` (containers, then networks, then images, then volumes, each with the
//! filters docker allows for it), and `system df [-v]` (what the store holds and what a
//! prune could give back).
//!
//! Must not: print, prompt (the front end asks for confirmation), remove an image a container
//! record uses (checked again under the store's lock: a container created meanwhile keeps its
//! image), or remove a container that runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use wharf_types::{ContainerId, Digest};

use crate::error::EngineError;
use crate::refusal::ValidationError;
use crate::state::Status;
use crate::volumes::{LabelFilter, VolumePruneReport, VolumePruneRequest};
use crate::Engine;
use wharf_types::error::HasKind;

pub use wharf_store::RemoveEvent;

/// docker's prune filters: `until=TIMESTAMP|DURATION` (made before), `label=K[=V]`,
/// `label!=K[=V]`; all must hold (also `network prune`'s).
#[derive(Default)]
pub(crate) struct PruneFilters {
    until: Option<SystemTime>,
    labels: Vec<LabelFilter>,
}

impl PruneFilters {
    pub(crate) fn parse(filters: &[String]) -> Result<PruneFilters, EngineError> {
        let mut out = PruneFilters::default();
        for f in filters {
            if let Some(v) = f.strip_prefix("until=") {
                let t = wharf_logs::parse_timestamp(v, SystemTime::now()).map_err(|error| {
                    ValidationError::EventsTime {
                        flag: "until".into(),
                        error,
                    }
                })?;
                out.until = Some(t);
            } else {
                out.labels.push(LabelFilter::parse(f)?);
            }
        }
        Ok(out)
    }

    /// Whether an object made at `created` (RFC 3339) with `labels` passes.
    pub(crate) fn matches(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        if let Some(t) = self.until {
            let made = wharf_logs::parse_timestamp(created, t);
            if !made.is_ok_and(|c| c < t) {
                return false;
            }
        }
        self.labels.iter().all(|l| l.matches(labels))
    }
}

/// `image prune`.
#[derive(Debug, Clone, Default)]
pub struct ImagePruneRequest {
    /// `-a`: every image no container uses (otherwise dangling, i.e. untagged, ones only).
    pub all: bool,
    pub filters: Vec<String>,
}

impl ImagePruneRequest {
    /// The Engine API's form of the request: `-a` travels as the filter `dangling=false`
    /// (`dangling=true` is the default); the other filters are kept.
    pub fn from_api_filters(filters: Vec<String>) -> Result<ImagePruneRequest, EngineError> {
        let mut req = ImagePruneRequest::default();
        for f in filters {
            match f.strip_prefix("dangling=") {
                Some("true" | "1") => req.all = false,
                Some("false" | "0") => req.all = true,
                Some(v) => {
                    return Err(ValidationError::FilterValue {
                        name: "dangling".into(),
                        value: v.to_string(),
                    }
                    .into())
                }
                None => req.filters.push(f),
            }
        }
        Ok(req)
    }
}

/// What `image prune` removed, in docker's order (`untagged: …`, `deleted: sha256:…`).
#[derive(Debug, Clone, Default)]
pub struct ImagePruneReport {
    pub events: Vec<RemoveEvent>,
    /// Bytes the store freed (blobs no image references any more).
    pub reclaimed: u64,
}

/// `container prune`.
#[derive(Debug, Clone, Default)]
pub struct ContainerPruneRequest {
    pub filters: Vec<String>,
}

/// What `container prune` removed.
#[derive(Debug, Clone, Default)]
pub struct ContainerPruneReport {
    pub deleted: Vec<ContainerId>,
    /// Bytes of their writable layers.
    pub reclaimed: u64,
}

/// `system prune`.
#[derive(Debug, Clone, Default)]
pub struct SystemPruneRequest {
    /// `-a`: unused images, not only dangling ones.
    pub all: bool,
    /// `--volumes`: anonymous volumes no container uses.
    pub volumes: bool,
    pub filters: Vec<String>,
}

/// What `system prune` removed, per kind.
#[derive(Debug, Clone, Default)]
pub struct SystemPruneReport {
    pub containers: ContainerPruneReport,
    pub networks: Vec<String>,
    pub volumes: Option<VolumePruneReport>,
    pub images: ImagePruneReport,
}

impl SystemPruneReport {
    pub fn reclaimed(&self) -> u64 {
        self.containers
            .reclaimed
            .saturating_add(self.images.reclaimed)
            .saturating_add(self.volumes.as_ref().map_or(0, |v| v.reclaimed))
    }
}

/// One image in `system df`.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub created: String,
    pub size: u64,
    /// Bytes of its layers that other images share.
    pub shared_size: u64,
    pub containers: usize,
}

/// One container in `system df`.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub id: ContainerId,
    pub name: String,
    pub image: String,
    pub command: String,
    pub created: String,
    pub status: Status,
    /// Its writable layer.
    pub size_rw: u64,
    pub local_volumes: usize,
}

/// One volume in `system df`.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    pub links: usize,
    pub size: u64,
}

/// `system df`: everything the store holds and what is in use.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    /// Bytes of all images, shared layers once.
    pub images_size: u64,
}

impl DiskUsage {
    /// docker's RECLAIMABLE for images: all the bytes, less what each used image holds
    /// beyond its shared layers (docker's formula).
    pub fn images_reclaimable(&self) -> u64 {
        let used: u64 = self
            .images
            .iter()
            .filter(|i| i.containers > 0)
            .map(|i| i.size.saturating_sub(i.shared_size))
            .sum();
        self.images_size.saturating_sub(used)
    }
}

impl Engine {
    /// `image prune [-a] [--filter]`: dangling (untagged) images, or with `all` every image no
    /// container uses, that pass the filters; then one GC of the blobs nothing references.
    pub fn prune_images(&self, req: &ImagePruneRequest) -> Result<ImagePruneReport, EngineError> {
        let filters = PruneFilters::parse(&req.filters)?;
        let used: HashSet<Digest> = self
            .store
            .containers()?
            .into_iter()
            .map(|c| c.image)
            .collect();
        let mut report = ImagePruneReport::default();
        for img in self.store.images()? {
            if used.contains(&img.id) || (!req.all && !img.repo_tags.is_empty()) {
                continue;
            }
            if !filters.labels.is_empty() || filters.until.is_some() {
                let labels = self
                    .store
                    .resolve_image(&img.id.to_string())
                    .map(|i| i.config.config.labels.clone().unwrap_or_default())
                    .unwrap_or_default();
                if !filters.matches(&img.created, &labels) {
                    continue;
                }
            }
            if let Some(events) = self.store.remove_unused_image(&img.id)? {
                for e in &events {
                    match e {
                        RemoveEvent::Untagged(n) => self.emit("image", "untag", n, &[]),
                        RemoveEvent::Deleted(d) => {
                            self.emit("image", "delete", &d.to_string(), &[])
                        }
                    }
                }
                report.events.extend(events);
            }
        }
        if !report.events.is_empty() {
            report.reclaimed = self.store.gc()?.bytes_freed;
            self.emit(
                "image",
                "prune",
                "",
                &[("reclaimed", report.reclaimed.to_string())],
            );
        }
        Ok(report)
    }

    /// `container prune [--filter]`: every container that does not run (created, exited,
    /// dead) and passes the filters; the bytes of their writable layers.
    pub fn prune_containers_filtered(
        &self,
        req: &ContainerPruneRequest,
    ) -> Result<ContainerPruneReport, EngineError> {
        let filters = PruneFilters::parse(&req.filters)?;
        let mut report = ContainerPruneReport::default();
        for info in self.containers(true)? {
            if !matches!(
                info.state.status(),
                Status::Exited | Status::Created | Status::Dead
            ) || !filters.matches(&info.record.created, &info.record.config.labels)
            {
                continue;
            }
            let size = tree_size(&self.store.container_paths(&info.record.id).upper);
            match self.remove_container(info.record.id.as_str(), false, false) {
                Ok(id) => {
                    report.reclaimed = report.reclaimed.saturating_add(size);
                    report.deleted.push(id);
                }
                // started or removed meanwhile
                Err(e)
                    if matches!(
                        e.kind(),
                        wharf_types::ErrorKind::Conflict | wharf_types::ErrorKind::NotFound
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// `system prune [-a] [--volumes] [--filter]`: containers, networks, volumes (with
    /// `volumes`: anonymous ones, label filters only), then images — docker's order, so what
    /// the removed containers held goes too.
    pub fn prune_system(&self, req: &SystemPruneRequest) -> Result<SystemPruneReport, EngineError> {
        // every filter is checked before anything is removed
        let parsed = PruneFilters::parse(&req.filters)?;
        if req.volumes && parsed.until.is_some() {
            return Err(ValidationError::FilterValue {
                name: "until".into(),
                value: "not supported with --volumes (volumes have no creation filter)".into(),
            }
            .into());
        }
        let containers = self.prune_containers_filtered(&ContainerPruneRequest {
            filters: req.filters.clone(),
        })?;
        let networks = self.prune_networks(&crate::networks::NetworkPruneRequest {
            filters: req.filters.clone(),
        })?;
        let volumes = if req.volumes {
            Some(self.prune_volumes(&VolumePruneRequest {
                all: false,
                filters: req.filters.clone(),
            })?)
        } else {
            None
        };
        let images = self.prune_images(&ImagePruneRequest {
            all: req.all,
            filters: req.filters.clone(),
        })?;
        Ok(SystemPruneReport {
            containers,
            networks,
            volumes,
            images,
        })
    }

    /// `system df`: images (shared layers once), containers' writable layers, volumes.
    pub fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        let records = self.containers(true)?;
        let mut users: HashMap<Digest, usize> = HashMap::new();
        for c in &records {
            *users.entry(c.record.image.clone()).or_default() += 1;
        }
        // each layer's size, and how many images have it
        let mut layer_refs: HashMap<Digest, (u64, usize)> = HashMap::new();
        let mut per_image: Vec<(wharf_store::ImageSummary, Vec<Digest>)> = Vec::new();
        for img in self.store.images()? {
            let layers = self.store.image_layer_sizes(&img.id).unwrap_or_default();
            for (d, size) in &layers {
                let e = layer_refs.entry(d.clone()).or_insert((*size, 0));
                e.1 += 1;
            }
            per_image.push((img, layers.into_iter().map(|(d, _)| d).collect()));
        }
        let mut out = DiskUsage {
            images_size: layer_refs.values().map(|(s, _)| *s).sum(),
            ..DiskUsage::default()
        };
        for (img, layers) in per_image {
            let shared_size = layers
                .iter()
                .filter_map(|d| layer_refs.get(d))
                .filter(|(_, n)| *n > 1)
                .map(|(s, _)| *s)
                .sum();
            out.images.push(ImageUsage {
                containers: users.get(&img.id).copied().unwrap_or(0),
                id: img.id,
                repo_tags: img.repo_tags,
                created: img.created,
                size: img.size,
                shared_size,
            });
        }
        let mut volume_links: HashMap<String, usize> = HashMap::new();
        for c in &records {
            let mut vols = 0;
            for m in &c.record.host_config.mounts {
                if m.kind == wharf_types::container::MountKind::Volume && !m.source.is_empty() {
                    *volume_links.entry(m.source.clone()).or_default() += 1;
                    vols += 1;
                }
            }
            let cmd = c
                .record
                .config
                .entrypoint
                .iter()
                .chain(c.record.config.cmd.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            out.containers.push(ContainerUsage {
                id: c.record.id.clone(),
                name: c.record.name.trim_start_matches('/').to_string(),
                image: c.record.config.image.clone(),
                command: cmd,
                created: c.record.created.clone(),
                status: c.state.status(),
                size_rw: tree_size(&self.store.container_paths(&c.record.id).upper),
                local_volumes: vols,
            });
        }
        for v in self.store.volumes()? {
            out.volumes.push(VolumeUsage {
                links: volume_links.get(&v.name).copied().unwrap_or(0),
                size: tree_size(&v.mountpoint),
                name: v.name,
            });
        }
        Ok(out)
    }
}

fn tree_size(dir: &Path) -> u64 {
    crate::volumes::tree_size(dir)
}
