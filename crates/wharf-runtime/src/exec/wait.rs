//! Waiting for an exec'd command (our child thanks to CLONE_PARENT): the foreground wait is
//! the same loop `run` uses (`start::foreground`, through its `Foreground` trait); this module
//! adds the bounded wait with output capture used by healthchecks.

use super::ExecRunning;
use crate::start::foreground::{self, Foreground};
use crate::start::{ExitStatus, StartError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

impl Foreground for ExecRunning {
    fn id(&self) -> &str {
        &self.id
    }
    fn pid(&self) -> i32 {
        self.pid
    }
    fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|p| p.as_fd())
    }
    fn forwards_stdin(&self) -> bool {
        self.stdin
    }
    fn take_master(&mut self) -> Option<OwnedFd> {
        self.master.take()
    }
    fn mark_reaped(&mut self) {
        self.reaped = true;
    }
    fn signal(&self, sig: i32) -> std::io::Result<()> {
        ExecRunning::signal(self, sig)
    }
}

pub(super) fn foreground(r: &mut ExecRunning) -> Result<ExitStatus, StartError> {
    foreground::run(r)
}

fn try_reap(r: &mut ExecRunning) -> Result<Option<ExitStatus>, StartError> {
    if r.reaped {
        return Ok(None);
    }
    foreground::try_reap(r)
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
