//! Container records (`meta/containers/<id>.json`, written once at create time — invariant 4),
//! the name index (`meta/names/<name>` → id, created with `O_EXCL` so a name is claimed
//! atomically), per-container directories (`containers/<id>/{upper,work,merged}`) and the
//! separately rewritten runtime state (`containers/<id>/state.json`).
//! Must not: mount anything, or delete a directory while a rootfs is mounted on `merged`.

use crate::error::StoreError;
use crate::lock::Lock;
use crate::util::{
    self, mkdir_p, random_suffix, read_capped, read_json, remove_file_if_exists, write_json_atomic,
};
use crate::Store;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wharf_types::container::{ContainerRecord, NetworkingConfig};
use wharf_types::id::validate_container_name;
use wharf_types::ContainerId;

/// Creates the name claim `path` holding `id`, failing with `AlreadyExists` if the name is
/// taken; a claim whose write failed is removed again. Not fsynced (see `claim_name`).
fn write_claim(path: &Path, id: &ContainerId) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(id.as_str().as_bytes()).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Name prefix of a container directory being deleted (see `remove_container`).
const TRASH_PREFIX: &str = ".removing-";

/// Where a container's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    pub dir: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl Store {
    fn record_path(&self, id: &ContainerId) -> PathBuf {
        self.containers_meta.join(format!("{id}.json"))
    }

    fn name_path(&self, name: &str) -> PathBuf {
        self.names.join(name)
    }

    pub fn container_paths(&self, id: &ContainerId) -> ContainerPaths {
        let dir = self.containers_dir.join(id.as_str());
        ContainerPaths {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            dir,
        }
    }

    /// Records a new container: claims its name, creates its directories, writes the record
    /// once. The image must exist (checked under the lock `rmi` takes).
    pub fn create_container(&self, rec: &ContainerRecord) -> Result<ContainerPaths, StoreError> {
        if !validate_container_name(&rec.name) {
            return Err(StoreError::InvalidContainerName(rec.name.clone()));
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let idx = crate::index::Index::load(&self.images_json)?;
        if !idx.images.contains_key(rec.image.hex()) {
            return Err(StoreError::ImageNotFound(rec.image.to_string()));
        }
        let rpath = self.record_path(&rec.id);
        if rpath.exists() {
            return Err(StoreError::ContainerExists(rec.id.to_string()));
        }
        let npath = self.claim_name(&rec.name, &rec.id)?;
        let paths = self.container_paths(&rec.id);
        let res = (|| {
            let mut b = std::fs::DirBuilder::new();
            b.mode(0o711);
            b.create(&paths.dir)
                .map_err(StoreError::io("creating container directory", &paths.dir))?;
            b.mode(0o755);
            for p in [&paths.upper, &paths.work, &paths.merged] {
                b.create(p)
                    .map_err(StoreError::io("creating container directory", p))?;
            }
            // fsynced, file and directory (invariant 4): after a power cut the record is
            // whole or absent — a torn one would fail every listing — and a record that is
            // there has its claim on disk already (`claim_name`)
            write_json_atomic(&rpath, "container record", rec)
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&npath);
            let _ = std::fs::remove_file(&rpath);
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        Ok(paths)
    }

    /// Claims `name` for `id` (caller holds the meta lock): the claim file is created
    /// exclusively (`O_EXCL`: fails atomically if the name is taken) holding the id. A claim
    /// whose container has no record is stale (a create is done under the meta lock we hold,
    /// so its creator was killed mid-way): it is dropped with that creation's directory, and
    /// claimed again.
    ///
    /// Durability: the names directory is fsynced before the caller writes the record, so a
    /// record that survives a power cut always has its claim (else the name could be given
    /// twice). The claim's content is not fsynced (one fsync fewer per create): a crash can
    /// leave it empty, and an unreadable claim is read as the record that has its name, if
    /// any (`claim_holder`), so it neither blocks the name nor hides its container.
    fn claim_name(&self, name: &str, id: &ContainerId) -> Result<PathBuf, StoreError> {
        let npath = self.name_path(name);
        let mut made = write_claim(&npath, id);
        if made
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::AlreadyExists)
            && self.drop_stale_claim(&npath)?
        {
            made = write_claim(&npath, id);
        }
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = self
                    .claim_holder(&npath)?
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                return Err(StoreError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                });
            }
            Err(e) => return Err(StoreError::io("claiming container name", &npath)(e)),
        }
        if let Err(e) = util::fsync_dir(&self.names) {
            let _ = std::fs::remove_file(&npath);
            return Err(e);
        }
        Ok(npath)
    }

    /// The container a name claim belongs to: the id it holds, or — for a claim a crash left
    /// empty or torn — the container whose record has that name; `None` for no claim, or an
    /// unreadable one that no record names.
    fn claim_holder(&self, npath: &Path) -> Result<Option<ContainerId>, StoreError> {
        let Some(b) = read_capped(npath, 128)? else {
            return Ok(None);
        };
        if let Ok(id) = String::from_utf8_lossy(&b).parse::<ContainerId>() {
            return Ok(Some(id));
        }
        let Some(name) = npath.file_name().and_then(|n| n.to_str()) else {
            return Ok(None);
        };
        Ok(self
            .containers()?
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| r.id))
    }

    /// See [`Store::claim_name`]; true if the claim at `npath` was stale and is gone.
    fn drop_stale_claim(&self, npath: &Path) -> Result<bool, StoreError> {
        let holder = match self.claim_holder(npath)? {
            Some(h) => h,
            // a claim nothing stands behind (a crash emptied it; no record has its name)
            None if npath.exists() => {
                std::fs::remove_file(npath)
                    .map_err(StoreError::io("removing stale container name", npath))?;
                return Ok(true);
            }
            None => return Ok(false),
        };
        if self.record_path(&holder).exists() {
            return Ok(false);
        }
        let paths = self.container_paths(&holder);
        // never recurse into a mounted rootfs (nothing mounts a container without a record)
        match std::fs::remove_dir(&paths.merged) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(false),
            _ => {}
        }
        let _ = std::fs::remove_dir_all(&paths.dir);
        std::fs::remove_file(npath)
            .map_err(StoreError::io("removing stale container name", npath))?;
        Ok(true)
    }

    /// `rename`: moves the container's name. The name is identity, not configuration, so this
    /// is the one rewrite a record gets; the new name is claimed before the old one is freed.
    pub fn rename_container(&self, id: &ContainerId, new_name: &str) -> Result<(), StoreError> {
        if !validate_container_name(new_name) {
            return Err(StoreError::InvalidContainerName(new_name.to_string()));
        }
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut rec = self
            .record(id)?
            .ok_or_else(|| StoreError::ContainerNotFound(id.to_string()))?;
        if rec.name == new_name {
            return Err(StoreError::NameInUse {
                name: new_name.to_string(),
                id: id.to_string(),
            });
        }
        let new_path = self.claim_name(new_name, id)?;
        let old_path = self.name_path(&rec.name);
        rec.name = new_name.to_string();
        if let Err(e) = write_json_atomic(&self.record_path(id), "container record", &rec) {
            let _ = std::fs::remove_file(&new_path);
            return Err(e);
        }
        if self.claim_holder(&old_path)?.as_ref() == Some(id) {
            remove_file_if_exists(&old_path)?;
        }
        Ok(())
    }

    /// `network connect`/`disconnect`: replaces the record's networks (docker's
    /// `NetworkingConfig` and wharf's interface order) — with `rename`, the other rewrite a
    /// record gets: which networks a container is on is membership, changed by those two
    /// commands only. Compare-and-swap under the metadata lock: `Ok(false)` (nothing written)
    /// when the record no longer has `expected` (another connect/disconnect came first).
    pub fn set_container_networks(
        &self,
        id: &ContainerId,
        expected: &NetworkingConfig,
        new: &NetworkingConfig,
    ) -> Result<bool, StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut rec = self
            .record(id)?
            .ok_or_else(|| StoreError::ContainerNotFound(id.to_string()))?;
        if rec.networking_config != *expected {
            return Ok(false);
        }
        rec.networking_config = new.clone();
        write_json_atomic(&self.record_path(id), "container record", &rec)?;
        Ok(true)
    }

    /// `update`: replaces the record's `HostConfig` (resource limits and restart policy, the
    /// only fields `update` changes) — the third rewrite a record gets. Compare-and-swap
    /// under the metadata lock: `Ok(false)` (nothing written) when the record no longer has
    /// `expected` (another update came first).
    pub fn set_container_host_config(
        &self,
        id: &ContainerId,
        expected: &wharf_types::container::HostConfig,
        new: &wharf_types::container::HostConfig,
    ) -> Result<bool, StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut rec = self
            .record(id)?
            .ok_or_else(|| StoreError::ContainerNotFound(id.to_string()))?;
        if rec.host_config != *expected {
            return Ok(false);
        }
        rec.host_config = new.clone();
        write_json_atomic(&self.record_path(id), "container record", &rec)?;
        Ok(true)
    }

    /// All container records, oldest first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.containers_meta) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io("listing", &self.containers_meta)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(StoreError::io("listing", &self.containers_meta))?;
            let name = ent.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if stem.parse::<ContainerId>().is_err() {
                continue;
            }
            if let Some(r) = read_json::<ContainerRecord>(&ent.path())? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn record(&self, id: &ContainerId) -> Result<Option<ContainerRecord>, StoreError> {
        read_json(&self.record_path(id))
    }

    /// By full id, exact name (with or without docker's leading `/`), or unique id prefix.
    pub fn container(&self, name_or_id: &str) -> Result<ContainerRecord, StoreError> {
        let not_found = || StoreError::ContainerNotFound(name_or_id.to_string());
        if let Ok(id) = name_or_id.parse::<ContainerId>() {
            if let Some(r) = self.record(&id)? {
                return Ok(r);
            }
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if validate_container_name(name) {
            if let Some(id) = self.claim_holder(&self.name_path(name))? {
                if let Some(r) = self.record(&id)? {
                    return Ok(r);
                }
            }
        }
        let is_hex = !name_or_id.is_empty()
            && name_or_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hex {
            return Err(not_found());
        }
        let mut hits = self
            .containers()?
            .into_iter()
            .filter(|r| r.id.as_str().starts_with(name_or_id));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(r),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(name_or_id.to_string())),
            _ => Err(not_found()),
        }
    }

    /// Atomically replaces `containers/<id>/state.json`.
    pub fn write_container_state<T: Serialize>(
        &self,
        id: &ContainerId,
        state: &T,
    ) -> Result<(), StoreError> {
        let p = self.container_paths(id).dir.join("state.json");
        write_json_atomic(&p, "container state", state)
    }

    /// `Ok(None)` if no state was written (or the container is gone).
    pub fn read_container_state<T: DeserializeOwned>(
        &self,
        id: &ContainerId,
    ) -> Result<Option<T>, StoreError> {
        read_json(&self.container_paths(id).dir.join("state.json"))
    }

    /// Removes record, name and directory. Refuses while `merged` is a mount point; copes
    /// with any subset of the pieces missing (`ContainerNotFound` only if none exists).
    pub fn remove_container(&self, id: &ContainerId) -> Result<(), StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let paths = self.container_paths(id);
        let rec = self.record(id)?;
        let dir_exists = paths.dir.exists();
        if rec.is_none() && !dir_exists {
            return Err(StoreError::ContainerNotFound(id.to_string()));
        }
        // rmdir fails with EBUSY on a mount point: never recurse into a mounted rootfs.
        match std::fs::remove_dir(&paths.merged) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(StoreError::RootfsMounted(id.to_string()))
            }
            Err(e) => return Err(StoreError::io("removing", &paths.merged)(e)),
        }
        if let Some(r) = &rec {
            let npath = self.name_path(&r.name);
            if self.claim_holder(&npath)?.as_ref() == Some(id) {
                remove_file_if_exists(&npath)?;
            }
        }
        remove_file_if_exists(&self.record_path(id))?;
        // Rename first, then delete: a late writer (a foreground CLI recording the exit of a
        // container `rm -f` just killed) then fails with ENOENT instead of racing the removal.
        let trash = self
            .containers_dir
            .join(format!("{TRASH_PREFIX}{id}-{}", random_suffix()?));
        match std::fs::rename(&paths.dir, &trash) {
            Ok(()) => util::remove_tree_if_exists(&trash)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("removing", &paths.dir)(e)),
        }
        self.remove_container_trash()
    }

    /// What creates killed half-way left (the caller holds the metadata lock, under which a
    /// create runs entirely, so none is in progress): a container directory without a record,
    /// a record's temp file, a name claim's temp file or a claim whose container has no
    /// record. Also what [`Store::remove_container_trash`] removes.
    pub(crate) fn sweep_orphan_containers(&self) -> Result<(), StoreError> {
        self.remove_container_trash()?;
        for e in std::fs::read_dir(&self.containers_dir)
            .map_err(StoreError::io("reading", &self.containers_dir))?
            .flatten()
        {
            let Ok(id) = e.file_name().to_string_lossy().parse::<ContainerId>() else {
                continue;
            };
            if !self.record_path(&id).exists() {
                let paths = self.container_paths(&id);
                // never recurse into a mounted rootfs (nothing mounts a container without a
                // record, but a mount point is not ours to delete)
                if let Err(e) = std::fs::remove_dir(&paths.merged) {
                    if e.raw_os_error() == Some(libc::EBUSY) {
                        continue;
                    }
                }
                util::remove_tree_if_exists(&paths.dir)?;
            }
        }
        for dir in [&self.containers_meta, &self.names] {
            for e in std::fs::read_dir(dir)
                .map_err(StoreError::io("reading", dir))?
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.contains(".tmp-") {
                    remove_file_if_exists(&e.path())?;
                } else if dir == &self.names {
                    self.drop_stale_claim(&e.path())?;
                }
            }
        }
        Ok(())
    }

    /// Deletes what removals killed half-way left (`containers/.removing-*`). A removal runs
    /// entirely under the metadata lock, which the caller holds: any such directory now
    /// belongs to a remover that died.
    pub(crate) fn remove_container_trash(&self) -> Result<(), StoreError> {
        for e in std::fs::read_dir(&self.containers_dir)
            .map_err(StoreError::io("reading", &self.containers_dir))?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(TRASH_PREFIX) {
                util::remove_tree_if_exists(&e.path())?;
            }
        }
        Ok(())
    }

    pub(crate) fn ensure_container_dirs(&self) -> Result<(), StoreError> {
        mkdir_p(&self.containers_meta)?;
        mkdir_p(&self.names)?;
        mkdir_p(&self.containers_dir)
    }
}
