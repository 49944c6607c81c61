//! Remote `run`, `create`, `start`: docker's CLI sequence — create (a missing image pulled
//! with `--pull missing`, then the create again), a hijacked attach and a wait set up
//! before the start, the streams pumped (raw terminal and resizes with `-t`), the exit
//! code from the wait.

use super::client::{enc, Client};
use super::http::Request;
use super::RemoteError;
use crate::cli::{RunArgs, StartArgs};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

fn no_such_image(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<RemoteError>(),
            Some(RemoteError::Daemon { status: 404, message }) if message.to_ascii_lowercase().contains("no such image"))
    })
}

/// Creates the container (pulling a missing image as `--pull` says); its id.
fn create_container(c: &Client, a: &RunArgs) -> anyhow::Result<String> {
    let mut req = crate::cmd::run::build_request(a)?;
    // docker's CLI: an attached `-i` closes the container's stdin with the client's input
    req.stdin_once = a.interactive && !a.detach;
    let image = req.image.clone();
    let (body, name) = super::create::body(req)?;
    let mut path = "/containers/create".to_string();
    let mut sep = '?';
    if let Some(n) = &name {
        path.push_str(&format!("{sep}name={}", enc(n)));
        sep = '&';
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("{sep}platform={}", enc(p)));
    }
    let send = || c.json(Request::new("POST", path.clone()).json(&body));
    if a.pull == "always" {
        super::images::pull_image(c, &image, a.platform.as_deref(), true, true)?;
    }
    let v = match send() {
        Ok(v) => v,
        Err(e) if a.pull == "missing" && no_such_image(&e) => {
            eprintln!("Unable to find image '{}' locally", qualified(&image));
            super::images::pull_image(c, &image, a.platform.as_deref(), true, true)?;
            send()?
        }
        Err(e) => return Err(e),
    };
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    v["Id"].as_str().map(str::to_string).ok_or_else(|| {
        RemoteError::Shape {
            what: "a create answer without Id",
        }
        .into()
    })
}

/// `busybox` → `busybox:latest`, as docker's message names it.
fn qualified(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

pub fn create(c: &Client, a: &RunArgs) -> anyhow::Result<i32> {
    println!("{}", create_container(c, a)?);
    Ok(0)
}

/// A hijacked attach to a container: (reader, writer).
fn attach(
    c: &Client,
    id: &str,
    stdin: bool,
) -> anyhow::Result<(std::io::BufReader<UnixStream>, UnixStream)> {
    let mut req = Request::new(
        "POST",
        format!(
            "/containers/{}/attach?stream=1&stdin={}&stdout=1&stderr=1",
            enc(id),
            u8::from(stdin)
        ),
    )
    .stream();
    req.upgrade = true;
    let r = c.send(req)?;
    Ok(r.into_hijacked()?)
}

/// Sends the terminal's size to `path` (`/containers/{id}/resize` or `/exec/{id}/resize`).
fn resize(c: &Client, path: &str) -> Option<(u16, u16)> {
    let ws = wharf_sys::tty::get_winsize(std::io::stdout().as_fd()).ok()?;
    if ws.rows == 0 && ws.cols == 0 {
        return None;
    }
    let _ = c.post(format!("{path}?h={}&w={}", ws.rows, ws.cols));
    Some((ws.rows, ws.cols))
}

/// Follows the terminal's size while the streams run (a 200 ms look, no signal handler).
pub(super) fn follow_size(c: &Client, path: String) {
    let sock = c.clone();
    std::thread::spawn(move || {
        let mut last = resize(&sock, &path);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let now = wharf_sys::tty::get_winsize(std::io::stdout().as_fd())
                .ok()
                .map(|w| (w.rows, w.cols));
            if now.is_some() && now != last {
                last = resize(&sock, &path);
            }
        }
    });
}

/// Pumps a hijacked connection: output (raw with a TTY, else multiplexed frames) to our
/// stdout/stderr until the server ends it; our stdin into it (closing its write side at
/// EOF) when `stdin`.
pub(super) fn pump(
    reader: std::io::BufReader<UnixStream>,
    mut writer: UnixStream,
    tty: bool,
    stdin: bool,
) -> anyhow::Result<()> {
    let _raw = if tty && stdin && std::io::stdin().is_terminal() {
        wharf_sys::tty::RawMode::enter(std::io::stdin().as_fd()).ok()
    } else {
        None
    };
    if stdin {
        std::thread::spawn(move || {
            let mut buf = [0u8; 32 * 1024];
            let mut input = std::io::stdin();
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
    } else {
        let _ = writer.shutdown(std::net::Shutdown::Write);
    }
    let res = if tty {
        let mut r = reader;
        let mut out = std::io::stdout();
        let mut buf = [0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = out.write_all(&buf[..n]).and_then(|_| out.flush()) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        }
    } else {
        super::containers::demux(reader, true)
    };
    let _ = std::io::stdout().flush();
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A wait set up now (its headers read), its result read later.
fn wait_handle(c: &Client, id: &str, condition: &str) -> anyhow::Result<super::http::Response> {
    c.send(
        Request::new(
            "POST",
            format!("/containers/{}/wait?condition={condition}", enc(id)),
        )
        .stream(),
    )
}

fn wait_finish(r: super::http::Response) -> anyhow::Result<i32> {
    let body = r.bytes(1 << 20)?;
    let v: Value = serde_json::from_slice(&body)?;
    let code = super::containers::wait_result(&v)?;
    Ok(i32::try_from(code).unwrap_or(125))
}

fn start_container(c: &Client, id: &str) -> anyhow::Result<()> {
    let mut req = Request::new("POST", format!("/containers/{}/start", enc(id)));
    req.timeout = None;
    c.json(req)?;
    Ok(())
}

/// Attaches, starts and pumps a container; its exit code.
fn run_attached(
    c: &Client,
    id: &str,
    tty: bool,
    stdin: bool,
    auto_remove: bool,
) -> anyhow::Result<i32> {
    let (reader, writer) = attach(c, id, stdin)?;
    let wait = wait_handle(c, id, if auto_remove { "removed" } else { "next-exit" })?;
    start_container(c, id)?;
    if tty && std::io::stdout().is_terminal() {
        follow_size(c, format!("/containers/{}/resize", enc(id)));
    }
    pump(reader, writer, tty, stdin)?;
    wait_finish(wait)
}

pub fn run(c: &Client, a: &RunArgs) -> anyhow::Result<i32> {
    if let Some(code) = crate::cmd::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let id = create_container(c, a)?;
    if a.detach {
        start_container(c, &id)?;
        println!("{id}");
        return Ok(0);
    }
    run_attached(c, &id, a.tty, a.interactive, a.rm)
}

pub fn start(c: &Client, a: &StartArgs) -> anyhow::Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let info = c.get(format!("/containers/{}/json", enc(&a.containers[0])))?;
        let id = info["Id"].as_str().unwrap_or(&a.containers[0]).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        return run_attached(c, &id, tty, stdin, auto_remove);
    }
    let mut failed = Vec::new();
    for n in &a.containers {
        match start_container(c, n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                super::report(&e, wharf_types::error::CommandClass::Other);
                failed.push(n.as_str());
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        return Ok(wharf_types::error::COMMAND_FAILED);
    }
    Ok(0)
}
