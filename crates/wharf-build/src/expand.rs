//! Which parts of an instruction the builder expands, as BuildKit's dispatcher does.
//!
//! Expanded (each word through [`Lexer::process_word`], with the step's variables): FROM's
//! image and `--platform` (global ARGs only: the plan does that), ENV and LABEL keys and
//! values, ARG names and defaults, EXPOSE ports (then split at whitespace), VOLUME paths,
//! USER, WORKDIR, STOPSIGNAL, COPY/ADD sources, destination, `--from`, `--chown`,
//! `--chmod`, `--exclude`, `--checksum`, and RUN `--mount` paths, ids and `from`.
//!
//! Not expanded: RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK commands (the shell does that
//! at run time, with the container's environment), ONBUILD triggers (expanded when they
//! run in a later build), MAINTAINER, stage names, and heredoc bodies (the executor expands
//! a body whose `expand` is true when it writes the file).

use crate::dockerfile::{Command, CopySpec, Instruction};
use crate::shell::{Env, Lexer, WordError};

/// A word of an instruction that does not expand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {error}")]
pub struct ExpandError {
    pub line: usize,
    pub error: WordError,
}

impl wharf_types::error::HasKind for ExpandError {
    fn kind(&self) -> wharf_types::ErrorKind {
        wharf_types::ErrorKind::InvalidArgument
    }
}

/// The instruction with the parts docker expands expanded with `env`.
pub fn expand(ins: &Instruction, escape: char, env: &dyn Env) -> Result<Instruction, ExpandError> {
    let at = |error| ExpandError {
        line: ins.start_line,
        error,
    };
    let command = expand_command(&ins.command, &Lexer::new(escape), env).map_err(at)?;
    Ok(Instruction {
        command,
        ..ins.clone()
    })
}

fn opt(lx: &Lexer, env: &dyn Env, v: &Option<String>) -> Result<Option<String>, WordError> {
    v.as_deref().map(|s| lx.process_word(s, env)).transpose()
}

fn all(lx: &Lexer, env: &dyn Env, v: &[String]) -> Result<Vec<String>, WordError> {
    v.iter().map(|s| lx.process_word(s, env)).collect()
}

fn spec(lx: &Lexer, env: &dyn Env, s: &CopySpec) -> Result<CopySpec, WordError> {
    Ok(CopySpec {
        sources: all(lx, env, &s.sources)?,
        inline: s.inline.clone(),
        dest: lx.process_word(&s.dest, env)?,
        chown: opt(lx, env, &s.chown)?,
        chmod: opt(lx, env, &s.chmod)?,
        link: s.link,
        exclude: all(lx, env, &s.exclude)?,
        json: s.json,
    })
}

fn expand_command(c: &Command, lx: &Lexer, env: &dyn Env) -> Result<Command, WordError> {
    use crate::dockerfile::{ArgDecl, Copy, From, KeyValue, Mount, Run};
    let kv = |pairs: &[KeyValue]| -> Result<Vec<KeyValue>, WordError> {
        pairs
            .iter()
            .map(|p| {
                Ok(KeyValue {
                    key: lx.process_word(&p.key, env)?,
                    value: lx.process_word(&p.value, env)?,
                })
            })
            .collect()
    };
    Ok(match c {
        Command::From(f) => Command::From(From {
            image: lx.process_word(&f.image, env)?,
            name: f.name.clone(),
            platform: opt(lx, env, &f.platform)?,
        }),
        Command::Run(r) => Command::Run(Run {
            mounts: r
                .mounts
                .iter()
                .map(|m| {
                    Ok(Mount {
                        target: opt(lx, env, &m.target)?,
                        source: opt(lx, env, &m.source)?,
                        from: opt(lx, env, &m.from)?,
                        id: opt(lx, env, &m.id)?,
                        ..m.clone()
                    })
                })
                .collect::<Result<_, WordError>>()?,
            ..r.clone()
        }),
        Command::Env { pairs } => Command::Env { pairs: kv(pairs)? },
        Command::Label { pairs } => Command::Label { pairs: kv(pairs)? },
        Command::Arg { args } => Command::Arg {
            args: args
                .iter()
                .map(|a| {
                    Ok(ArgDecl {
                        name: lx.process_word(&a.name, env)?,
                        default: opt(lx, env, &a.default)?,
                    })
                })
                .collect::<Result<_, WordError>>()?,
        },
        Command::Expose { ports } => {
            let mut out = Vec::new();
            for p in ports {
                out.extend(
                    lx.process_word(p, env)?
                        .split_whitespace()
                        .map(str::to_string),
                );
            }
            Command::Expose { ports: out }
        }
        Command::Volume { paths } => Command::Volume {
            paths: all(lx, env, paths)?,
        },
        Command::User { user } => Command::User {
            user: lx.process_word(user, env)?,
        },
        Command::Workdir { path } => Command::Workdir {
            path: lx.process_word(path, env)?,
        },
        Command::StopSignal { signal } => Command::StopSignal {
            signal: lx.process_word(signal, env)?,
        },
        Command::Copy(cp) => Command::Copy(Copy {
            spec: spec(lx, env, &cp.spec)?,
            from: opt(lx, env, &cp.from)?,
            parents: cp.parents,
        }),
        Command::Add(a) => Command::Add(crate::dockerfile::Add {
            spec: spec(lx, env, &a.spec)?,
            keep_git_dir: a.keep_git_dir,
            checksum: opt(lx, env, &a.checksum)?,
        }),
        Command::Cmd(_)
        | Command::Entrypoint(_)
        | Command::Shell { .. }
        | Command::Healthcheck(_)
        | Command::Onbuild(_)
        | Command::Maintainer { .. } => c.clone(),
    })
}
