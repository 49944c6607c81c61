//! The volume service: create, list, inspect, remove and prune local volumes, with docker's
//! rules (only the `local` driver; `rm` refuses a volume a container mounts; `prune` removes
//! unused anonymous volumes, or every unused volume with `all`), and the volume `create` /
//! `destroy` events for every volume the engine makes or removes (named, anonymous, by
//! `run -v /x`, `--rm`, `rm -v`, `volume rm` and `volume prune`).
//!
//! Must not: parse argv or print; remove a volume a container record mounts (the store
//! refuses it under its metadata lock); follow a symlink inside a volume when sizing it.

use crate::refusal::ValidationError;
use crate::{Engine, EngineError};
use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use wharf_types::container::{ContainerRecord, MountKind};
use wharf_types::error::{ErrorKind, HasKind};

pub use wharf_store::Volume;

/// The one volume driver wharf has.
pub const LOCAL_DRIVER: &str = "local";

/// Sizing a volume for `prune` stops after this many entries (the size is then a lower
/// bound): a container can fill a volume with any number of files.
const MAX_SIZE_ENTRIES: usize = 1_000_000;

/// `volume create`.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreateRequest {
    /// `None`: a random 64-hex name.
    pub name: Option<String>,
    /// `None` means `local`.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `volume ls`.
#[derive(Debug, Clone, Default)]
pub struct VolumeListRequest {
    /// docker's `--filter`: `dangling=true|false` (mounted by no container), `name=PART`
    /// (name contains it), `driver=NAME`, and the `label`/`label!` filters of
    /// [`VolumePruneRequest`]; values of `name` and `driver` are alternatives, everything
    /// else must hold.
    pub filters: Vec<String>,
}

/// `volume prune`.
#[derive(Debug, Clone, Default)]
pub struct VolumePruneRequest {
    /// docker's `-a`: named volumes too (otherwise anonymous ones only).
    pub all: bool,
    /// docker's `--filter`: `label=KEY`, `label=KEY=VALUE`, `label!=KEY`, `label!=KEY=VALUE`;
    /// all must hold.
    pub filters: Vec<String>,
}

/// What `volume prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumePruneReport {
    /// Names, in the order removed.
    pub deleted: Vec<String>,
    /// Bytes of the removed volumes' files (hard links counted once).
    pub reclaimed: u64,
}

/// docker's `--label` list (`KEY=VALUE`, or `KEY` for an empty value) as a map; a later
/// duplicate wins.
pub fn labels_from_list(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// docker's `volume inspect` object.
pub fn inspect_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": LOCAL_DRIVER,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

/// One parsed `label` / `label!` filter (volumes and networks).
pub(crate) struct LabelFilter {
    negate: bool,
    key: String,
    value: Option<String>,
}

impl LabelFilter {
    pub(crate) fn parse(f: &str) -> Result<LabelFilter, EngineError> {
        let (negate, rest) = if let Some(r) = f.strip_prefix("label!=") {
            (true, r)
        } else if let Some(r) = f.strip_prefix("label=") {
            (false, r)
        } else {
            let key = f.split_once('=').map_or(f, |(k, _)| k);
            return Err(if f.contains('=') {
                ValidationError::FilterName {
                    name: key.trim_end_matches('!').to_string(),
                }
            } else {
                ValidationError::FilterFormat {
                    filter: f.to_string(),
                }
            }
            .into());
        };
        if rest.is_empty() {
            return Err(ValidationError::FilterFormat {
                filter: f.to_string(),
            }
            .into());
        }
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rest.to_string(), None),
        };
        Ok(LabelFilter { negate, key, value })
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = match (&self.value, labels.get(&self.key)) {
            (None, found) => found.is_some(),
            (Some(want), found) => found == Some(want),
        };
        has != self.negate
    }
}

/// A parsed [`VolumeListRequest`].
#[derive(Default)]
struct ListFilter {
    dangling: Option<bool>,
    names: Vec<String>,
    drivers: Vec<String>,
    labels: Vec<LabelFilter>,
}

impl ListFilter {
    fn parse(filters: &[String]) -> Result<ListFilter, EngineError> {
        let mut out = ListFilter::default();
        for f in filters {
            if f.starts_with("label=") || f.starts_with("label!=") {
                out.labels.push(LabelFilter::parse(f)?);
                continue;
            }
            let Some((k, v)) = f.split_once('=') else {
                return Err(ValidationError::FilterFormat { filter: f.clone() }.into());
            };
            match k {
                "dangling" => {
                    out.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ValidationError::FilterValue {
                                name: "dangling".into(),
                                value: v.to_string(),
                            }
                            .into())
                        }
                    })
                }
                "name" => out.names.push(v.to_string()),
                "driver" => out.drivers.push(v.to_string()),
                _ => {
                    return Err(ValidationError::FilterName {
                        name: k.to_string(),
                    }
                    .into())
                }
            }
        }
        Ok(out)
    }

    fn matches(&self, v: &Volume, used: &HashSet<String>) -> bool {
        self.dangling.is_none_or(|d| d != used.contains(&v.name))
            && (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && (self.drivers.is_empty() || self.drivers.iter().any(|d| d == LOCAL_DRIVER))
            && self.labels.iter().all(|l| l.matches(&v.labels))
    }
}

pub(crate) fn tree_size(dir: &Path) -> u64 {
    wharf_store::tree_size(dir, MAX_SIZE_ENTRIES)
}

/// `<run-root>/volumes.lock`: held shared by a create from making its anonymous volumes until
/// its record is written, exclusively by `prune`, so a prune never takes a volume whose
/// container is being created.
const VOLUMES_LOCK: &str = "volumes.lock";

/// A held [`VOLUMES_LOCK`] (released on drop).
pub(crate) struct VolumesLock {
    _lock: Flock<std::fs::File>,
}

impl Engine {
    /// Takes [`VOLUMES_LOCK`], waiting for a prune (`exclusive`: for every create in flight).
    pub(crate) fn lock_volumes(&self, exclusive: bool) -> Result<VolumesLock, EngineError> {
        let dir = &self.opts.run_root;
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
        let path = dir.join(VOLUMES_LOCK);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io("open", &path, e))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let lock =
            Flock::lock(f, arg).map_err(|(_, e)| EngineError::io("lock", &path, e.into()))?;
        Ok(VolumesLock { _lock: lock })
    }

    /// A volume `create` / `destroy` event in docker's shape.
    fn emit_volume(&self, action: &str, name: &str) {
        self.emit(
            "volume",
            action,
            name,
            &[("driver", LOCAL_DRIVER.to_string())],
        );
    }

    /// `volume create`: only the `local` driver; an existing name returns that volume, as
    /// docker does (and no event).
    pub fn create_volume(&self, req: &VolumeCreateRequest) -> Result<Volume, EngineError> {
        if let Some(d) = req.driver.as_deref().filter(|d| *d != LOCAL_DRIVER) {
            return Err(ValidationError::VolumeDriver {
                driver: d.to_string(),
            }
            .into());
        }
        let (v, created) =
            self.store
                .create_volume_reporting(req.name.as_deref(), req.labels.clone(), false)?;
        if created {
            self.emit_volume("create", &v.name);
        }
        Ok(v)
    }

    /// A new anonymous volume for a container's `-v /path`.
    pub(crate) fn create_anonymous_volume(&self) -> Result<Volume, EngineError> {
        let (v, _) = self
            .store
            .create_volume_reporting(None, BTreeMap::new(), true)?;
        self.emit_volume("create", &v.name);
        Ok(v)
    }

    /// The volume a container's `-v NAME:/path` names, created if missing.
    pub(crate) fn volume_for_mount(&self, name: &str) -> Result<Volume, EngineError> {
        match self.store.volume(name) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == ErrorKind::NotFound => self.create_volume(&VolumeCreateRequest {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>, EngineError> {
        Ok(self.store.volumes()?)
    }

    /// `volume ls --filter ...`: the volumes that pass every filter, by name.
    pub fn list_volumes(&self, req: &VolumeListRequest) -> Result<Vec<Volume>, EngineError> {
        let filter = ListFilter::parse(&req.filters)?;
        let used = if filter.dangling.is_some() {
            self.volumes_in_use()?
        } else {
            HashSet::new()
        };
        Ok(self
            .store
            .volumes()?
            .into_iter()
            .filter(|v| filter.matches(v, &used))
            .collect())
    }

    /// Names of the volumes some container record mounts.
    fn volumes_in_use(&self) -> Result<HashSet<String>, EngineError> {
        Ok(self
            .store
            .containers()?
            .into_iter()
            .flat_map(|c| c.host_config.mounts)
            .filter(|m| m.kind == MountKind::Volume)
            .map(|m| m.source)
            .collect())
    }

    /// One volume (`volume inspect`, `inspect --type volume`).
    pub fn volume(&self, name: &str) -> Result<Volume, EngineError> {
        Ok(self.store.volume(name)?)
    }

    /// `volume rm [-f]`: refused while a container mounts it (even forced, as docker);
    /// `force` makes a missing volume not an error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), EngineError> {
        if self.store.remove_volume_reporting(name, force)? {
            self.emit_volume("destroy", name);
        }
        Ok(())
    }

    /// Removes the anonymous volumes `rec` mounts (`rm -v`, `--rm`); one another container
    /// still mounts stays (the store refuses). Best effort.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for m in &rec.host_config.mounts {
            if m.kind == MountKind::Volume
                && self.store.volume(&m.source).is_ok_and(|v| v.anonymous)
            {
                let _ = self.remove_volume(&m.source, false);
            }
        }
    }

    /// `volume prune`: removes the volumes no container record mounts — anonymous ones only
    /// unless `all` — that pass the label filters. A volume that a container starts using
    /// meanwhile stays (the store checks again under its lock).
    pub fn prune_volumes(
        &self,
        req: &VolumePruneRequest,
    ) -> Result<VolumePruneReport, EngineError> {
        let filters = req
            .filters
            .iter()
            .map(|f| LabelFilter::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        let _creates_done = self.lock_volumes(true)?;
        let used = self.volumes_in_use()?;
        let mut report = VolumePruneReport::default();
        for v in self.store.volumes()? {
            if (!req.all && !v.anonymous)
                || used.contains(&v.name)
                || !filters.iter().all(|f| f.matches(&v.labels))
            {
                continue;
            }
            let size = tree_size(&v.mountpoint);
            match self.store.remove_volume_reporting(&v.name, true) {
                Ok(true) => {
                    self.emit_volume("destroy", &v.name);
                    report.reclaimed = report.reclaimed.saturating_add(size);
                    report.deleted.push(v.name);
                }
                // removed by someone else meanwhile
                Ok(false) => {}
                // a container mounts it now
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn label_filters() {
        let l = labels_from_list(&["a=1".into(), "b".into(), "a=2".into()]);
        assert_eq!(l.get("a").map(String::as_str), Some("2"));
        assert_eq!(l.get("b").map(String::as_str), Some(""));
        let m = |f: &str| LabelFilter::parse(f).unwrap().matches(&l);
        assert!(m("label=a"));
        assert!(m("label=a=2"));
        assert!(!m("label=a=1"));
        assert!(!m("label=c"));
        assert!(m("label!=c"));
        assert!(!m("label!=a"));
        assert!(m("label!=a=1"));
        for bad in ["label=", "dangling=true", "nokey"] {
            let e = LabelFilter::parse(bad).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(
            LabelFilter::parse("until=1h").err().unwrap().to_string(),
            "invalid filter 'until'"
        );
    }

    #[test]
    fn list_filters() {
        let v = |name: &str, labels: &[(&str, &str)]| Volume {
            name: name.into(),
            mountpoint: "/x".into(),
            created: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            anonymous: false,
        };
        let used = HashSet::from(["busy".to_string()]);
        let busy = v("busy", &[("a", "1")]);
        let idle = v("idle-data", &[]);
        let m = |fs: &[&str], vol: &Volume| {
            let f: Vec<String> = fs.iter().map(|s| s.to_string()).collect();
            ListFilter::parse(&f).unwrap().matches(vol, &used)
        };
        assert!(m(&[], &busy));
        assert!(m(&["dangling=true"], &idle) && !m(&["dangling=1"], &busy));
        assert!(m(&["dangling=false"], &busy) && !m(&["dangling=0"], &idle));
        assert!(m(&["name=data"], &idle) && !m(&["name=data"], &busy));
        assert!(m(&["name=nope", "name=bus"], &busy));
        assert!(m(&["driver=local"], &busy) && !m(&["driver=nfs"], &busy));
        assert!(m(&["label=a=1", "name=bu"], &busy) && !m(&["label=a", "name=idle"], &busy));
        for (bad, msg) in [
            ("dangling=maybe", "invalid filter 'dangling=maybe'"),
            ("size=1", "invalid filter 'size'"),
            ("nokey", "bad format of filter (expected name=value): nokey"),
        ] {
            let e = ListFilter::parse(&[bad.to_string()]).err().unwrap();
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn tree_size_counts_files_once_and_does_not_follow_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::write(d.path().join("sub/b"), [0u8; 24]).unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("sub/a2")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("pw")).unwrap();
        assert_eq!(tree_size(d.path()), 1024);
        assert_eq!(tree_size(&d.path().join("missing")), 0);
    }
}
