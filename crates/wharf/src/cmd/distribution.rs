//! `pull`, `push`, `login`, `logout`: thin CLI over the engine's distribution service
//! (`wharf_engine::distribution`): collects credentials, renders docker's lines.

use crate::cli::{Cli, LoginArgs, LogoutArgs, PullArgs, PushArgs};
use anyhow::{bail, Context};
use std::io::IsTerminal;
use std::io::{BufRead, Write};
use std::sync::Mutex;
use wharf_engine::distribution::{
    CredentialsStored, LoginRequest, LogoutRequest, Progress, PullPolicy, PullRequest, PushRequest,
};

fn printer(quiet: bool) -> impl Fn(&str) + Sync {
    move |line: &str| {
        if !quiet {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }
}

fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}MB", f / 1e6)
    } else {
        format!("{:.1}kB", f / 1e3)
    }
}

/// Docker-style per-layer lines; on a terminal each layer keeps its line and is redrawn
/// with a bar, otherwise only final layer states are printed.
pub(crate) struct Render {
    pub(crate) tty: bool,
    pub(crate) quiet: bool,
    pub(crate) ids: Mutex<Vec<String>>,
    /// `run`/`create` pull to stderr (their stdout is the container's or its id).
    pub(crate) stderr: bool,
}

impl Render {
    pub(crate) fn event(&self, p: Progress<'_>) {
        if self.quiet {
            return;
        }
        let mut o: Box<dyn Write> = if self.stderr {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        match p {
            Progress::Line(l) => {
                let _ = writeln!(o, "{l}");
            }
            Progress::Layer {
                id,
                status,
                current,
                total,
            } => {
                if !self.tty {
                    if status == "Already exists" || status == "Pull complete" {
                        let _ = writeln!(o, "{id}: {status}");
                    }
                    return;
                }
                let text = if status == "Downloading" && total > 0 {
                    let w = 50u64;
                    let done = (current.min(total) * w / total) as usize;
                    let bar = format!(
                        "{}>{}",
                        "=".repeat(done.saturating_sub(1)),
                        " ".repeat(w as usize - done.max(1))
                    );
                    format!(
                        "{id}: {status} [{bar}]  {}/{}",
                        human(current),
                        human(total)
                    )
                } else {
                    format!("{id}: {status}")
                };
                let Ok(mut ids) = self.ids.lock() else { return };
                match ids.iter().position(|i| i == id) {
                    Some(pos) => {
                        let up = ids.len() - pos;
                        let _ = write!(o, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r");
                    }
                    None => {
                        ids.push(id.to_string());
                        let _ = writeln!(o, "{text}");
                    }
                }
            }
        }
        let _ = o.flush();
    }
}

pub fn pull(cli: &Cli, a: &PullArgs) -> anyhow::Result<i32> {
    let req = PullRequest {
        reference: a.image.clone(),
        platform: a.platform.clone(),
        credentials: None,
    };
    let engine = super::open_engine(cli)?;
    let r = Render {
        tty: std::io::stdout().is_terminal(),
        quiet: a.quiet,
        ids: Mutex::new(Vec::new()),
        stderr: false,
    };
    // the source in front of what failed in it (a bad blob names its digest)
    let res = engine
        .pull_image(&req, &|p| r.event(p))
        .with_context(|| format!("pulling {}", a.image))?;
    println!("{}", res.reference);
    Ok(0)
}

/// Before `run`/`create`: the image per `--pull` (docker's `Unable to find image` and pull
/// lines on stderr).
pub fn ensure_image(
    engine: &wharf_engine::Engine,
    image: &str,
    pull: &str,
    platform: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    let policy: PullPolicy = pull.parse()?;
    let r = Render {
        tty: std::io::stderr().is_terminal(),
        quiet,
        ids: Mutex::new(Vec::new()),
        stderr: true,
    };
    // a failed pull names its source; a missing image (`--pull never`) is only that
    engine
        .ensure_image(image, policy, platform, &|p| r.event(p))
        .map_err(|e| {
            use wharf_types::error::HasKind;
            if e.kind() == wharf_types::ErrorKind::NotFound {
                anyhow::Error::from(e)
            } else {
                anyhow::Error::from(e).context(format!("pulling {image}"))
            }
        })?;
    Ok(())
}

pub fn push(cli: &Cli, a: &PushArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let out = printer(a.quiet);
    engine.push_image(
        &PushRequest {
            reference: a.image.clone(),
            credentials: None,
        },
        &out,
    )?;
    Ok(0)
}

pub fn login(cli: &Cli, a: &LoginArgs) -> anyhow::Result<i32> {
    let stdin = std::io::stdin();
    let user = match &a.username {
        Some(u) => u.clone(),
        None => {
            if a.password_stdin {
                bail!("Must provide --username with --password-stdin");
            }
            print!("Username: ");
            let _ = std::io::stdout().flush();
            let mut u = String::new();
            stdin.lock().read_line(&mut u).context("reading username")?;
            u.trim().to_string()
        }
    };
    let pass = match (&a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, _) => {
            if !a.password_stdin {
                print!("Password: ");
                let _ = std::io::stdout().flush();
            }
            let mut p = String::new();
            stdin.lock().read_line(&mut p).context("reading password")?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if user.is_empty() || pass.is_empty() {
        bail!("Error: Cannot perform an interactive login from a non TTY device");
    }
    let engine = super::open_engine(cli)?;
    let done = engine.login(&LoginRequest {
        server: a.server.clone(),
        username: user,
        password: pass,
    })?;
    // docker warns only when the secret lands in config.json, not in a credential helper
    if let CredentialsStored::File(path) = done.stored {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        );
    }
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(cli: &Cli, a: &LogoutArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let done = engine.logout(&LogoutRequest {
        server: a.server.clone(),
    })?;
    if done.removed {
        println!("Removing login credentials for {}", done.key);
    } else {
        println!("Not logged in to {}", done.key);
    }
    Ok(0)
}
