//! Joining an existing container's namespaces (for `exec`) and the process plumbing that goes
//! with it: namespace fds opened before the first join, pidfd-based `setns` (Linux 5.8) with a
//! per-namespace `/proc/<pid>/ns/*` fallback, and a fork whose child becomes a sibling of the
//! caller (`CLONE_PARENT`), so the process that started `wharf __exec` can reap the command.
//!
//! Must not: decide which namespaces to join (wharf-runtime does); be called from a
//! multi-threaded process (`setns(CLONE_NEWNS)` refuses, and forking one is unsound).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Namespace types that `exec` may join, in join order (mnt last: after it, `/proc/<pid>`
/// paths of the host are no longer reachable), as (`/proc/<pid>/ns/` name, CLONE_NEW* flag).
pub const JOINABLE: [(&str, i32); 6] = [
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// The namespaces of a target process that differ from the caller's, as open nsfs fds with
/// their type, opened before any join (so a later join cannot change what the paths mean).
#[derive(Debug)]
pub struct NsFds {
    fds: Vec<(OwnedFd, i32)>,
}

fn ns_ino(path: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.ino())
}

/// Open `/proc/<pid>/ns/<name>` for every joinable namespace of `pid` that is not the
/// caller's own. A namespace the kernel does not have (no cgroup ns) is skipped.
pub fn open_ns_fds(pid: i32) -> io::Result<NsFds> {
    let mut fds = Vec::new();
    for (name, flag) in JOINABLE {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        match (ns_ino(&theirs), ns_ino(&ours)) {
            (Ok(a), Ok(b)) if a == b => continue,
            (Err(e), _) if e.kind() == io::ErrorKind::NotFound && name == "cgroup" => continue,
            (Err(e), _) => return Err(e),
            _ => {}
        }
        let f = std::fs::File::open(&theirs)?;
        fds.push((OwnedFd::from(f), flag));
    }
    Ok(NsFds { fds })
}

impl NsFds {
    /// The CLONE_NEW* flags of the namespaces to join.
    pub fn flags(&self) -> i32 {
        self.fds.iter().fold(0, |a, (_, f)| a | f)
    }

    /// Join them all (one `setns` each, mnt last). Single-threaded callers only.
    pub fn join(&self) -> io::Result<()> {
        for (fd, flag) in &self.fds {
            setns(fd.as_fd(), *flag)?;
        }
        Ok(())
    }
}

/// `setns(fd, nstype)`; `fd` is an nsfs fd (nstype one flag or 0) or a pidfd (nstype a
/// combination of CLONE_NEW* flags, joined atomically; Linux 5.8).
pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> io::Result<()> {
    // SAFETY: setns only reads the fd and flag; it changes this thread's namespaces, which the
    // single-threaded caller asked for.
    let r = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Join the namespaces `flags` of the process behind `pidfd` in one atomic `setns`; falls back
/// to per-namespace fds (already opened by the caller as `fallback`) on kernels before 5.8.
pub fn join_namespaces(pidfd: Option<BorrowedFd<'_>>, fallback: &NsFds) -> io::Result<()> {
    let flags = fallback.flags();
    if flags == 0 {
        return Ok(());
    }
    if let Some(p) = pidfd {
        match setns(p, flags) {
            Ok(()) => return Ok(()),
            // EINVAL: pidfds not accepted by setns (before 5.8).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    fallback.join()
}

/// Result of [`fork_sibling`].
pub enum Sibling {
    /// In the caller: the new process's pid as the caller sees it.
    Caller(i32),
    Child,
}

/// Fork a child whose parent is the caller's parent (`CLONE_PARENT`), with SIGCHLD as its exit
/// signal. After `setns(CLONE_NEWPID)` the child is in the joined pid namespace. Single-threaded
/// callers only.
pub fn fork_sibling() -> io::Result<Sibling> {
    // SAFETY: raw clone(2) with a NULL stack behaves like fork (the child runs on a copy of the
    // caller's stack); the only caller is the single-threaded `wharf __exec`, so no lock held by
    // another thread can be inherited. All pointer arguments are NULL.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok(Sibling::Child),
        r if r > 0 => Ok(Sibling::Caller(r as i32)),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets the NIS domain name of the calling process's UTS namespace (`--domainname`).
pub fn set_domainname(name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    // SAFETY: `bytes` is a valid buffer of `bytes.len()` bytes for the whole call; the kernel
    // copies it (no NUL terminator needed: the length is passed).
    let r = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_are_not_joined() {
        let fds = open_ns_fds(std::process::id() as i32).unwrap();
        assert_eq!(fds.flags(), 0);
        assert!(join_namespaces(None, &fds).is_ok());
    }
}
