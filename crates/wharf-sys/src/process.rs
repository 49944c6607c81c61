//! Process creation for the container runtime: the sealed copy of our own binary (runc
//! CVE-2019-5736 defence), clone3/clone of the re-executed init with namespace flags, pidfd
//! helpers, parent-death signal, fork for the `--init` reaper, fd and signal hygiene.
//!
//! Must not: decide policy (which namespaces, which fds) — wharf-runtime does. Code that runs
//! in a freshly cloned child of a possibly multi-threaded parent only makes raw syscalls on data
//! prepared before the clone (no allocation, no locks).

use crate::features::{force_disabled, Feature};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Namespace flags accepted by [`spawn_reexec`] (values of `CLONE_NEW*`).
pub const NEW_NS: u64 = libc::CLONE_NEWNS as u64;
pub const NEW_UTS: u64 = libc::CLONE_NEWUTS as u64;
pub const NEW_IPC: u64 = libc::CLONE_NEWIPC as u64;
pub const NEW_PID: u64 = libc::CLONE_NEWPID as u64;
pub const NEW_NET: u64 = libc::CLONE_NEWNET as u64;
const NS_MASK: u64 = NEW_NS | NEW_UTS | NEW_IPC | NEW_PID | NEW_NET;

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// How [`protected_self_exe`] protected the binary a container process is started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeKind {
    /// `/proc/self/exe` on a read-only detached bind mount: no copy at all (5.12+).
    ReadOnlyBind,
    /// A sealed memfd copy (3.17+ with working seals).
    SealedMemfd,
    /// An unsealed memfd copy, reopened read-only (memfd without sealing, RHEL 7.2-style).
    Memfd,
    /// An O_TMPFILE copy (never linked), reopened read-only (3.11+).
    Tmpfile,
    /// A named copy unlinked right after creation (mode 0500, O_EXCL), reopened read-only.
    Unlinked,
}

impl ExeKind {
    /// Whether one fd may serve several container starts. A read-only view and a sealed copy
    /// cannot be changed by anyone; a private copy could be rewritten through
    /// `/proc/<pid>/exe` once nothing executes it, so it must serve one start only.
    pub fn reusable(self) -> bool {
        matches!(self, ExeKind::ReadOnlyBind | ExeKind::SealedMemfd)
    }
}

/// The binary a container process is re-executed from (runc CVE-2019-5736: a container must
/// never be able to write the host's wharf binary through `/proc/<pid>/exe`).
#[derive(Debug)]
pub struct ProtectedExe {
    pub fd: OwnedFd,
    pub kind: ExeKind,
}

/// Why no protected binary could be made: each method tried, with its errno.
#[derive(Debug)]
pub struct ProtectedExeError {
    pub attempts: Vec<(ExeKind, io::Error)>,
}

impl std::fmt::Display for ProtectedExeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no safe way to re-execute the wharf binary:")?;
        for (i, (k, e)) in self.attempts.iter().enumerate() {
            let what = match k {
                ExeKind::ReadOnlyBind => "read-only bind (open_tree/mount_setattr)",
                ExeKind::SealedMemfd => "sealed memfd",
                ExeKind::Memfd => "memfd",
                ExeKind::Tmpfile => "O_TMPFILE copy",
                ExeKind::Unlinked => "unlinked copy",
            };
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{what}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProtectedExeError {}

/// The binary to start container processes from, protected against being rewritten from
/// inside a container, by the cheapest method the kernel has:
/// 1. a read-only detached bind mount of `/proc/self/exe` (no copy; Linux 5.12+);
/// 2. a sealed memfd copy (3.17+);
/// 3. an unsealed memfd copy reopened read-only (kernels whose sealing is broken);
/// 4. an O_TMPFILE copy in one of `dirs` (3.11+), reopened read-only;
/// 5. a named copy in one of `dirs`, created 0500 with O_EXCL, unlinked at once.
///
/// Copies 3-5 are private to one start ([`ExeKind::reusable`]). `dirs` should be root-owned
/// directories on file systems that allow exec (the caller passes the binary's own directory
/// and wharf's state directory); a directory on a `noexec` mount is skipped.
pub fn protected_self_exe(dirs: &[&std::path::Path]) -> Result<ProtectedExe, ProtectedExeError> {
    let mut tries = vec![
        (ExeKind::ReadOnlyBind, None),
        (ExeKind::SealedMemfd, None),
        (ExeKind::Memfd, None),
    ];
    tries.extend(dirs.iter().map(|d| (ExeKind::Tmpfile, Some(*d))));
    tries.extend(dirs.iter().map(|d| (ExeKind::Unlinked, Some(*d))));
    let mut attempts = Vec::new();
    for (kind, dir) in tries {
        let r = match (kind, dir) {
            (ExeKind::ReadOnlyBind, _) if force_disabled(Feature::ExeBind) => {
                Err(io::Error::other("disabled by WHARF_DISABLE=exebind"))
            }
            (ExeKind::ReadOnlyBind, _) => crate::mount::readonly_file_view(c"/proc/self/exe"),
            (ExeKind::SealedMemfd, _) => memfd_copy(true),
            (ExeKind::Memfd, _) => memfd_copy(false),
            (_, Some(d)) => file_copy(d, kind == ExeKind::Unlinked),
            (_, None) => continue,
        };
        match r {
            Ok(fd) => return Ok(ProtectedExe { fd, kind }),
            Err(e) => attempts.push((kind, e)),
        }
    }
    Err(ProtectedExeError { attempts })
}

/// Copy all of `/proc/self/exe` into `dst` (copy_file_range, sendfile, then read/write).
fn copy_self_exe(dst: BorrowedFd<'_>) -> io::Result<()> {
    let exe = std::fs::File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len();
    let mut copied: u64 = 0;
    let mut sendfile_ok = true;
    while copied < len {
        let want = (len - copied).min(1 << 30) as usize;
        // SAFETY: both fds are valid for the duration of the call; NULL offsets mean "use and
        // advance the file positions".
        let mut n = unsafe {
            libc::copy_file_range(
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                want,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EXDEV)
                | Some(libc::ENOSYS)
                | Some(libc::EINVAL)
                | Some(libc::EOPNOTSUPP) => {}
                _ => return Err(e),
            }
            if sendfile_ok {
                // SAFETY: as above; sendfile with a NULL offset uses the input file position.
                n = unsafe {
                    libc::sendfile(dst.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), want)
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
                        return Err(e);
                    }
                    sendfile_ok = false;
                }
            }
            if !sendfile_ok {
                let mut buf = vec![0u8; want.min(1 << 20)];
                let r = std::io::Read::read(&mut &exe, &mut buf)?;
                let mut out = std::fs::File::from(dst.try_clone_to_owned()?);
                std::io::Write::write_all(&mut out, &buf[..r])?;
                n = r as isize;
            }
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "/proc/self/exe shrank while copying",
            ));
        }
        copied += n as u64;
    }
    Ok(())
}

/// Reopen a writable copy read-only through /proc/self/fd, dropping the writable fd.
fn reopen_readonly(fd: OwnedFd) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    drop(fd);
    Ok(f.into())
}

/// A memfd copy of our binary: sealed (write/grow/shrink/seal) or, with `seal == false`,
/// reopened read-only.
fn memfd_copy(seal: bool) -> io::Result<OwnedFd> {
    if force_disabled(Feature::Memfd) {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    if seal && force_disabled(Feature::Sealing) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let name = c"wharf-init";
    let mut flags = libc::MFD_CLOEXEC;
    if seal {
        flags |= libc::MFD_ALLOW_SEALING;
    }
    // SAFETY: `name` is a valid NUL-terminated string; the returned fd is new and owned by us.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    copy_self_exe(std::os::fd::AsFd::as_fd(&memfd))?;
    if !seal {
        return reopen_readonly(memfd);
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a valid fd with an integer argument.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

/// A private copy of our binary in `dir`: O_TMPFILE (never named) or, with `named`, a 0500
/// O_EXCL file unlinked at once; reopened read-only.
fn file_copy(dir: &std::path::Path, named: bool) -> io::Result<OwnedFd> {
    if !named && force_disabled(Feature::Tmpfile) {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    if let Ok(st) = nix::sys::statvfs::statvfs(dir) {
        if st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is on a noexec mount", dir.display()),
            ));
        }
    }
    let f = if named {
        let mut rnd = [0u8; 8];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut rnd))?;
        let name = dir.join(format!(".wharf-exe-{:016x}", u64::from_ne_bytes(rnd)));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o500)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&name)?;
        std::fs::remove_file(&name)?;
        f
    } else {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o500)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir)?
    };
    let fd: OwnedFd = f.into();
    copy_self_exe(std::os::fd::AsFd::as_fd(&fd))?;
    reopen_readonly(fd)
}

/// A sealed, close-on-exec memfd holding a copy of `/proc/self/exe` (kept for callers and tests
/// that need exactly this method; the runtime uses [`protected_self_exe`]).
pub fn sealed_self_exe() -> io::Result<OwnedFd> {
    memfd_copy(true)
}

/// A process created by [`spawn_reexec`].
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    /// Present when the kernel supports CLONE_PIDFD with clone3.
    pub pidfd: Option<OwnedFd>,
    /// Whether the child was born in [`CgroupJoin::v2_dir`] (CLONE_INTO_CGROUP, 5.7).
    pub in_v2_cgroup: bool,
}

/// How a child enters its cgroups without being moved there by pid from outside, which
/// takes the kernel's global threadgroup lock for writing and so waits for an RCU grace
/// period (5-35 ms): it is born in its v2 cgroup (CLONE_INTO_CGROUP), and it writes "0" to
/// each v1 `tasks` file itself before it execs (a thread moving itself skips that lock on
/// current kernels; older ones take it, as before).
#[derive(Default)]
pub struct CgroupJoin<'a> {
    /// The v2 (or hybrid's unified) cgroup directory, opened `O_RDONLY|O_DIRECTORY`.
    pub v2_dir: Option<BorrowedFd<'a>>,
    /// v1 `tasks` files opened for writing, each with the report (`{code, message}` JSON)
    /// the child writes to `report_fd` if it cannot join.
    pub v1_tasks: Vec<(BorrowedFd<'a>, &'a CStr)>,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

static CLONE3_MISSING: AtomicBool = AtomicBool::new(false);
static INTO_CGROUP_MISSING: AtomicBool = AtomicBool::new(false);

/// Everything the child needs, prepared before cloning so the child only makes syscalls.
struct Prepared {
    exe: RawFd,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// (source, target) pairs; sources are close-on-exec duplicates >= 100 so dup2 order
    /// cannot clobber another source.
    fds: Vec<(RawFd, RawFd)>,
    proc_path: CString,
    empty: CString,
    /// Where to write [`EXEC_FAILED`] if the re-exec fails (-1: nowhere).
    report_fd: RawFd,
    /// v1 `tasks` fds (close-on-exec duplicates) to write "0" to, with their failure report.
    join: Vec<(RawFd, *const libc::c_char, usize)>,
}

/// Written by the cloned child to `report_fd` when it cannot execute the sealed binary.
pub const EXEC_FAILED: &[u8] =
    br#"{"code":125,"message":"cannot execute the sealed wharf binary for the container init"}"#;

/// Child side. Only async-signal-safe raw syscalls on pre-built data; never returns.
fn child_exec(p: &Prepared) -> ! {
    // SAFETY: every pointer refers to memory prepared before the clone that stays valid in the
    // child's copy of the address space; all calls are raw async-signal-safe syscalls.
    unsafe {
        let empty_set: libc::sigset_t = std::mem::zeroed();
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty_set as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            8usize,
        );
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        for &(src, dst) in &p.fds {
            if libc::dup2(src, dst) < 0 {
                libc::_exit(125);
            }
        }
        for &(fd, msg, len) in &p.join {
            if libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) != 1 {
                if p.report_fd >= 0 {
                    libc::write(p.report_fd, msg as *const libc::c_void, len);
                }
                libc::_exit(125);
            }
        }
        libc::syscall(
            libc::SYS_execveat,
            p.exe,
            p.empty.as_ptr(),
            p.argv.as_ptr(),
            p.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::execve(p.proc_path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        if p.report_fd >= 0 {
            libc::write(
                p.report_fd,
                EXEC_FAILED.as_ptr() as *const libc::c_void,
                EXEC_FAILED.len(),
            );
        }
        libc::_exit(125);
    }
}

/// Clone a child in new namespaces (`ns_flags`, a combination of the `NEW_*` constants) that
/// re-executes `exe` (a sealed memfd) with `argv`/`env`, with `fds` installed at the given
/// numbers (all other fds of the caller should be close-on-exec). If the re-exec fails, the
/// child writes [`EXEC_FAILED`] to the target fd number `report_fd` (when given). Uses clone3 with CLONE_PIDFD,
/// falling back to clone(2) when clone3 is missing or disabled by `WHARF_DISABLE=clone3`.
/// Safe to call from a multi-threaded process.
pub fn spawn_reexec(
    exe: BorrowedFd<'_>,
    argv: &[&str],
    env: &[String],
    fds: &[(BorrowedFd<'_>, RawFd)],
    ns_flags: u64,
    report_fd: Option<RawFd>,
    cgroup: &CgroupJoin<'_>,
) -> io::Result<Child> {
    if ns_flags & !NS_MASK != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let inval = |_| io::Error::from_raw_os_error(libc::EINVAL);
    let argv_c: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(*a))
        .collect::<Result<_, _>>()
        .map_err(inval)?;
    let env_c: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(inval)?;
    let mut dups: Vec<OwnedFd> = Vec::with_capacity(fds.len());
    for (fd, _) in fds {
        // F_DUPFD_CLOEXEC to >= 100: the child's dup2 targets (small numbers) never hit a source.
        dups.push(fd.try_clone_to_owned().and_then(|o| {
            // SAFETY: fcntl on a valid fd; the returned fd is new and owned by us.
            let r = unsafe { libc::fcntl(o.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                // SAFETY: fresh fd from fcntl.
                Ok(unsafe { OwnedFd::from_raw_fd(r) })
            }
        })?);
    }
    // The executable too: a target number (e.g. 3) may be where `exe` lives in this process.
    // SAFETY: fcntl on a valid fd; the returned fd is new and owned by us.
    let exe_dup = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    if exe_dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd from fcntl.
    let exe_dup = unsafe { OwnedFd::from_raw_fd(exe_dup) };
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let mut join_dups: Vec<OwnedFd> = Vec::with_capacity(cgroup.v1_tasks.len());
    for (fd, _) in &cgroup.v1_tasks {
        // SAFETY: fcntl on a valid fd; the returned fd is new and owned by us.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd from fcntl.
        join_dups.push(unsafe { OwnedFd::from_raw_fd(r) });
    }
    let prep = Prepared {
        exe: exe_dup.as_raw_fd(),
        argv: argv_p,
        envp: envp_p,
        fds: dups
            .iter()
            .zip(fds)
            .map(|(d, (_, t))| (d.as_raw_fd(), *t))
            .collect(),
        proc_path: CString::new(format!("/proc/self/fd/{}", exe_dup.as_raw_fd())).map_err(inval)?,
        report_fd: report_fd.unwrap_or(-1),
        empty: CString::default(),
        join: join_dups
            .iter()
            .zip(&cgroup.v1_tasks)
            .map(|(d, (_, msg))| (d.as_raw_fd(), msg.as_ptr(), msg.to_bytes().len()))
            .collect(),
    };

    let mut into = cgroup.v2_dir.filter(|_| {
        !force_disabled(Feature::CloneIntoCgroup) && !INTO_CGROUP_MISSING.load(Ordering::Relaxed)
    });
    while !force_disabled(Feature::Clone3) && !CLONE3_MISSING.load(Ordering::Relaxed) {
        let mut pidfd: RawFd = -1;
        let mut args = CloneArgs {
            flags: ns_flags | libc::CLONE_PIDFD as u64,
            pidfd: &mut pidfd as *mut RawFd as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        };
        if let Some(dir) = into {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = dir.as_raw_fd() as u64;
        }
        // SAFETY: clone3 with a NULL stack behaves like fork: the child runs on a copy of our
        // stack and only executes `child_exec`, which never returns and makes raw syscalls on
        // data prepared above. `args` is a valid clone_args of the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r == 0 {
            child_exec(&prep);
        }
        if r > 0 {
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd that we own.
            let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
            return Ok(Child {
                pid: r as i32,
                pidfd,
                in_v2_cgroup: into.is_some(),
            });
        }
        let e = io::Error::last_os_error();
        // clone3 without CLONE_INTO_CGROUP (5.3-5.6): EINVAL for the unknown flag, E2BIG for
        // the larger struct; then the caller moves the child itself.
        if into.is_some() && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::E2BIG)) {
            INTO_CGROUP_MISSING.store(true, Ordering::Relaxed);
            into = None;
            continue;
        }
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(e);
        }
        CLONE3_MISSING.store(true, Ordering::Relaxed);
    }
    // SAFETY: raw clone(2) with a NULL stack is fork-like (see above). All pointer arguments are
    // NULL, so the architecture-specific argument order does not matter.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (ns_flags | libc::SIGCHLD as u64) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r == 0 {
        child_exec(&prep);
    }
    let pid = cvt(r)? as i32;
    Ok(Child {
        pid,
        pidfd: None,
        in_v2_cgroup: false,
    })
}

/// Whether clone3 can be used (5.3+; not forced off): probed with an invalid size, which a
/// kernel that has it refuses with EINVAL.
pub fn clone3_available() -> bool {
    if force_disabled(Feature::Clone3) || CLONE3_MISSING.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: a NULL args pointer with size 0 is rejected before anything is read or created.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<CloneArgs>(), 0usize) };
    !(r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// Open a pidfd for `pid` (Linux 5.3); `None` when unsupported.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: fresh fd owned by us.
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Send `sig` through a pidfd (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: valid fd, NULL siginfo, zero flags.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(|_| ())
}

/// Set (or clear with 0) the signal sent to this process when its parent thread exits.
pub fn set_pdeathsig(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }
            as libc::c_long,
    )
    .map(|_| ())
}

/// Close every fd >= `first` (close_range, with a /proc/self/fd walk as fallback). Only for a
/// single-threaded process that owns all its fds (the container init).
pub fn close_fds_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; the caller guarantees nothing above `first`
    // is owned by live Rust objects.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")? {
        if let Some(n) = e?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        {
            if n >= first {
                fds.push(n);
            }
        }
    }
    for fd in fds {
        // SAFETY: see above; EBADF (the read_dir fd itself, already closed) is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Mark a raw fd number inherited at exec as close-on-exec and take ownership of it. Returns
/// None when `fd` is not open.
pub fn adopt_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_SETFD on a possibly-closed fd only fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return None;
    }
    // SAFETY: the fd is open, was installed for us by our parent, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reset every catchable signal to its default disposition and unblock all signals, so the
/// container's command starts clean (Rust's runtime ignores SIGPIPE, which exec would keep).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL never runs user code; invalid numbers just return EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Result of [`fork`].
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2). Only for single-threaded callers (the container init's `--init` reaper, the
/// monitor's daemonizing fork at the top of `wharf __monitor`).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the callers are single-threaded (the container init, the monitor before it
    // starts anything), so the child cannot inherit locks held by other threads.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// `_exit(2)`: leave without running atexit handlers or flushing stdio of the parent's copy.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Die of SIGPIPE, as a program that does not handle it does when it writes to a closed
/// pipe (what Go does for a write on fd 1 or 2, so docker's CLI: the shell sees 141, nothing
/// is printed). For a CLI whose stdout reader went away; the Rust runtime ignores SIGPIPE, so
/// the disposition is reset first. Falls back to `_exit(141)`.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: installing SIG_DFL has no preconditions; the process ends right after.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGPIPE);
        libc::_exit(128 + libc::SIGPIPE)
    }
}

/// Duplicate `fd` onto `target` (dup2), clearing close-on-exec on `target`.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on a valid source fd; the caller owns the target number (stdio).
    cvt(unsafe { libc::dup2(fd.as_raw_fd(), target) } as libc::c_long).map(|_| ())
}

/// Whether `path` names a file we could execute (`access(X_OK)` with the real ids).
pub fn executable(path: &CStr) -> bool {
    // SAFETY: valid NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (a server holding many
/// connections at once: the default soft limit of 1024 would refuse them at `accept`).
/// Returns the soft limit now in force.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft >= hard {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    Ok(hard)
}

/// Caps glibc's malloc arenas for a server whose requests run on many threads: by default
/// each thread that allocates may get an arena of its own (up to 8 per core), and memory a
/// request freed stays in its thread's arena, so the RSS after a burst of parallel requests
/// grows with the number of threads. Best effort (other allocators: nothing to do).
pub fn limit_malloc_arenas(n: i32) {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes a tunable of glibc's allocator; M_ARENA_MAX takes any
    // positive count and affects only arenas created after the call.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n.max(1));
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = n;
}

/// Gives free heap memory back to the kernel (glibc's `malloc_trim`), e.g. after a burst of
/// requests. Best effort.
pub fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory of glibc's allocator to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives back memory a long-lived, mostly idle process (the container monitor) only needed
/// while starting: free heap pages (`malloc_trim`) and the resident pages of its read-only
/// file mappings (program text and rodata) that hold no private (copy-on-write) page: such
/// pages are identical to the file, so dropping them only means they are faulted in again from
/// the page cache when next used. Writable mappings and RELRO (which has private pages) are
/// left alone. Best effort.
pub fn release_startup_memory() {
    // SAFETY: malloc_trim only returns free memory of glibc's allocator to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    // (start, end, candidate) of the mapping being read; Anonymous: decides at its line
    let mut cur: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            cur = None;
            let mut f = line.split_whitespace().skip(1);
            let (Some(perms), Some(_off), Some(_dev), Some(inode)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            if !(perms == "r-xp" || perms == "r--p") || inode == "0" {
                continue;
            }
            if let (Ok(s), Ok(e)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                if e > s {
                    cur = Some((s, e));
                }
            }
            continue;
        }
        if let (Some(rest), Some((start, end))) = (line.strip_prefix("Anonymous:"), cur) {
            cur = None;
            if rest.trim() != "0 kB" {
                continue;
            }
            // SAFETY: [start, end) is a whole read-only, file-backed private mapping of this
            // process as listed by the kernel, without any private (anonymous) page: every
            // resident page equals the file's contents, so MADV_DONTNEED only drops them from
            // our page tables and the next access re-reads identical contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    fn contents(fd: &OwnedFd) -> Vec<u8> {
        let mut f = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    fn self_exe() -> Vec<u8> {
        std::fs::read("/proc/self/exe").unwrap()
    }

    /// Writing through `/proc/self/fd/N` (what a container does through `/proc/<pid>/exe`).
    fn try_write(fd: &OwnedFd) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(b"\x7fXXX")
    }

    #[test]
    fn readonly_view_refuses_writes_to_a_file_nobody_executes() {
        // The binary under test is busy (ETXTBSY would hide a writable view): use a plain file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"original").unwrap();
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let view = crate::mount::readonly_file_view(&c).unwrap();
        let e = try_write(&view).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"original");
        assert_eq!(contents(&view), b"original");
    }

    #[test]
    fn every_method_yields_the_binary_and_reusable_ones_cannot_change() {
        let want = self_exe();
        let dir = tempfile::tempdir().unwrap();
        let methods: Vec<(ExeKind, io::Result<OwnedFd>)> = vec![
            (
                ExeKind::ReadOnlyBind,
                crate::mount::readonly_file_view(c"/proc/self/exe"),
            ),
            (ExeKind::SealedMemfd, memfd_copy(true)),
            (ExeKind::Memfd, memfd_copy(false)),
            (ExeKind::Tmpfile, file_copy(dir.path(), false)),
            (ExeKind::Unlinked, file_copy(dir.path(), true)),
        ];
        for (kind, fd) in methods {
            let fd = fd.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(contents(&fd) == want, "{kind:?}: not a copy of the binary");
            let w = try_write(&fd);
            if kind.reusable() {
                assert!(
                    contents(&fd) == want,
                    "{kind:?}: changed by a write ({w:?})"
                );
            }
            assert!(self_exe() == want, "{kind:?}: the binary itself changed");
        }
        // The named copy left no name behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn noexec_directories_are_skipped_and_failures_name_each_method() {
        let dir = tempfile::tempdir().unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "noexec,size=64m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let r = file_copy(dir.path(), false);
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
        let e = r.unwrap_err();
        assert!(e.to_string().contains("noexec"), "{e}");
        let err = ProtectedExeError {
            attempts: vec![
                (
                    ExeKind::ReadOnlyBind,
                    io::Error::from_raw_os_error(libc::ENOSYS),
                ),
                (
                    ExeKind::SealedMemfd,
                    io::Error::from_raw_os_error(libc::EINVAL),
                ),
            ],
        };
        let msg = err.to_string();
        assert!(
            msg.contains("read-only bind") && msg.contains("sealed memfd"),
            "{msg}"
        );
        assert!(
            msg.contains("os error 38") && msg.contains("os error 22"),
            "{msg}"
        );
    }
}
