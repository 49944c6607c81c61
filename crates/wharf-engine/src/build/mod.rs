//! `wharf build`: the executor over `wharf-build`'s plan (docs/build.md).
//!
//! Each needed stage runs in plan order from its base (a local image, an earlier stage, or
//! `scratch`). Metadata instructions change the stage's image config in memory and add a
//! history entry (`empty_layer`); RUN (`run`) runs as a container on the wharf runtime
//! with the engine's default confinement and the policy's checks, network none unless
//! `--network=host`, its json-file log followed as the step's output; its upper dir (less
//! its `--mount` points, `mounts`) becomes the step's layer through the store's
//! `build_step` (an empty diff: an empty-layer history entry). COPY/ADD stage their sources
//! (`context`, `copy`; ADD of URLs `url`) in a temp tree that becomes the layer. A base's
//! ONBUILD triggers run right after its FROM.
//!
//! Step cache: every step extends a chain key (sha256 of the parent key, the instruction as
//! written, the ARG values in scope and, for COPY/ADD, the content hash of its sources); a
//! step that makes an image records `build-cache/<key>` → image id, and a rebuild that
//! finds the key (and the image) skips the work. `--no-cache` neither reads nor skips.
//!
//! RUN itself (heredocs, `--network`, output streamed, cancellation) is `run`, its
//! `--mount`s `mounts`; COPY/ADD sources `copy`, ADD of URLs `url`.
//!
//! `sources`: FROM images are policy-checked and pulled when missing (`--pull`: always)
//! before any step; `--cache-from` images make their steps eligible as cache (docker's
//! classic rule); the target image carries provenance labels (Dockerfile and context
//! digests). The admin policy's `[build]` rules (allowed at all, approved Dockerfile
//! digests) are decided on the Dockerfile's bytes before anything else.
//!
//! Not yet (refused with a clear error): ADD of git repositories, bzip2/xz archives,
//! `RUN --mount=type=ssh`, `RUN --security=insecure`.
//!
//! Must not: print (progress goes to the caller's sink), or mount in the host namespace.

mod context;
mod copy;
mod mounts;
mod run;
mod sources;
mod url;

pub use mounts::SecretSource;
pub use sources::{CONTEXT_LABEL, DOCKERFILE_LABEL};

use crate::images::ImageError;
use crate::{Engine, EngineError};
use context::{Owner, Root};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use wharf_build::dockerfile::{Command, CommandLine, CopySpec, Healthcheck, Instruction};
use wharf_build::dockerignore::Dockerignore;
use wharf_build::stages::{Base, BuildOptions, Plan};
use wharf_store::layer::diff::{self, TreeKind};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::{History, RunConfig};
use wharf_types::Digest;

/// Cap for the Dockerfile and `.dockerignore` read from disk.
const MAX_FILE: u64 = 10 << 20;
/// Label on a RUN step's container: `<builder pid> <its start time>`, so a later build can
/// tell the containers of a builder that was killed from those of one still running.
const STEP_LABEL: &str = "wharf.build.step";
/// History comment BuildKit writes; `docker history` shows it.
const COMMENT: &str = "buildkit.dockerfile.v0";

/// `build [-t name]... [-f Dockerfile] [--build-arg K=V] [--target T] [--label k=v]
/// [--no-cache] CONTEXT`.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile (default `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// `--pull`: pull every FROM image even when present.
    pub pull: bool,
    /// `--cache-from`: images whose steps may be reused.
    pub cache_from: Vec<String>,
    /// The Dockerfile's bytes (`-f -`), instead of reading [`BuildRequest::dockerfile`].
    pub dockerfile_text: Option<Vec<u8>>,
    /// `--secret id=..,src=..|env=..`: what `RUN --mount=type=secret` mounts, by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Set (to the signal's number) by the caller to stop the build: a running step's
    /// container is killed and removed, nothing more is built or tagged.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicI32>>,
}

/// What a build reports as it goes (docker's plain progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProgress {
    /// Step `number` starts: `[stage k/n] INSTRUCTION`.
    Step { number: usize, title: String },
    /// The step was found in the cache.
    Cached { number: usize },
    /// A line of a RUN step's output.
    Output { number: usize, line: String },
    /// The step finished.
    Done { number: usize },
    /// Something docker warns about (unused build args, deprecated syntax).
    Warning(String),
    /// A line of a FROM image's pull (docker's `Pulling from`, layer states, `Digest:`).
    Pull(String),
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Dockerfile(#[from] wharf_build::DockerfileError),
    #[error(transparent)]
    Plan(#[from] wharf_build::stages::PlanError),
    #[error(transparent)]
    Expand(#[from] wharf_build::expand::ExpandError),
    #[error("{file}: {error}")]
    Ignore {
        file: String,
        error: wharf_build::dockerignore::IgnoreError,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {limit} bytes at most")]
    TooLarge { path: String, limit: u64 },
    #[error("{path:?} is outside the {root}")]
    ContextEscape { path: String, root: String },
    #[error("{path:?} not found in the {root}")]
    SourceNotFound { path: String, root: String },
    #[error("{path:?}: too many entries")]
    TooManyEntries { path: String },
    #[error("base image {0:?} not found: not in the store and not pulled")]
    BaseNotFound(String),
    #[error("line {line}: {what} is not supported by wharf build yet")]
    Unsupported { line: usize, what: String },
    #[error("line {line}: invalid {what} {value:?}")]
    Invalid {
        line: usize,
        what: &'static str,
        value: String,
    },
    /// docker's words (its classic builder's); the output was streamed as it came.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("invalid --secret {spec:?}: {why}")]
    SecretSpec { spec: String, why: &'static str },
    #[error(
        "line {line}: no source files were specified: {pattern:?} matches nothing in the {root}"
    )]
    NoMatch {
        line: usize,
        pattern: String,
        root: String,
    },
    #[error("line {line}: unable to find {file} entry {name:?}: no matching entries in the image's /etc/{file} file")]
    UnknownId {
        line: usize,
        file: &'static str,
        name: String,
    },
    #[error("line {line}: ADD {url}: {source}")]
    Fetch {
        line: usize,
        url: String,
        #[source]
        source: wharf_registry::client::ClientError,
    },
    #[error("line {line}: ADD {url}: digest mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        line: usize,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("secret {id}: {why}")]
    SecretMissing { id: String, why: String },
    #[error("build cancelled by signal {signal}")]
    Cancelled { signal: i32 },
}

impl BuildError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        BuildError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

impl HasKind for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Dockerfile(e) => e.kind(),
            BuildError::Plan(e) => e.kind(),
            BuildError::Expand(e) => e.kind(),
            BuildError::Image(e) => e.kind(),
            BuildError::Engine(e) => e.kind(),
            BuildError::Io { .. } | BuildError::RunFailed { .. } => ErrorKind::Internal,
            BuildError::Cancelled { .. } | BuildError::Fetch { .. } => ErrorKind::Unavailable,
            BuildError::ChecksumMismatch { .. } => ErrorKind::InvalidArgument,
            BuildError::SourceNotFound { .. }
            | BuildError::BaseNotFound(_)
            | BuildError::NoMatch { .. }
            | BuildError::UnknownId { .. }
            | BuildError::SecretMissing { .. } => ErrorKind::NotFound,
            BuildError::Unsupported { .. } => ErrorKind::NotImplemented,
            BuildError::Ignore { .. }
            | BuildError::TooLarge { .. }
            | BuildError::ContextEscape { .. }
            | BuildError::TooManyEntries { .. }
            | BuildError::SecretSpec { .. }
            | BuildError::Invalid { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// `Err(Cancelled)` once the caller's flag is set.
fn check_cancel(req: &BuildRequest) -> Result<(), BuildError> {
    match req
        .cancel
        .as_ref()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    {
        Some(signal) if signal != 0 => Err(BuildError::Cancelled { signal }),
        _ => Ok(()),
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, BuildError> {
    let f = std::fs::File::open(path).map_err(|e| BuildError::io("open", path, e))?;
    let mut data = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| BuildError::io("read", path, e))?;
    if data.len() as u64 > MAX_FILE {
        return Err(BuildError::TooLarge {
            path: path.display().to_string(),
            limit: MAX_FILE,
        });
    }
    Ok(data)
}

/// A stage's state between steps.
#[derive(Clone)]
struct StageState {
    /// The last image made (None: scratch, nothing yet).
    image: Option<Digest>,
    config: RunConfig,
    /// History entries of metadata steps since `image`.
    pending: Vec<History>,
    /// The chain key so far.
    key: String,
    /// ARGs in scope, `K=v`.
    args: Vec<String>,
    shell: Vec<String>,
    cmd_set: bool,
    /// The reference the stage comes FROM (through earlier stages; None: scratch): the name
    /// its RUN containers carry for the admin policy.
    base_name: Option<String>,
}

fn chain(key: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    for p in parts {
        h.update(b"\0");
        h.update(p);
    }
    Digest::from_hasher(h).hex().to_string()
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// A temp tree removed on drop.
struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A step's container, removed on drop (success, failure or error alike).
struct StepContainer<'a> {
    engine: &'a Engine,
    id: String,
}

impl Drop for StepContainer<'_> {
    fn drop(&mut self) {
        let _ = self.engine.remove_container(&self.id, true, true);
    }
}

fn parse_chmod(line: usize, v: &str) -> Result<u32, BuildError> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or(BuildError::Invalid {
            line,
            what: "--chmod",
            value: v.to_string(),
        })
}

impl Engine {
    fn cache_dir(&self) -> PathBuf {
        self.root().join("build-cache")
    }

    fn cache_get(&self, key: &str) -> Option<(Digest, RunConfig)> {
        let mut data = Vec::new();
        std::fs::File::open(self.cache_dir().join(key))
            .ok()?
            .take(256)
            .read_to_end(&mut data)
            .ok()?;
        let text = std::str::from_utf8(&data).ok()?;
        let id: Digest = text.trim().parse().ok()?;
        let image = self.store.resolve_image(&id.to_string()).ok()?;
        Some((image.id, image.config.config))
    }

    fn cache_put(&self, key: &str, id: &Digest) -> Result<(), BuildError> {
        let dir = self.cache_dir();
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("create", &dir, e))?;
        wharf_sys::atomic::write_file(&dir.join(key), id.to_string().as_bytes(), 0o644)
            .map_err(|e| BuildError::io("write", &dir.join(key), e))
    }

    fn scratch_dir(&self, what: &str) -> Result<TempTree, BuildError> {
        let base = self.root().join("build-tmp");
        std::fs::create_dir_all(&base).map_err(|e| BuildError::io("create", &base, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| BuildError::io("create", &dir, e))?;
        Ok(TempTree(dir))
    }

    /// Removes the RUN step containers of builders that are gone (a build killed by Ctrl-C
    /// or a signal leaves its step container; the next build takes it away).
    fn reap_step_containers(&self) {
        let Ok(all) = self.containers(true) else {
            return;
        };
        for info in all {
            let Some(owner) = info.record.config.labels.get(STEP_LABEL) else {
                continue;
            };
            let mut it = owner.split_whitespace();
            let pid = it.next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0);
            let start = it.next().and_then(|s| s.parse::<u64>().ok());
            if start.is_none() || crate::state::process_start_time(pid) != start {
                let _ = self.remove_container(info.record.id.as_str(), true, true);
            }
        }
    }

    /// `build`: runs the Dockerfile's needed stages and tags the target's image.
    pub fn build(
        &self,
        req: &BuildRequest,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<Built, BuildError> {
        let df_path = req
            .dockerfile
            .clone()
            .unwrap_or_else(|| req.context.join("Dockerfile"));
        // the names first: a refused or malformed tag stops the build before any step
        let mut tags = Vec::new();
        for t in &req.tags {
            let r = wharf_types::ImageRef::parse(t).map_err(ImageError::from)?;
            if r.digest().is_some() {
                return Err(ImageError::TagWithDigest.into());
            }
            let full = match r.tag() {
                None => format!("{}:latest", r.familiar()),
                Some(_) => r.familiar(),
            };
            self.policy_image("build", &full, true)?;
            tags.push(full);
        }
        self.reap_step_containers();
        let text = match &req.dockerfile_text {
            Some(t) => t.clone(),
            None => read_capped(&df_path)?,
        };
        // the host owner's approval, on the bytes as read, before anything else
        let df_digest = Digest::of(&text);
        self.policy_build(&df_digest)?;
        let df = wharf_build::parse(&text)?;
        for w in &df.warnings {
            progress(BuildProgress::Warning(format!(
                "line {}: {}",
                w.line, w.message
            )));
        }
        let host = wharf_types::oci::Platform {
            os: "linux".to_string(),
            architecture: wharf_types::oci::host_architecture().to_string(),
            variant: None,
        };
        let plan = wharf_build::stages::plan(
            &df,
            &BuildOptions {
                target: req.target.clone(),
                build_args: req.build_args.clone(),
                target_platform: host.clone(),
                build_platform: host,
            },
        )?;
        if !plan.unused_build_args.is_empty() {
            progress(BuildProgress::Warning(format!(
                "one or more build-args {:?} were not consumed",
                plan.unused_build_args
            )));
        }
        // the base images of the stages built, by the same rules as `run`'s (and pulled),
        // before any step
        self.ensure_bases(req, &plan, progress)?;
        let cache_from = self.cache_images(req, progress)?;
        // .dockerignore next to the Dockerfile (`<name>.dockerignore`) or in the context
        let mut ignore = None;
        let df_name = df_path.file_name().map(|n| n.to_string_lossy().to_string());
        let mut candidates = Vec::new();
        if let (Some(n), Some(dir)) = (&df_name, df_path.parent()) {
            candidates.push(dir.join(format!("{n}.dockerignore")));
        }
        candidates.push(req.context.join(".dockerignore"));
        for c in candidates {
            if c.is_file() {
                let text = String::from_utf8_lossy(&read_capped(&c)?).to_string();
                ignore = Some(
                    Dockerignore::parse(&text).map_err(|error| BuildError::Ignore {
                        file: c.display().to_string(),
                        error,
                    })?,
                );
                break;
            }
        }
        let ctx = std::fs::File::open(&req.context)
            .map_err(|e| BuildError::io("open", &req.context, e))?;
        let root = Root {
            fd: ctx.as_fd(),
            name: "build context".to_string(),
            ignore: ignore.as_ref(),
        };
        let provenance = BTreeMap::from([
            (DOCKERFILE_LABEL.to_string(), df_digest.to_string()),
            (
                CONTEXT_LABEL.to_string(),
                self.context_digest(&root, &req.context)?.to_string(),
            ),
        ]);

        let mut number = 0usize;
        let mut built: BTreeMap<usize, Digest> = BTreeMap::new();
        let mut base_names: BTreeMap<usize, Option<String>> = BTreeMap::new();
        let escape = df.directives.escape;
        for &si in &plan.order {
            let stage = &plan.stages[si];
            let label = stage.name.clone().unwrap_or_else(|| format!("stage-{si}"));
            let steps = stage.instructions.len() + 1;
            let title = |k: usize, text: &str| format!("[{label} {k}/{steps}] {text}");
            number += 1;
            progress(BuildProgress::Step {
                number,
                title: title(1, &format!("FROM {}", from_text(&plan, &stage.base))),
            });
            let mut st = self.stage_base(&plan, &stage.base, &built, &base_names)?;
            progress(BuildProgress::Done { number });
            // the base's ONBUILD triggers run first, as if written after FROM; the stage's
            // image does not keep them
            let triggers = match st.config.on_build.take() {
                Some(t) if !t.is_empty() => t,
                _ => Vec::new(),
            };
            // one instruction: announced, expanded with the stage's ARGs and ENV, run or
            // taken from the cache
            let run_one = |st: &mut StageState,
                           ins: &Instruction,
                           number: usize,
                           title: String,
                           progress: &mut dyn FnMut(BuildProgress)|
             -> Result<(), BuildError> {
                progress(BuildProgress::Step { number, title });
                let mut vars = st.args.clone();
                vars.extend(st.config.env.clone().unwrap_or_default());
                let mut ins = wharf_build::expand::expand(ins, escape, &vars)?;
                copy::expand_inline(&mut ins, escape, &vars)?;
                let cached = self.step(
                    req,
                    &plan,
                    &root,
                    &built,
                    st,
                    &ins,
                    number,
                    &cache_from,
                    progress,
                )?;
                progress(if cached {
                    BuildProgress::Cached { number }
                } else {
                    BuildProgress::Done { number }
                });
                Ok(())
            };
            for trigger in &triggers {
                check_cancel(req)?;
                let df = wharf_build::parse_str(&format!("FROM scratch\n{trigger}\n"))?;
                let Some(ins) = df.instructions.get(1) else {
                    continue;
                };
                number += 1;
                run_one(
                    &mut st,
                    ins,
                    number,
                    format!("[{label} ONBUILD] {trigger}"),
                    progress,
                )?;
            }
            for (k, ins) in stage.instructions.iter().enumerate() {
                check_cancel(req)?;
                number += 1;
                run_one(&mut st, ins, number, title(k + 2, &ins.original), progress)?;
            }
            // the target gets the --label labels, then the provenance labels (which no
            // --label can override)
            if si == plan.target {
                let mut extra = req.labels.clone();
                extra.extend(provenance.clone());
                let mut labels = st.config.labels.clone().unwrap_or_default();
                labels.extend(extra.clone());
                st.config.labels = Some(labels);
                let text = serde_json::to_string(&extra).unwrap_or_default();
                st.key = chain(&st.key, &[b"labels", text.as_bytes()]);
            }
            let id = self.materialize(req, &mut st)?;
            built.insert(si, id);
            base_names.insert(si, st.base_name.clone());
        }
        let id = built
            .get(&plan.target)
            .cloned()
            .ok_or(BuildError::Plan(wharf_build::stages::PlanError::NoStages))?;
        for full in &tags {
            self.tag_image(&crate::images::TagRequest {
                source: id.to_string(),
                target: full.clone(),
            })?;
        }
        Ok(Built { id, tags })
    }

    /// `build -`: the context is the tar read from `tar` (plain; unpacked with the store's
    /// layer rules into a temp dir removed afterwards); a relative `dockerfile` names a file
    /// inside it.
    pub fn build_from_tar(
        &self,
        req: &BuildRequest,
        tar: &mut dyn Read,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<Built, BuildError> {
        let scratch = self.scratch_dir("context")?;
        let ctx = scratch.0.join("ctx");
        std::fs::create_dir(&ctx).map_err(|e| BuildError::io("create", &ctx, e))?;
        wharf_store::layer::apply_layer(&ctx, context::TarEnd::new(tar)).map_err(|e| {
            BuildError::io(
                "extract",
                Path::new("-"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        })?;
        let mut req = req.clone();
        if let Some(df) = &req.dockerfile {
            let inside = df.to_str().and_then(context::clean_inside).ok_or_else(|| {
                BuildError::ContextEscape {
                    path: df.display().to_string(),
                    root: "build context".to_string(),
                }
            })?;
            req.dockerfile = Some(ctx.join(inside));
        }
        req.context = ctx;
        self.build(&req, progress)
    }

    fn stage_base(
        &self,
        plan: &Plan,
        base: &Base,
        built: &BTreeMap<usize, Digest>,
        names: &BTreeMap<usize, Option<String>>,
    ) -> Result<StageState, BuildError> {
        let (image, config, base_name) = match base {
            Base::Scratch => (None, RunConfig::default(), None),
            Base::Stage(i) => {
                let id = built
                    .get(i)
                    .ok_or_else(|| BuildError::BaseNotFound(format!("stage {i}")))?;
                let img = self
                    .store
                    .resolve_image(&id.to_string())
                    .map_err(ImageError::from)?;
                (
                    Some(img.id),
                    img.config.config,
                    names.get(i).cloned().flatten(),
                )
            }
            Base::Image(name) => {
                let img = self
                    .store
                    .resolve_image(name)
                    .map_err(|_| BuildError::BaseNotFound(name.clone()))?;
                (Some(img.id), img.config.config, Some(name.clone()))
            }
        };
        let _ = plan;
        let key = match &image {
            Some(id) => chain("", &[b"from", id.to_string().as_bytes()]),
            None => chain("", &[b"scratch"]),
        };
        // SHELL is inherited from the base image, as docker does
        let shell = config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
        Ok(StageState {
            image,
            config,
            pending: Vec::new(),
            key,
            args: Vec::new(),
            shell,
            cmd_set: false,
            base_name,
        })
    }

    /// The stage's image with its pending history (cached like a step).
    fn materialize(&self, req: &BuildRequest, st: &mut StageState) -> Result<Digest, BuildError> {
        if let (Some(id), true) = (&st.image, st.pending.is_empty()) {
            // unless the config changed since (the target's labels)
            let same = self
                .store
                .resolve_image(&id.to_string())
                .is_ok_and(|img| img.config.config == st.config);
            if same {
                return Ok(id.clone());
            }
        }
        let key = chain(&st.key, &[b"image"]);
        if !req.no_cache {
            if let Some((id, config)) = self.cache_get(&key) {
                st.image = Some(id.clone());
                st.config = config;
                st.pending.clear();
                return Ok(id);
            }
        }
        let id = self
            .store
            .build_step(
                st.image.as_ref(),
                None,
                &st.config,
                std::mem::take(&mut st.pending),
            )
            .map_err(ImageError::from)?;
        self.cache_put(&key, &id)?;
        st.image = Some(id.clone());
        Ok(id)
    }

    /// One instruction; returns whether it came from the cache.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        req: &BuildRequest,
        plan: &Plan,
        ctx: &Root,
        built: &BTreeMap<usize, Digest>,
        st: &mut StageState,
        ins: &Instruction,
        number: usize,
        cache_from: &[sources::CacheImage],
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<bool, BuildError> {
        let line = ins.start_line;
        let meta = |st: &mut StageState, text: String| {
            st.pending.push(History {
                created_by: Some(text),
                comment: Some(COMMENT.to_string()),
                empty_layer: true,
                ..Default::default()
            });
        };
        st.key = chain(&st.key, &[ins.original.as_bytes()]);
        let c = &mut st.config;
        match &ins.command {
            Command::Env { pairs } => {
                let mut env = c.env.take().unwrap_or_default();
                for p in pairs {
                    set_env(&mut env, &p.key, &p.value);
                }
                c.env = Some(env);
                let text = pairs
                    .iter()
                    .map(|p| format!("{}={}", p.key, p.value))
                    .collect::<Vec<_>>()
                    .join(" ");
                meta(st, format!("ENV {text}"));
            }
            Command::Arg { args } => {
                for a in args {
                    let v = plan.stage_arg(&a.name, a.default.as_deref());
                    if let Some(v) = v {
                        st.key = chain(&st.key, &[a.name.as_bytes(), v.as_bytes()]);
                        st.args.push(format!("{}={v}", a.name));
                    }
                }
            }
            Command::Label { pairs } => {
                let mut labels = c.labels.take().unwrap_or_default();
                for p in pairs {
                    labels.insert(p.key.clone(), p.value.clone());
                }
                c.labels = Some(labels);
                let text = pairs
                    .iter()
                    .map(|p| format!("{}={}", p.key, p.value))
                    .collect::<Vec<_>>()
                    .join(" ");
                meta(st, format!("LABEL {text}"));
            }
            Command::Workdir { path } => {
                let cur = c
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".to_string());
                let joined = Path::new(&cur).join(path);
                c.working_dir = Some(joined.display().to_string());
                meta(st, format!("WORKDIR {}", joined.display()));
            }
            Command::User { user } => {
                c.user = Some(user.clone());
                meta(st, format!("USER {user}"));
            }
            Command::Expose { ports } => {
                let mut map = c.exposed_ports.take().unwrap_or_default();
                for p in ports {
                    let p = if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    };
                    map.insert(p, serde_json::json!({}));
                }
                c.exposed_ports = Some(map);
                meta(st, format!("EXPOSE map[{}]", ports.join(" ")));
            }
            Command::Volume { paths } => {
                let mut map = c.volumes.take().unwrap_or_default();
                for p in paths {
                    map.insert(p.clone(), serde_json::json!({}));
                }
                c.volumes = Some(map);
                meta(st, format!("VOLUME {paths:?}"));
            }
            Command::StopSignal { signal } => {
                c.stop_signal = Some(signal.clone());
                meta(st, format!("STOPSIGNAL {signal}"));
            }
            Command::Shell { shell } => {
                st.shell = shell.clone();
                c.shell = Some(shell.clone());
                meta(st, format!("SHELL {shell:?}"));
            }
            Command::Maintainer { .. } => meta(st, ins.original.clone()),
            Command::Onbuild(o) => {
                c.on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression.clone());
                meta(st, ins.original.clone());
            }
            Command::Healthcheck(h) => {
                c.healthcheck = Some(match h {
                    Healthcheck::None => wharf_types::oci::HealthConfig {
                        test: vec!["NONE".to_string()],
                        ..Default::default()
                    },
                    Healthcheck::Cmd {
                        test,
                        interval,
                        timeout,
                        start_period,
                        retries,
                        ..
                    } => wharf_types::oci::HealthConfig {
                        test: test.clone(),
                        interval: *interval,
                        timeout: *timeout,
                        start_period: *start_period,
                        retries: retries.map(i64::from),
                    },
                });
                meta(st, ins.original.clone());
            }
            Command::Cmd(cl) => {
                let argv = argv_of(&st.shell, cl, line)?;
                st.config.cmd = Some(argv.clone());
                st.cmd_set = true;
                meta(st, format!("CMD {argv:?}"));
            }
            Command::Entrypoint(cl) => {
                let argv = argv_of(&st.shell, cl, line)?;
                st.config.entrypoint = Some(argv.clone());
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                meta(st, format!("ENTRYPOINT {argv:?}"));
            }
            Command::From(_) => {}
            Command::Run(run) => {
                return self.run_instruction(
                    req, plan, built, ctx, st, run, line, number, cache_from, progress,
                );
            }
            Command::Copy(cp) => {
                let (root_holder, root_name);
                let mount;
                let src_root = match &cp.from {
                    None => None,
                    Some(from) => {
                        let image = self.source_image(plan, built, from)?;
                        st.key = chain(&st.key, &[b"from", image.to_string().as_bytes()]);
                        mount = self.mount_image(&image)?;
                        root_holder = mount
                            .0
                            .fd()
                            .try_clone_to_owned()
                            .map_err(|e| BuildError::io("dup", Path::new(from), e))?;
                        root_name = format!("stage {from}");
                        Some((root_holder, root_name))
                    }
                };
                let root = match &src_root {
                    Some((fd, name)) => Root {
                        fd: fd.as_fd(),
                        name: name.clone(),
                        ignore: None,
                    },
                    None => Root {
                        fd: ctx.fd,
                        name: ctx.name.clone(),
                        ignore: ctx.ignore,
                    },
                };
                return self.copy_step(req, st, &root, &cp.spec, CopyKind::Copy, ins, cache_from);
            }
            Command::Add(add) => {
                if add.spec.sources.iter().any(|s| url::is_remote(s)) {
                    return self.add_urls(req, st, add, ins, cache_from);
                }
                if let Some(c) = &add.checksum {
                    return Err(BuildError::Invalid {
                        line,
                        what: "ADD --checksum (only for a URL source)",
                        value: c.clone(),
                    });
                }
                return self.copy_step(req, st, ctx, &add.spec, CopyKind::Add, ins, cache_from);
            }
        }
        Ok(false)
    }

    /// Mounts an image read-only in a private mount namespace (as `export` does).
    fn mount_image(
        &self,
        image: &Digest,
    ) -> Result<(wharf_runtime::exec::DetachedRootfs, TempTree), BuildError> {
        let lower = self.store.image_layers(image).map_err(ImageError::from)?;
        let scratch = self.scratch_dir("from")?;
        let (u, w, target) = (
            scratch.0.join("upper"),
            scratch.0.join("work"),
            scratch.0.join("merged"),
        );
        for d in [&u, &w, &target] {
            std::fs::create_dir(d).map_err(|e| BuildError::io("create", d, e))?;
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
                name: image.to_string(),
                error,
            }
        })?;
        // the mount goes before its directories
        Ok((mounted, scratch))
    }

    /// Whether `rel` is a directory in `image` (`COPY f /usr/bin` copies into it, as docker
    /// does): the topmost layer that has the path decides; a symlink on the way is not
    /// followed (answers no).
    fn is_dir_in_image(&self, image: Option<&Digest>, rel: &Path) -> bool {
        if rel.as_os_str().is_empty() {
            return true;
        }
        let Some(layers) = image.and_then(|i| self.store.image_layers(i).ok()) else {
            return false;
        };
        for layer in layers {
            let Ok(dir) = std::fs::File::open(&layer) else {
                return false;
            };
            match wharf_sys::fs::open_beneath_nofollow(
                dir.as_fd(),
                rel,
                nix::libc::O_PATH | nix::libc::O_DIRECTORY,
            ) {
                Ok(_) => return true,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => continue,
                Err(_) => return false,
            }
        }
        false
    }

    fn cached(&self, req: &BuildRequest, st: &mut StageState) -> bool {
        if req.no_cache {
            return false;
        }
        match self.cache_get(&st.key) {
            Some((id, config)) => {
                st.image = Some(id);
                st.config = config;
                st.pending.clear();
                true
            }
            None => false,
        }
    }

    fn commit_step(
        &self,
        st: &mut StageState,
        tar: Option<&mut dyn Read>,
        created_by: String,
    ) -> Result<(), BuildError> {
        let mut history = std::mem::take(&mut st.pending);
        history.push(History {
            created_by: Some(created_by),
            comment: Some(COMMENT.to_string()),
            ..Default::default()
        });
        let id = self
            .store
            .build_step(st.image.as_ref(), tar, &st.config, history)
            .map_err(ImageError::from)?;
        self.cache_put(&st.key, &id)?;
        st.image = Some(id);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &self,
        req: &BuildRequest,
        st: &mut StageState,
        root: &Root,
        spec: &CopySpec,
        kind: CopyKind,
        ins: &Instruction,
        cache_from: &[sources::CacheImage],
    ) -> Result<bool, BuildError> {
        let line = ins.start_line;
        let parents = copy::parents_of(ins, line)?;
        let mut sources = Vec::new();
        for rel in copy::resolve_sources(root, &spec.sources, line)? {
            let s = &rel.to_string_lossy().to_string();
            if let Some(ig) = root.ignore {
                if !rel.as_os_str().is_empty() && ig.excluded(&rel.to_string_lossy()) {
                    return Err(BuildError::SourceNotFound {
                        path: s.clone(),
                        root: root.name.clone(),
                    });
                }
            }
            sources.push(rel);
        }
        // --exclude: one matcher per source (its patterns are relative to it)
        let mut excludes = Vec::new();
        for s in &sources {
            excludes.push(copy::exclude_matcher(root, s, &spec.exclude)?);
        }
        let roots: Vec<Root> = excludes
            .iter()
            .map(|m| Root {
                fd: root.fd,
                name: root.name.clone(),
                ignore: m.as_ref().or(root.ignore),
            })
            .collect();
        let keep: Vec<bool> = sources
            .iter()
            .zip(&excludes)
            .map(|(s, m)| !copy::source_excluded(root, s, m.as_ref()))
            .collect();
        let owner = Owner {
            uid_gid: spec
                .chown
                .as_deref()
                .map(|v| self.resolve_chown(st.image.as_ref(), v, line))
                .transpose()?,
            chmod: spec
                .chmod
                .as_deref()
                .map(|v| parse_chmod(line, v))
                .transpose()?,
        };
        let mut h = Sha256::new();
        for ((s, r), keep) in sources.iter().zip(&roots).zip(&keep) {
            if *keep {
                context::hash_source(r, s, &mut h)?;
            }
        }
        for f in &spec.inline {
            h.update(f.name.as_bytes());
            h.update(b"\0");
            h.update(f.content.as_bytes());
            h.update(b"\0");
        }
        let hash = Digest::from_hasher(h).hex().to_string();
        st.key = chain(&st.key, &[b"sources", hash.as_bytes()]);
        let created_by = format!(
            "{} {}",
            if kind == CopyKind::Copy {
                "COPY"
            } else {
                "ADD"
            },
            ins.original
                .split_once(char::is_whitespace)
                .map(|(_, r)| r.trim())
                .unwrap_or_default()
        );
        if self.cached(req, st) || self.cache_from_step(cache_from, st, &created_by)? {
            return Ok(true);
        }
        // the destination, relative to WORKDIR; a directory when it ends in `/`, or when
        // there are several sources
        let workdir = st
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string());
        let dest_abs = Path::new(&workdir).join(&spec.dest);
        let dest_rel: PathBuf = dest_abs
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        // (--link: the layer is made without looking at the image below)
        let dest_is_dir = spec.dest.ends_with('/')
            || sources.len() + spec.inline.len() > 1
            || spec.dest == "."
            || parents
            || (!spec.link && self.is_dir_in_image(st.image.as_ref(), &dest_rel));
        let stage_dir = self.scratch_dir("copy")?;
        let tree = stage_dir.0.join("tree");
        std::fs::create_dir(&tree).map_err(|e| BuildError::io("create", &tree, e))?;
        for ((s, root), keep) in sources.iter().zip(&roots).zip(&keep) {
            if !*keep {
                continue;
            }
            let fd = wharf_sys::fs::open_beneath_nofollow(
                root.fd,
                if s.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    s
                },
                nix::libc::O_RDONLY,
            )
            .map_err(|e| BuildError::io("open", s, e))?;
            let mut file = std::fs::File::from(fd);
            let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
            // --parents: the source's directories are kept under the destination
            let dest_rel = match (parents, is_dir) {
                (false, _) => dest_rel.clone(),
                (true, true) => dest_rel.join(s),
                (true, false) => dest_rel.join(s.parent().unwrap_or(Path::new(""))),
            };
            let target = if is_dir || dest_is_dir {
                let d = tree.join(&dest_rel);
                mkdirs(&tree, &dest_rel)?;
                if is_dir {
                    d
                } else {
                    d.join(s.file_name().unwrap_or_default())
                }
            } else {
                if let Some(p) = dest_rel.parent() {
                    mkdirs(&tree, p)?;
                }
                tree.join(&dest_rel)
            };
            if kind == CopyKind::Add
                && !is_dir
                && copy::add_archive(&mut file, &tree, &dest_rel, s, line)?
            {
                continue;
            }
            context::copy_source(root, s, &target, owner)?;
        }
        for f in &spec.inline {
            let target = if dest_is_dir {
                mkdirs(&tree, &dest_rel)?;
                tree.join(&dest_rel).join(&f.name)
            } else {
                if let Some(p) = dest_rel.parent() {
                    mkdirs(&tree, p)?;
                }
                tree.join(&dest_rel)
            };
            copy::write_inline(&target, &f.content, owner)?;
        }
        let tar_path = stage_dir.0.join("layer.tar");
        let mut out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tar_path)
            .map_err(|e| BuildError::io("create", &tar_path, e))?;
        {
            let tree_fd =
                std::fs::File::open(&tree).map_err(|e| BuildError::io("open", &tree, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut out);
            diff::write_tar(tree_fd.as_fd(), TreeKind::Plain, &[], &mut w)
                .map_err(wharf_store::StoreError::from)
                .map_err(ImageError::from)?;
            w.flush()
                .map_err(|e| BuildError::io("write", &tar_path, e))?;
        }
        out.rewind()
            .map_err(|e| BuildError::io("read", &tar_path, e))?;
        self.commit_step(st, Some(&mut out as &mut dyn Read), created_by)?;
        Ok(false)
    }
}

/// What a COPY-like step is: ADD extracts local tars, ADD of URLs does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyKind {
    Copy,
    Add,
    AddUrl,
}

/// `rel`'s directories created below `tree`, 0755 (as BuildKit creates missing parents).
fn mkdirs(tree: &Path, rel: &Path) -> Result<(), BuildError> {
    let mut p = tree.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match std::fs::create_dir(&p) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| BuildError::io("chmod", &p, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BuildError::io("create", &p, e)),
        }
    }
    Ok(())
}

fn from_text(plan: &Plan, base: &Base) -> String {
    match base {
        Base::Scratch => "scratch".to_string(),
        Base::Image(n) => n.clone(),
        Base::Stage(i) => plan.stages[*i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}")),
    }
}

/// A RUN/CMD/ENTRYPOINT command as argv: exec form as is, shell form through the stage's
/// SHELL.
fn argv_of(shell: &[String], cl: &CommandLine, line: usize) -> Result<Vec<String>, BuildError> {
    if !cl.heredocs.is_empty() {
        return Err(BuildError::Unsupported {
            line,
            what: "heredocs in RUN/CMD/ENTRYPOINT".to_string(),
        });
    }
    if cl.shell_form {
        let mut v = shell.to_vec();
        v.push(cl.args.join(" "));
        Ok(v)
    } else {
        Ok(cl.args.clone())
    }
}
