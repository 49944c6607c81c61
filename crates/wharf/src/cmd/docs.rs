//! `completion bash|zsh|fish` and the manual pages, both generated from the clap definitions
//! (so they name exactly the commands and flags the binary takes), under the name the
//! binary was invoked as (`docker` through a symlink).

use std::fs;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell};

fn command() -> clap::Command {
    let name = crate::program_name(std::env::args_os().next().as_ref());
    Cli::command().name(name.clone()).bin_name(name)
}

pub fn completion(shell: CompletionShell) {
    let mut cmd = command();
    let name = cmd.get_name().to_string();
    // into memory first: the generator panics on a write error; print! of a closed stdout
    // is the CLI's quiet SIGPIPE exit
    let mut out = Vec::new();
    match shell {
        CompletionShell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut out)
        }
        CompletionShell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut out)
        }
        CompletionShell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut out)
        }
    }
    print!("{}", String::from_utf8_lossy(&out));
}

/// Writes `<name>.1` and `<name>-<command>[-<sub>].1` for every visible command into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<i32> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = command();
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut n = 0usize;
    write_pages(&cmd, &name, dir, &mut n)?;
    eprintln!("wrote {n} manual pages to {}", dir.display());
    Ok(0)
}

fn write_pages(cmd: &clap::Command, page: &str, dir: &Path, n: &mut usize) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(page.to_string()))
        .render(&mut buf)
        .with_context(|| format!("rendering the page of {page}"))?;
    let path = dir.join(format!("{page}.1"));
    fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    *n += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &format!("{page}-{}", sub.get_name()), dir, n)?;
    }
    Ok(())
}
