//! `wharf __exec`: single-threaded, re-executed from the sealed memfd, already in the
//! container's cgroup. Reads the payload, joins the container's namespaces, forks the command
//! (a sibling of itself via CLONE_PARENT, or an orphan for `-d`), reports its pid and exits.
//! The command sets up stdio/pty, resolves the user in the container's /etc/passwd, enters the
//! working directory, applies the container's bounding set, ids, capabilities, no_new_privs and
//! seccomp filter, and execs.
//!
//! Must not: start threads, create the working directory, or grant anything the container's
//! record does not have.

use super::{user, InitError, Payload, ERR_FD, MAX_PAYLOAD, PIDFD_FD, PID_FD, SPEC_FD, TTY_FD};
use crate::init::{fail, Ctx};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use wharf_sys::process;

fn report(err: Option<&OwnedFd>, e: &InitError) {
    let r = crate::start::InitReport {
        code: e.code,
        message: e.message.clone(),
    };
    match (err, serde_json::to_vec(&r)) {
        (Some(fd), Ok(b)) => {
            let _ = nix::unistd::write(fd, &b);
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "wharf exec: {}", e.message);
        }
    }
}

/// Entry of the hidden `wharf __exec` command. Never returns.
pub fn exec_main() -> ! {
    match std::env::args().nth(2).as_deref() {
        Some("rootfs") => super::rootfs::rootfs_main(),
        Some("netconf") => crate::net::netconf_main(),
        _ => {}
    }
    let err = process::adopt_inherited_fd(ERR_FD);
    let spec_fd = process::adopt_inherited_fd(SPEC_FD);
    let tty = process::adopt_inherited_fd(TTY_FD);
    let pid_fd = process::adopt_inherited_fd(PID_FD);
    let pidfd = process::adopt_inherited_fd(PIDFD_FD);
    let _ = process::close_fds_from(PIDFD_FD + 1);
    let e = match run(spec_fd, err.as_ref(), tty, pid_fd, pidfd) {
        Ok(code) => process::exit_now(code),
        Err(e) => e,
    };
    report(err.as_ref(), &e);
    process::exit_now(e.code)
}

fn read_payload(fd: Option<OwnedFd>) -> Result<Payload, InitError> {
    let fd = fd.ok_or_else(|| fail("wharf __exec is internal: started without a spec pipe"))?;
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_PAYLOAD as u64)
        .read_to_end(&mut buf)
        .ctx(|| "read exec spec".into())?;
    if buf.is_empty() {
        process::exit_now(125);
    }
    super::decode(&buf).ok_or_else(|| fail("malformed exec spec from parent"))
}

/// The `__exec` side: join, fork, report the pid. Returns the exit code of `__exec` itself.
fn run(
    spec_fd: Option<OwnedFd>,
    err: Option<&OwnedFd>,
    tty: Option<OwnedFd>,
    pid_fd: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
) -> Result<i32, InitError> {
    let p = read_payload(spec_fd)?;
    let pid = p.spec.container_pid;
    let not_running = || fail(format!("container {} is not running", p.spec.container_id));
    // All namespace fds are opened before the first join.
    let nsfds = wharf_sys::ns::open_ns_fds(pid).map_err(|_| not_running())?;
    if let Some(pfd) = &pidfd {
        // The pidfd pins the process the caller verified; a dead pid 1 = a stopped container.
        if process::pidfd_send_signal(pfd.as_fd(), 0).is_err() {
            return Err(not_running());
        }
    }
    wharf_sys::ns::join_namespaces(pidfd.as_ref().map(|f| f.as_fd()), &nsfds)
        .ctx(|| format!("join the namespaces of container {}", p.spec.container_id))?;
    drop(nsfds);
    drop(pidfd);
    let forked = if p.detach {
        match process::fork().ctx(|| "fork".into())? {
            process::Forked::Child => None,
            process::Forked::Parent(c) => Some(c),
        }
    } else {
        match wharf_sys::ns::fork_sibling().ctx(|| "fork".into())? {
            wharf_sys::ns::Sibling::Child => None,
            wharf_sys::ns::Sibling::Caller(c) => Some(c),
        }
    };
    match forked {
        Some(child) => {
            if let Some(fd) = pid_fd {
                let _ = nix::unistd::write(&fd, &(child as u32).to_le_bytes());
            }
            Ok(0)
        }
        None => {
            drop(pid_fd);
            let e = match command(&p, tty) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            report(err, &e);
            process::exit_now(e.code)
        }
    }
}

enum Never {}

fn command(p: &Payload, tty: Option<OwnedFd>) -> Result<Never, InitError> {
    let spec = &p.spec;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let u = user::resolve(&spec.process.user, &spec.process.additional_groups)?;
    setup_stdio(p, tty, u.uid)?;
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        spec.process.cwd.as_str()
    };
    let nnp = spec.no_new_privileges;
    crate::init::drop_privileges(&spec.capabilities, nnp, p.bpf.as_deref(), &u)?;
    // docker/runc: a missing working directory is an OCI runtime exec failure (126).
    nix::unistd::chdir(cwd).map_err(|e| InitError {
        code: 126,
        message: format!(
            "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ({cwd:?}) set in config.json failed: {}",
            e.desc().to_lowercase()
        ),
    })?;

    let cmd = crate::init::Command::resolve(&spec.process, &u.home)?;
    crate::init::lock_down(nnp, p.bpf.as_deref())?;
    process::reset_signals();
    Err(cmd.exec())
}

/// Terminal: a pty from the container's devpts (we are in its mount namespace), master sent to
/// the caller, slave as controlling terminal and stdio. Otherwise stdin is /dev/null unless
/// `-i` (fds 0-2 were installed by the caller).
fn setup_stdio(p: &Payload, tty: Option<OwnedFd>, uid: u32) -> Result<(), InitError> {
    if p.spec.process.terminal {
        let sock = tty.ok_or_else(|| fail("terminal requested but no terminal socket"))?;
        crate::init::attach_terminal(sock, uid)?;
    } else if !p.spec.process.stdin && !p.detach {
        let null = std::fs::File::open("/dev/null").ctx(|| "open /dev/null".into())?;
        process::dup_onto(null.as_fd(), 0).ctx(|| "redirect stdin".into())?;
    }
    if p.detach {
        // Not in the caller's session: a terminal hangup there must not reach the command.
        let _ = nix::unistd::setsid();
    }
    Ok(())
}
