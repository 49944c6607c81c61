//! The foreground wait loop: a single-threaded poll over a signalfd (SIGCHLD, forwarded
//! signals, SIGWINCH), the pidfd, and with a tty the caller's stdin and the pty master.
//! Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container's pid 1, follows the
//! window size, puts the caller's terminal in raw mode (restored on every exit path) and drains
//! the pty after the container exits. Without a tty the container writes to the caller's fds
//! directly and nothing is copied, unless the caller captures its output ([`run_tee`]: pipes
//! for stdout/stderr copied to the caller's own and handed to a sink, the container's log).

use super::{ExitStatus, Running, StartError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Restores the thread's signal mask on drop.
struct MaskGuard(SigSet);
impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// A process the caller waits for in the foreground: a container's pid 1 ([`Running`]) or an
/// exec'd command (`ExecRunning`). One loop serves both, so signal forwarding and the pty pump
/// behave the same for `run` and `exec`.
pub(crate) trait Foreground {
    fn id(&self) -> &str;
    fn pid(&self) -> i32;
    fn pidfd(&self) -> Option<BorrowedFd<'_>>;
    /// Whether the caller's stdin is forwarded (`-i`).
    fn forwards_stdin(&self) -> bool;
    /// The pty master (`-t`), taken for the duration of the wait.
    fn take_master(&mut self) -> Option<OwnedFd>;
    fn mark_reaped(&mut self);
    fn signal(&self, sig: i32) -> std::io::Result<()>;
}

/// Reaps the process if it exited (never blocks).
pub(crate) fn try_reap<P: Foreground>(r: &mut P) -> Result<Option<ExitStatus>, StartError> {
    let status = match waitpid(Pid::from_raw(r.pid()), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => ExitStatus::Exited(c),
        Ok(WaitStatus::Signaled(_, s, _)) => ExitStatus::Signaled(s as i32),
        Ok(_) | Err(nix::errno::Errno::EINTR) => return Ok(None),
        Err(e) => return Err(io_err(r, "wait for process", e.into())),
    };
    r.mark_reaped();
    Ok(Some(status))
}

fn io_err<P: Foreground>(r: &P, op: &'static str, source: std::io::Error) -> StartError {
    StartError::Io {
        id: r.id().to_string(),
        op,
        source,
    }
}

impl Foreground for Running {
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
        self.kill(sig)
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
            // EIO: every slave fd is closed.
            Err(nix::errno::Errno::EIO) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn run<P: Foreground>(r: &mut P) -> Result<ExitStatus, StartError> {
    run_tee(r, [None, None], &mut |_, _| {})
}

/// A copy of a captured stream's bytes to the caller's fd and to the sink. False on EOF.
fn tee_once(
    from: BorrowedFd<'_>,
    stream: u8,
    to: &mut dyn Write,
    buf: &mut [u8],
    sink: &mut dyn FnMut(u8, &[u8]),
) -> bool {
    loop {
        match nix::unistd::read(from.as_raw_fd(), buf) {
            Ok(0) => return false,
            Ok(n) => {
                sink(stream, &buf[..n]);
                // the caller's stdout may be closed (`| head -1`): the log still gets the rest
                let _ = to.write_all(&buf[..n]).and_then(|()| to.flush());
                return true;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// [`run`], with the container's output also handed to `sink` (stream 1 stdout, 2 stderr):
/// `pipes` are the read ends of its stdout/stderr (no tty), copied to the caller's stdout and
/// stderr; with a tty the pty's output goes to `sink` as stdout.
pub(crate) fn run_tee<P: Foreground>(
    r: &mut P,
    pipes: [Option<OwnedFd>; 2],
    sink: &mut dyn FnMut(u8, &[u8]),
) -> Result<ExitStatus, StartError> {
    let [mut out_pipe, mut err_pipe] = pipes;
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
    let master_owned = r.take_master();
    let master = master_owned.as_ref().map(|m| m.as_fd());
    let _raw = match (master, r.forwards_stdin() && stdin_tty) {
        (Some(_), true) => wharf_sys::tty::RawMode::enter(stdin_fd).ok(),
        _ => None,
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let mut buf = vec![0u8; 32 * 1024];
    let mut pump_stdin = master.is_some() && r.forwards_stdin();
    let mut master_open = master.is_some();

    let status = loop {
        if let Some(st) = try_reap(r)? {
            break st;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(p) = r.pidfd() {
            fds.push(PollFd::new(p, PollFlags::POLLIN));
        }
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
        let out_idx = out_pipe.as_ref().map(|p| {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let err_idx = err_pipe.as_ref().map(|p| {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        // Without a pidfd, SIGCHLD could be taken by another thread of a multi-threaded caller:
        // re-check waitpid every 100 ms as a backstop (never in the pidfd path).
        let timeout = if r.pidfd().is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(100u8)
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io_err(r, "poll", e.into())),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents()).is_some_and(|ev| {
                ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let master_ready = ready(master_idx);
        let stdin_ready = ready(stdin_idx);
        let sig_ready = ready(Some(0));
        let (out_ready, err_ready) = (ready(out_idx), ready(err_idx));
        drop(fds);
        if master_ready {
            if let Some(m) = master {
                let mut tee = TeeWriter {
                    to: &mut stdout,
                    sink: &mut *sink,
                };
                if copy_once(m, &mut tee, &mut buf)
                    .map_err(|e| io_err(r, "copy terminal output", e))?
                    == 0
                {
                    master_open = false;
                }
            }
        }
        if out_ready {
            if let Some(p) = &out_pipe {
                if !tee_once(p.as_fd(), 1, &mut stdout, &mut buf, sink) {
                    out_pipe = None;
                }
            }
        }
        if err_ready {
            if let Some(p) = &err_pipe {
                if !tee_once(p.as_fd(), 2, &mut stderr, &mut buf, sink) {
                    err_pipe = None;
                }
            }
        }
        if stdin_ready {
            if let Some(m) = master {
                let mut w = MasterWriter(m);
                if copy_once(stdin_fd, &mut w, &mut buf).unwrap_or(0) == 0 {
                    pump_stdin = false;
                }
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
    // Drain what the container wrote before it exited: read until every slave is closed (EIO).
    if let (Some(m), true) = (master, master_open) {
        loop {
            let mut fds = [PollFd::new(m, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
            let mut tee = TeeWriter {
                to: &mut stdout,
                sink: &mut *sink,
            };
            match copy_once(m, &mut tee, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    // Drain the captured pipes the same way: every writer is gone once pid 1 died (its pid
    // namespace went with it), a bounded wait covers a writer that escaped.
    for (stream, pipe) in [(1u8, out_pipe), (2u8, err_pipe)] {
        let Some(p) = pipe else { continue };
        let to: &mut dyn Write = if stream == 1 {
            &mut stdout
        } else {
            &mut stderr
        };
        loop {
            let mut fds = [PollFd::new(p.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
            if !tee_once(p.as_fd(), stream, to, &mut buf, sink) {
                break;
            }
        }
    }
    let _ = stdout.flush();
    let _ = stderr.flush();
    Ok(status)
}

/// The terminal's output to the caller's stdout and to the sink (as stdout).
struct TeeWriter<'a, 'b> {
    to: &'a mut dyn Write,
    sink: &'b mut dyn FnMut(u8, &[u8]),
}
impl Write for TeeWriter<'_, '_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        (self.sink)(1, b);
        self.to.write(b)
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        (self.sink)(1, b);
        self.to.write_all(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
}

struct MasterWriter<'a>(BorrowedFd<'a>);
impl Write for MasterWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        nix::unistd::write(self.0, b).map_err(Into::into)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
