//! A stopped container's rootfs for `cp`: `wharf __exec rootfs` (re-executed from the sealed
//! binary in a NEW mount namespace) makes `/` rprivate, mounts the overlay on the container's
//! `merged` directory, sends an O_PATH fd of it to the caller and exits. Its mount namespace
//! dies with it, so nothing is ever mounted in the host's namespace; the fd keeps the (now
//! detached) overlay usable until the caller closes it.
//!
//! Must not: resolve anything inside the rootfs (the caller does, relative to the fd).

use crate::init::{fail, Ctx, InitError};
use crate::spec::RootfsSpec;
use crate::start::StartError;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use wharf_sys::process;

const SPEC: i32 = 3;
const ERR: i32 = 4;
const SOCK: i32 = 5;

/// Mount `rootfs` privately and return an `O_PATH|O_DIRECTORY` fd of its root.
pub fn open_detached_rootfs(rootfs: &RootfsSpec) -> Result<OwnedFd, StartError> {
    let id = rootfs.target.display().to_string();
    let io = |op: &'static str| {
        let id = id.clone();
        move |source: std::io::Error| StartError::Io { id, op, source }
    };
    let exe = crate::exe::container_exe(false)?;
    let json = serde_json::to_vec(rootfs).map_err(|source| StartError::Encode {
        id: id.clone(),
        source,
    })?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (spec_r, spec_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (mine, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| io("create socket")(e.into()))?;
    let child = process::spawn_reexec(
        exe.fd(),
        &["wharf", "__exec", "rootfs"],
        &[],
        &[
            (spec_r.as_fd(), SPEC),
            (err_w.as_fd(), ERR),
            (theirs.as_fd(), SOCK),
        ],
        process::NEW_NS,
        Some(ERR),
    )
    .map_err(io("spawn rootfs helper"))?;
    drop((spec_r, err_w, theirs));
    let sent = std::io::Write::write_all(&mut std::fs::File::from(spec_w), &json);
    let fd = wharf_sys::tty::recv_fd(mine.as_fd());
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_r)
        .take(64 * 1024)
        .read_to_end(&mut report);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
    if !report.is_empty() {
        let r: crate::start::InitReport =
            serde_json::from_slice(&report).unwrap_or(crate::start::InitReport {
                code: 125,
                message: String::from_utf8_lossy(&report).into_owned(),
            });
        return Err(StartError::Exec {
            code: r.code,
            message: r.message,
        });
    }
    sent.map_err(io("send rootfs spec"))?;
    fd.map_err(io("receive rootfs fd"))?.ok_or_else(|| {
        io("receive rootfs fd")(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "rootfs helper exited without a result",
        ))
    })
}

/// `wharf __exec rootfs`.
pub(super) fn rootfs_main() -> ! {
    let err = process::adopt_inherited_fd(ERR);
    let spec = process::adopt_inherited_fd(SPEC);
    let sock = process::adopt_inherited_fd(SOCK);
    let _ = process::close_fds_from(SOCK + 1);
    let e = match run(spec, sock) {
        Ok(()) => process::exit_now(0),
        Err(e) => e,
    };
    if let (Some(fd), Ok(b)) = (
        &err,
        serde_json::to_vec(&crate::start::InitReport {
            code: e.code,
            message: e.message.clone(),
        }),
    ) {
        let _ = nix::unistd::write(fd, &b);
    }
    process::exit_now(e.code)
}

fn run(spec: Option<OwnedFd>, sock: Option<OwnedFd>) -> Result<(), InitError> {
    let (spec, sock) = match (spec, sock) {
        (Some(s), Some(k)) => (s, k),
        _ => return Err(fail("wharf __exec rootfs is internal")),
    };
    let mut buf = Vec::new();
    std::fs::File::from(spec)
        .take(1 << 20)
        .read_to_end(&mut buf)
        .ctx(|| "read rootfs spec".into())?;
    let r: RootfsSpec =
        serde_json::from_slice(&buf).map_err(|_| fail("malformed rootfs spec from parent"))?;
    wharf_sys::mount::make_root_rprivate().ctx(|| "make / rprivate".into())?;
    wharf_sys::mount::mount_overlay(&r.lower, &r.upper, &r.work, &r.target)
        .ctx(|| format!("mount the container's rootfs on {}", r.target.display()))?;
    let root = std::fs::File::open(&r.target).ctx(|| "open the rootfs".into())?;
    let root = wharf_sys::fs::reopen_dir(
        root.as_fd(),
        nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC,
    )
    .ctx(|| "open the rootfs".into())?;
    wharf_sys::tty::send_fd(sock.as_fd(), root.as_fd()).ctx(|| "send rootfs fd".into())
}
