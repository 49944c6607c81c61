//! openat2(2) (Linux 5.6) with availability detection. Callers use the `fs` module's
//! resolution helpers, which fall back to a component-by-component walk when this returns
//! `None` (kernel too old, or forced off with `WHARF_DISABLE=openat2`).

use crate::features::{force_disabled, Feature};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn raw_openat2(
    dir: libc::c_int,
    path: &CString,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags,
        mode,
        resolve,
    };
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a valid open_how of the
        // size we pass; the kernel only reads both. The returned fd is owned by us.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the syscall returned a new, valid file descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as libc::c_int) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced a RESOLVE_* lookup; retrying is what the man page says.
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Whether openat2 can be used (kernel has it and it is not forced off).
pub fn available() -> bool {
    static AVAIL: OnceLock<bool> = OnceLock::new();
    if force_disabled(Feature::Openat2) {
        return false;
    }
    *AVAIL.get_or_init(|| {
        let root = match CString::new("/") {
            Ok(c) => c,
            Err(_) => return false,
        };
        match raw_openat2(
            libc::AT_FDCWD,
            &root,
            (libc::O_PATH | libc::O_CLOEXEC) as u64,
            0,
            0,
        ) {
            Ok(_) => true,
            Err(e) => e.raw_os_error() != Some(libc::ENOSYS),
        }
    })
}

/// openat2 relative to `dir`. Returns `Ok(None)` when openat2 is unavailable, so the caller
/// falls back. `O_CLOEXEC` is always added.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &str,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<Option<OwnedFd>> {
    if !available() {
        return Ok(None);
    }
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    raw_openat2(
        dir.as_raw_fd(),
        &c,
        (flags | libc::O_CLOEXEC) as u64,
        mode as u64,
        resolve,
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn beneath_blocks_dotdot() {
        if !available() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::open(d.path()).unwrap();
        let e = openat2(f.as_fd(), "../", libc::O_PATH, 0, RESOLVE_BENEATH).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EXDEV));
        assert!(openat2(f.as_fd(), ".", libc::O_PATH, 0, RESOLVE_BENEATH)
            .unwrap()
            .is_some());
    }
}
