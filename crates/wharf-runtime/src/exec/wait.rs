//! Waiting for an exec'd command (our child thanks to CLONE_PARENT): the foreground loop
//! (signalfd forwarding INT/TERM/HUP/QUIT/USR1/USR2, pty pump, SIGWINCH, raw mode), and the
//! bounded wait with output capture used by healthchecks.
//!
//! The foreground loop mirrors `start/foreground.rs`, which is written for `Running`; a shared
//! trait over both would remove the duplication (owned by the start module).

use super::ExecRunning;
use crate::start::{ExitStatus, StartError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

struct MaskGuard(SigSet);
impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

fn io_err(r: &ExecRunning, op: &'static str, source: std::io::Error) -> StartError {
    StartError::Io {
        id: r.id.clone(),
        op,
        source,
    }
}

fn try_reap(r: &mut ExecRunning) -> Result<Option<ExitStatus>, StartError> {
    if r.reaped {
        return Ok(None);
    }
    match waitpid(Pid::from_raw(r.pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => {
            r.reaped = true;
            Ok(Some(ExitStatus::Exited(c)))
        }
        Ok(WaitStatus::Signaled(_, s, _)) => {
            r.reaped = true;
            Ok(Some(ExitStatus::Signaled(s as i32)))
        }
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(io_err(r, "wait for exec'd command", e.into())),
    }
}

fn copy_once(from: BorrowedFd<'_>, to: &mut dyn Write, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match nix::unistd::read(from.as_raw_fd(), buf) {
            Ok(0) => return Ok(0),
            Ok(n) => {
                to.write_all(&buf[..n])?;
                to.flush()?;
                return Ok(n);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EIO) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

struct FdWriter<'a>(BorrowedFd<'a>);
impl Write for FdWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        nix::unistd::write(self.0, b).map_err(Into::into)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn foreground(r: &mut ExecRunning) -> Result<ExitStatus, StartError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    for s in FORWARDED {
        mask.add(s);
    }
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
        .map_err(|e| io_err(r, "block signals", e.into()))?;
    let _mask_guard = MaskGuard(old);
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| io_err(r, "create signalfd", e.into()))?;
    let stdin = std::io::stdin();
    let stdin_fd = stdin.as_fd();
    let stdin_tty = nix::unistd::isatty(stdin_fd.as_raw_fd()).unwrap_or(false);
    let _raw = match (&r.master, r.stdin && stdin_tty) {
        (Some(_), true) => wharf_sys::tty::RawMode::enter(stdin_fd).ok(),
        _ => None,
    };
    let master_owned = r.master.take();
    let master = master_owned.as_ref().map(|m| m.as_fd());
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 32 * 1024];
    let mut pump_stdin = master.is_some() && r.stdin;
    let mut master_open = master.is_some();
    let status = loop {
        if let Some(st) = try_reap(r)? {
            break st;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let master_idx = match (master, master_open) {
            (Some(m), true) => {
                fds.push(PollFd::new(m, PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let stdin_idx = if pump_stdin {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            Some(fds.len() - 1)
        } else {
            None
        };
        let pidfd_idx = r.pidfd.as_ref().map(|p| {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let timeout = if pidfd_idx.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(100u8)
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io_err(r, "poll", e.into())),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents()).is_some_and(|ev| {
                ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (master_ready, stdin_ready, sig_ready) =
            (ready(master_idx), ready(stdin_idx), ready(Some(0)));
        drop(fds);
        if let (true, Some(m)) = (master_ready, master) {
            if copy_once(m, &mut stdout, &mut buf)
                .map_err(|e| io_err(r, "copy terminal output", e))?
                == 0
            {
                master_open = false;
            }
        }
        if let (true, Some(m)) = (stdin_ready, master) {
            if copy_once(stdin_fd, &mut FdWriter(m), &mut buf).unwrap_or(0) == 0 {
                pump_stdin = false;
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == Signal::SIGWINCH as i32 {
                    if let (Some(m), Ok(ws)) = (master, wharf_sys::tty::get_winsize(stdin_fd)) {
                        let _ = wharf_sys::tty::set_winsize(m, ws);
                    }
                } else if sig != Signal::SIGCHLD as i32 {
                    let _ = r.signal(sig);
                }
            }
        }
    };
    if let (Some(m), true) = (master, master_open) {
        loop {
            let mut fds = [PollFd::new(m, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
            match copy_once(m, &mut stdout, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let _ = stdout.flush();
    Ok(status)
}

/// Read what is available on the capture pipe without blocking, keeping at
/// most the cap and discarding the rest so the command never blocks on a full pipe.
pub(super) fn drain_capture(r: &mut ExecRunning) {
    let Some((fd, kept, max, eof)) = r.capture.as_mut() else {
        return;
    };
    if *eof {
        return;
    }
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => return,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                *eof = true;
                return;
            }
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

pub(super) fn timeout(r: &mut ExecRunning, d: Duration) -> Result<Option<ExitStatus>, StartError> {
    let deadline = Instant::now() + d;
    loop {
        drain_capture(r);
        if let Some(st) = try_reap(r)? {
            // A grandchild may still hold the pipe: read what is there, without waiting for it.
            drain_capture(r);
            return Ok(Some(st));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let left = (deadline - now).min(Duration::from_millis(50));
        let mut fds: Vec<PollFd> = Vec::new();
        if let Some(p) = &r.pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some((c, _, _, false)) = &r.capture {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(50).max(1);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}
