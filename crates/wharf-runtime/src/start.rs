//! Parent side of a container start: the sealed re-exec of our own binary, cgroup creation,
//! seccomp compilation, clone3/clone of `wharf __init` in fresh namespaces, the start
//! handshake, and (in `foreground`) the foreground wait loop.
//!
//! Invariant 1: this process (possibly multi-threaded) never enters a container namespace; the
//! clone'd child only re-executes a sealed memfd copy of `/proc/self/exe` (runc CVE-2019-5736).
//!
//! Handshake, over fds installed in the child at fixed numbers:
//! - fd 3 (`SPEC_FD`): parent → init, `u32 total | u32 len | spec JSON | u8 has_bpf | u32 len |
//!   BPF`, the "go" signal. The child entered its cgroups without a migration by pid
//!   (which waits for an RCU grace period, 5-35 ms): born in the v2 one (CLONE_INTO_CGROUP)
//!   and joining each v1 hierarchy itself before exec; where the kernel cannot, the parent
//!   moves it while init builds the rootfs. Then one more byte, `ATTACHED`, the go, sent by
//!   [`Created::start`] once the caller recorded the pid ([`create`] returns before it). Init
//!   reads it before it drops privileges and execs: no container code runs outside the limits
//!   or before its pid is recorded. EOF instead (the attach failed, the caller dropped the
//!   `Created`, or the parent died) makes init exit quietly.
//! - fd 4 (`ERR_FD`, close-on-exec in init): init → parent. EOF without bytes means the user
//!   command was exec'd; otherwise a JSON `{code, message}` describing why the start failed.
//! - fd 5 (`TTY_FD`, only with a terminal): unix socket; init sends the pty master with
//!   SCM_RIGHTS and waits for a one-byte ack (sent once the window size is set).
//!
//! Must not: touch the store, or do namespace/mount work itself (that is `init`).

pub(crate) mod foreground;

use crate::cgroup::{Cgroup, CgroupError};
use crate::seccomp::SeccompError;
use crate::spec::{ContainerSpec, Network};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use wharf_sys::process;
use wharf_types::error::{ErrorKind, HasKind};

pub(crate) const SPEC_FD: i32 = 3;
pub(crate) const ERR_FD: i32 = 4;
pub(crate) const TTY_FD: i32 = 5;
/// Upper bound for the spec payload init accepts (spec JSON + BPF).
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;
/// Sent on `SPEC_FD` after the payload once the container's pid 1 is in its cgroup.
pub(crate) const ATTACHED: u8 = b'A';

/// Options of the host side that are not part of the container spec.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Where compiled seccomp programs are cached (see `seccomp::prepare`).
    pub seccomp_cache_dir: PathBuf,
    /// A foreground container's stdout/stderr are pipes the caller copies (and logs) in
    /// [`Running::wait_foreground_tee`], not the caller's own fds. (A monitored one always.)
    pub capture_output: bool,
}

/// How the container's pid 1 ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// Shell convention: the exit code, or 128 + signal number.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// Result of a finished container: its status and whether the memory cgroup OOM-killed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub status: ExitStatus,
    pub oom_killed: bool,
}

/// The error report init writes to `ERR_FD`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitReport {
    pub code: i32,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("prepare the wharf binary for the container")]
    ProtectExe {
        #[source]
        source: wharf_sys::process::ProtectedExeError,
    },
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("encode container spec {id}")]
    Encode {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("container {id}: {op}")]
    Io {
        id: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id}: connect to the bridge")]
    Network {
        id: String,
        #[source]
        source: wharf_sys::netlink::NetlinkError,
    },
    /// The container's init reported why it could not run the command (Docker's wording).
    /// `code` is init's classification of the failure (also its exit status): 127 when the
    /// command does not exist (execve's ENOENT, not in `$PATH`), 126 when it cannot be
    /// executed (EACCES, ENOEXEC, EISDIR, EPERM), 125 for anything else; the kind follows
    /// from it (`CommandNotFound`, `CommandNotExecutable`).
    #[error("{message}")]
    Exec { code: i32, message: String },
}

impl StartError {
    /// CLI exit code, from the kind (`ErrorKind::exit_code`): 127 command not found, 126 not
    /// executable, 125 anything else.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }
}

impl HasKind for StartError {
    fn kind(&self) -> ErrorKind {
        match self {
            StartError::Seccomp(e) => e.kind(),
            StartError::Cgroup(e) => e.kind(),
            StartError::Encode { .. } => ErrorKind::InvalidArgument,
            StartError::ProtectExe { .. } | StartError::Io { .. } => ErrorKind::Internal,
            StartError::Network { .. } => ErrorKind::Unavailable,
            // init's report: 127 = exec ENOENT / not in $PATH, 126 = EACCES, ENOEXEC, ...
            StartError::Exec { code: 127, .. } => ErrorKind::CommandNotFound,
            StartError::Exec { code: 126, .. } => ErrorKind::CommandNotExecutable,
            StartError::Exec { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

/// A started container (its command has been exec'd).
#[derive(Debug)]
pub struct Running {
    id: String,
    pid: i32,
    pidfd: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    master: Option<OwnedFd>,
    stdin: bool,
    reaped: bool,
    io: MonitorIo,
}

/// The container's stdio as handed to a monitor ([`start_monitored`]): pipes for stdout and
/// stderr (or the pty master with a terminal), a pipe into stdin with `-i`.
#[derive(Debug, Default)]
pub struct MonitorIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master (`-t`): output and input both go through it.
    pub master: Option<OwnedFd>,
}

fn encode(spec: &ContainerSpec, bpf: Option<&[u8]>) -> Result<Vec<u8>, StartError> {
    let json = serde_json::to_vec(spec).map_err(|source| StartError::Encode {
        id: spec.id.clone(),
        source,
    })?;
    let bpf = bpf.unwrap_or(&[]);
    let mut out = Vec::with_capacity(json.len() + bpf.len() + 13);
    out.extend_from_slice(&((json.len() + bpf.len() + 9) as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.push(u8::from(!bpf.is_empty()));
    out.extend_from_slice(&(bpf.len() as u32).to_le_bytes());
    out.extend_from_slice(bpf);
    Ok(out)
}

/// Decode what [`encode`] produced (used by init): spec and BPF.
pub(crate) fn decode(buf: &[u8]) -> Option<(ContainerSpec, Option<Vec<u8>>)> {
    let take_u32 = |b: &[u8]| -> Option<usize> {
        Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize)
    };
    let jl = take_u32(buf)?;
    let json = buf.get(4..4 + jl)?;
    let spec: ContainerSpec = serde_json::from_slice(json).ok()?;
    let rest = buf.get(4 + jl..)?;
    let has = *rest.first()? != 0;
    let bl = take_u32(rest.get(1..)?)?;
    let bpf = rest.get(5..5 + bl)?;
    Some((spec, has.then(|| bpf.to_vec())))
}

/// Start a container: returns once its command has been exec'd (or fails with init's report).
/// Its pid 1 dies (SIGKILL) when the calling *thread* exits: call it from a thread that
/// outlives the container (the CLI's main thread). `create(..)?.start()`.
pub fn start(spec: &ContainerSpec, opts: &StartOptions) -> Result<Running, StartError> {
    create(spec, opts)?.start()
}

/// Start a container for a monitor: its stdout/stderr are pipes (or the pty master with a
/// terminal) and stdin a pipe with `-i`, all available from [`Running::take_io`]; the sealed
/// binary copy is private and released when this returns. Like [`start`], the container's
/// pid 1 keeps PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that started it.
pub fn start_monitored(spec: &ContainerSpec, opts: &StartOptions) -> Result<Running, StartError> {
    create_monitored(spec, opts)?.start()
}

/// The first half of [`start`] (OCI's `create`): returns once the container's pid 1 exists
/// in its namespaces and cgroups and waits for the go; nothing of the container's has run.
/// The caller records the pid ([`Created::pid`]) and then calls [`Created::start`], so no
/// one can see the container's command run before its pid is known. Same thread rule as
/// [`start`].
pub fn create(spec: &ContainerSpec, opts: &StartOptions) -> Result<Created, StartError> {
    create_impl(spec, opts, false)
}

/// [`create`] for a monitor: see [`start_monitored`].
pub fn create_monitored(spec: &ContainerSpec, opts: &StartOptions) -> Result<Created, StartError> {
    create_impl(spec, opts, true)
}

/// A container whose pid 1 waits in its cgroup for the go (see [`create`]). Dropping it
/// instead of starting it kills and reaps pid 1 and removes its cgroup.
#[derive(Debug)]
pub struct Created {
    running: Running,
    /// The spec pipe: `ATTACHED` on it is the go; EOF makes init leave quietly.
    go: std::fs::File,
    /// Whether the payload reached init (an error is reported once init said why, if it did).
    sent: std::io::Result<()>,
    parent_sock: Option<OwnedFd>,
    err_r: OwnedFd,
    monitored: bool,
}

impl Created {
    /// Host pid of the container's pid 1.
    pub fn pid(&self) -> i32 {
        self.running.pid
    }

    /// Let the container run its command: returns once it was exec'd, or init's report of
    /// why it could not be.
    pub fn start(self) -> Result<Running, StartError> {
        let Created {
            mut running,
            mut go,
            mut sent,
            parent_sock,
            err_r,
            monitored,
        } = self;
        let id = running.id.clone();
        let io = |op: &'static str| {
            let id = id.clone();
            move |source: std::io::Error| StartError::Io { id, op, source }
        };
        if sent.is_ok() {
            sent = go.write_all(&[ATTACHED]);
        }
        drop(go);
        if let (Some(sock), Ok(())) = (&parent_sock, &sent) {
            let size = wharf_sys::tty::get_winsize(std::io::stdin().as_fd()).ok();
            if let Some(master) =
                receive_terminal(sock.as_fd(), size).map_err(io("receive terminal"))?
            {
                if monitored {
                    running.io.master = Some(master);
                } else {
                    running.master = Some(master);
                }
            }
        }
        read_report(err_r).map_err(|e| match e {
            ReportError::Io(e) => io("read init status")(e),
            ReportError::Exec(e) => e,
        })?;
        if let Err(e) = sent {
            // Init died before reading its spec (and said nothing).
            return Err(io("send spec to init")(e));
        }
        Ok(running)
    }
}

/// For a monitor after its container started: return startup-only memory (free heap, the
/// resident program text of the start path) to the kernel. See
/// `wharf_sys::process::release_startup_memory`.
pub fn release_startup_memory() {
    process::release_startup_memory();
}

fn create_impl(
    spec: &ContainerSpec,
    opts: &StartOptions,
    monitored: bool,
) -> Result<Created, StartError> {
    let exe = crate::exe::container_exe(!monitored)?;
    let bpf = crate::seccomp::prepare(
        &spec.security.seccomp,
        &spec.security.capabilities,
        &opts.seccomp_cache_dir,
    )?;
    let payload = encode(spec, bpf.as_deref())?;
    let cgroup = Cgroup::create(&spec.cgroup, spec.security.privileged)?;
    let io = |op: &'static str| {
        let id = spec.id.clone();
        move |source: std::io::Error| StartError::Io { id, op, source }
    };
    let mut running = Running {
        id: spec.id.clone(),
        pid: 0,
        pidfd: None,
        cgroup: Some(cgroup),
        master: None,
        stdin: spec.process.stdin,
        reaped: true,
        io: MonitorIo::default(),
    };
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (spec_r, spec_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    let tty = if spec.process.terminal {
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
    // Monitor mode without a terminal: pipes for the container's stdio (parent ends kept).
    let mut child_ends: Vec<(OwnedFd, i32)> = Vec::new();
    if (monitored || opts.capture_output) && !spec.process.terminal {
        let (r, w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
        running.io.stdout = Some(r);
        child_ends.push((w, 1));
        let (r, w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
        running.io.stderr = Some(r);
        child_ends.push((w, 2));
    }
    if monitored && !spec.process.terminal && spec.process.stdin {
        let (r, w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
        running.io.stdin = Some(w);
        child_ends.push((r, 0));
    }
    let mut fds = vec![(spec_r.as_fd(), SPEC_FD), (err_w.as_fd(), ERR_FD)];
    if let Some((_, child_sock)) = &tty {
        fds.push((child_sock.as_fd(), TTY_FD));
    }
    for (fd, target) in &child_ends {
        fds.push((fd.as_fd(), *target));
    }
    let env: Vec<String> = std::env::var("WHARF_DISABLE")
        .ok()
        .map(|v| format!("WHARF_DISABLE={v}"))
        .into_iter()
        .collect();
    let mut ns = process::NEW_NS;
    if !spec.host_pid {
        ns |= process::NEW_PID;
    }
    if matches!(
        spec.ipc,
        crate::spec::Ipc::Private | crate::spec::Ipc::Shareable { .. }
    ) {
        ns |= process::NEW_IPC;
    }
    if !spec.host_uts {
        ns |= process::NEW_UTS;
    }
    if matches!(spec.network, Network::None | Network::Bridge(_)) {
        ns |= process::NEW_NET;
    }
    let join = match &running.cgroup {
        Some(cg) => cg.prepare_join()?,
        None => Default::default(),
    };
    let child = process::spawn_reexec(
        exe.fd(),
        &["wharf", "__init"],
        &env,
        &fds,
        ns,
        Some(ERR_FD),
        &join.for_child(),
    )
    .map_err(io("spawn container init"))?;
    let in_v2 = child.in_v2_cgroup;
    running.pid = child.pid;
    // clone(2) fallback: pidfd_open still exists on 5.3+ (the pid cannot be reused: unreaped).
    running.pidfd = child.pidfd.or_else(|| process::pidfd_open(child.pid));
    running.reaped = false;
    drop(fds);
    drop(child_ends);
    drop(spec_r);
    drop(err_w);
    drop(exe);
    let parent_sock = tty.map(|(p, _c)| p);

    // Go: the child joined its v1 cgroups itself before exec and was born in its v2 one;
    // what it could not join (old kernels) its pid joins now, while init builds the rootfs;
    // init waits for ATTACHED before it runs anything of the container's.
    let mut w = std::fs::File::from(spec_w);
    let sent = w.write_all(&payload);
    // Bridge: the veth's container end is born in init's namespace while init builds the
    // rootfs; init configures it after ATTACHED.
    if let Network::Bridge(nets) = &spec.network {
        if let Err(source) = crate::net::attach_host_all(nets, running.pid) {
            drop(w); // EOF without ATTACHED: init leaves; Drop kills and reaps it anyway
                     // An init that failed on its own first (a hostile passwd, say) took its network
                     // namespace, and so the veth being plugged, with it: its report is the cause.
            if let Err(ReportError::Exec(e)) = read_report(err_r) {
                return Err(e);
            }
            return Err(StartError::Network {
                id: spec.id.clone(),
                source,
            });
        }
    }
    if let Some(cg) = &running.cgroup {
        if let Err(e) = cg.finish_join(running.pid, &join, in_v2) {
            drop(w); // EOF without ATTACHED: init leaves; Drop kills and reaps it anyway
            return Err(e.into());
        }
    }
    // the go (`ATTACHED`) is sent by `Created::start`
    Ok(Created {
        running,
        go: w,
        sent,
        parent_sock,
        err_r,
        monitored,
    })
}

/// Parent side of the terminal handshake (shared by `start` and `exec`): receive the pty
/// master the child opened in the container's devpts, give it `size` (the caller's window
/// size, or the one an API client asked for), and ack so the child may exec. `None` if the child died first.
pub(crate) fn receive_terminal(
    sock: std::os::fd::BorrowedFd<'_>,
    size: Option<wharf_sys::tty::WinSize>,
) -> std::io::Result<Option<OwnedFd>> {
    let Some(master) = wharf_sys::tty::recv_fd(sock)? else {
        return Ok(None);
    };
    if let Some(ws) = size {
        let _ = wharf_sys::tty::set_winsize(master.as_fd(), ws);
    }
    let _ = nix::unistd::write(sock, b"k");
    Ok(Some(master))
}

pub(crate) enum ReportError {
    Io(std::io::Error),
    Exec(StartError),
}

/// Reads the child's error pipe to EOF (shared by `start` and `exec`): nothing means the command
/// was exec'd; otherwise the `{code, message}` report becomes `StartError::Exec`.
pub(crate) fn read_report(err_r: OwnedFd) -> Result<(), ReportError> {
    let mut report = Vec::new();
    std::fs::File::from(err_r)
        .take(64 * 1024)
        .read_to_end(&mut report)
        .map_err(ReportError::Io)?;
    if report.is_empty() {
        return Ok(());
    }
    let r: InitReport = serde_json::from_slice(&report).unwrap_or(InitReport {
        code: 125,
        message: String::from_utf8_lossy(&report).into_owned(),
    });
    Err(ReportError::Exec(StartError::Exec {
        code: r.code,
        message: r.message,
    }))
}

impl Running {
    /// Host pid of the container's pid 1.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Container id this process belongs to.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Send `sig` to the container's pid 1 (through the pidfd when there is one).
    pub fn kill(&self, sig: i32) -> std::io::Result<()> {
        if self.reaped {
            return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
        }
        match &self.pidfd {
            Some(fd) => process::pidfd_send_signal(fd.as_fd(), sig),
            None => {
                let s = nix::sys::signal::Signal::try_from(sig).map_err(std::io::Error::from)?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), s)
                    .map_err(std::io::Error::from)
            }
        }
    }

    /// The pidfd of pid 1 (readable once it exited), when the kernel has pidfds.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// The container's stdio fds of a [`start_monitored`] container (empty afterwards).
    pub fn take_io(&mut self) -> MonitorIo {
        std::mem::take(&mut self.io)
    }

    /// Reap pid 1 if it exited (never blocks).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, StartError> {
        if self.reaped {
            return Err(StartError::Io {
                id: self.id.clone(),
                op: "wait for container",
                source: std::io::Error::from_raw_os_error(nix::libc::ECHILD),
            });
        }
        foreground::try_reap(self)
    }

    /// After [`Running::try_wait`] returned a status: read the OOM flag and remove the cgroup
    /// (killing anything left in it).
    pub fn finish(mut self, status: ExitStatus) -> Result<bool, StartError> {
        let sigkilled = status == ExitStatus::Signaled(9);
        let oom_killed = self
            .cgroup
            .as_ref()
            .is_some_and(|c| c.oom_killed(sigkilled));
        if let Some(cg) = self.cgroup.take() {
            cg.remove()?;
        }
        Ok(oom_killed)
    }

    /// See the module docs of `foreground`: wait in the foreground and return the status.
    pub fn wait_foreground(self) -> Result<ExitStatus, StartError> {
        self.wait_foreground_full().map(|f| f.status)
    }

    /// Like [`Running::wait_foreground`], also reporting an OOM kill. Removes the cgroup.
    pub fn wait_foreground_full(self) -> Result<Finished, StartError> {
        self.wait_foreground_tee(&mut |_, _| {})
    }

    /// [`Running::wait_foreground_full`], handing the container's output to `sink` too
    /// (stream 1 stdout, 2 stderr; a tty's output is stdout): the pipes of a container created
    /// with `capture_output`, or the pty.
    pub fn wait_foreground_tee(
        mut self,
        sink: &mut dyn FnMut(u8, &[u8]),
    ) -> Result<Finished, StartError> {
        let io = self.take_io();
        let status = foreground::run_tee(&mut self, [io.stdout, io.stderr], sink)?;
        let sigkilled = status == ExitStatus::Signaled(9);
        let oom_killed = self
            .cgroup
            .as_ref()
            .is_some_and(|c| c.oom_killed(sigkilled));
        if let Some(cg) = self.cgroup.take() {
            cg.remove()?;
        }
        Ok(Finished { status, oom_killed })
    }

    fn reap_blocking(&mut self) -> std::io::Result<ExitStatus> {
        use nix::sys::wait::{waitpid, WaitStatus};
        loop {
            match waitpid(nix::unistd::Pid::from_raw(self.pid), None) {
                Ok(WaitStatus::Exited(_, c)) => {
                    self.reaped = true;
                    return Ok(ExitStatus::Exited(c));
                }
                Ok(WaitStatus::Signaled(_, s, _)) => {
                    self.reaped = true;
                    return Ok(ExitStatus::Signaled(s as i32));
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Running {
    /// A container that was never waited for is killed and reaped, and its cgroup removed, so
    /// an error path in the caller cannot leak processes.
    fn drop(&mut self) {
        if !self.reaped && self.pid > 0 {
            let _ = self.kill(9);
            let _ = self.reap_blocking();
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.remove();
        }
    }
}
