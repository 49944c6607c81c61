//! The binary every container-side process (`__init`, `__exec`, the `cp` rootfs helper) is
//! re-executed from, protected against being rewritten from inside a container (runc
//! CVE-2019-5736) by the cheapest method the kernel has (`wharf_sys::process::
//! protected_self_exe`): a read-only detached bind mount of our own binary on 5.12+, a sealed
//! memfd copy on older kernels, a private read-only copy where memfds or seals are missing.
//!
//! A view or sealed copy is made once per process and reused; a sealed copy is kept only by
//! short-lived callers (the CLI), so long-lived ones (the monitor's healthchecks) never hold
//! megabytes of shmem; a private copy always serves exactly one start.

use crate::start::StartError;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use wharf_sys::process::{self, ExeKind, ProtectedExe};

static SHARED: OnceLock<ProtectedExe> = OnceLock::new();

/// A protected binary for one start: shared (cached for the process) or owned.
pub(crate) enum Exe {
    Shared(&'static ProtectedExe),
    Own(ProtectedExe),
}

impl Exe {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Exe::Shared(p) => p.fd.as_fd(),
            Exe::Own(p) => p.fd.as_fd(),
        }
    }
}

/// Directories a private copy may be made in when neither a bind view nor a memfd is
/// available: the binary's own directory (exec is allowed there, it is root's) and the
/// temporary directory; `noexec` mounts are skipped by `protected_self_exe`.
fn copy_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
    {
        dirs.push(d);
    }
    dirs.push(std::env::temp_dir());
    dirs
}

/// The protected binary for a start. `keep_copy`: a sealed memfd copy may be cached for the
/// life of this process (true for the CLI, false for long-lived processes).
pub(crate) fn container_exe(keep_copy: bool) -> Result<Exe, StartError> {
    if let Some(p) = SHARED.get() {
        return Ok(Exe::Shared(p));
    }
    let dirs = copy_dirs();
    let refs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
    let p =
        process::protected_self_exe(&refs).map_err(|source| StartError::ProtectExe { source })?;
    let cache = match p.kind {
        ExeKind::ReadOnlyBind => true,
        ExeKind::SealedMemfd => keep_copy,
        _ => false,
    };
    if cache {
        return Ok(Exe::Shared(SHARED.get_or_init(|| p)));
    }
    Ok(Exe::Own(p))
}

/// Which method this process uses (for `--debug` and tests).
pub fn exe_kind() -> Option<ExeKind> {
    container_exe(false).ok().map(|e| match e {
        Exe::Shared(p) => p.kind,
        Exe::Own(p) => p.kind,
    })
}
