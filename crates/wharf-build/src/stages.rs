//! The build plan: which stages a build runs and in what order, as BuildKit decides it.
//!
//! - Stages are numbered from 0 in file order and named by `AS name` (lower case).
//! - ARGs before the first FROM are the global ("meta") args: only FROM lines see them
//!   (with the automatic platform args `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
//!   `TARGETVARIANT`, `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT`); a stage
//!   sees a global arg only after re-declaring it (`ARG NAME` without a default).
//! - A value given with `--build-arg` wins over any default. The proxy args (`HTTP_PROXY`,
//!   `https_proxy`, ... [`PREDEFINED_ARGS`]) need no declaration; a build arg that no built
//!   stage and no global ARG declares is reported in [`Plan::unused_build_args`].
//! - Dependencies: `FROM <earlier stage>`, `COPY --from=<stage|index>`, `RUN
//!   --mount=from=<stage|index>`; any other `--from` names an image. A cycle is refused;
//!   stages the target does not need are left out of [`Plan::order`].
//!
//! `--from` values are expanded with what the plan knows: global args, the stage's ARGs
//! and its ENVs so far. A variable that only the base image's config sets is not known
//! here (the executor slice can re-check with the image's environment).
//!
//! What it must not do: read the context, pull, or run anything.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use wharf_types::oci::Platform;

use crate::dockerfile::ArgDecl;
use crate::dockerfile::{Command, Dockerfile, Instruction};
use crate::expand::{expand, ExpandError};

/// Build args docker passes without an ARG instruction (to RUN steps only) and never reports
/// as unused.
pub const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Args the builder itself reads; never reported as unused.
const BUILDER_ARGS: &[&str] = &[
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_SYNTAX",
    "BUILDKIT_CACHE_MOUNT_NS",
    "SOURCE_DATE_EPOCH",
];

/// What the caller chose for this build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("dockerfile parse error on line {line}: no build stage in current context")]
    InstructionBeforeFrom { line: usize },
    #[error("no build stage in current context")]
    NoStages,
    #[error("dockerfile parse error on line {line}: duplicate stage name {name:?}")]
    DuplicateStage { line: usize, name: String },
    #[error("dockerfile parse error on line {line}: base name ({base}) should not be blank")]
    BlankBase { line: usize, base: String },
    #[error("failed to reach build target {0} in Dockerfile")]
    TargetNotFound(String),
    #[error("dockerfile parse error on line {line}: invalid from flag value {value}: refers to current or future build stage")]
    FutureStage { line: usize, value: String },
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
    #[error(transparent)]
    Expand(#[from] ExpandError),
}

impl wharf_types::error::HasKind for PlanError {
    fn kind(&self) -> wharf_types::ErrorKind {
        match self {
            PlanError::TargetNotFound(_) => wharf_types::ErrorKind::NotFound,
            _ => wharf_types::ErrorKind::InvalidArgument,
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    Scratch,
    /// An image reference, expanded with the global args (not yet validated: the engine
    /// parses it when it resolves the image).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// What a stage needs from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The FROM line.
    pub line: usize,
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// The instructions after FROM, as parsed (unexpanded).
    pub instructions: Vec<Instruction>,
    /// Stages and images `COPY --from` / `RUN --mount=from=` use (not the base), sorted.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The global args with their values (None: declared without a value).
    pub global_args: Vec<(String, Option<String>)>,
    /// Every stage, in file order.
    pub stages: Vec<Stage>,
    /// The stages to build, each after the stages it needs; the target is last.
    pub order: Vec<usize>,
    pub target: usize,
    /// Build args given but declared nowhere that matters, sorted: docker's "One or more
    /// build-args [...] were not consumed".
    pub unused_build_args: Vec<String>,
    #[serde(skip)]
    build_args: BTreeMap<String, String>,
    #[serde(skip)]
    platform_args: Vec<(String, String)>,
    /// Stage name → index (a map: a hostile file may have a million stages).
    #[serde(skip)]
    names: HashMap<String, usize>,
}

fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
        _ => format!("{}/{}", p.os, p.architecture),
    }
}

fn platform_args(o: &BuildOptions) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, p) in [("TARGET", &o.target_platform), ("BUILD", &o.build_platform)] {
        out.push((format!("{prefix}PLATFORM"), platform_string(p)));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        ));
    }
    out
}

impl Plan {
    /// The value an `ARG name[=default]` inside a stage takes (`default` already expanded):
    /// the build arg, else the default, else the global arg of that name (or the automatic
    /// platform arg). `None`: declared without a value.
    pub fn stage_arg(&self, name: &str, default: Option<&str>) -> Option<String> {
        if let Some(v) = self.build_args.get(name) {
            return Some(v.clone());
        }
        if let Some(d) = default {
            return Some(d.to_string());
        }
        self.global_args
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
            .or_else(|| {
                self.platform_args
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
    }

    /// The predefined proxy args given as build args: RUN steps see them undeclared.
    pub fn implicit_run_args(&self) -> Vec<(String, String)> {
        self.build_args
            .iter()
            .filter(|(k, _)| PREDEFINED_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The stage a `--target`/`--from` name or index refers to.
    pub fn stage_by_name(&self, name: &str) -> Option<usize> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }
}

/// `KEY=value` lookups in order, last wins.
#[derive(Default, Clone)]
struct Scope(Vec<String>);

impl Scope {
    fn set(&mut self, k: &str, v: &str) {
        self.0.push(format!("{k}={v}"));
    }
}

/// An ARG instruction's declarations, expanded.
fn expanded_args(
    ins: &Instruction,
    escape: char,
    scope: &Scope,
) -> Result<Vec<ArgDecl>, PlanError> {
    Ok(match expand(ins, escape, &scope.0)?.command {
        Command::Arg { args } => args,
        _ => Vec::new(),
    })
}

/// Builds the plan of `df` for `opts`.
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<Plan, PlanError> {
    let escape = df.directives.escape;
    let platform_args = platform_args(opts);

    // the global args, then the stages
    let mut globals: Vec<(String, Option<String>)> = Vec::new();
    let mut global_scope = Scope::default();
    for (k, v) in &platform_args {
        global_scope.set(k, v);
    }
    let mut i = 0;
    while let Some(ins) = df.instructions.get(i) {
        match &ins.command {
            Command::Arg { .. } => {
                for a in expanded_args(ins, escape, &global_scope)? {
                    let v = opts.build_args.get(&a.name).cloned().or(a.default);
                    if let Some(v) = &v {
                        global_scope.set(&a.name, v);
                    }
                    globals.push((a.name, v));
                }
            }
            Command::From(_) => break,
            _ => {
                return Err(PlanError::InstructionBeforeFrom {
                    line: ins.start_line,
                })
            }
        }
        i += 1;
    }

    let mut stages: Vec<Stage> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for ins in &df.instructions[i..] {
        if let Command::From(f) = &ins.command {
            let Command::From(ex) = expand(ins, escape, &global_scope.0)?.command else {
                continue; // expand keeps the instruction's kind
            };
            if ex.image.is_empty() {
                return Err(PlanError::BlankBase {
                    line: ins.start_line,
                    base: f.image.clone(),
                });
            }
            let lower = ex.image.to_ascii_lowercase();
            let base = if lower == "scratch" {
                Base::Scratch
            } else if let Some(&i) = names.get(&lower) {
                Base::Stage(i)
            } else {
                Base::Image(ex.image)
            };
            if let Some(n) = &f.name {
                if names.insert(n.clone(), stages.len()).is_some() {
                    return Err(PlanError::DuplicateStage {
                        line: ins.start_line,
                        name: n.clone(),
                    });
                }
            }
            stages.push(Stage {
                index: stages.len(),
                name: f.name.clone(),
                line: ins.start_line,
                base,
                platform: ex.platform,
                instructions: Vec::new(),
                sources: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.instructions.push(ins.clone());
        }
    }
    if stages.is_empty() {
        return Err(PlanError::NoStages);
    }

    let mut plan = Plan {
        global_args: globals,
        stages,
        order: Vec::new(),
        target: 0,
        unused_build_args: Vec::new(),
        build_args: opts.build_args.clone(),
        platform_args,
        names,
    };

    // sources of each stage, with the args/envs the plan can know
    let mut declared: Vec<Vec<String>> = Vec::new();
    for idx in 0..plan.stages.len() {
        let mut scope = Scope::default();
        let mut names = Vec::new();
        let mut sources = Vec::new();
        for ins in &plan.stages[idx].instructions {
            match &ins.command {
                Command::Arg { .. } => {
                    for a in expanded_args(ins, escape, &scope)? {
                        if let Some(v) = plan.stage_arg(&a.name, a.default.as_deref()) {
                            scope.set(&a.name, &v);
                        }
                        names.push(a.name);
                    }
                }
                Command::Env { .. } => {
                    if let Command::Env { pairs } = expand(ins, escape, &scope.0)?.command {
                        for p in pairs {
                            scope.set(&p.key, &p.value);
                        }
                    }
                }
                Command::Copy(c) if c.from.is_some() => {
                    if let Command::Copy(c) = expand(ins, escape, &scope.0)?.command {
                        let from = c.from.unwrap_or_default();
                        sources.push(resolve_from(&plan, idx, ins.start_line, &from)?);
                    }
                }
                Command::Run(r) if r.mounts.iter().any(|m| m.from.is_some()) => {
                    if let Command::Run(r) = expand(ins, escape, &scope.0)?.command {
                        for from in r.mounts.iter().filter_map(|m| m.from.as_deref()) {
                            sources.push(resolve_from(&plan, idx, ins.start_line, from)?);
                        }
                    }
                }
                _ => {}
            }
        }
        sources.sort();
        sources.dedup();
        plan.stages[idx].sources = sources;
        declared.push(names);
    }

    plan.target = match &opts.target {
        None => plan.stages.len() - 1,
        Some(t) => plan
            .stage_by_name(t)
            .ok_or_else(|| PlanError::TargetNotFound(t.clone()))?,
    };
    plan.order = order(&plan)?;

    let mut used: Vec<&str> = plan.global_args.iter().map(|(n, _)| n.as_str()).collect();
    for &s in &plan.order {
        used.extend(declared[s].iter().map(String::as_str));
    }
    plan.unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| {
            !used.contains(&k.as_str())
                && !PREDEFINED_ARGS.contains(&k.as_str())
                && !BUILDER_ARGS.contains(&k.as_str())
                && !plan.platform_args.iter().any(|(p, _)| p == *k)
        })
        .cloned()
        .collect();
    Ok(plan)
}

fn resolve_from(plan: &Plan, current: usize, line: usize, from: &str) -> Result<Source, PlanError> {
    if !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit()) {
        return match from.parse::<usize>() {
            Ok(i) if i < current => Ok(Source::Stage(i)),
            _ => Err(PlanError::FutureStage {
                line,
                value: from.to_string(),
            }),
        };
    }
    Ok(match plan.stage_by_name(from) {
        Some(i) => Source::Stage(i),
        None => Source::Image(from.to_string()),
    })
}

fn deps(s: &Stage) -> impl Iterator<Item = usize> + '_ {
    let base = match s.base {
        Base::Stage(i) => Some(i),
        _ => None,
    };
    base.into_iter()
        .chain(s.sources.iter().filter_map(|src| match src {
            Source::Stage(i) => Some(*i),
            Source::Image(_) => None,
        }))
}

/// Dependencies first, the target last; a cycle is refused. Iterative (no recursion depth
/// to bound): a stack of (stage, next dependency to visit).
fn order(plan: &Plan) -> Result<Vec<usize>, PlanError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let name = |i: usize| {
        plan.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    };
    let all_deps: Vec<Vec<usize>> = plan.stages.iter().map(|s| deps(s).collect()).collect();
    let mut mark = vec![Mark::New; plan.stages.len()];
    let mut out = Vec::new();
    let mut stack = vec![(plan.target, 0usize)];
    mark[plan.target] = Mark::Visiting;
    while let Some((s, next)) = stack.pop() {
        match all_deps[s].get(next) {
            None => {
                mark[s] = Mark::Done;
                out.push(s);
            }
            Some(&dep) => {
                stack.push((s, next + 1));
                match mark[dep] {
                    Mark::Done => {}
                    Mark::Visiting => return Err(PlanError::Cycle(name(dep))),
                    Mark::New => {
                        mark[dep] = Mark::Visiting;
                        stack.push((dep, 0));
                    }
                }
            }
        }
    }
    Ok(out)
}
