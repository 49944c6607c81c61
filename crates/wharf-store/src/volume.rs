//! Named volumes: `volumes/<name>/_data` plus `volumes/<name>/volume.json`. A volume is built
//! in `ingest/` and renamed into place, so a listed volume is always complete.
//! Must not: delete a volume a container record mounts.

use crate::error::StoreError;
use crate::lock::Lock;
use crate::util::{
    now_rfc3339, random_hex, random_suffix, read_json, remove_tree_if_exists, write_json_atomic,
};
use crate::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use wharf_types::container::MountKind;

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// `.../volumes/<name>/_data`: what gets bind-mounted.
    pub mountpoint: PathBuf,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// Created for a container's `-v /path` (docker's anonymous volume): `rm -v` and `--rm`
    /// remove it with the container. A named volume is never anonymous, whatever its name.
    pub anonymous: bool,
}

#[derive(Serialize, Deserialize)]
struct VolumeFile {
    name: String,
    created: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(name: &str) -> bool {
    wharf_types::id::validate_name(name, 255)
}

impl Store {
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes.join(name)
    }

    fn load_volume(&self, name: &str) -> Result<Option<Volume>, StoreError> {
        let dir = self.volume_dir(name);
        Ok(
            read_json::<VolumeFile>(&dir.join("volume.json"))?.map(|f| Volume {
                name: f.name,
                mountpoint: dir.join("_data"),
                created: f.created,
                labels: f.labels,
                anonymous: f.anonymous,
            }),
        )
    }

    /// Creates a volume (random 64-hex name if `None`); returns the existing one if the name
    /// is taken, as docker does.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, StoreError> {
        self.create_volume_as(name, labels, false).map(|(v, _)| v)
    }

    /// Creates an anonymous volume: a random 64-hex name, recorded as anonymous, with docker
    /// 25's `com.docker.volume.anonymous` label (shown only: the record decides).
    pub fn create_anonymous_volume(&self) -> Result<Volume, StoreError> {
        self.create_volume_as(None, anonymous_labels(), true)
            .map(|(v, _)| v)
    }

    /// Like [`Store::create_volume`] (or [`Store::create_anonymous_volume`] when `anonymous`,
    /// which ignores `name` and `labels`), and says whether this call made the volume (`false`:
    /// the name was taken and the existing volume is returned), decided under the metadata
    /// lock so that two creators never both see `true`.
    pub fn create_volume_reporting(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool), StoreError> {
        if anonymous {
            self.create_volume_as(None, anonymous_labels(), true)
        } else {
            self.create_volume_as(name, labels, false)
        }
    }

    fn create_volume_as(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool), StoreError> {
        let name = match name {
            Some(n) if valid_volume_name(n) => n.to_string(),
            Some(n) => return Err(StoreError::InvalidVolumeName(n.to_string())),
            None => random_hex()?,
        };
        let _meta = Lock::exclusive(&self.meta_lock)?;
        if let Some(v) = self.load_volume(&name)? {
            return Ok((v, false));
        }
        let tmp = self.ingest.join(format!("vol-{}", random_suffix()?));
        let res = (|| {
            let mut b = std::fs::DirBuilder::new();
            b.mode(0o755);
            b.create(&tmp)
                .map_err(StoreError::io("creating volume", &tmp))?;
            b.create(tmp.join("_data"))
                .map_err(StoreError::io("creating volume", &tmp))?;
            let f = VolumeFile {
                name: name.clone(),
                created: now_rfc3339(),
                labels,
                anonymous,
            };
            write_json_atomic(&tmp.join("volume.json"), "volume", &f)?;
            let dest = self.volume_dir(&name);
            std::fs::rename(&tmp, &dest).map_err(StoreError::io("creating volume", &dest))?;
            crate::util::fsync_dir(&self.volumes)
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.load_volume(&name)?
            .map(|v| (v, true))
            .ok_or(StoreError::VolumeNotFound(name))
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>, StoreError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.volumes) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io("listing", &self.volumes)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(StoreError::io("listing", &self.volumes))?;
            if let Some(n) = ent.file_name().to_str().filter(|n| valid_volume_name(n)) {
                if let Some(v) = self.load_volume(n)? {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn volume(&self, name: &str) -> Result<Volume, StoreError> {
        if !valid_volume_name(name) {
            return Err(StoreError::VolumeNotFound(name.to_string()));
        }
        self.load_volume(name)?
            .ok_or_else(|| StoreError::VolumeNotFound(name.to_string()))
    }

    /// Removes a volume and its data. `Conflict` if a container record mounts it (even with
    /// `force`, like docker); `force` only makes a missing volume not an error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), StoreError> {
        self.remove_volume_reporting(name, force).map(|_| ())
    }

    /// Like [`Store::remove_volume`], and says whether this call removed it (`false`: it was
    /// missing and `force` was given).
    pub fn remove_volume_reporting(&self, name: &str, force: bool) -> Result<bool, StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        if !valid_volume_name(name) || self.load_volume(name)?.is_none() {
            return if force {
                Ok(false)
            } else {
                Err(StoreError::VolumeNotFound(name.to_string()))
            };
        }
        let users: Vec<String> = self
            .containers()?
            .into_iter()
            .filter(|c| {
                c.host_config
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|c| c.id.to_string())
            .collect();
        if !users.is_empty() {
            return Err(StoreError::VolumeInUse {
                name: name.to_string(),
                ids: users.join(", "),
            });
        }
        let dir = self.volume_dir(name);
        let doomed = self.ingest.join(format!("del-{}", random_suffix()?));
        std::fs::rename(&dir, &doomed).map_err(StoreError::io("removing volume", &dir))?;
        remove_tree_if_exists(&doomed)?;
        Ok(true)
    }
}

/// docker 25's label on anonymous volumes.
fn anonymous_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("com.docker.volume.anonymous".to_string(), String::new())])
}
