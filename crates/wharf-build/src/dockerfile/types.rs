//! The typed output of the parser. Values are as written (quotes and `$VAR`s still in them):
//! expansion needs the environment at each step and happens in [`crate::expand`].

use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
    pub warnings: Vec<Warning>,
}

/// The parser directives at the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` unless `# escape=`` ` `` said otherwise.
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// Something docker would say but build anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// One instruction: where it is, the logical line as written (continuations joined, flags
/// included), and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub start_line: usize,
    pub end_line: usize,
    pub original: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Command {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Env {
        pairs: Vec<KeyValue>,
    },
    Arg {
        args: Vec<ArgDecl>,
    },
    Label {
        pairs: Vec<KeyValue>,
    },
    Expose {
        ports: Vec<String>,
    },
    Volume {
        paths: Vec<String>,
    },
    User {
        user: String,
    },
    Workdir {
        path: String,
    },
    Shell {
        shell: Vec<String>,
    },
    #[serde(rename = "STOPSIGNAL")]
    StopSignal {
        signal: String,
    },
    Healthcheck(Healthcheck),
    Onbuild(Onbuild),
    Maintainer {
        name: String,
    },
    Copy(Copy),
    Add(Add),
}

impl Command {
    /// The instruction's keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env { .. } => "ENV",
            Command::Arg { .. } => "ARG",
            Command::Label { .. } => "LABEL",
            Command::Expose { .. } => "EXPOSE",
            Command::Volume { .. } => "VOLUME",
            Command::User { .. } => "USER",
            Command::Workdir { .. } => "WORKDIR",
            Command::Shell { .. } => "SHELL",
            Command::StopSignal { .. } => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Onbuild(_) => "ONBUILD",
            Command::Maintainer { .. } => "MAINTAINER",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
        }
    }
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub image: String,
    /// Lower case, as docker compares stage names.
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// The command of RUN, CMD, ENTRYPOINT: exec form (`["a","b"]`, `shell_form` false) or shell
/// form (one string, run by the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    pub args: Vec<String>,
    pub shell_form: bool,
    /// RUN's heredocs (`<<EOF`), in the order they appear on the line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
}

/// A heredoc's body. `content` is as the file has it (tabs already stripped for `<<-`);
/// `expand` is false when the delimiter was quoted (no variable expansion in the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    pub expand: bool,
    pub chomp: bool,
    /// `3<<EOF` redirects file descriptor 3; 0 (stdin) when not given.
    pub fd: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<SecurityMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// `RUN --mount=type=...,...`. Paths, ids and `from` are as written (expanded at the step);
/// numbers are parsed here. `readonly` has docker's default applied (bind, secret and ssh
/// mounts read-only, cache and tmpfs writable); the defaults that depend on other fields
/// are the executor's: a cache's id is its target, its sharing `shared`, a secret's target
/// `/run/secrets/<id>` and its id the target's base name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub readonly: bool,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub required: bool,
    /// `env=NAME` of a secret mount: exposed as an environment variable.
    pub env: Option<String>,
}

/// `ENV`/`LABEL` pair, as written (the value still quoted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One name of an `ARG` instruction, with its default as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [opts] CMD ...`. `test` is docker's: `["CMD", args...]` (exec form) or
    /// `["CMD-SHELL", "command"]`. Durations are nanoseconds (0 or absent: the default).
    Cmd {
        test: Vec<String>,
        interval: Option<i64>,
        timeout: Option<i64>,
        start_period: Option<i64>,
        start_interval: Option<i64>,
        retries: Option<u32>,
    },
}

/// `ONBUILD <instruction>`: stored for the image config, run by a later build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger's keyword, upper case.
    pub trigger: String,
    /// The trigger as written, without `ONBUILD`.
    pub expression: String,
}

/// What COPY and ADD share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopySpec {
    /// Source paths/globs (ADD: also URLs and git refs), as written.
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<EOF /dest`): file name and body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<Heredoc>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Written in JSON form (`COPY ["a b", "/c"]`).
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    #[serde(flatten)]
    pub spec: CopySpec,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    pub parents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    #[serde(flatten)]
    pub spec: CopySpec,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
}
