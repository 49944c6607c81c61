//! A container's file system read back: `diff` (docker's change list), `commit` (its upper
//! dir appended to its image as a new layer, under the admin policy's image-name rule),
//! `export` (the merged file system as a tar) and the image `history` those commits grow.
//!
//! `commit` pauses a running container (the cgroup freezer, as docker does) only while its
//! upper dir is written to a temp tar next to it, then hands that tar to the store's
//! `commit_layer` (import's verified path). `export` mounts the container's layers
//! read-only — its upper dir as the topmost lower — in the private mount namespace of the
//! `cp` helper, running or not, so nothing is mounted on the host and volumes, binds and
//! /proc are not part of the tar (docker's export has the root file system only).
//!
//! Must not: parse argv, print, or mount in the host's namespace.

use crate::images::{apply_changes_to, ImageError};
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use serde_json::json;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use wharf_runtime::cgroup::Cgroup;
use wharf_store::layer::diff::{self, TreeKind};
use wharf_store::{CommitOptions, StoreError};
use wharf_types::oci::RunConfig;
use wharf_types::{Digest, ImageRef};

pub use wharf_store::layer::diff::{Change, ChangeKind};
pub use wharf_store::HistoryItem;

/// What wharf's init creates in a container's upper dir as mount points when the image lacks
/// them: docker keeps these in a separate init layer, so neither its `diff` nor its `commit`
/// shows them.
const INIT_PATHS: [&str; 6] = [
    "proc",
    "sys",
    "dev",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
];

/// [`INIT_PATHS`], plus `etc` when the image has none and the container's holds only the
/// files init made there (docker's init layer has it, so its diff does not show it).
fn init_paths(upper: &Path, lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = INIT_PATHS.iter().map(PathBuf::from).collect();
    let made_by_init = |n: &std::ffi::OsStr| {
        INIT_PATHS
            .iter()
            .any(|p| Path::new(p).strip_prefix("etc").ok() == Some(Path::new(n)))
    };
    let etc_below = lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join("etc")).is_ok());
    let only_init = std::fs::read_dir(upper.join("etc"))
        .map(|rd| rd.flatten().all(|e| made_by_init(&e.file_name())))
        .unwrap_or(false);
    if !etc_below && only_init {
        v.push(PathBuf::from("etc"));
    }
    v
}

/// `commit [-a author] [-m msg] [-c change]... [-p] CONTAINER [REPO[:TAG]]`.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    pub reference: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// `--change` instructions (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER VOLUME WORKDIR
    /// STOPSIGNAL), applied over the container's config.
    pub changes: Vec<String>,
    /// Freeze a running container while its changes are read (docker's default).
    pub pause: bool,
}

/// A temp file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A directory tree removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn unique(dir: &Path, prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{prefix}{}-{nanos:08x}", std::process::id()))
}

fn skip_refs(v: &[PathBuf]) -> Vec<&Path> {
    v.iter().map(PathBuf::as_path).collect()
}

/// The image config a commit starts from: the image's, with the container's create-time
/// settings (its merged env, command, user, labels, ports, ...) over it.
fn container_run_config(image: &RunConfig, info: &ContainerInfo) -> RunConfig {
    let c = &info.record.config;
    let some = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut out = image.clone();
    out.user = text(&c.user);
    // What the record's env has that docker's daemon adds only when the process starts (so
    // its Config.Env, and a committed image, lacks them): the container's own HOSTNAME, the
    // default PATH and a tty's TERM=xterm when the image set neither.
    let own_hostname = format!("HOSTNAME={}", c.hostname);
    let image_has = |key: &str| {
        image
            .env
            .iter()
            .flatten()
            .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
    };
    let env: Vec<String> = c
        .env
        .iter()
        .filter(|e| **e != own_hostname)
        .filter(|e| image_has("PATH") || e.as_str() != crate::create::DEFAULT_PATH)
        .filter(|e| image_has("TERM") || !c.tty || e.as_str() != "TERM=xterm")
        .cloned()
        .collect();
    out.env = some(&env);
    out.cmd = some(&c.cmd);
    out.entrypoint = some(&c.entrypoint);
    out.working_dir = text(&c.working_dir);
    out.labels = (!c.labels.is_empty()).then(|| c.labels.clone());
    out.stop_signal = c.stop_signal.clone().or(out.stop_signal);
    out.healthcheck = c.healthcheck.clone().or(out.healthcheck);
    if !c.exposed_ports.is_empty() {
        out.exposed_ports = Some(
            c.exposed_ports
                .keys()
                .map(|k| (k.clone(), json!({})))
                .collect(),
        );
    }
    out
}

impl Engine {
    fn layers_of(&self, info: &ContainerInfo) -> Result<(PathBuf, Vec<PathBuf>), ImageError> {
        let paths = self.store.container_paths(&info.record.id);
        let lowers = self.store.image_layers(&info.record.image)?;
        Ok((paths.upper, lowers))
    }

    /// `diff CONTAINER`: what the container changed in its image, docker's kinds and order.
    pub fn container_changes(&self, name: &str) -> Result<Vec<Change>, ImageError> {
        let info = self.container(name)?;
        let (upper, lowers) = self.layers_of(&info)?;
        Ok(
            diff::changes(&upper, &lowers, &skip_refs(&init_paths(&upper, &lowers)))
                .map_err(StoreError::from)?,
        )
    }

    /// `commit`: a new image from the container's changes; returns its id.
    pub fn commit_container(&self, req: &CommitRequest) -> Result<Digest, ImageError> {
        let info = self.container(&req.container)?;
        let reference = req.reference.as_deref().map(ImageRef::parse).transpose()?;
        if let Some(r) = &reference {
            if r.digest().is_some() {
                return Err(ImageError::TagWithDigest);
            }
        }
        // a reference without a tag means :latest, as docker's commit does
        let reference = match reference {
            Some(r) if r.tag().is_none() => {
                Some(ImageRef::parse(&format!("{}:latest", r.familiar()))?)
            }
            r => r,
        };
        if let Some(r) = &reference {
            self.policy_image("commit", &r.familiar(), true)?;
        }
        let image = self.store.resolve_image(&info.record.image.to_string())?;
        let config = apply_changes_to(
            container_run_config(&image.config.config, &info),
            &req.changes,
        )?;
        let (upper, lowers) = self.layers_of(&info)?;
        let skip = init_paths(&upper, &lowers);
        let dir = self.store.container_paths(&info.record.id).dir;

        let tmp = TempFile(unique(&dir, ".commit-"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .map_err(|e| ImageError::io("create", &tmp.0, e))?;
        let frozen = if req.pause && info.state.status() == Status::Running {
            let cg = Cgroup::open(&crate::run::cgroup_path(&info.record.id));
            cg.freeze(true).map_err(EngineError::from)?;
            Some(cg)
        } else {
            None
        };
        let written = (|| {
            let root =
                std::fs::File::open(&upper).map_err(|e| ImageError::io("open", &upper, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut file);
            diff::write_tar(
                std::os::fd::AsFd::as_fd(&root),
                TreeKind::OverlayUpper,
                &skip_refs(&skip),
                &mut w,
            )
            .map_err(StoreError::from)?;
            w.flush().map_err(|e| ImageError::io("write", &tmp.0, e))?;
            Ok::<_, ImageError>(())
        })();
        if let Some(cg) = frozen {
            cg.freeze(false).map_err(EngineError::from)?;
        }
        written?;
        file.rewind()
            .map_err(|e| ImageError::io("read", &tmp.0, e))?;
        let opts = CommitOptions {
            reference: reference.clone(),
            config,
            author: req.author.clone(),
            comment: req.message.clone(),
            created_by: info.record.config.cmd.join(" "),
        };
        let id = self.store.commit_layer(&info.record.image, file, &opts)?;
        let image_ref = reference.as_ref().map(|r| r.familiar()).unwrap_or_default();
        self.emit_container(
            &info.record,
            "commit",
            &[
                ("comment", req.message.clone().unwrap_or_default()),
                ("imageID", id.to_string()),
                ("imageRef", image_ref.clone()),
            ],
        );
        if reference.is_some() {
            self.emit_image_tag(&id, &image_ref);
        }
        Ok(id)
    }

    /// `export`: the container's whole file system (its image's layers and its changes,
    /// without volumes, binds or kernel file systems) as a tar written to `out`.
    pub fn export_container(&self, name: &str, out: &mut dyn Write) -> Result<(), ImageError> {
        let info = self.container(name)?;
        let (upper, mut lower) = self.layers_of(&info)?;
        lower.insert(0, upper);
        let dir = self.store.container_paths(&info.record.id).dir;
        let scratch = TempDir(unique(&dir, ".export-"));
        let (u, w, target) = (
            scratch.0.join("upper"),
            scratch.0.join("work"),
            scratch.0.join("merged"),
        );
        for d in [&scratch.0, &u, &w, &target] {
            std::fs::create_dir(d).map_err(|e| ImageError::io("create", d, e))?;
        }
        let rootfs = wharf_runtime::spec::RootfsSpec {
            lower,
            upper: u,
            work: w,
            target,
            readonly: true,
            nosuid: true,
        };
        let mounted = wharf_runtime::exec::open_detached_rootfs(&rootfs, &[]).map_err(|error| {
            EngineError::ContainerFs {
                name: name.to_string(),
                error,
            }
        })?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
        diff::write_tar(mounted.fd(), TreeKind::Plain, &[], &mut w).map_err(StoreError::from)?;
        w.flush().map_err(ImageError::WriteArchive)?;
        drop(w);
        drop(mounted);
        self.emit_container(&info.record, "export", &[]);
        Ok(())
    }

    /// The container's upper dir (less what init made) as a layer tar in a temp file next
    /// to it, rewound; the file is removed when the returned guard drops.
    ///
    /// `extra`: paths (relative to the root) left out too: a build step's mount points,
    /// which are not part of its layer.
    pub(crate) fn upper_tar_skipping(
        &self,
        info: &ContainerInfo,
        extra: &[PathBuf],
    ) -> Result<(impl Drop, std::fs::File), ImageError> {
        let (upper, lowers) = self.layers_of(info)?;
        let mut skip = init_paths(&upper, &lowers);
        skip.extend(extra.iter().cloned());
        let dir = self.store.container_paths(&info.record.id).dir;
        let tmp = TempFile(unique(&dir, ".build-"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .map_err(|e| ImageError::io("create", &tmp.0, e))?;
        {
            let root =
                std::fs::File::open(&upper).map_err(|e| ImageError::io("open", &upper, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut file);
            diff::write_tar(
                std::os::fd::AsFd::as_fd(&root),
                TreeKind::OverlayUpper,
                &skip_refs(&skip),
                &mut w,
            )
            .map_err(StoreError::from)?;
            w.flush().map_err(|e| ImageError::io("write", &tmp.0, e))?;
        }
        file.rewind()
            .map_err(|e| ImageError::io("read", &tmp.0, e))?;
        Ok((tmp, file))
    }

    /// `history IMAGE`: newest entry first.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let image = self.store.resolve_image(name)?;
        Ok(self.store.history(&image.id)?)
    }
}
