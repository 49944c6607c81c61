//! Container lifecycle commands: create, start, stop, restart, kill, wait, pause, unpause,
//! attach, rename, port, container prune, system boot. Per-container errors are printed like
//! docker (`Error response from daemon: ...`); a command on several containers tries every
//! one and then exits 1 if any failed, whatever the error (docker's CLI,
//! `wharf_types::error::COMMAND_FAILED`); only `create` exits with the kind's code.

use crate::cli::{
    AttachArgs, Cli, ContainersArgs, KillArgs, PortArgs, PruneArgs, RenameArgs, RunArgs, StartArgs,
    StopArgs, UpdateArgs,
};
use anyhow::bail;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use wharf_engine::{Engine, EngineError};
use wharf_types::error::COMMAND_FAILED;

/// Runs `f` for every container, printing docker-style errors; the names that failed.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<Option<String>, EngineError>,
) -> Vec<&str> {
    let mut failed = Vec::new();
    for n in names {
        match f(n) {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("Error response from daemon: {}", super::chain_message(&e));
                failed.push(n.as_str());
            }
        }
    }
    failed
}

/// docker's exit code of a command on several containers: 1 if any of them failed.
fn exit_code(failed: &[&str]) -> anyhow::Result<i32> {
    Ok(if failed.is_empty() { 0 } else { COMMAND_FAILED })
}

pub fn create(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    let req = super::run::build_request(a)?;
    wharf_engine::resources::check_attach(&super::run::attach_flags(a))?;
    super::run::check_cidfile(a)?;
    let engine = super::open_engine(cli)?;
    super::distribution::ensure_image(
        &engine,
        &req.image,
        &a.pull,
        a.platform.as_deref(),
        a.more.quiet,
    )?;
    let created = engine.create_container(req)?;
    created.warnings.iter().for_each(super::run::print_warning);
    if let Some(p) = &a.more.cidfile {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .and_then(|mut f| f.write_all(created.record.id.as_str().as_bytes()));
        if let Err(e) = written {
            let _ = engine.remove_container(created.record.id.as_str(), true, false);
            return Err(wharf_engine::EngineError::io("write container ID file", p, e).into());
        }
    }
    println!("{}", created.record.id);
    Ok(0)
}

pub fn start(cli: &Cli, a: &StartArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let info = engine.container(&a.containers[0])?;
        if matches!(
            info.state.status(),
            wharf_engine::state::Status::Running | wharf_engine::state::Status::Paused
        ) {
            return attach_to(&engine, info.record.id.as_str(), a.interactive);
        }
        let sock = engine.start_attached(&info.record)?;
        let stdin = a.interactive && info.record.config.open_stdin;
        return pump(
            &engine,
            info.record.id.as_str(),
            sock,
            stdin,
            &detach_keys(None)?,
        );
    }
    let failed = each(&a.containers, |n| {
        engine.start_container(n).map(|_| Some(n.to_string()))
    });
    if !failed.is_empty() {
        // docker's summary line (its CLI's error for the whole command)
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
    }
    exit_code(&failed)
}

pub fn stop(cli: &Cli, a: &StopArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let failed = each(&a.containers, |n| {
        engine
            .stop_container(n, a.time, a.signal.as_deref())
            .map(|_| Some(n.to_string()))
    });
    exit_code(&failed)
}

pub fn restart(cli: &Cli, a: &StopArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let failed = each(&a.containers, |n| {
        engine
            .restart_container(n, a.time, a.signal.as_deref())
            .map(|_| Some(n.to_string()))
    });
    exit_code(&failed)
}

pub fn kill(cli: &Cli, a: &KillArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let failed = each(&a.containers, |n| {
        engine
            .kill_container(n, &a.signal)
            .map(|_| Some(n.to_string()))
    });
    exit_code(&failed)
}

pub fn wait(cli: &Cli, a: &ContainersArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let failed = each(&a.containers, |n| {
        engine.wait_container(n).map(|c| Some(c.to_string()))
    });
    exit_code(&failed)
}

pub fn pause(cli: &Cli, a: &ContainersArgs, pause: bool) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let failed = each(&a.containers, |n| {
        engine
            .pause_container(n, pause)
            .map(|_| Some(n.to_string()))
    });
    exit_code(&failed)
}

/// docker's default detach keys: ctrl-p ctrl-q.
fn detach_keys(spec: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let spec = spec.unwrap_or("ctrl-p,ctrl-q");
    wharf_engine::resources::parse_detach_keys(spec)
        .map_err(|_| anyhow::anyhow!("Invalid detach keys ({spec}) provided"))
}

/// The caller's terminal in raw mode while attached; restored on drop.
struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let old = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = old.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// Pumps the monitor's attach socket: framed output (`[stream, 0, 0, 0, len u32 BE]`) to our
/// stdout/stderr, our stdin into the container (when it has one and `stdin`). Returns the
/// container's exit code once it exits, or 0 after the detach keys.
fn pump(
    engine: &Engine,
    id: &str,
    mut sock: UnixStream,
    stdin: bool,
    keys: &[u8],
) -> anyhow::Result<i32> {
    let tty_in = nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false);
    let _raw = if stdin && tty_in {
        RawMode::enter()
    } else {
        None
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut stdin_open = stdin;
    let mut matched = 0usize;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        let sfd = sock.try_clone()?;
        let stdin_h = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin_h.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let in_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if sock_ready {
            let n = match sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 8 {
                let len =
                    u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                if pending.len() < 8 + len {
                    break;
                }
                let data = &pending[8..8 + len];
                if pending[0] == 2 {
                    let _ = err.write_all(data);
                    let _ = err.flush();
                } else {
                    let _ = out.write_all(data);
                    let _ = out.flush();
                }
                pending.drain(..8 + len);
            }
        }
        if in_ready {
            let n = match nix::unistd::read(std::io::stdin().as_raw_fd(), &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => 0,
            };
            if n == 0 {
                stdin_open = false;
                let _ = sock.shutdown(std::net::Shutdown::Write);
                continue;
            }
            let mut fwd = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if tty_in && !keys.is_empty() && b == keys[matched] {
                    matched += 1;
                    if matched == keys.len() {
                        drop(_raw);
                        eprintln!("\r\nread escape sequence");
                        return Ok(0);
                    }
                    continue;
                }
                if matched > 0 {
                    fwd.extend_from_slice(&keys[..matched]);
                    matched = 0;
                }
                fwd.push(b);
            }
            if !fwd.is_empty() && sock.write_all(&fwd).is_err() {
                stdin_open = false;
            }
        }
    }
    drop(_raw);
    // the monitor closed us: the container exited; report its code once it is recorded
    Ok(engine.wait_container(id).unwrap_or(0))
}

/// Connects to the monitor's attach socket (through a short /proc/self/fd path).
fn connect(path: &std::path::Path) -> anyhow::Result<UnixStream> {
    let dir = path.parent().unwrap_or(path);
    let (_fd, addr) = wharf_engine::monitor::attach_addr(dir)?;
    Ok(UnixStream::connect(addr)?)
}

fn attach_to(engine: &Engine, name: &str, stdin: bool) -> anyhow::Result<i32> {
    let (info, path) = engine.attach_socket(name)?;
    let sock = connect(&path)?;
    let stdin = stdin && info.record.config.open_stdin;
    pump(
        engine,
        info.record.id.as_str(),
        sock,
        stdin,
        &detach_keys(None)?,
    )
}

pub fn attach(cli: &Cli, a: &AttachArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let (info, path) = engine.attach_socket(&a.container)?;
    let sock = connect(&path)?;
    let stdin = !a.no_stdin && info.record.config.open_stdin;
    pump(&engine, info.record.id.as_str(), sock, stdin, &keys)
}

pub fn rename(cli: &Cli, a: &RenameArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    engine.rename_container(&a.container, &a.new_name)?;
    Ok(0)
}

/// `update [OPTIONS] CONTAINER...`: docker's output, the name of each container updated,
/// then the warnings; errors per container, exit 1 if any failed.
pub fn update(cli: &Cli, a: &UpdateArgs) -> anyhow::Result<i32> {
    let refused = [
        (a.cpu_rt_period.is_some(), "--cpu-rt-period"),
        (a.cpu_rt_runtime.is_some(), "--cpu-rt-runtime"),
    ];
    let flags = wharf_engine::update::UpdateFlags {
        memory: a.memory.clone(),
        memory_swap: a.memory_swap.clone(),
        memory_reservation: a.memory_reservation.clone(),
        cpus: a.cpus.clone(),
        cpu_shares: a.cpu_shares,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
        restart: a.restart.clone(),
        refused: refused
            .iter()
            .filter(|(given, _)| *given)
            .map(|(_, f)| f.to_string())
            .collect(),
    };
    let req = flags.parse()?;
    let engine = super::open_engine(cli)?;
    let mut warnings = Vec::new();
    let failed = each(&a.containers, |n| {
        let u = engine.update_container(n, &req)?;
        warnings.extend(u.warnings);
        Ok(Some(n.to_string()))
    });
    if !warnings.is_empty() {
        println!("{}", warnings.join("\n"));
    }
    exit_code(&failed)
}

/// `port CONTAINER [PRIVATE[/PROTO]]`: docker's lines (`80/tcp -> 0.0.0.0:8080`, or the
/// bindings of one port), from the engine's port list of the running container.
pub fn port(cli: &Cli, a: &PortArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let info = engine.container(&a.container)?;
    let ports = engine.container_ports(&info);
    let hostport = |ip: &str, port: u16| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    if let Some(p) = &a.port {
        let (num, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        let want: Option<u16> = num.parse().ok();
        let mut found = false;
        for e in &ports {
            if Some(e.private_port) == want && e.proto == proto {
                if let Some((ip, hp)) = &e.public {
                    println!("{}", hostport(ip, *hp));
                    found = true;
                }
            }
        }
        if !found {
            bail!(
                "No public port '{num}/{proto}' published for {}",
                info.record.name
            );
        }
        return Ok(0);
    }
    for e in &ports {
        if let Some((ip, hp)) = &e.public {
            println!("{}/{} -> {}", e.private_port, e.proto, hostport(ip, *hp));
        }
    }
    Ok(0)
}

pub fn prune(cli: &Cli, a: &PruneArgs) -> anyhow::Result<i32> {
    if !a.force && !super::confirm("This will remove all stopped containers.") {
        return Ok(0);
    }
    let engine = super::open_engine(cli)?;
    let rep = engine.prune_containers_filtered(&wharf_engine::prune::ContainerPruneRequest {
        filters: a.filter.clone(),
    })?;
    super::system::print_deleted("Containers", rep.deleted.iter().map(|i| i.to_string()));
    println!(
        "Total reclaimed space: {}",
        wharf_engine::timefmt::human_size4(rep.reclaimed)
    );
    Ok(0)
}

pub fn system_boot(cli: &Cli) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let (started, failed) = engine.boot()?;
    for id in &started {
        println!("{id}");
    }
    for (id, e) in &failed {
        eprintln!("Error: start {}: {e}", id.short());
    }
    Ok(if failed.is_empty() { 0 } else { COMMAND_FAILED })
}

/// `check` / `system check`: one line per feature and the verdict (`--summary`: the verdict
/// alone); exit 1 when something wharf needs to run a container is missing.
pub fn system_check(cli: &Cli, a: &crate::cli::CheckArgs) -> anyhow::Result<i32> {
    use wharf_engine::system::Status;
    let checks =
        wharf_engine::system::check(&wharf_engine::daemon::resolve_root(cli.root.as_deref())?);
    let v = wharf_engine::hostcheck::verdict(&checks);
    if !a.summary {
        for c in &checks {
            let st = match c.status {
                Status::Ok => "ok",
                Status::Degraded => "degraded",
                Status::Missing => "missing",
            };
            let l = format!("{:<20} {:<9} {}", c.feature, st, c.detail);
            println!("{}", l.trim_end());
        }
        println!();
    }
    if v.can_run {
        println!("wharf can run containers on this host");
    } else {
        println!(
            "wharf cannot run containers on this host: missing {}",
            v.missing.join(", ")
        );
    }
    if !v.degraded.is_empty() {
        println!("degraded: {} (wharf check)", v.degraded.join(", "));
    }
    Ok(i32::from(!v.can_run))
}
