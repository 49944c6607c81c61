//! `build` (and `image build`): parse the flags, call the engine's build service, render
//! docker's plain progress (`#N [stage k/n] RUN ...`, `#N CACHED`, `#N DONE`) on stderr and
//! the result on stdout.

use crate::cli::{BuildArgs, Cli};
use anyhow::bail;
use std::collections::BTreeMap;
use std::io::Write;
use wharf_engine::build::{BuildProgress, BuildRequest};

fn key_values(flag: &str, list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), v.to_string()),
            // docker: `--build-arg K` takes K from the environment
            None if flag == "build-arg" => match std::env::var(kv) {
                Ok(v) => out.insert(kv.clone(), v),
                Err(_) => continue,
            },
            None => out.insert(kv.clone(), String::new()),
        };
    }
    Ok(out)
}

pub fn build(cli: &Cli, a: &BuildArgs) -> anyhow::Result<i32> {
    if a.context.as_os_str() == "-" {
        bail!("a build context from stdin is not supported yet: give a directory");
    }
    let engine = super::open_engine(cli)?;
    let req = BuildRequest {
        context: a.context.clone(),
        dockerfile: a.file.clone(),
        tags: a.tags.clone(),
        build_args: key_values("build-arg", &a.build_args)?,
        target: a.target.clone(),
        labels: key_values("label", &a.labels)?,
        no_cache: a.no_cache,
    };
    let quiet = a.quiet;
    let mut err = std::io::stderr().lock();
    let built = engine.build(&req, &mut |p| {
        if quiet {
            return;
        }
        let _ = match p {
            BuildProgress::Step { number, title } => writeln!(err, "#{number} {title}"),
            BuildProgress::Cached { number } => writeln!(err, "#{number} CACHED"),
            BuildProgress::Output { number, line } => writeln!(err, "#{number} {line}"),
            BuildProgress::Done { number } => writeln!(err, "#{number} DONE"),
            BuildProgress::Warning(w) => writeln!(err, "WARNING: {w}"),
        };
    })?;
    if quiet {
        println!("{}", built.id);
    } else {
        println!("Successfully built {}", built.id.short());
        for t in &built.tags {
            println!("Successfully tagged {t}");
        }
    }
    Ok(0)
}
