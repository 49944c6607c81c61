//! `build` (and `image build`): parse the flags, call the engine's build service, render
//! docker's plain progress (`#N [stage k/n] RUN ...`, `#N CACHED`, `#N DONE`) on stderr and
//! the result on stdout.

use crate::cli::{BuildArgs, Cli};
use anyhow::{bail, Context};
use nix::sys::signal::{SigSet, Signal};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// `-f -`: the Dockerfile read from stdin, at most this many bytes (the parser's own cap).
const MAX_DOCKERFILE: u64 = 10 << 20;
use wharf_engine::build::{BuildError, BuildProgress, BuildRequest, SecretSource};

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
    let mut secrets = BTreeMap::new();
    for spec in &a.secrets {
        let (id, src) = SecretSource::parse_spec(spec)?;
        secrets.insert(id, src);
    }
    // SIGINT/SIGTERM are blocked before the engine makes any thread (every thread inherits
    // the mask; children reset it) and taken by a waiter that sets the build's cancel flag:
    // the engine kills and removes a running step's container and stops. A second signal
    // exits at once.
    let cancel = Arc::new(AtomicI32::new(0));
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("block SIGINT/SIGTERM")?;
    {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            while let Ok(sig) = set.wait() {
                if cancel.swap(sig as i32, Ordering::SeqCst) != 0 {
                    std::process::exit(128 + sig as i32);
                }
            }
        });
    }
    let engine = super::open_engine(cli)?;
    let req = BuildRequest {
        secrets,
        cancel: Some(cancel),
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
    // -q: the progress is kept and shown only if the build fails (as docker's classic
    // builder does), at most this much of its end
    const MAX_QUIET: usize = 1 << 20;
    let mut kept: Vec<u8> = Vec::new();
    let mut err = std::io::stderr().lock();
    let mut render = |p: BuildProgress| {
        let out: &mut dyn Write = if quiet { &mut kept } else { &mut err };
        let _ = match p {
            BuildProgress::Step { number, title } => writeln!(out, "#{number} {title}"),
            BuildProgress::Cached { number } => writeln!(out, "#{number} CACHED"),
            BuildProgress::Output { number, line } => writeln!(out, "#{number} {line}"),
            BuildProgress::Done { number } => writeln!(out, "#{number} DONE"),
            BuildProgress::Warning(w) => writeln!(out, "WARNING: {w}"),
            BuildProgress::Pull(line) => writeln!(out, "{line}"),
        };
        if kept.len() > 2 * MAX_QUIET {
            kept.drain(..kept.len() - MAX_QUIET);
        }
    };
    let result = if ctx_stdin {
        engine.build_from_tar(&req, &mut std::io::stdin().lock(), &mut render)
    } else {
        engine.build(&req, &mut render)
    };
    let built = match result {
        Ok(b) => b,
        Err(e) => {
            if quiet {
                let start = kept.len().saturating_sub(MAX_QUIET);
                let _ = std::io::stderr().write_all(&kept[start..]);
            }
            if let BuildError::Cancelled { signal } = e {
                eprintln!("ERROR: {e}");
                return Ok(128 + signal);
            }
            return Err(e.into());
        }
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
