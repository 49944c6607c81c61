//! The image service: list, inspect, tag, import (with docker's `--change` subset), and the
//! error every image and distribution operation returns ([`ImageError`]). Removal is
//! [`Engine::remove_image`]; load/save/pull/push/login/logout are in `distribution`. Image
//! events (`import`, `tag`) are emitted here, in docker's `/events` shape.
//!
//! Must not: parse argv, print, or open stdin (a front end hands in a reader).

use crate::{Engine, EngineError};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use wharf_store::archive::ArchiveError;
use wharf_store::{ImportOptions, StoreError};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::RunConfig;
use wharf_types::{Digest, ImageRef};

pub use wharf_store::RemoveEvent;

/// Every failure of the image and distribution services, one line each.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] wharf_registry::client::ClientError),
    #[error(transparent)]
    Reference(#[from] wharf_types::reference::RefError),
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    #[error("{0} is not a valid change command")]
    InvalidChange(String),
    #[error("invalid JSON array {0:?}")]
    InvalidChangeArray(String),
    #[error("importing from a URL is not supported (no registry or internet is assumed): download the file first")]
    ImportFromUrl,
    #[error("writing the archive")]
    WriteArchive(#[source] std::io::Error),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ImageError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }

    /// Exit code of the CLI for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ImageError::Engine(e) => e.exit_code(),
            other => other.kind().exit_code(),
        }
    }
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Engine(e) => e.kind(),
            ImageError::Store(e) => e.kind(),
            ImageError::Archive(e) => e.kind(),
            ImageError::Registry(e) => e.kind(),
            ImageError::Reference(_)
            | ImageError::TagWithDigest
            | ImageError::InvalidChange(_)
            | ImageError::InvalidChangeArray(_) => ErrorKind::InvalidArgument,
            ImageError::ImportFromUrl => ErrorKind::NotImplemented,
            ImageError::Io { .. } | ImageError::WriteArchive(_) => ErrorKind::Internal,
        }
    }
}

/// `images [REPOSITORY[:TAG]]`.
#[derive(Debug, Clone, Default)]
pub struct ListImagesRequest {
    /// Only this repository (and tag, when given).
    pub reference: Option<String>,
    /// docker's `--filter key=value` strings (`crate::image_filter`).
    pub filters: Vec<String>,
}

/// One row of `images`: one per tag of an image (an untagged image has one `<none>` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageListEntry {
    pub id: Digest,
    /// Familiar repository (`busybox`, `registry.local:5000/app`) or `<none>`.
    pub repository: String,
    pub tag: String,
    /// The digest of this row's repository (of the image's repo digests), or `<none>`.
    pub digest: String,
    pub created: String,
    pub size: u64,
}

/// `tag SOURCE TARGET`.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub source: String,
    pub target: String,
}

/// Where `import` reads the root file system tarball from.
pub enum ImportSource<'a> {
    /// A file (a URL is refused: wharf assumes no network).
    Path(String),
    /// A stream the front end opened (stdin, a request body).
    Reader(&'a mut dyn Read),
}

/// `import FILE|- [REFERENCE]`.
pub struct ImportRequest<'a> {
    pub source: ImportSource<'a>,
    pub reference: Option<String>,
    /// `--change` instructions (docker's Dockerfile subset).
    pub changes: Vec<String>,
    pub message: Option<String>,
}

impl Engine {
    /// `images`: newest first, one entry per tag, filtered by repository (and tag).
    pub fn list_images(&self, req: &ListImagesRequest) -> Result<Vec<ImageListEntry>, ImageError> {
        let filter_ref = req.reference.as_deref().map(ImageRef::parse).transpose()?;
        let tag_given = req.reference.as_deref().is_some_and(|r| r.contains(':'));
        let mut filter =
            crate::image_filter::ImageFilter::parse(&req.filters).map_err(EngineError::from)?;
        for r in filter.bounds() {
            let created = self.store.resolve_image(&r)?.created;
            filter.resolve(&r, created);
        }
        let mut list = self.store.images()?;
        list.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for img in list {
            // docker: a row shows the digest of its own repository only
            let digest_of = |repository: &str| {
                img.repo_digests
                    .iter()
                    .filter_map(|d| d.split_once('@'))
                    .find(|(repo, _)| {
                        ImageRef::parse(repo).is_ok_and(|r| r.familiar_repository() == repository)
                    })
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            let mut tags: Vec<(String, String)> = img
                .repo_tags
                .iter()
                .filter_map(|t| ImageRef::parse(t).ok())
                .map(|r| {
                    (
                        r.familiar_repository(),
                        r.tag().unwrap_or("<none>").to_string(),
                    )
                })
                .collect();
            if tags.is_empty() {
                // docker: an untagged image pulled by digest is listed under the digests'
                // repositories (`repo  <none>  sha256:…`)
                for (repo, _) in img.repo_digests.iter().filter_map(|d| d.split_once('@')) {
                    if let Ok(r) = ImageRef::parse(repo) {
                        let row = (r.familiar_repository(), "<none>".to_string());
                        if !tags.contains(&row) {
                            tags.push(row);
                        }
                    }
                }
            }
            if tags.is_empty() {
                tags.push(("<none>".into(), "<none>".into()));
            }
            let dangling = img.repo_tags.is_empty();
            // the config (its labels) is read only for a label filter
            let labels = if filter.needs_labels() {
                self.store
                    .resolve_image(&img.id.to_string())?
                    .config
                    .config
                    .labels
            } else {
                None
            };
            for (repository, tag) in tags {
                let row = crate::image_filter::ImageRow {
                    repository: &repository,
                    tag: &tag,
                    dangling,
                    labels: labels.as_ref(),
                    created: &img.created,
                };
                if !filter.matches(&row) {
                    continue;
                }
                if let Some(f) = &filter_ref {
                    if repository != f.familiar_repository()
                        || (tag_given && Some(tag.as_str()) != f.tag())
                    {
                        continue;
                    }
                }
                out.push(ImageListEntry {
                    id: img.id.clone(),
                    digest: digest_of(&repository),
                    repository,
                    tag,
                    created: img.created.clone(),
                    size: img.size,
                });
            }
        }
        Ok(out)
    }

    /// `image inspect`: docker's object for one image (by name, id or id prefix).
    pub fn inspect_image(&self, name: &str) -> Result<Value, ImageError> {
        let img = self.store.resolve_image(name)?;
        let layers = self.lower_dirs(&img.id);
        // docker's keys in dockerd's order (`Config` and `ContainerConfig` with every key
        // even when the image has none)
        let config = crate::inspect_shape::image_config(
            serde_json::to_value(&img.config.config).unwrap_or_default(),
        );
        Ok(json!({
            "Id": img.id.to_string(),
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": "",
            "Comment": img.config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
            "Created": img.created,
            "Container": "",
            "ContainerConfig": crate::inspect_shape::image_config(Value::Null),
            "DockerVersion": "",
            "Author": img.config.author.clone().unwrap_or_default(),
            "Config": config,
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Size": img.size,
            "VirtualSize": img.size,
            "GraphDriver": { "Data": { "LowerDir": layers }, "Name": "overlay" },
            "RootFS": {
                "Type": "layers",
                "Layers": img.config.rootfs.diff_ids,
            },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
            "Descriptor": {
                "mediaType": wharf_types::oci::MEDIA_OCI_MANIFEST,
                "digest": img.manifest_digest.to_string(),
            },
        }))
    }

    /// `tag`: emits docker's `tag` event (Actor.ID the image id, `name` the new tag).
    pub fn tag_image(&self, req: &TagRequest) -> Result<(), ImageError> {
        let target = ImageRef::parse(&req.target)?;
        if target.digest().is_some() {
            return Err(ImageError::TagWithDigest);
        }
        let image = self.store.resolve_image(&req.source)?;
        self.store.tag(&image.id.to_string(), &target)?;
        self.emit_image_tag(&image.id, &target.familiar());
        Ok(())
    }

    /// `import`: one layer from a tarball (plain or compressed), `--change` applied to the
    /// config; the admin policy judges a name given. Emits `import` (and `tag` for a name).
    pub fn import_image(&self, req: ImportRequest<'_>) -> Result<Digest, ImageError> {
        let reference = req.reference.as_deref().map(ImageRef::parse).transpose()?;
        let opts = ImportOptions {
            reference: reference.clone(),
            config: apply_changes(&req.changes)?,
            message: req.message.clone(),
        };
        let mut file;
        let input: &mut dyn Read = match req.source {
            ImportSource::Reader(r) => r,
            ImportSource::Path(p) => {
                if p.contains("://") {
                    return Err(ImageError::ImportFromUrl);
                }
                let path = PathBuf::from(&p);
                file = std::fs::File::open(&path).map_err(|e| ImageError::io("open", &path, e))?;
                &mut file
            }
        };
        if let Some(r) = &req.reference {
            self.policy_image("import", r, true)?;
        }
        let id = self
            .store
            .import(std::io::BufReader::with_capacity(1 << 20, input), &opts)?;
        self.emit(
            "image",
            "import",
            &id.to_string(),
            &[("name", id.to_string())],
        );
        if let Some(r) = &reference {
            self.emit_image_tag(&id, &r.familiar());
        }
        Ok(id)
    }

    /// docker's `tag` event.
    pub(crate) fn emit_image_tag(&self, id: &Digest, name: &str) {
        self.emit(
            "image",
            "tag",
            &id.to_string(),
            &[("name", name.to_string())],
        );
    }
}

/// Splits a Dockerfile instruction argument: JSON array form or shell form.
fn exec_or_shell(arg: &str) -> Result<Vec<String>, ImageError> {
    let t = arg.trim();
    if t.starts_with('[') {
        serde_json::from_str::<Vec<String>>(t)
            .map_err(|_| ImageError::InvalidChangeArray(t.to_string()))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), t.to_string()])
    }
}

fn key_values(arg: &str) -> Vec<(String, String)> {
    let t = arg.trim();
    if !t.contains('=') {
        // legacy `ENV key value`
        return match t.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![(t.to_string(), String::new())],
        };
    }
    t.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Applies `--change` instructions (the subset of Dockerfile docker import accepts).
pub fn apply_changes(changes: &[String]) -> Result<RunConfig, ImageError> {
    apply_changes_to(RunConfig::default(), changes)
}

/// Applies `--change` instructions over `c` (commit: over the container's config): CMD,
/// ENTRYPOINT, WORKDIR, USER, STOPSIGNAL replace; ENV replaces the same keys; LABEL,
/// EXPOSE, VOLUME add; ONBUILD appends a trigger.
pub fn apply_changes_to(mut c: RunConfig, changes: &[String]) -> Result<RunConfig, ImageError> {
    for ch in changes {
        let (instr, arg) = ch
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((ch.trim(), ""));
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => c.cmd = Some(exec_or_shell(arg)?),
            "ENTRYPOINT" => c.entrypoint = Some(exec_or_shell(arg)?),
            "ENV" => {
                let env = c.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(arg) {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "WORKDIR" => c.working_dir = Some(arg.trim().to_string()),
            "USER" => c.user = Some(arg.trim().to_string()),
            "LABEL" => {
                let labels = c.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(arg) {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = c.exposed_ports.get_or_insert_with(Default::default);
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let vols = c.volumes.get_or_insert_with(Default::default);
                let list = if arg.trim().starts_with('[') {
                    exec_or_shell(arg)?
                } else {
                    arg.split_whitespace().map(str::to_string).collect()
                };
                for v in list {
                    vols.insert(v, json!({}));
                }
            }
            "STOPSIGNAL" => c.stop_signal = Some(arg.trim().to_string()),
            "ONBUILD" if !arg.trim().is_empty() => {
                c.on_build
                    .get_or_insert_with(Vec::new)
                    .push(arg.trim().to_string());
            }
            other => return Err(ImageError::InvalidChange(other.to_string())),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let c = apply_changes(&[
            r#"CMD ["sh"]"#.into(),
            "ENV A=1 B=2".into(),
            "ENV C 3".into(),
            "WORKDIR /srv".into(),
            "USER nobody".into(),
            "ENTRYPOINT echo hi".into(),
            "EXPOSE 80".into(),
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.env, Some(vec!["A=1".into(), "B=2".into(), "C=3".into()]));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        assert!(matches!(
            apply_changes(&["RUN rm -rf /".into()]),
            Err(ImageError::InvalidChange(i)) if i == "RUN"
        ));
        assert!(apply_changes(&["CMD [broken".into()]).is_err());
    }

    #[test]
    fn changes_over_a_config() {
        let base = RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            labels: Some([("keep".to_string(), "y".to_string())].into()),
            ..Default::default()
        };
        let c = apply_changes_to(
            base,
            &[
                "ENV A=2".into(),
                "LABEL new=1".into(),
                "ONBUILD RUN echo hi".into(),
                "ONBUILD COPY . /app".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.env, Some(vec!["PATH=/bin".into(), "A=2".into()]));
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]), "kept");
        let labels = c.labels.unwrap();
        assert_eq!(
            (labels["keep"].as_str(), labels["new"].as_str()),
            ("y", "1")
        );
        assert_eq!(
            c.on_build,
            Some(vec!["RUN echo hi".to_string(), "COPY . /app".to_string()])
        );
        let json = serde_json::to_value(RunConfig {
            on_build: Some(vec!["RUN x".into()]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(json["OnBuild"][0], "RUN x", "docker's key");
    }
}
