//! Nodes → typed instructions, as BuildKit's `instructions.ParseInstruction`: each keyword's
//! flags, argument count and form.

use super::flags::{FlagType as T, Flags};
use super::lines::{parse_heredoc, Args, Node};
use super::mount::parse_mount;
use super::*;

type Fail = (SyntaxError, Option<usize>);

fn err(e: SyntaxError) -> Fail {
    (e, None)
}

/// The column of `needle` on the node's first line, for flag errors.
fn column_of(node: &Node, needle: &str) -> Option<usize> {
    let first = node.original.lines().next().unwrap_or("");
    first
        .find(needle)
        .map(|i| node.column + first[..i].chars().count())
}

fn flags(node: &Node, declared: &[(&'static str, T)]) -> Result<Flags, Fail> {
    Flags::new(declared).parse(&node.flags).map_err(|e| {
        let col = match &e {
            SyntaxError::UnknownFlag(f)
            | SyntaxError::DuplicateFlag(f)
            | SyntaxError::FlagMissingValue(f)
            | SyntaxError::FlagNotBool { flag: f, .. } => column_of(node, &format!("--{f}")),
            _ => None,
        };
        (e, col)
    })
}

/// The node's arguments as BuildKit's `nodeArgs` lists them.
fn arg_list(args: &Args) -> Vec<String> {
    match args {
        Args::Json(v) | Args::Words(v) => v.clone(),
        Args::Rest(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// BuildKit's `handleJSONArgs`: exec form as is, shell form joined into one string.
fn command_line(args: &Args, heredocs: &[Heredoc]) -> CommandLine {
    let (args, json) = match args {
        Args::Json(v) => (v.clone(), true),
        Args::None => (Vec::new(), false),
        other => {
            let a = arg_list(other);
            (if a.is_empty() { a } else { vec![a.join(" ")] }, false)
        }
    };
    CommandLine {
        args,
        shell_form: !json,
        heredocs: heredocs.to_vec(),
    }
}

fn exactly_one(node: &Node, kw: &'static str) -> Result<String, Fail> {
    match &node.args {
        Args::Rest(s) => Ok(s.clone()),
        _ => Err(err(SyntaxError::ExactlyOneArgument(kw))),
    }
}

fn pairs(node: &Node, kw: &'static str) -> Result<Vec<KeyValue>, Fail> {
    let Args::Pairs(p) = &node.args else {
        return Err(err(SyntaxError::AtLeastOneArgument(kw)));
    };
    p.iter()
        .map(|(k, v)| {
            if k.is_empty() {
                Err(err(SyntaxError::BlankName(kw)))
            } else {
                Ok(KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
            }
        })
        .collect()
}

fn no_flags(node: &Node) -> Result<(), Fail> {
    flags(node, &[]).map(|_| ())
}

pub(super) fn type_node(node: &Node, warnings: &mut Vec<Warning>) -> Result<Instruction, Fail> {
    let command = type_command(node, warnings)?;
    Ok(Instruction {
        start_line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
        command,
    })
}

fn type_command(node: &Node, warnings: &mut Vec<Warning>) -> Result<Command, Fail> {
    let kw = node.keyword.to_ascii_uppercase();
    Ok(match kw.as_str() {
        "FROM" => {
            let f = flags(node, &[("platform", T::String)])?;
            let args = arg_list(&node.args);
            let name = match args.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(err(SyntaxError::StageName(name.clone())));
                    }
                    Some(lower)
                }
                _ => return Err(err(SyntaxError::FromArguments)),
            };
            Command::From(From {
                image: args[0].clone(),
                name,
                platform: f.string("platform"),
            })
        }
        "RUN" => {
            let f = flags(
                node,
                &[
                    ("mount", T::Strings),
                    ("network", T::String),
                    ("security", T::String),
                ],
            )?;
            // an empty RUN parses, as in docker (it runs the shell with an empty command)
            let command = command_line(&node.args, &node.heredocs);
            let mounts = f
                .strings("mount")
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<_, _>>()
                .map_err(|e| (e, column_of(node, "--mount")))?;
            let network = match f.string("network").as_deref() {
                None => None,
                Some("default") => Some(NetworkMode::Default),
                Some("none") => Some(NetworkMode::None),
                Some("host") => Some(NetworkMode::Host),
                Some(other) => return Err(err(SyntaxError::NetworkMode(other.to_string()))),
            };
            let security = match f.string("security").as_deref() {
                None => None,
                Some("sandbox") => Some(SecurityMode::Sandbox),
                Some("insecure") => Some(SecurityMode::Insecure),
                Some(other) => return Err(err(SyntaxError::SecurityMode(other.to_string()))),
            };
            Command::Run(Run {
                command,
                mounts,
                network,
                security,
            })
        }
        "CMD" => {
            no_flags(node)?;
            Command::Cmd(command_line(&node.args, &[]))
        }
        "ENTRYPOINT" => {
            no_flags(node)?;
            Command::Entrypoint(command_line(&node.args, &[]))
        }
        "ENV" => {
            no_flags(node)?;
            Command::Env {
                pairs: pairs(node, "ENV")?,
            }
        }
        "LABEL" => {
            no_flags(node)?;
            Command::Label {
                pairs: pairs(node, "LABEL")?,
            }
        }
        "ARG" => {
            no_flags(node)?;
            let words = arg_list(&node.args);
            if words.is_empty() {
                return Err(err(SyntaxError::AtLeastOneArgument("ARG")));
            }
            let args = words
                .iter()
                .map(|w| {
                    let (name, default) = match w.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (w.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(err(SyntaxError::BlankName("ARG")));
                    }
                    Ok(ArgDecl { name, default })
                })
                .collect::<Result<_, _>>()?;
            Command::Arg { args }
        }
        "EXPOSE" => {
            no_flags(node)?;
            let ports = arg_list(&node.args);
            if ports.is_empty() {
                return Err(err(SyntaxError::AtLeastOneArgument("EXPOSE")));
            }
            Command::Expose { ports }
        }
        "VOLUME" => {
            no_flags(node)?;
            let paths: Vec<String> = arg_list(&node.args)
                .into_iter()
                .map(|p| p.trim().to_string())
                .collect();
            if paths.is_empty() {
                return Err(err(SyntaxError::AtLeastOneArgument("VOLUME")));
            }
            if paths.iter().any(String::is_empty) {
                return Err(err(SyntaxError::EmptyVolume));
            }
            Command::Volume { paths }
        }
        "USER" => {
            no_flags(node)?;
            Command::User {
                user: exactly_one(node, "USER")?,
            }
        }
        "WORKDIR" => {
            no_flags(node)?;
            Command::Workdir {
                path: exactly_one(node, "WORKDIR")?,
            }
        }
        "STOPSIGNAL" => {
            no_flags(node)?;
            Command::StopSignal {
                signal: exactly_one(node, "STOPSIGNAL")?,
            }
        }
        "MAINTAINER" => {
            no_flags(node)?;
            warnings.push(Warning {
                line: node.start_line,
                message: "The MAINTAINER instruction is deprecated, use a label instead to define an image author".into(),
            });
            Command::Maintainer {
                name: exactly_one(node, "MAINTAINER")?,
            }
        }
        "SHELL" => {
            no_flags(node)?;
            match &node.args {
                Args::Json(v) if !v.is_empty() => Command::Shell { shell: v.clone() },
                Args::Json(_) | Args::None => {
                    return Err(err(SyntaxError::AtLeastOneArgument("SHELL")))
                }
                _ => return Err(err(SyntaxError::NotJson("SHELL"))),
            }
        }
        "HEALTHCHECK" => Command::Healthcheck(healthcheck(node)?),
        "ONBUILD" => {
            no_flags(node)?;
            let Args::Sub(sub) = &node.args else {
                return Err(err(SyntaxError::AtLeastOneArgument("ONBUILD")));
            };
            let trigger = sub.keyword.to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(err(SyntaxError::OnbuildChain)),
                "MAINTAINER" | "FROM" => return Err(err(SyntaxError::OnbuildTrigger(trigger))),
                _ => {}
            }
            // like docker, the trigger itself is checked only when a later build runs it
            Command::Onbuild(Onbuild {
                trigger,
                expression: sub.original.trim().to_string(),
            })
        }
        "COPY" => {
            let f = flags(
                node,
                &[
                    ("from", T::String),
                    ("chown", T::String),
                    ("chmod", T::String),
                    ("link", T::Bool),
                    ("parents", T::Bool),
                    ("exclude", T::Strings),
                ],
            )?;
            Command::Copy(Copy {
                spec: copy_spec(node, &f, "COPY")?,
                from: f.string("from"),
                parents: f.bool("parents"),
            })
        }
        "ADD" => {
            let f = flags(
                node,
                &[
                    ("chown", T::String),
                    ("chmod", T::String),
                    ("link", T::Bool),
                    ("keep-git-dir", T::Bool),
                    ("checksum", T::String),
                    ("exclude", T::Strings),
                ],
            )?;
            Command::Add(Add {
                spec: copy_spec(node, &f, "ADD")?,
                keep_git_dir: f.bool_opt("keep-git-dir"),
                checksum: f.string("checksum"),
            })
        }
        _ => return Err((SyntaxError::UnknownInstruction(kw), Some(node.column))),
    })
}

/// `^[a-z][a-z0-9-_\.]*$`.
fn valid_stage_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
}

fn copy_spec(node: &Node, f: &Flags, kw: &'static str) -> Result<CopySpec, Fail> {
    let args = arg_list(&node.args);
    if args.len() < 2 {
        return Err(err(SyntaxError::NoDestination(kw)));
    }
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    let json = matches!(node.args, Args::Json(_));
    if !json && parse_heredoc(&dest).is_some() {
        return Err(err(SyntaxError::HeredocDestination(kw)));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for s in srcs {
        match parse_heredoc(s).filter(|_| !json) {
            Some(h) => {
                let body = node.heredocs.iter().find(|d| d.name == h.name);
                inline.push(Heredoc {
                    content: body.map(|b| b.content.clone()).unwrap_or_default(),
                    ..h
                });
            }
            None => sources.push(s.clone()),
        }
    }
    Ok(CopySpec {
        sources,
        inline,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        exclude: f.strings("exclude"),
        json,
    })
}

fn duration(f: &Flags, name: &str) -> Result<Option<i64>, Fail> {
    let Some(v) = f.string(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let ns = wharf_types::parse::go_duration(&v).map_err(|error| {
        err(SyntaxError::HealthcheckDuration {
            flag: format!("--{name}"),
            error,
        })
    })?;
    if ns == 0 {
        return Ok(None);
    }
    if ns < 1_000_000 {
        return Err(err(SyntaxError::IntervalTooShort(name.to_string())));
    }
    Ok(Some(ns))
}

fn healthcheck(node: &Node) -> Result<Healthcheck, Fail> {
    let Args::Health(typ, cmd) = &node.args else {
        return Err(err(SyntaxError::AtLeastOneArgument("HEALTHCHECK")));
    };
    let typ = typ.to_ascii_uppercase();
    if typ == "NONE" {
        no_flags(node)?;
        if !matches!(**cmd, Args::None) {
            return Err(err(SyntaxError::HealthcheckNoneArguments));
        }
        return Ok(Healthcheck::None);
    }
    let f = flags(
        node,
        &[
            ("interval", T::String),
            ("timeout", T::String),
            ("start-period", T::String),
            ("start-interval", T::String),
            ("retries", T::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(err(SyntaxError::HealthcheckType(typ)));
    }
    let line = command_line(cmd, &[]);
    if line.args.is_empty() {
        return Err(err(SyntaxError::HealthcheckMissingCommand));
    }
    let mut test = vec![if line.shell_form { "CMD-SHELL" } else { "CMD" }.to_string()];
    test.extend(line.args);
    let retries = match f.string("retries") {
        None => None,
        Some(r) => {
            // Go's strconv.ParseInt(r, 10, 32)
            let n: i64 = r
                .parse()
                .map_err(|_| err(SyntaxError::Retries(r.clone())))?;
            if n > i64::from(i32::MAX) || n < i64::from(i32::MIN) {
                return Err(err(SyntaxError::RetriesRange(r.clone())));
            }
            if n < 0 {
                return Err(err(SyntaxError::NegativeRetries(n)));
            }
            Some(u32::try_from(n).map_err(|_| err(SyntaxError::RetriesRange(r.clone())))?)
        }
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: duration(&f, "interval")?,
        timeout: duration(&f, "timeout")?,
        start_period: duration(&f, "start-period")?,
        start_interval: duration(&f, "start-interval")?,
        retries,
    })
}
