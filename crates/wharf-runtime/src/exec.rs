//! `exec`: run one more process inside a running container, with the container's namespaces,
//! cgroup, capability set, no_new_privs and seccomp filter — never more privilege than the
//! container has.
//!
//! Invariant 1: the caller (possibly multi-threaded) never enters the container. It spawns a
//! sealed memfd copy of the binary as `wharf __exec` (no new namespaces), puts it in the
//! container's cgroup, and sends it the [`ExecSpec`] plus the compiled seccomp program. The
//! single-threaded `__exec` (`exec/child.rs`) joins the namespaces of the container's pid 1
//! (pidfd `setns`, or `/proc/<pid>/ns/*` fds opened before the first join), then forks: with
//! `CLONE_PARENT` the command becomes a child of the CALLER, which waits for it directly
//! (`__exec` exits at once). For `-d` (`ExecIo::Null`) the command is forked normally and
//! orphaned: the kernel hands it to the reaper of `__exec`'s own pid namespace (the host's
//! init), which always reaps it, so it never lingers as a zombie in the container.
//! Stdio ([`ExecIo`]): the caller's own, a capture pipe, /dev/null, fds the caller supplies
//! (installed as the command's 0-2), or a pty whose master is handed back to the caller
//! ([`ExecRunning::master`], [`ExecRunning::resize`]) instead of pumped to its stdio.
//!
//! Fds installed in `__exec`: 3 spec (parent → child, the "go" signal, written after the cgroup
//! join), 4 error report (EOF = the command was exec'd; JSON `{code, message}` otherwise,
//! close-on-exec), 5 tty socket (the pty master is opened inside the container's devpts and
//! sent back with SCM_RIGHTS), 6 pid pipe (`__exec` → parent: the command's host pid, u32 LE),
//! 7 the container pid 1's pidfd (when the kernel has pidfds).
//!
//! Must not: touch the store, or compile seccomp in the child.

mod child;
mod rootfs;
// The user resolution of `init` (its `user` module is private to init.rs, owned elsewhere);
use crate::init::user;
mod wait;

use crate::cgroup::Cgroup;
use crate::spec::{ProcessSpec, Seccomp};
use crate::start::{ExitStatus, StartError};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use wharf_sys::process;
use wharf_sys::tty::WinSize;

pub(crate) use crate::init::InitError;
pub use child::exec_main;
pub use rootfs::{open_detached_rootfs, DetachedRootfs};

pub(crate) const SPEC_FD: i32 = 3;
pub(crate) const ERR_FD: i32 = 4;
pub(crate) const TTY_FD: i32 = 5;
pub(crate) const PID_FD: i32 = 6;
pub(crate) const PIDFD_FD: i32 = 7;
const MAX_PAYLOAD: usize = 16 << 20;

/// Everything `__exec` needs: which container to enter and what to run there. The security
/// fields are the CONTAINER's (its final capability set, no_new_privs and seccomp profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub container_id: String,
    /// Host pid of the container's pid 1 (verified alive by the caller).
    pub container_pid: i32,
    /// The container's cgroup path (relative, as in its `CgroupSpec`).
    pub cgroup_path: String,
    /// args/env/cwd/user/additional_groups/terminal/stdin of the exec'd command. `cwd` must
    /// exist (it is not created, like docker's exec).
    pub process: ProcessSpec,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    /// Whether the CONTAINER is privileged (exec's `--privileged` is checked against this by
    /// the engine; the command still gets exactly `capabilities`).
    pub privileged: bool,
}

/// Where the command's stdio goes.
#[derive(Debug)]
pub enum ExecIo {
    /// The caller's stdio (and a pty when `process.terminal`, pumped by
    /// [`ExecRunning::wait_foreground`]).
    Inherit,
    /// stdout+stderr interleaved into a pipe, at most `max_bytes` kept (healthchecks); stdin
    /// is /dev/null.
    Capture { max_bytes: usize },
    /// `exec -d`: stdio on /dev/null, the caller does not wait (the container's pid 1 adopts
    /// the command).
    Null,
    /// Caller-supplied fds (pipes, a socket): the command gets them as its fds 0, 1 and 2
    /// (stdin /dev/null when `None`). No terminal. The caller must close its copies of the
    /// write ends it handed over to see EOF.
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// A new pty in the container's devpts: the command's stdio is its slave, the master is
    /// handed back ([`ExecRunning::master`]) with `size` as its first window size.
    Pty { size: Option<WinSize> },
}

impl ExecIo {
    /// Whether the command gets a terminal in this mode (`Inherit` follows the spec).
    fn terminal(&self, spec: &ProcessSpec) -> bool {
        match self {
            ExecIo::Inherit => spec.terminal,
            ExecIo::Pty { .. } => true,
            _ => false,
        }
    }

    /// Whether the command reads a stdin the caller gave it.
    fn stdin(&self, spec: &ProcessSpec) -> bool {
        match self {
            ExecIo::Inherit | ExecIo::Pty { .. } => spec.stdin,
            ExecIo::Fds { stdin, .. } => stdin.is_some(),
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct ExecOptions {
    /// The same cache directory `start` uses (the filter compiles to the same program).
    pub seccomp_cache_dir: PathBuf,
    pub io: ExecIo,
}

/// What `__exec` receives on fd 3.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub spec: ExecSpec,
    pub detach: bool,
    pub bpf: Option<Vec<u8>>,
}

/// A started exec'd command.
#[derive(Debug)]
pub struct ExecRunning {
    id: String,
    pid: i32,
    pidfd: Option<OwnedFd>,
    master: Option<OwnedFd>,
    stdin: bool,
    /// Capture mode: read end, what was kept, the cap, EOF seen.
    capture: Option<(OwnedFd, Vec<u8>, usize, bool)>,
    /// Our child (false for `-d`: the container's pid 1 owns it).
    child: bool,
    reaped: bool,
}

pub(crate) fn decode(buf: &[u8]) -> Option<Payload> {
    serde_json::from_slice(buf).ok()
}

/// Start `spec.process` inside the running container `spec.container_id`. Returns once the
/// command has been exec'd (or with the reason it could not be: 126/127/125 like `run`).
pub fn exec(spec: &ExecSpec, opts: &ExecOptions) -> Result<ExecRunning, StartError> {
    let io = |op: &'static str| {
        let id = spec.container_id.clone();
        move |source: std::io::Error| StartError::Io { id, op, source }
    };
    // A private sealed copy, dropped when this function returns: callers that exec
    // repeatedly (the monitor's healthchecks) must not keep megabytes of shmem alive.
    let exe = crate::exe::container_exe(false)?;
    let bpf = crate::seccomp::prepare(&spec.seccomp, &spec.capabilities, &opts.seccomp_cache_dir)?;
    let detach = matches!(opts.io, ExecIo::Null);
    let mut process_spec = spec.clone();
    process_spec.process.terminal = opts.io.terminal(&spec.process);
    process_spec.process.stdin = opts.io.stdin(&spec.process);
    let payload = serde_json::to_vec(&Payload {
        spec: process_spec.clone(),
        detach,
        bpf,
    })
    .map_err(|source| StartError::Encode {
        id: spec.container_id.clone(),
        source,
    })?;
    let cgroup = Cgroup::open(&spec.cgroup_path);
    // The container's pid 1, pinned before anything else (no pid reuse from here on).
    let container_pidfd = process::pidfd_open(spec.container_pid);

    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let pipe = || nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()));
    let (spec_r, spec_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let tty = if process_spec.process.terminal {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        Some(
            socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| io("create terminal socket")(e.into()))?,
        )
    } else {
        None
    };
    let (cap_r, cap_w) = match opts.io {
        ExecIo::Capture { .. } => {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        }
        _ => (None, None),
    };
    let null = match opts.io {
        ExecIo::Inherit => None,
        ExecIo::Fds { stdin: Some(_), .. } => None,
        _ => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(io("open /dev/null"))?,
        ),
    };
    let mut fds = vec![
        (spec_r.as_fd(), SPEC_FD),
        (err_w.as_fd(), ERR_FD),
        (pid_w.as_fd(), PID_FD),
    ];
    if let Some((_, c)) = &tty {
        fds.push((c.as_fd(), TTY_FD));
    }
    if let Some(p) = &container_pidfd {
        fds.push((p.as_fd(), PIDFD_FD));
    }
    match (&opts.io, &null) {
        (
            ExecIo::Fds {
                stdin,
                stdout,
                stderr,
            },
            _,
        ) => {
            let input: Option<BorrowedFd<'_>> = stdin
                .as_ref()
                .map(|f| f.as_fd())
                .or(null.as_ref().map(|n| n.as_fd()));
            if let Some(i) = input {
                fds.push((i, 0));
            }
            fds.push((stdout.as_fd(), 1));
            fds.push((stderr.as_fd(), 2));
        }
        (_, Some(n)) => {
            fds.push((n.as_fd(), 0));
            let out = cap_w.as_ref().map(|w| w.as_fd()).unwrap_or(n.as_fd());
            fds.push((out, 1));
            fds.push((out, 2));
        }
        (_, None) => {}
    }
    let env: Vec<String> = std::env::var("WHARF_DISABLE")
        .ok()
        .map(|v| format!("WHARF_DISABLE={v}"))
        .into_iter()
        .collect();
    let join = cgroup.prepare_join()?;
    let middle = process::spawn_reexec(
        exe.fd(),
        &["wharf", "__exec"],
        &env,
        &fds,
        0,
        Some(ERR_FD),
        &join.for_child(),
    )
    .map_err(io("spawn wharf __exec"))?;
    drop(fds);
    drop((spec_r, err_w, pid_w, cap_w, null));
    let parent_sock = tty.map(|(p, _c)| p);
    let reap_middle = |pid: i32| {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };

    // In the cgroup before "go" (the command inherits it through the fork): joined by the
    // child itself where the kernel allows, by pid here for the rest.
    if let Err(e) = cgroup.finish_join(middle.pid, &join, middle.in_v2_cgroup) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(middle.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        reap_middle(middle.pid);
        return Err(e.into());
    }
    let sent = std::fs::File::from(spec_w).write_all(&payload);

    // The command's pid (EOF: __exec failed before forking; its report is on the error pipe).
    let mut pidbuf = Vec::new();
    let _ = std::fs::File::from(pid_r).take(4).read_to_end(&mut pidbuf);
    reap_middle(middle.pid);
    let pid = pidbuf
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(|b: [u8; 4]| u32::from_le_bytes(b) as i32);
    let mut running = ExecRunning {
        id: spec.container_id.clone(),
        pid: pid.unwrap_or(0),
        pidfd: None,
        master: None,
        stdin: process_spec.process.stdin,
        capture: None,
        child: !detach,
        reaped: pid.is_none() || detach,
    };
    if let Some(p) = pid {
        if !detach {
            // Our child (CLONE_PARENT) and not yet reaped: the pid cannot be reused.
            running.pidfd = process::pidfd_open(p);
        }
    }
    if let (Some(sock), true) = (&parent_sock, pid.is_some()) {
        let size = match &opts.io {
            ExecIo::Pty { size } => *size,
            _ => wharf_sys::tty::get_winsize(std::io::stdin().as_fd()).ok(),
        };
        running.master =
            crate::start::receive_terminal(sock.as_fd(), size).map_err(io("receive terminal"))?;
    }
    crate::start::read_report(err_r).map_err(|e| match e {
        crate::start::ReportError::Io(e) => io("read exec status")(e),
        crate::start::ReportError::Exec(e) => e,
    })?;
    if let Err(e) = sent {
        return Err(io("send exec spec")(e));
    }
    if pid.is_none() {
        return Err(io("start command")(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "wharf __exec exited without starting the command",
        )));
    }
    if let (Some(r), ExecIo::Capture { max_bytes }) = (cap_r, &opts.io) {
        running.capture = Some((r, Vec::new(), *max_bytes, false));
    }
    Ok(running)
}

impl ExecRunning {
    /// Host pid of the exec'd command.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Wait in the foreground: forward signals, pump the pty, follow the window size. For a
    /// detached command this returns `Exited(0)` at once.
    pub fn wait_foreground(mut self) -> Result<ExitStatus, StartError> {
        if !self.child {
            return Ok(ExitStatus::Exited(0));
        }
        wait::foreground(&mut self)
    }

    /// Wait for the command without touching the caller's stdio or signals (the caller pumps
    /// the fds or the pty it supplied); `Exited(0)` at once for a detached command.
    pub fn wait(&mut self) -> Result<ExitStatus, StartError> {
        loop {
            if let Some(st) = self.wait_timeout(std::time::Duration::from_secs(3600))? {
                return Ok(st);
            }
        }
    }

    /// A new fd for the pty master of an [`ExecIo::Pty`] exec (`None` in other modes). The
    /// command's output arrives there and input written to it reaches the command; it reads
    /// EIO once the command and everything it started closed the terminal.
    pub fn master(&self) -> std::io::Result<Option<OwnedFd>> {
        self.master.as_ref().map(|m| m.try_clone()).transpose()
    }

    /// Sets the window size of the exec's pty (the command gets SIGWINCH). No-op without one.
    pub fn resize(&self, size: WinSize) -> std::io::Result<()> {
        match &self.master {
            Some(m) => wharf_sys::tty::set_winsize(m.as_fd(), size),
            None => Ok(()),
        }
    }

    /// Wait up to `d` (collecting captured output meanwhile); `None` if still running.
    pub fn wait_timeout(
        &mut self,
        d: std::time::Duration,
    ) -> Result<Option<ExitStatus>, StartError> {
        if !self.child {
            return Ok(Some(ExitStatus::Exited(0)));
        }
        wait::timeout(self, d)
    }

    /// SIGKILL the command (no-op once reaped).
    pub fn kill(&self) {
        if self.reaped {
            return;
        }
        let _ = self.signal(nix::libc::SIGKILL);
    }

    pub(crate) fn signal(&self, sig: i32) -> std::io::Result<()> {
        match &self.pidfd {
            Some(fd) => process::pidfd_send_signal(fd.as_fd(), sig),
            None => {
                let s = nix::sys::signal::Signal::try_from(sig).map_err(std::io::Error::from)?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), s)
                    .map_err(std::io::Error::from)
            }
        }
    }

    /// Capture mode: stdout+stderr so far (interleaved, capped). Empty in other modes.
    pub fn output(&mut self) -> Vec<u8> {
        wait::drain_capture(self);
        self.capture
            .as_ref()
            .map(|(_, b, _, _)| b.clone())
            .unwrap_or_default()
    }
}

impl Drop for ExecRunning {
    /// An exec'd command nobody waited for is killed and reaped.
    fn drop(&mut self) {
        if self.child && !self.reaped && self.pid > 0 {
            self.kill();
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
    }
}
