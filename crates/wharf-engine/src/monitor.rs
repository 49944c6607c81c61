//! The per-container monitor, `wharf __monitor ROOT RUNROOT ID [--debug]`: a small process
//! (part of the same binary, like conmon but without a second program) that the CLI spawns for
//! a detached container and that outlives it (own session, stdio on /dev/null).
//!
//! It owns the container's stdio (pipes, or the pty master with `-t`), writes every output
//! line to the container's log (the configured `wharf_logs` driver, json-file by default), serves `attach` clients on
//! `RUNROOT/containers/<id>/attach.sock`, reaps pid 1, records exit code and time in
//! `state.json`, and applies the restart policy with docker's backoff (100 ms doubling, reset
//! after a run of ≥ 10 s). The container's pid 1 has PR_SET_PDEATHSIG(SIGKILL): killing the
//! monitor kills the container, and readers of the state notice the dead monitor.
//!
//! Steady state is one single-threaded poll() loop over the pidfd, the output fds, the attach
//! socket and its clients, with one 8 KiB stack buffer; the sealed binary copy used to start
//! the container is released right after the start (see `start_monitored`).
//!
//! Handshake with the CLI: the monitor's stdout is a pipe the CLI reads to EOF: `ok\n` once the
//! container's command was exec'd, or `err CODE MESSAGE\n`. Then stdout/stderr go to /dev/null.
//!
//! Must not: take the store's locks for long, print to a terminal, or run more than one thread.

use crate::release::Then;
use crate::state::ContainerState;
use crate::timefmt::now_rfc3339;
use crate::{Engine, EngineOptions};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wharf_runtime::start::{ExitStatus, MonitorIo, StartOptions};
use wharf_types::container::ContainerRecord;
use wharf_types::error::HasKind;

/// Marker file: the next exit of the container was asked for (`stop`, `kill`, `rm -f`); the
/// restart policy must not start it again.
pub const EXIT_ON_NEXT: &str = "exit-on-next";
/// One monitor per container: held (flock) for the monitor's life, in its run directory.
pub const MONITOR_LOCK: &str = "monitor.lock";
/// The attach socket in the container's run directory.
pub const ATTACH_SOCK: &str = "attach.sock";
const MAX_CLIENTS: usize = 8;

/// Entry of the hidden `wharf __monitor` command; `args` are the arguments after it.
pub fn monitor_main(args: &[OsString]) -> ! {
    // Nothing of the caller's but stdio (the handshake pipe, then /dev/null): an inherited fd
    // (a caller's flock, a pipe whose reader waits for EOF) would live as long as the
    // container. Single-threaded here and owning no fd yet, so closing them all is sound.
    let _ = wharf_sys::process::close_fds_from(3);
    // Daemonize by a second fork (as conmon does): the spawner reaps the intermediate at
    // once and the monitor is adopted by init (or the nearest subreaper), so a long-lived
    // spawner (`wharf system service`) collects no zombie monitors. Single-threaded here.
    match wharf_sys::process::fork() {
        Ok(wharf_sys::process::Forked::Parent(_)) => wharf_sys::process::exit_now(0),
        Ok(wharf_sys::process::Forked::Child) => {}
        // not daemonized: the monitor stays the spawner's child (still correct, as before)
        Err(_) => {}
    }
    let code = match parse_args(args) {
        Some((opts, id, wait_attach)) => match Monitor::setup(opts, &id, wait_attach) {
            Ok(mut m) => m.run(),
            Err(e) => {
                report_start_failure(e.kind(), &e.to_string());
                e.exit_code()
            }
        },
        None => {
            eprintln!("wharf __monitor is internal: ROOT RUNROOT ID [--debug]");
            125
        }
    };
    std::process::exit(code)
}

/// `ROOT RUNROOT ID [--debug] [--wait-attach]`.
fn parse_args(args: &[OsString]) -> Option<(EngineOptions, String, bool)> {
    let root = PathBuf::from(args.first()?);
    let run_root = PathBuf::from(args.get(1)?);
    let id = args.get(2)?.to_str()?.to_string();
    let flag = |f: &str| args.iter().skip(3).any(|a| a == f);
    Some((
        EngineOptions {
            root,
            run_root,
            debug: flag("--debug"),
        },
        id,
        flag("--wait-attach"),
    ))
}

/// A failed start, on the handshake pipe: `err <kind> <message>` (the kind by
/// `ErrorKind::as_str`; `Engine::spawn_monitor` turns it back into `StartReported`).
fn report_start_failure(kind: wharf_types::ErrorKind, message: &str) {
    report(&format!("err {kind} {}\n", message.replace('\n', " ")));
}

/// Writes to the CLI's handshake pipe (fd 1), then detaches stdio from it.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for t in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), t);
        }
    }
}

/// A short name for `dir/attach.sock` (sun_path holds 108 bytes; run roots can be long):
/// `/proc/self/fd/N/attach.sock` through an O_PATH fd of `dir`, valid while the fd lives.
pub fn attach_addr(dir: &Path) -> std::io::Result<(OwnedFd, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(dir)?
        .into();
    let path = PathBuf::from(format!("/proc/self/fd/{}/{ATTACH_SOCK}", fd.as_raw_fd()));
    Ok((fd, path))
}

/// The container's run directory: `RUNROOT/containers/<id>`.
pub fn run_dir(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("containers").join(id)
}

/// The container's log: the configured `wharf_logs` driver behind one line splitter per
/// stream. A driver that cannot be opened fails the start (docker: "failed to initialize
/// logging driver"); a driver that fails later drops lines, never the container. Also the
/// log of a container run in the foreground (`Engine::start_foreground`), as docker keeps it.
pub(crate) struct Log {
    driver: Option<Box<dyn wharf_logs::LogDriver>>,
    split: [wharf_logs::LineSplitter; 2],
}

impl Log {
    pub(crate) fn open(rec: &ContainerRecord, dir: &Path) -> Result<Log, wharf_logs::LogError> {
        let ctx = wharf_logs::LogContext {
            container_id: rec.id.to_string(),
            container_name: rec.name.clone(),
            image_name: rec.config.image.clone(),
            image_id: rec.image.to_string(),
            dir: dir.to_path_buf(),
        };
        Ok(Log {
            driver: Some(wharf_logs::open(&rec.host_config.log_config, &ctx)?),
            split: [
                wharf_logs::LineSplitter::new(),
                wharf_logs::LineSplitter::new(),
            ],
        })
    }

    pub(crate) fn push(&mut self, stream: usize, data: &[u8]) {
        let Some(d) = &mut self.driver else { return };
        let (idx, s) = if stream == 2 {
            (1, wharf_logs::Stream::Stderr)
        } else {
            (0, wharf_logs::Stream::Stdout)
        };
        let now = std::time::SystemTime::now();
        self.split[idx].push(data, &mut |line| d.log(s, line, now));
    }

    fn flush(&mut self) {
        let Some(d) = &mut self.driver else { return };
        let now = std::time::SystemTime::now();
        for (idx, s) in [
            (0, wharf_logs::Stream::Stdout),
            (1, wharf_logs::Stream::Stderr),
        ] {
            self.split[idx].finish(&mut |line| d.log(s, line, now));
        }
    }

    pub(crate) fn close(&mut self) {
        self.flush();
        if let Some(d) = &mut self.driver {
            d.close();
        }
        self.driver = None;
    }
}

/// An attach client: output goes to it until it fails; its input until it ends.
struct Client {
    s: UnixStream,
    reading: bool,
}

impl Client {
    fn new(s: UnixStream) -> Client {
        Client { s, reading: true }
    }
}

struct Monitor {
    engine: Engine,
    rec: ContainerRecord,
    state: ContainerState,
    run_dir: PathBuf,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    log: Log,
    reported: bool,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// What ended one run of the container.
enum Ended {
    Exited(ExitStatus, bool),
    /// The start failed: the error's kind (its exit code is the container's) and message.
    StartFailed(wharf_types::ErrorKind, String),
}

impl Monitor {
    /// With `wait_attach` (`start -a`), the first attach client is accepted (up to 10 s)
    /// before the container starts, so it sees all of its output.
    fn setup(
        opts: EngineOptions,
        id: &str,
        wait_attach: bool,
    ) -> Result<Monitor, crate::EngineError> {
        let _ = nix::unistd::setsid();
        let run_root = opts.run_root.clone();
        let engine = Engine::open(opts)?;
        let rec = engine.store.container(id)?;
        let run_dir = run_dir(&run_root, rec.id.as_str());
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| crate::EngineError::io("create", &run_dir, e))?;
        // one monitor per container: held for the monitor's life
        let lock_path = run_dir.join(MONITOR_LOCK);
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| crate::EngineError::io("open", &lock_path, e))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| {
                crate::EngineError::from(crate::refusal::StateConflict::AlreadyRunning {
                    id: rec.id.short().to_string(),
                })
            })?;
        let _ = std::fs::remove_file(run_dir.join(EXIT_ON_NEXT));
        let _ = std::fs::remove_file(run_dir.join(ATTACH_SOCK));
        let listener = attach_addr(&run_dir)
            .ok()
            .and_then(|(_dir, addr)| UnixListener::bind(addr).ok());
        if let Some(l) = &listener {
            let _ = l.set_nonblocking(true);
        }
        let mut clients = Vec::new();
        if let (true, Some(l)) = (wait_attach, &listener) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match l.accept() {
                    Ok((c, _)) => {
                        let _ = c.set_nonblocking(true);
                        clients.push(Client::new(c));
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        let mut state: ContainerState = engine
            .store
            .read_container_state(&rec.id)?
            .unwrap_or_default();
        let me = std::process::id() as i32;
        state.monitor_pid = me;
        state.monitor_start_time = crate::state::process_start_time(me).unwrap_or(0);
        state.manually_stopped = false;
        state.restart_count = 0;
        let dir = engine.store.container_paths(&rec.id).dir;
        let log = Log::open(&rec, &dir).map_err(crate::EngineError::LogDriver)?;
        Ok(Monitor {
            engine,
            rec,
            state,
            run_dir,
            listener,
            clients,
            log,
            reported: false,
            _lock: lock,
        })
    }

    fn save(&self) -> bool {
        self.engine
            .store
            .write_container_state(&self.rec.id, &self.state)
            .is_ok()
    }

    fn exit_requested(&self) -> bool {
        self.run_dir.join(EXIT_ON_NEXT).exists()
    }

    /// The whole life of the monitor: start, supervise, restart; returns its exit code.
    fn run(&mut self) -> i32 {
        // docker's restart manager: current backoff, 0 = none yet
        let mut backoff = Duration::ZERO;
        loop {
            let started = Instant::now();
            let ended = self.run_once();
            if let Ended::StartFailed(kind, msg) = &ended {
                if !self.reported {
                    self.state.error = msg.clone();
                    self.state.monitor_pid = 0;
                    self.state.monitor_start_time = 0;
                    self.save();
                    let _ = self.engine.release(&self.rec, Then::Keep);
                    report_start_failure(*kind, msg);
                    return 1;
                }
            }
            let (code, oom) = match &ended {
                Ended::Exited(st, oom) => (st.code(), *oom),
                Ended::StartFailed(kind, msg) => {
                    self.state.error = msg.clone();
                    (kind.exit_code(), false)
                }
            };
            // every exit of the process, restarted or not (docker's "die")
            if matches!(ended, Ended::Exited(..)) {
                if oom {
                    self.engine.emit_container(&self.rec, "oom", &[]);
                }
                let exit = [("exitCode", code.to_string())];
                self.engine.emit_container(&self.rec, "die", &exit);
            }
            // the record is gone: `rm -f` removed the container while it ran
            if self.engine.store.container(self.rec.id.as_str()).is_err() {
                let _ = self.engine.release(&self.rec, Then::Keep);
                return 0;
            }
            let manual = self.exit_requested();
            let ran = started.elapsed();
            if ran >= Duration::from_secs(10) {
                backoff = Duration::ZERO;
            }
            backoff = if backoff.is_zero() {
                Duration::from_millis(100)
            } else {
                (backoff * 2).min(Duration::from_secs(60))
            };
            let policy = &self.rec.host_config.restart_policy;
            let restart = !manual
                && !self.rec.host_config.auto_remove
                && match policy.name.as_str() {
                    "always" | "unless-stopped" => true,
                    "on-failure" => {
                        code != 0
                            && (policy.maximum_retry_count == 0
                                || i64::from(self.state.restart_count) < policy.maximum_retry_count)
                    }
                    _ => false,
                };
            if restart {
                let now = now_rfc3339();
                if let Err(e) = self.state.set_restarting(code, oom, now) {
                    return self.give_up(e);
                }
                self.state.restart_count += 1;
                if !self.save() {
                    return 0;
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if self.exit_requested() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                if self.exit_requested() {
                    if let Err(e) = self.state.stop_restarting() {
                        return self.give_up(e);
                    }
                    self.finish_exit();
                    return 0;
                }
                continue;
            }
            if let Err(e) = self.state.set_exited(code, oom, now_rfc3339()) {
                return self.give_up(e);
            }
            self.state.manually_stopped = manual;
            self.finish_exit();
            return 0;
        }
    }

    /// The recorded state refused a transition the monitor saw happen (the state file was
    /// changed behind its back): the container is recorded dead with the reason, and the
    /// monitor ends like after an exit.
    fn give_up(&mut self, e: crate::state::InvalidTransition) -> i32 {
        self.state.set_dead(format!(
            "container state no longer matches its process: {e}"
        ));
        self.finish_exit();
        0
    }

    fn finish_exit(&mut self) {
        self.log.close();
        self.state.monitor_pid = 0;
        self.state.monitor_start_time = 0;
        self.state.pid = 0;
        let then = Then::after_exit(&self.rec);
        if then == Then::Keep {
            self.save();
        }
        // best effort: the monitor has nobody left to tell; a later `rm` releases again
        let _ = self.engine.release(&self.rec, then);
        self.clients.clear();
    }

    /// Starts the container once and supervises it until pid 1 exits.
    fn run_once(&mut self) -> Ended {
        let paths = self.engine.store.container_paths(&self.rec.id);
        // the first start was checked by the process that spawned this monitor
        // (`spawn_monitor`); a restart is checked again against the policy as this monitor
        // read it
        let checked = if self.reported {
            self.engine.policy_start(&self.rec)
        } else {
            Ok(())
        };
        // a state that cannot become running (dead) is not started at all
        let checked = checked.and_then(|()| Ok(self.state.check_start()?));
        let spec = match checked
            .and_then(|()| self.engine.runtime_spec(&self.rec, &paths))
            .and_then(|mut spec| {
                spec.ipc = self.engine.ipc_for_start(&self.rec)?;
                // on failure it leaves nothing of this start's network behind
                self.engine.attach_network(&self.rec, &paths, &mut spec)?;
                Ok(spec)
            }) {
            Ok(s) => s,
            Err(e) => return Ended::StartFailed(e.kind(), e.to_string()),
        };
        let opts = StartOptions {
            seccomp_cache_dir: self.engine.seccomp_cache_dir(),
            capture_output: false,
        };
        let created = match wharf_runtime::start::create_monitored(&spec, &opts) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.engine.release_runtime(&self.rec);
                return Ended::StartFailed(e.kind(), e.to_string());
            }
        };
        drop(spec);
        // pid 1 waits for the go: the state names it before the command can run
        let before = self.state.clone();
        if let Err(e) = self.state.set_running(created.pid(), now_rfc3339()) {
            // checked above: only a concurrent writer gets here
            drop(created); // kills and reaps pid 1
            let _ = self.engine.release_runtime(&self.rec);
            return Ended::StartFailed(wharf_types::error::ErrorKind::Conflict, e.to_string());
        }
        let info = crate::run::ContainerInfo {
            record: self.rec.clone(),
            state: self.state.clone(),
        };
        let prober = crate::health::Prober::new(&info);
        self.state.health = prober.as_ref().map(|_| crate::state::Health::starting());
        if !self.save() {
            // removed while starting
            drop(created); // kills and reaps pid 1
            return Ended::Exited(ExitStatus::Signaled(9), false);
        }
        let mut running = match created.start() {
            Ok(r) => r,
            Err(e) => {
                // not running after all: the caller records the failure on the state before
                self.state = before;
                let _ = self.engine.release_runtime(&self.rec);
                return Ended::StartFailed(e.kind(), e.to_string());
            }
        };
        let io = running.take_io();
        self.engine.emit_container(&self.rec, "start", &[]);
        if !self.reported {
            self.reported = true;
            report("ok\n");
        }
        wharf_runtime::start::release_startup_memory();
        let status = self.supervise(&mut running, io, prober, &info);
        // reads the OOM flag, removes the cgroup; the rest of this run's resources follow
        let oom = running.finish(status).unwrap_or(false);
        let _ = self.engine.release_runtime(&self.rec);
        Ended::Exited(status, oom)
    }

    fn supervise(
        &mut self,
        running: &mut wharf_runtime::start::Running,
        mut io: MonitorIo,
        mut prober: Option<crate::health::Prober>,
        info: &crate::run::ContainerInfo,
    ) -> ExitStatus {
        let mut buf = [0u8; 8192];
        let tty = io.master.is_some();
        let status = loop {
            if let Ok(Some(st)) = running.try_wait() {
                break st;
            }
            let outs: [Option<BorrowedFd<'_>>; 2] = if tty {
                [io.master.as_ref().map(|m| m.as_fd()), None]
            } else {
                [
                    io.stdout.as_ref().map(|f| f.as_fd()),
                    io.stderr.as_ref().map(|f| f.as_fd()),
                ]
            };
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4 + self.clients.len());
            let has_pidfd = running.pidfd().is_some();
            if let Some(p) = running.pidfd() {
                fds.push(PollFd::new(p, PollFlags::POLLIN));
            }
            let mut out_idx: [Option<usize>; 2] = [None, None];
            for (i, o) in outs.iter().enumerate() {
                if let Some(fd) = o {
                    out_idx[i] = Some(fds.len());
                    fds.push(PollFd::new(*fd, PollFlags::POLLIN));
                }
            }
            let lidx = fds.len();
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            }
            let cidx = fds.len();
            // a client whose input ended is only written to
            for c in self.clients.iter().filter(|c| c.reading) {
                fds.push(PollFd::new(c.s.as_fd(), PollFlags::POLLIN));
            }
            let timeout = match (&prober, has_pidfd) {
                (Some(p), true) => {
                    PollTimeout::from(p.wait_hint().as_millis().clamp(1, 60_000) as u16)
                }
                (None, true) => PollTimeout::NONE,
                (_, false) => PollTimeout::from(100u8),
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
            let ready = |f: &PollFd<'_>| {
                f.revents().is_some_and(|ev| {
                    ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            };
            let out_ready = out_idx.map(|i| i.is_some_and(|i| ready(&fds[i])));
            let accept = self.listener.is_some() && ready(&fds[lidx]);
            let client_ready: Vec<bool> = fds[cidx..].iter().map(ready).collect();
            drop(fds);
            for (i, r) in out_ready.iter().enumerate() {
                if *r {
                    let stream = if i == 0 { 1 } else { 2 };
                    if !self.pump_output(&mut io, stream, tty, &mut buf) {
                        // EOF: stop polling this fd
                        if tty {
                            io.master = None;
                        } else if i == 0 {
                            io.stdout = None;
                        } else {
                            io.stderr = None;
                        }
                    }
                }
            }
            if accept {
                self.accept_clients();
            }
            self.client_input(&client_ready, &mut io, &mut buf);
            if let Some(p) = &mut prober {
                if let Some(probe) = p.tick(&self.engine, info) {
                    let (retries, start) = (p.retries, p.in_start_period());
                    self.state
                        .health
                        .get_or_insert_with(crate::state::Health::starting)
                        .record(probe, retries, start);
                    self.save();
                    wharf_runtime::start::release_startup_memory();
                }
            }
        };
        // drain what is left: EOF once every process of the container is gone
        let deadline = Instant::now() + Duration::from_secs(1);
        for (stream, fd) in [(1, io.stdout.take()), (2, io.stderr.take())] {
            if let Some(fd) = fd {
                let mut tmp = MonitorIo::default();
                if stream == 1 {
                    tmp.stdout = Some(fd);
                } else {
                    tmp.stderr = Some(fd);
                }
                while Instant::now() < deadline && self.drain_one(&mut tmp, stream, false, &mut buf)
                {
                }
            }
        }
        if io.master.is_some() {
            while Instant::now() < deadline && self.drain_one(&mut io, 1, true, &mut buf) {}
        }
        self.log.flush();
        status
    }

    fn drain_one(&mut self, io: &mut MonitorIo, stream: u8, tty: bool, buf: &mut [u8]) -> bool {
        let fd = match (tty, stream) {
            (true, _) => io.master.as_ref(),
            (false, 1) => io.stdout.as_ref(),
            _ => io.stderr.as_ref(),
        };
        let Some(fd) = fd else { return false };
        let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(200u8)) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        self.pump_output(io, stream, tty, buf)
    }

    /// Reads once from the stream's fd; logs and forwards. False on EOF/error.
    fn pump_output(&mut self, io: &mut MonitorIo, stream: u8, tty: bool, buf: &mut [u8]) -> bool {
        let fd: Option<&OwnedFd> = match (tty, stream) {
            (true, _) => io.master.as_ref(),
            (false, 1) => io.stdout.as_ref(),
            _ => io.stderr.as_ref(),
        };
        let Some(fd) = fd else { return false };
        let n = loop {
            match nix::unistd::read(fd.as_raw_fd(), buf) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break 0,
            }
        };
        if n == 0 {
            return false;
        }
        let data = &buf[..n];
        self.log.push(usize::from(stream), data);
        if !self.clients.is_empty() {
            let mut frame = Vec::with_capacity(8 + n);
            frame.push(stream);
            frame.extend_from_slice(&[0, 0, 0]);
            frame.extend_from_slice(&(n as u32).to_be_bytes());
            frame.extend_from_slice(data);
            // a slow client is dropped rather than blocking the container
            self.clients
                .retain_mut(|c| matches!(c.s.write(&frame), Ok(k) if k == frame.len()));
        }
        true
    }

    fn accept_clients(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((s, _)) = l.accept() {
            if self.clients.len() >= MAX_CLIENTS {
                continue;
            }
            let _ = s.set_nonblocking(true);
            self.clients.push(Client::new(s));
        }
    }

    /// Client bytes go to the container's stdin (pipe or pty) when it has one. A client
    /// whose input ends (a half-close) keeps receiving output; with `StdinOnce` the
    /// container's stdin pipe is closed then (`echo x | docker run -i image cat` ends). A
    /// client that fails is dropped.
    fn client_input(&mut self, ready: &[bool], io: &mut MonitorIo, buf: &mut [u8]) {
        let with_stdin = self.rec.config.open_stdin;
        let mut keep = Vec::with_capacity(self.clients.len());
        let mut close_stdin = false;
        let mut polled = 0;
        for mut c in std::mem::take(&mut self.clients) {
            if !c.reading {
                keep.push(c);
                continue;
            }
            let is_ready = ready.get(polled).copied().unwrap_or(false);
            polled += 1;
            if !is_ready {
                keep.push(c);
                continue;
            }
            match c.s.read(buf) {
                Ok(0) => {
                    c.reading = false;
                    close_stdin |= with_stdin && self.rec.config.stdin_once;
                    keep.push(c);
                }
                Ok(n) => {
                    let sink: Option<&OwnedFd> = io.master.as_ref().or(io.stdin.as_ref());
                    if let (Some(s), true) = (sink, with_stdin) {
                        let _ = nix::unistd::write(s, &buf[..n]);
                    }
                    keep.push(c);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => keep.push(c),
                Err(_) => {}
            }
        }
        if close_stdin && io.master.is_none() {
            io.stdin = None;
        }
        self.clients = keep;
    }
}
