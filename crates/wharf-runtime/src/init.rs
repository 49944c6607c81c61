//! `wharf __init`: the single-threaded process that runs inside the container's namespaces,
//! re-executed from a sealed memfd by `start`. It reads the spec (the "go" signal), builds the
//! rootfs (`mounts`), resolves the user from the container's own /etc/passwd (`user`), sets up
//! stdio/tty, rlimits, capabilities, no_new_privs and seccomp, and execs the command — or, with
//! `spec.init`, forks it and stays as a tiny reaping, signal-forwarding pid 1.
//!
//! Every failure is reported to the parent on `ERR_FD` as `{code, message}` (125 setup error,
//! 126 not executable, 127 not found) before exiting with that code.
//!
//! Must not: start threads, resolve a container path by string before pivot_root (all targets go
//! through `wharf_sys::fs::*_in_root`), or compile seccomp (the parent did).

pub(crate) mod mounts;
#[doc(hidden)]
pub mod user;

use crate::spec::{ContainerSpec, Network};
use crate::start::{decode, InitReport, ERR_FD, MAX_PAYLOAD, SPEC_FD, TTY_FD};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use wharf_sys::process;

/// A failure inside init: exit code (125/126/127) and the message shown to the user.
#[derive(Debug)]
pub(crate) struct InitError {
    pub code: i32,
    pub message: String,
}

/// runc's privilege drop, shared by `__init` and `__exec`: the bounding set; the seccomp filter
/// while still privileged unless no_new_privs is set (then [`lock_down`] loads it last);
/// groups, gid, uid; the final capability sets.
pub(crate) fn drop_privileges(
    caps: &[String],
    nnp: bool,
    bpf: Option<&[u8]>,
    u: &user::ExecUser,
) -> Result<(), InitError> {
    crate::caps::apply_bounding(caps).map_err(|e| fail(e.to_string()))?;
    if let (false, Some(b)) = (nnp, bpf) {
        wharf_sys::seccomp::load(b).ctx(|| "load seccomp filter".into())?;
    }
    let gids: Vec<nix::unistd::Gid> = u
        .groups
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&gids).ctx(|| "setgroups".into())?;
    let gid = nix::unistd::Gid::from_raw(u.gid);
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setresgid {}", u.gid))?;
    let uid = nix::unistd::Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setresuid {}", u.uid))?;
    crate::caps::apply_final(caps).map_err(|e| fail(e.to_string()))
}

/// The last step before exec when no_new_privs is on: set it, then load the filter.
pub(crate) fn lock_down(nnp: bool, bpf: Option<&[u8]>) -> Result<(), InitError> {
    if nnp {
        wharf_sys::seccomp::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
        if let Some(b) = bpf {
            wharf_sys::seccomp::load(b).ctx(|| "load seccomp filter".into())?;
        }
    }
    Ok(())
}

pub(crate) fn fail(message: impl Into<String>) -> InitError {
    InitError {
        code: 125,
        message: message.into(),
    }
}

/// Attach "what we were doing" to an OS error.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError>;
}
impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError> {
        self.map_err(|e| fail(format!("{}: {e}", what())))
    }
}
impl<T> Ctx<T> for Result<T, wharf_sys::netlink::NetlinkError> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError> {
        self.map_err(|e| fail(format!("{}: {e}", what())))
    }
}
impl<T> Ctx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError> {
        self.map_err(|e| fail(format!("{}: {}", what(), std::io::Error::from(e))))
    }
}

fn report(err: Option<&OwnedFd>, e: &InitError) {
    if let Some(fd) = err {
        let r = InitReport {
            code: e.code,
            message: e.message.clone(),
        };
        if let Ok(b) = serde_json::to_vec(&r) {
            let _ = nix::unistd::write(fd, &b);
        }
    } else {
        let _ = writeln!(std::io::stderr(), "wharf init: {}", e.message);
    }
}

/// Entry point of the hidden `wharf __init` command. Never returns.
pub fn init_main() -> ! {
    let err = process::adopt_inherited_fd(ERR_FD);
    let spec_fd = process::adopt_inherited_fd(SPEC_FD);
    let tty = process::adopt_inherited_fd(TTY_FD);
    let _ = process::close_fds_from(TTY_FD + 1);
    let e = match run(spec_fd, err.as_ref(), tty) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report(err.as_ref(), &e);
    process::exit_now(e.code)
}

enum Never {}

/// What the parent sends on the spec pipe; `pipe` stays open for the `ATTACHED` byte (see
/// [`wait_attached`]).
struct Payload {
    spec: ContainerSpec,
    bpf: Option<Vec<u8>>,
    pipe: std::fs::File,
}

/// Reads the spec payload (length-prefixed) from the spec pipe.
fn read_payload(fd: Option<OwnedFd>) -> Result<Payload, InitError> {
    let fd = fd.ok_or_else(|| fail("wharf __init is internal: started without a spec pipe"))?;
    let mut f = std::fs::File::from(fd);
    let mut len = [0u8; 4];
    if f.read_exact(&mut len).is_err() {
        // The parent died before "go": leave quietly.
        process::exit_now(125);
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_PAYLOAD {
        return Err(fail(format!("container spec of {len} bytes is too large")));
    }
    let mut buf = vec![0u8; len];
    if f.read_exact(&mut buf).is_err() {
        process::exit_now(125);
    }
    let (spec, bpf) = decode(&buf).ok_or_else(|| fail("malformed container spec from parent"))?;
    Ok(Payload { spec, bpf, pipe: f })
}

/// Blocks until the parent says this process is in the container's cgroup; leaves quietly
/// when it never will (EOF: the attach failed and the parent reports why, or it died).
fn wait_attached(mut spec_pipe: std::fs::File) {
    let mut b = [0u8; 1];
    match spec_pipe.read_exact(&mut b) {
        Ok(()) if b[0] == crate::start::ATTACHED => {}
        _ => process::exit_now(125),
    }
}

fn run(
    spec_fd: Option<OwnedFd>,
    err: Option<&OwnedFd>,
    tty: Option<OwnedFd>,
) -> Result<Never, InitError> {
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // Every container dies with its parent (the foreground CLI or the monitor) at every phase:
    // the clone child set PR_SET_PDEATHSIG(SIGKILL) before exec; it is set again below, after
    // the credential changes that clear it, and `parent_gone` closes the window in between.
    let Payload {
        spec,
        bpf,
        pipe: spec_pipe,
    } = read_payload(spec_fd)?;
    if parent_gone(err) {
        process::exit_now(137);
    }

    if let Network::Path(p) = &spec.network {
        let f = std::fs::File::open(p).ctx(|| format!("open network namespace {}", p.display()))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| format!("join network namespace {}", p.display()))?;
    }
    if let crate::spec::Ipc::Join { pid, .. } = spec.ipc {
        let p = format!("/proc/{pid}/ns/ipc");
        let f = std::fs::File::open(&p).ctx(|| format!("open IPC namespace {p}"))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWIPC)
            .ctx(|| format!("join IPC namespace {p}"))?;
    }
    if !spec.hostname.is_empty() && !spec.host_uts {
        nix::unistd::sethostname(&spec.hostname)
            .ctx(|| format!("set hostname {:?}", spec.hostname))?;
    }
    if !spec.domainname.is_empty() && !spec.host_uts {
        wharf_sys::ns::set_domainname(&spec.domainname)
            .ctx(|| format!("set domain name {:?}", spec.domainname))?;
    }
    if let Some(adj) = spec.oom_score_adj {
        // before anything of the container's runs; its processes inherit it
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    let proc_sys = mounts::setup_rootfs(&spec)?;
    if spec.network == Network::None {
        wharf_sys::net::loopback_up().ctx(|| "bring up lo".into())?;
    }
    apply_rlimits(&spec)?;
    let u = user::resolve(&spec.process.user, &spec.process.additional_groups)?;
    // cwd is created as root (Docker does), entered after switching user.
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        spec.process.cwd.as_str()
    };
    if std::fs::metadata(cwd).is_err() {
        std::fs::create_dir_all(cwd).ctx(|| format!("create working directory {cwd}"))?;
        let _ = nix::unistd::chown(cwd, Some(u.uid.into()), Some(u.gid.into()));
    }
    setup_stdio(&spec, tty, u.uid)?;
    if spec.rootfs.readonly {
        wharf_sys::mount::remount_root_readonly().ctx(|| "remount rootfs read-only".into())?;
    }

    // Nothing of the container's runs before its pid is in the cgroup.
    wait_attached(spec_pipe);
    if let Network::Bridge(nets) = &spec.network {
        crate::net::configure_inside(nets).ctx(|| "configure the container's network".into())?;
    }
    if let Some(dir) = &proc_sys {
        write_sysctls(dir.as_fd(), &spec.sysctl)?;
    }
    drop(proc_sys);
    let nnp = spec.security.no_new_privileges;
    drop_privileges(&spec.security.capabilities, nnp, bpf.as_deref(), &u)?;
    nix::unistd::chdir(cwd).ctx(|| format!("chdir to cwd ({cwd:?}) set in config"))?;

    let cmd = Command::resolve(&spec.process, &u.home)?;

    lock_down(nnp, bpf.as_deref())?;
    // setresuid/capset cleared it. A parent that died before this (or before the clone
    // child's prctl) sent no signal: its end of the error pipe is gone, so leave.
    process::set_pdeathsig(nix::libc::SIGKILL).ctx(|| "set parent death signal".into())?;
    if parent_gone(err) {
        process::exit_now(137);
    }
    // setup ran with umask 0; the container gets docker's and runc's 0022
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if spec.init {
        return tiny_init(err, &cmd.path_c, &cmd.argv, &cmd.envp, &cmd.arg0, &cmd.path);
    }
    process::reset_signals();
    Err(cmd.exec())
}

/// `--sysctl`: each value written to `/proc/sys/<key>` through the container's own procfs
/// (`dir`, opened before /proc/sys was made read-only), in the container's namespaces, after
/// its network is configured (`net.ipv4.conf.eth0.*` needs eth0). A key the kernel does not
/// have or a value it refuses fails the start, naming the sysctl (fail closed). Keys are
/// checked again here: the path must stay below /proc/sys.
fn write_sysctls(
    dir: std::os::fd::BorrowedFd<'_>,
    sysctls: &std::collections::BTreeMap<String, String>,
) -> Result<(), InitError> {
    for (key, value) in sysctls {
        wharf_types::sysctl::check(key, value).map_err(|e| fail(e.to_string()))?;
        let path = wharf_types::sysctl::proc_path(key);
        // resolved inside /proc/sys, as every path in a container (invariant 2)
        let fd = wharf_sys::fs::open_in_root(
            dir,
            std::path::Path::new(&path),
            nix::libc::O_WRONLY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC,
        )
        .ctx(|| format!("sysctl {key:?}: open /proc/sys/{path}"))?;
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .ctx(|| format!("sysctl {key:?}: write {value:?} to /proc/sys/{path}"))?;
    }
    Ok(())
}

/// Whether the process that started us is gone: it holds the read end of the error pipe
/// until our exec, and a pipe's write end polls POLLERR once no reader is left. (getppid
/// cannot tell: the parent is outside our pid namespace, so it is always 0.)
fn parent_gone(err: Option<&OwnedFd>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(fd) = err else { return false };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLERR)),
        Err(_) => false,
    }
}

/// The command to exec, resolved inside the container (PATH lookup in the container's env,
/// HOME from its passwd when unset) and turned into C strings before the last privilege drop.
/// Shared by `init` and `exec`.
pub(crate) struct Command {
    pub(crate) arg0: String,
    pub(crate) path: String,
    pub(crate) path_c: CString,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
}

impl Command {
    pub(crate) fn resolve(
        process: &crate::spec::ProcessSpec,
        home: &str,
    ) -> Result<Command, InitError> {
        let mut env = process.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let arg0 = process
            .args
            .first()
            .ok_or_else(|| fail("no command specified"))?
            .clone();
        let path = find_executable(&arg0, &env)?;
        Ok(Command {
            argv: cstrings(&process.args)?,
            envp: cstrings(&env)?,
            path_c: CString::new(path.clone()).map_err(|_| fail("command path contains NUL"))?,
            arg0,
            path,
        })
    }

    /// execve; returns only on failure, with docker's 126/127/125 report.
    pub(crate) fn exec(&self) -> InitError {
        let e = match nix::unistd::execve(&self.path_c, &self.argv, &self.envp) {
            Ok(n) => match n {},
            Err(e) => e,
        };
        exec_error(&self.arg0, &self.path, e)
    }
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, InitError> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| fail(format!("{s:?} contains a NUL byte"))))
        .collect()
}

fn exec_error(arg0: &str, path: &str, e: nix::errno::Errno) -> InitError {
    use nix::errno::Errno;
    let code = match e {
        Errno::ENOENT => 127,
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM => 126,
        _ => 125,
    };
    let message = match e {
        Errno::ENOENT => format!("exec: {arg0:?}: stat {path}: no such file or directory"),
        // Go's text of the errno ("permission denied"), without Rust's "(os error 13)"
        _ => format!("exec: {arg0:?}: {}", e.desc().to_lowercase()),
    };
    InitError { code, message }
}

/// `args[0]` with a '/' is used as is; otherwise the container env's PATH is searched for an
/// executable regular file (Go's LookPath, which Docker's messages come from).
fn find_executable(arg0: &str, env: &[String]) -> Result<String, InitError> {
    if arg0.contains('/') {
        return Ok(arg0.to_string());
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{}/{arg0}", dir.trim_end_matches('/'));
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(InitError {
        code: 127,
        message: format!("exec: {arg0:?}: executable file not found in $PATH"),
    })
}

fn apply_rlimits(spec: &ContainerSpec) -> Result<(), InitError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    use wharf_types::container::RlimitResource as R;
    for rl in &spec.rlimits {
        let res = match rl.resource {
            R::Core => Resource::RLIMIT_CORE,
            R::Cpu => Resource::RLIMIT_CPU,
            R::Data => Resource::RLIMIT_DATA,
            R::Fsize => Resource::RLIMIT_FSIZE,
            R::Locks => Resource::RLIMIT_LOCKS,
            R::Memlock => Resource::RLIMIT_MEMLOCK,
            R::Msgqueue => Resource::RLIMIT_MSGQUEUE,
            R::Nice => Resource::RLIMIT_NICE,
            R::Nofile => Resource::RLIMIT_NOFILE,
            R::Nproc => Resource::RLIMIT_NPROC,
            R::Rss => Resource::RLIMIT_RSS,
            R::Rtprio => Resource::RLIMIT_RTPRIO,
            R::Rttime => Resource::RLIMIT_RTTIME,
            R::Sigpending => Resource::RLIMIT_SIGPENDING,
            R::Stack => Resource::RLIMIT_STACK,
            R::As => Resource::RLIMIT_AS,
        };
        let name = format!("{:?}", rl.resource).to_lowercase();
        match setrlimit(res, rl.soft, rl.hard) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) => {
                // No CAP_SYS_RESOURCE (or above fs.nr_open): clamp to what we may set.
                let (_, cur_hard) = getrlimit(res).ctx(|| format!("getrlimit {name}"))?;
                let hard = rl.hard.min(cur_hard);
                let soft = rl.soft.min(hard);
                setrlimit(res, soft, hard).ctx(|| format!("setrlimit {name}={soft}:{hard}"))?;
                if spec.debug {
                    eprintln!(
                        "wharf: rlimit {name}: requested {}:{} exceeds the hard limit {cur_hard} this process may raise to (no CAP_SYS_RESOURCE); clamped to {soft}:{hard}",
                        rl.soft, rl.hard
                    );
                }
            }
            Err(e) => return Err(e).ctx(|| format!("setrlimit {name}={}:{}", rl.soft, rl.hard)),
        }
    }
    Ok(())
}

/// Terminal: a pty from the container's devpts, master sent to the parent, slave as the
/// controlling terminal and fds 0-2. Otherwise stdin is /dev/null unless `-i`.
fn setup_stdio(spec: &ContainerSpec, tty: Option<OwnedFd>, uid: u32) -> Result<(), InitError> {
    if spec.process.terminal {
        let sock = tty.ok_or_else(|| fail("terminal requested but no terminal socket"))?;
        attach_terminal(sock, uid)?;
    } else if !spec.process.stdin {
        let null = std::fs::File::open("/dev/null").ctx(|| "open /dev/null".into())?;
        process::dup_onto(null.as_fd(), 0).ctx(|| "redirect stdin".into())?;
    }
    Ok(())
}

/// Opens a pty in the container's devpts (the caller is in its mount namespace), sends the
/// master to the parent over `sock` and waits for its ack (the window size is set by then),
/// then makes the slave the controlling terminal and fds 0-2. Shared by `init` and `exec`.
pub(crate) fn attach_terminal(sock: OwnedFd, uid: u32) -> Result<(), InitError> {
    let (master, slave) = wharf_sys::tty::open_pty(std::path::Path::new("/dev/pts/ptmx"))
        .ctx(|| "open /dev/pts/ptmx".into())?;
    let _ = wharf_sys::fs::chown_fd(slave.as_fd(), uid, 5);
    wharf_sys::tty::send_fd(sock.as_fd(), master.as_fd())
        .ctx(|| "send terminal to parent".into())?;
    drop(master);
    let mut ack = [0u8; 1];
    let n = std::fs::File::from(sock)
        .read(&mut ack)
        .ctx(|| "wait for terminal ack".into())?;
    if n == 0 {
        process::exit_now(125);
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    wharf_sys::tty::set_controlling_tty(slave.as_fd()).ctx(|| "set controlling terminal".into())?;
    for t in 0..3 {
        process::dup_onto(slave.as_fd(), t).ctx(|| "attach terminal to stdio".into())?;
    }
    Ok(())
}

/// `--init`: fork the command, stay as pid 1 forwarding signals and reaping every zombie, exit
/// with the command's status (128+n when it was killed by signal n).
fn tiny_init(
    err: Option<&OwnedFd>,
    path_c: &CString,
    argv: &[CString],
    envp: &[CString],
    arg0: &str,
    path: &str,
) -> Result<Never, InitError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .ctx(|| "block signals".into())?;
    let child = match process::fork().ctx(|| "fork".into())? {
        process::Forked::Child => {
            process::reset_signals();
            let e = match nix::unistd::execve(path_c, argv, envp) {
                Ok(n) => match n {},
                Err(e) => e,
            };
            let e = exec_error(arg0, path, e);
            report(err, &e);
            process::exit_now(e.code);
        }
        process::Forked::Parent(pid) => nix::unistd::Pid::from_raw(pid),
    };
    // Only the command keeps the error pipe: its exec closes it.
    if let Some(fd) = err {
        let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(fd));
    }
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == child => process::exit_now(c),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => {
                    process::exit_now(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
