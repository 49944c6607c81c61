//! `build` (and `image build`): parse the flags, call the engine's build service, render
//! docker's plain progress (`#N [stage k/n] RUN ...`, `#N CACHED`, `#N DONE`) on stderr and
//! the result on stdout.

use crate::cli::{BuildArgs, Cli};
use anyhow::bail;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// `-f -`: the Dockerfile read from stdin, at most this many bytes (the parser's own cap).
const MAX_DOCKERFILE: u64 = 10 << 20;
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
    let ctx_stdin = a.context.as_os_str() == "-";
    let df_stdin = a.file.as_deref().map(|f| f.as_os_str() == "-") == Some(true);
    if ctx_stdin && df_stdin {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    let dockerfile_text = if df_stdin {
        let mut text = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_DOCKERFILE + 1)
            .read_to_end(&mut text)?;
        if text.len() as u64 > MAX_DOCKERFILE {
            bail!("the Dockerfile on stdin is larger than {MAX_DOCKERFILE} bytes");
        }
        Some(text)
    } else {
        None
    };
    let engine = super::open_engine(cli)?;
    let req = BuildRequest {
        dockerfile_text,
        context: a.context.clone(),
        dockerfile: a.file.clone().filter(|_| !df_stdin),
        tags: a.tags.clone(),
        build_args: key_values("build-arg", &a.build_args)?,
        target: a.target.clone(),
        labels: key_values("label", &a.labels)?,
        no_cache: a.no_cache,
        pull: a.pull,
        cache_from: a.cache_from.clone(),
    };
    let quiet = a.quiet;
    let mut err = std::io::stderr().lock();
    let mut render = |p: BuildProgress| {
        if quiet {
            return;
        }
        let _ = match p {
            BuildProgress::Step { number, title } => writeln!(err, "#{number} {title}"),
            BuildProgress::Cached { number } => writeln!(err, "#{number} CACHED"),
            BuildProgress::Output { number, line } => writeln!(err, "#{number} {line}"),
            BuildProgress::Done { number } => writeln!(err, "#{number} DONE"),
            BuildProgress::Warning(w) => writeln!(err, "WARNING: {w}"),
            BuildProgress::Pull(line) => writeln!(err, "{line}"),
        };
    };
    let built = if ctx_stdin {
        engine.build_from_tar(&req, &mut std::io::stdin().lock(), &mut render)?
    } else {
        engine.build(&req, &mut render)?
    };
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
