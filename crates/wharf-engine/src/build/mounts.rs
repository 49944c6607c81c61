//! RUN `--mount`s, as BuildKit gives them to a step, mapped onto the step container's own
//! typed mounts (checked as `--mount` is; no CSV to escape):
//!
//! - `type=cache`: a directory kept in the store (`<root>/build-cache-mounts/<sha256(id)>`,
//!   id defaulting to the target), made with `uid`/`gid`/`mode` (0:0 0755) the first time;
//!   `sharing=shared` (default) binds it as is, `locked` holds an exclusive lock on it for
//!   the step, `private` uses a fresh directory when another build holds it.
//! - `type=bind`: a copy of `source` (default the root) from the context or a `from=` stage
//!   or image, made with the COPY walk (inside its root, symlinks never followed out), bound
//!   read-only by default; with `rw` the step's writes go to the copy and are discarded.
//! - `type=tmpfs`: a tmpfs, `size` bytes at most.
//! - `type=secret`: the secret given by `wharf build --secret id=..,src=FILE|env=VAR`,
//!   copied to a 0400 file under `build-tmp` and bound read-only at `target` (default
//!   `/run/secrets/<id>`), or exposed as `env=NAME`; a missing secret is an error when
//!   `required`, else no mount. Its bytes are in no layer, no history and no cache key.
//! - `type=ssh`: refused.
//!
//! The mount points (and the directories made only for them) are left out of the step's
//! layer. Must not: read a secret or a context file unbounded, or keep a secret's copy after
//! the step (the temp tree goes on drop).

use super::context::{self, Owner, Root};
use super::{BuildError, BuildRequest, StageState, TempTree};
use crate::mounts::MountSpec;
use crate::Engine;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use wharf_build::dockerfile::{Mount, MountType, Sharing};
use wharf_types::Digest;

/// A secret's size limit (BuildKit's is 500 KiB).
const MAX_SECRET: u64 = 500 << 10;

/// Where a build secret comes from (`--secret id=x,src=FILE` or `env=VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// The mounts of one RUN step, ready for its container; the temp trees and locks they need
/// live as long as this.
#[derive(Default)]
pub(super) struct RunMounts {
    /// The mounts' identity for the step's cache key (types, targets, ids, sources; never a
    /// secret's value).
    pub key: String,
    /// The step container's mounts (typed: no CSV to escape).
    pub mounts: Vec<MountSpec>,
    /// `env=` secrets, `NAME=value`.
    pub env: Vec<String>,
    /// Paths (relative to the root) left out of the layer.
    pub targets: Vec<PathBuf>,
    temps: Vec<TempTree>,
    locks: Vec<nix::fcntl::Flock<std::fs::File>>,
}

impl RunMounts {
    fn temp(&mut self, engine: &Engine, what: &str) -> Result<PathBuf, BuildError> {
        let t = engine.scratch_dir(what)?;
        let p = t.0.clone();
        self.temps.push(t);
        Ok(p)
    }

    /// A `#!` heredoc: the script at `/dev/pipes/<name>`, executable, read-only (`name`
    /// checked by `run::run_command`: one plain component, nothing the CSV would split).
    pub(super) fn add_script(
        &mut self,
        engine: &Engine,
        name: &str,
        body: &str,
    ) -> Result<(), BuildError> {
        let dir = self.temp(engine, "script")?;
        let file = dir.join("script");
        std::fs::write(&file, body).map_err(|e| BuildError::io("write", &file, e))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::io("chmod", &file, e))?;
        self.mounts
            .push(bind(&file, format!("/dev/pipes/{name}"), true));
        Ok(())
    }
}

impl SecretSource {
    /// `wharf build --secret` as buildx reads it: `id=x,src=FILE` (`source=`),
    /// `id=x,env=VAR`, `type=file|env`; with neither `src` nor `env`, the variable named
    /// like the id.
    pub fn parse_spec(spec: &str) -> Result<(String, SecretSource), BuildError> {
        let bad = |why: &'static str| BuildError::SecretSpec {
            spec: spec.to_string(),
            why,
        };
        let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or(bad("fields are key=value"))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                _ => return Err(bad("unknown key (id, type, src, env)")),
            }
        }
        let id = id
            .or_else(|| {
                src.as_deref()
                    .and_then(|s| Path::new(s).file_name())
                    .map(|n| n.to_string_lossy().to_string())
            })
            .filter(|i| !i.is_empty())
            .ok_or(bad("no id"))?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (None | Some("file"), Some(f), None) => SecretSource::File(PathBuf::from(f)),
            (None | Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file"), None, None) => return Err(bad("type=file needs src")),
            (Some(_), _, _) if !matches!(kind.as_deref(), Some("file" | "env")) => {
                return Err(bad("type is file or env"))
            }
            _ => return Err(bad("give src or env, not both")),
        };
        Ok((id, source))
    }
}

fn unsupported(line: usize, what: String) -> BuildError {
    BuildError::Unsupported { line, what }
}

/// A bind mount of `source` at `target`.
fn bind(source: &Path, target: String, read_only: bool) -> MountSpec {
    MountSpec {
        kind: "bind".to_string(),
        source: source.display().to_string(),
        target,
        read_only,
        ..Default::default()
    }
}

/// Reads a secret, at most [`MAX_SECRET`] bytes.
fn read_secret(id: &str, src: &SecretSource) -> Result<Vec<u8>, BuildError> {
    match src {
        SecretSource::Env(var) => std::env::var_os(var)
            .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
            .ok_or_else(|| BuildError::SecretMissing {
                id: id.to_string(),
                why: format!("environment variable {var} is not set"),
            }),
        SecretSource::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| BuildError::io("open secret", p, e))?;
            let mut data = Vec::new();
            f.take(MAX_SECRET + 1)
                .read_to_end(&mut data)
                .map_err(|e| BuildError::io("read secret", p, e))?;
            if data.len() as u64 > MAX_SECRET {
                return Err(BuildError::TooLarge {
                    path: p.display().to_string(),
                    limit: MAX_SECRET,
                });
            }
            Ok(data)
        }
    }
}

impl Engine {
    /// The image a `--from` names: a stage (by name or index) built already, else an image
    /// in the store.
    pub(super) fn source_image(
        &self,
        plan: &wharf_build::stages::Plan,
        built: &BTreeMap<usize, Digest>,
        from: &str,
    ) -> Result<Digest, BuildError> {
        match plan.stage_by_name(from).or_else(|| from.parse().ok()) {
            Some(i) => built
                .get(&i)
                .cloned()
                .ok_or_else(|| BuildError::BaseNotFound(from.to_string())),
            None => Ok(self
                .store
                .resolve_image(from)
                .map_err(|_| BuildError::BaseNotFound(from.to_string()))?
                .id),
        }
    }

    /// The first directory of `rel` the image does not have (all of it made for a mount),
    /// or `rel` itself.
    fn made_for_mount(&self, image: Option<&Digest>, rel: &Path) -> PathBuf {
        let mut p = PathBuf::new();
        for c in rel.components() {
            p.push(c);
            if p.as_path() != rel && !self.is_dir_in_image(image, &p) {
                return p;
            }
        }
        p
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_mounts(
        &self,
        req: &BuildRequest,
        plan: &wharf_build::stages::Plan,
        built: &BTreeMap<usize, Digest>,
        ctx: &Root,
        st: &StageState,
        mounts: &[Mount],
        line: usize,
    ) -> Result<RunMounts, BuildError> {
        let mut out = RunMounts::default();
        let mut key = Sha256::new();
        let workdir = st
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string());
        for m in mounts {
            key.update(format!("{m:?}").as_bytes());
            let target = |default: Option<String>| -> Result<(String, PathBuf), BuildError> {
                let t = m.target.clone().or(default).ok_or(BuildError::Invalid {
                    line,
                    what: "--mount target",
                    value: String::new(),
                })?;
                let abs = Path::new(&workdir).join(&t);
                let rel = context::clean_inside(&abs.to_string_lossy()).unwrap_or_default();
                if rel.as_os_str().is_empty() {
                    return Err(BuildError::Invalid {
                        line,
                        what: "--mount target",
                        value: t,
                    });
                }
                Ok((format!("/{}", rel.display()), rel))
            };
            match m.kind {
                MountType::Ssh => {
                    return Err(unsupported(line, "RUN --mount=type=ssh".to_string()));
                }
                MountType::Tmpfs => {
                    let (t, rel) = target(None)?;
                    out.mounts.push(MountSpec {
                        kind: "tmpfs".to_string(),
                        target: t,
                        tmpfs_size: m
                            .size
                            .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                            .unwrap_or(0),
                        ..Default::default()
                    });
                    out.targets
                        .push(self.made_for_mount(st.image.as_ref(), &rel));
                }
                MountType::Cache => {
                    if m.from.is_some() || m.source.is_some() {
                        return Err(unsupported(
                            line,
                            "RUN --mount=type=cache with from= or source=".to_string(),
                        ));
                    }
                    let (t, rel) = target(None)?;
                    let id = m.id.clone().unwrap_or_else(|| t.clone());
                    let base = self.root().join("build-cache-mounts");
                    std::fs::create_dir_all(&base)
                        .map_err(|e| BuildError::io("create", &base, e))?;
                    let mut dir = base.join({
                        let mut h = Sha256::new();
                        h.update(id.as_bytes());
                        Digest::from_hasher(h).hex().to_string()
                    });
                    if std::fs::create_dir(&dir).is_ok() {
                        std::fs::set_permissions(
                            &dir,
                            std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                        )
                        .map_err(|e| BuildError::io("chmod", &dir, e))?;
                        std::os::unix::fs::chown(&dir, Some(m.uid.unwrap_or(0)), m.gid.or(Some(0)))
                            .map_err(|e| BuildError::io("chown", &dir, e))?;
                    }
                    let handle =
                        std::fs::File::open(&dir).map_err(|e| BuildError::io("open", &dir, e))?;
                    match m.sharing.unwrap_or(Sharing::Shared) {
                        Sharing::Shared => {}
                        Sharing::Locked => out.locks.push(
                            nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive)
                                .map_err(|(_, e)| {
                                    BuildError::io("lock", &dir, std::io::Error::from(e))
                                })?,
                        ),
                        Sharing::Private => match nix::fcntl::Flock::lock(
                            handle,
                            nix::fcntl::FlockArg::LockExclusiveNonblock,
                        ) {
                            Ok(l) => out.locks.push(l),
                            Err(_) => {
                                let fresh = out.temp(self, "cache")?;
                                std::fs::set_permissions(
                                    &fresh,
                                    std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                                )
                                .map_err(|e| BuildError::io("chmod", &fresh, e))?;
                                std::os::unix::fs::chown(
                                    &fresh,
                                    Some(m.uid.unwrap_or(0)),
                                    m.gid.or(Some(0)),
                                )
                                .map_err(|e| BuildError::io("chown", &fresh, e))?;
                                dir = fresh;
                            }
                        },
                    }
                    out.mounts.push(bind(&dir, t, m.readonly));
                    out.targets
                        .push(self.made_for_mount(st.image.as_ref(), &rel));
                }
                MountType::Bind => {
                    let (t, rel) = target(None)?;
                    let source = m.source.clone().unwrap_or_else(|| "/".to_string());
                    let copy = out.temp(self, "bind")?.join("src");
                    match &m.from {
                        None => {
                            let src = context::resolve(ctx, &source)?;
                            let mut h = Sha256::new();
                            context::hash_source(ctx, &src, &mut h)?;
                            key.update(Digest::from_hasher(h).hex().as_bytes());
                            context::copy_source(ctx, &src, &copy, Owner::default())?;
                        }
                        Some(from) => {
                            let image = self.source_image(plan, built, from)?;
                            key.update(image.to_string().as_bytes());
                            let (mounted, _scratch) = self.mount_image(&image)?;
                            let root = Root {
                                fd: mounted.fd(),
                                name: format!("stage {from}"),
                                ignore: None,
                            };
                            let src = context::resolve(&root, &source)?;
                            context::copy_source(&root, &src, &copy, Owner::default())?;
                        }
                    }
                    out.mounts.push(bind(&copy, t, m.readonly));
                    out.targets
                        .push(self.made_for_mount(st.image.as_ref(), &rel));
                }
                MountType::Secret => {
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                m.target.as_deref().and_then(|t| {
                                    Path::new(t)
                                        .file_name()
                                        .map(|n| n.to_string_lossy().to_string())
                                })
                            })
                            .ok_or(BuildError::Invalid {
                                line,
                                what: "--mount=type=secret id",
                                value: String::new(),
                            })?;
                    let Some(src) = req.secrets.get(&id) else {
                        if m.required {
                            return Err(BuildError::SecretMissing {
                                id,
                                why: "not given (wharf build --secret id=..,src=..)".to_string(),
                            });
                        }
                        continue;
                    };
                    let data = read_secret(&id, src)?;
                    if let Some(var) = &m.env {
                        out.env
                            .push(format!("{var}={}", String::from_utf8_lossy(&data)));
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    let (t, rel) = target(Some(format!("/run/secrets/{id}")))?;
                    let dir = out.temp(self, "secret")?;
                    let file = dir.join("secret");
                    std::fs::write(&file, &data).map_err(|e| BuildError::io("write", &file, e))?;
                    std::fs::set_permissions(
                        &file,
                        std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)),
                    )
                    .map_err(|e| BuildError::io("chmod", &file, e))?;
                    std::os::unix::fs::chown(&file, Some(m.uid.unwrap_or(0)), m.gid.or(Some(0)))
                        .map_err(|e| BuildError::io("chown", &file, e))?;
                    out.mounts.push(bind(&file, t, true));
                    out.targets
                        .push(self.made_for_mount(st.image.as_ref(), &rel));
                }
            }
        }
        out.key = Digest::from_hasher(key).hex().to_string();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        let p = |s: &str| SecretSource::parse_spec(s).ok();
        assert_eq!(
            p("id=a,src=/f"),
            Some(("a".into(), SecretSource::File("/f".into())))
        );
        assert_eq!(
            p("id=a,env=V"),
            Some(("a".into(), SecretSource::Env("V".into())))
        );
        assert_eq!(
            p("type=env,id=a,src=V"),
            Some(("a".into(), SecretSource::Env("V".into())))
        );
        assert_eq!(
            p("src=/x/tok"),
            Some(("tok".into(), SecretSource::File("/x/tok".into())))
        );
        assert_eq!(p("id=A"), Some(("A".into(), SecretSource::Env("A".into()))));
        assert_eq!(p("id=a,src=/f,env=V"), None);
        assert_eq!(p("id=a,type=ssh,src=/f"), None);
        assert_eq!(p("id=a,color=red"), None);
        assert_eq!(p("src="), None);
    }
}
