//! Lifecycle of detached containers: `run -d`/`start` (spawn the monitor), `stop`, `kill`,
//! `restart`, `wait`, `pause`/`unpause`, `attach`, `container prune`, `system boot`.
//!
//! While a container has a monitor, the monitor is the only writer of its `state.json`; these
//! operations act on the process (signals, freezer) and wait for the monitor to record the
//! result. A stop/kill/rm first drops the `exit-on-next` marker in the container's run
//! directory so the restart policy leaves the container down (docker's ExitOnNext).
//! Must not: print, or parse command lines.

use crate::monitor::{run_dir, ATTACH_SOCK, EXIT_ON_NEXT};
use crate::refusal::{StateConflict, ValidationError};
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use nix::sys::signal::Signal;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wharf_runtime::cgroup::Cgroup;
use wharf_types::container::ContainerRecord;
use wharf_types::error::HasKind;
use wharf_types::{ContainerId, ErrorKind};

/// docker's wait conditions (`condition=not-running|next-exit|removed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    /// docker's names; empty is `not-running`.
    pub fn parse(s: &str) -> Result<WaitCondition, EngineError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            _ => Err(ValidationError::WaitCondition { value: s.into() }.into()),
        }
    }
}

/// A wait begun by [`Engine::begin_wait`].
#[derive(Debug, Clone)]
pub struct Waiter {
    pub id: ContainerId,
    condition: WaitCondition,
    first: (Status, String),
    last: i32,
    since: i64,
}

/// Parses docker's signal names: `KILL`, `SIGKILL`, `9`, `sighup`.
pub fn parse_signal(s: &str) -> Result<Signal, EngineError> {
    let bad = || EngineError::from(ValidationError::Signal { signal: s.into() });
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

pub(crate) fn not_running(id: &ContainerId) -> EngineError {
    StateConflict::NotRunning { id: id.to_string() }.into()
}

fn active(st: Status) -> bool {
    matches!(st, Status::Running | Status::Paused | Status::Restarting)
}

use crate::run::cgroup_path;

/// Waits (up to 10 s) until the monitor process `(pid, start time)` (0: none) has exited.
/// The monitor's exit record comes before its cleanup; this is the end of the cleanup.
fn wait_process_gone((pid, start): (i32, u64)) {
    if pid <= 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::state::process_start_time(pid) == Some(start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Engine {
    /// The container's volatile directory (`RUNROOT/containers/<id>`): attach socket, markers.
    pub fn run_dir(&self, id: &ContainerId) -> PathBuf {
        run_dir(&self.opts.run_root, id.as_str())
    }

    fn mark_exit_on_next(&self, id: &ContainerId) {
        let d = self.run_dir(id);
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::write(d.join(EXIT_ON_NEXT), b"");
    }

    /// Polls the (reconciled) state until `done` holds (true), the container is removed
    /// (true) or `timeout` passes (false; None = forever).
    fn wait_state(
        &self,
        id: &ContainerId,
        timeout: Option<Duration>,
        done: &dyn Fn(&ContainerInfo) -> bool,
    ) -> Result<bool, EngineError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.container(id.as_str()) {
                Ok(info) if done(&info) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
                Err(e) => return Err(e),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a created or exited container with a monitor (`wharf __monitor`) that outlives
    /// the caller; returns once the container's command was exec'd (or why it was not).
    pub fn start_detached(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        self.spawn_monitor(rec, false).map(|_| ())
    }

    /// `start -a`: like [`Engine::start_detached`], but the returned attach stream is
    /// connected before the container starts, so it sees all of its output.
    pub fn start_attached(
        &self,
        rec: &ContainerRecord,
    ) -> Result<std::os::unix::net::UnixStream, EngineError> {
        self.spawn_monitor(rec, true)
            .and_then(|s| s.ok_or_else(|| not_running(&rec.id)))
    }

    fn spawn_monitor(
        &self,
        rec: &ContainerRecord,
        attach: bool,
    ) -> Result<Option<std::os::unix::net::UnixStream>, EngineError> {
        let info = self.container(rec.id.as_str())?;
        if active(info.state.status()) {
            return Err(StateConflict::AlreadyRunning {
                id: rec.id.short().to_string(),
            }
            .into());
        }
        // the admin policy decides here, in the caller's process (the audit line names the
        // command that asked); the monitor checks again before each restart
        self.policy_start(&info.record)?;
        let mut cmd = std::process::Command::new("/proc/self/exe");
        std::os::unix::process::CommandExt::arg0(&mut cmd, "wharf");
        cmd.arg("__monitor")
            .arg(&self.opts.root)
            .arg(&self.opts.run_root)
            .arg(rec.id.as_str());
        if self.opts.debug {
            cmd.arg("--debug");
        }
        if attach {
            cmd.arg("--wait-attach");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| EngineError::io("spawn monitor", "/proc/self/exe", e))?;
        let mut stream = None;
        if attach {
            let dir = self.run_dir(&rec.id);
            let deadline = Instant::now() + Duration::from_secs(5);
            while stream.is_none() && Instant::now() < deadline {
                stream = crate::monitor::attach_addr(&dir)
                    .and_then(|(_fd, addr)| std::os::unix::net::UnixStream::connect(addr))
                    .ok();
                if stream.is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let mut out = Vec::new();
        if let Some(o) = child.stdout.take() {
            let _ = o.take(64 * 1024).read_to_end(&mut out);
        }
        let line = String::from_utf8_lossy(&out);
        let line = line.trim_end();
        if line == "ok" {
            // the child was the monitor's intermediate fork, gone already: the monitor lives
            // on in its own session, adopted by init (no zombie in a long-lived caller)
            let _ = child.wait();
            return Ok(stream);
        }
        let _ = child.wait();
        // `err <kind> <message>` (`monitor::report_start_failure`)
        let (kind, message) = match line.strip_prefix("err ") {
            Some(rest) => {
                let (k, m) = rest.split_once(' ').unwrap_or((rest, ""));
                (
                    ErrorKind::from_name(k).unwrap_or(ErrorKind::Internal),
                    m.to_string(),
                )
            }
            None => (
                ErrorKind::Internal,
                format!("container monitor failed to start: {line:?}"),
            ),
        };
        Err(EngineError::StartReported { kind, message })
    }

    /// `run -d`: create, then start with a monitor. A failed start of a `--rm` container
    /// removes it. Until the monitor took over, the CLI is the container's client
    /// (`crate::client`): killed before that, the container is reconciled as killed with it.
    /// The create's warnings go to `warn` before the start.
    pub fn run_detached(
        &self,
        req: crate::create::CreateRequest,
        warn: &mut dyn FnMut(&crate::run::Warning),
    ) -> Result<ContainerRecord, EngineError> {
        let (created, client) = self.create(req, true)?;
        created.warnings.iter().for_each(&mut *warn);
        let rec = created.record;
        let started = self.start_detached(&rec);
        if started.is_err() && rec.host_config.auto_remove {
            // the monitor released what the start took; the record goes too (best effort:
            // the start error is what the caller must see)
            let _ = self.release(&rec, crate::release::Then::Remove { volumes: true });
        }
        if let Some(c) = client {
            c.release();
        }
        started.map(|()| rec)
    }

    /// `start`: a running container is left alone (docker prints its name and succeeds).
    pub fn start_container(&self, name: &str) -> Result<ContainerInfo, EngineError> {
        let info = self.container(name)?;
        match info.state.status() {
            Status::Running | Status::Restarting => return Ok(info),
            Status::Paused => {
                return Err(StateConflict::StartPaused {
                    id: info.record.id.to_string(),
                }
                .into())
            }
            _ => {}
        }
        self.start_detached(&info.record)?;
        self.container(info.record.id.as_str())
    }

    /// `stop [-t N] [-s SIG]`: the stop signal (flag, record's `--stop-signal`, SIGTERM), then
    /// SIGKILL after the timeout (flag, `--stop-timeout`, 10 s; negative = wait forever).
    pub fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<ContainerId, EngineError> {
        let info = self.container(name)?;
        let id = info.record.id.clone();
        if !active(info.state.status()) {
            return Ok(id);
        }
        let sig = match signal.or(info.record.config.stop_signal.as_deref()) {
            Some(s) => parse_signal(s)?,
            None => Signal::SIGTERM,
        };
        let secs = timeout.or(info.record.config.stop_timeout).unwrap_or(10);
        self.mark_exit_on_next(&id);
        let stopped = |i: &ContainerInfo| !active(i.state.status());
        let monitor = (info.state.monitor_pid, info.state.monitor_start_time);
        if info.state.status() == Status::Restarting || info.state.pid <= 0 {
            self.wait_state(&id, Some(Duration::from_secs(5)), &stopped)?;
            wait_process_gone(monitor);
            return Ok(id);
        }
        self.signal_pid(&info, sig);
        if info.state.status() == Status::Paused {
            let _ = Cgroup::open(&cgroup_path(&id)).freeze(false);
        }
        let wait = (secs >= 0).then(|| Duration::from_secs(secs as u64));
        if !self.wait_state(&id, wait, &stopped)? {
            if let Ok(info) = self.container(id.as_str()) {
                self.signal_pid(&info, Signal::SIGKILL);
            }
            if !self.wait_state(&id, Some(Duration::from_secs(10)), &stopped)? {
                return Err(EngineError::StopFailed {
                    id: id.to_string(),
                    waited_secs: 10,
                });
            }
        }
        // The monitor records the exit, then closes the log, removes the run directory and
        // releases monitor.lock: a start before it is gone would race with that cleanup.
        wait_process_gone(monitor);
        Ok(id)
    }

    fn signal_pid(&self, info: &ContainerInfo, sig: Signal) {
        if info.state.process_alive() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(info.state.pid), sig);
        }
    }

    /// `kill [-s SIG]` (default SIGKILL). SIGKILL or the stop signal also keeps the restart
    /// policy from restarting it (docker's ExitOnNext).
    pub fn kill_container(&self, name: &str, signal: &str) -> Result<ContainerId, EngineError> {
        let sig = parse_signal(signal)?;
        let info = self.container(name)?;
        let id = info.record.id.clone();
        if !matches!(info.state.status(), Status::Running | Status::Paused)
            || !info.state.process_alive()
        {
            return Err(StateConflict::KillNotRunning {
                name: name.to_string(),
                id: id.to_string(),
            }
            .into());
        }
        let stop_sig = info
            .record
            .config
            .stop_signal
            .as_deref()
            .and_then(|s| parse_signal(s).ok())
            .unwrap_or(Signal::SIGTERM);
        if sig == Signal::SIGKILL || sig == stop_sig {
            self.mark_exit_on_next(&id);
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(info.state.pid), sig).map_err(|e| {
            EngineError::from(StateConflict::KillFailed {
                name: name.to_string(),
                error: std::io::Error::from(e),
            })
        })?;
        if info.state.status() == Status::Paused && sig == Signal::SIGKILL {
            let _ = Cgroup::open(&cgroup_path(&id)).freeze(false);
        }
        Ok(id)
    }

    /// `restart`: stop (if running), then start.
    pub fn restart_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<ContainerId, EngineError> {
        // A restart the policy would refuse is refused before anything stops: the policy
        // refuses new work, it does not take a running container down.
        self.policy_start(&self.container(name)?.record)?;
        // returns once the old monitor is gone, so the new one cannot race with its cleanup
        let id = self.stop_container(name, timeout, signal)?;
        self.start_container(id.as_str())?;
        Ok(id)
    }

    /// `wait`: blocks until the container's next exit and returns its exit code.
    pub fn wait_container(&self, name: &str) -> Result<i32, EngineError> {
        let info = self.container(name)?;
        let id = info.record.id.clone();
        let started = info.state.started_at.clone();
        let was_running = info.state.status() == Status::Running;
        let mut last = info.state.exit_code;
        // short waits first (a build's RUN step is usually done within milliseconds), then
        // every 20 ms
        let mut pause = Duration::from_millis(1);
        loop {
            match self.container(id.as_str()) {
                Ok(i) => {
                    last = i.state.exit_code;
                    if matches!(i.state.status(), Status::Exited | Status::Dead)
                        || (was_running
                            && (i.state.status() == Status::Restarting
                                || i.state.started_at != started))
                    {
                        return Ok(last);
                    }
                }
                // removed (`--rm`): its last recorded code
                Err(e) if e.kind() == ErrorKind::NotFound && was_running => return Ok(last),
                Err(e) => return Err(e),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// docker's `POST /containers/{id}/wait?condition=`: returns the exit code once the
    /// condition holds. `NotRunning` returns at once for a container that does not run;
    /// `NextExit` waits for the next exit (of the run after a start that follows); `Removed`
    /// until the container is gone. A container removed while waited for (`--rm`) answers
    /// with its last exit code, from its `die` event when the removal came first.
    pub fn wait_for(&self, name: &str, condition: WaitCondition) -> Result<i32, EngineError> {
        let w = self.begin_wait(name, condition)?;
        Ok(self.finish_wait(w, &|| false)?.unwrap_or(0))
    }

    /// The first half of [`Engine::wait_for`]: the container as it is now (what "next"
    /// means), taken before the caller answers its client, so a start that follows cannot
    /// be missed.
    pub fn begin_wait(&self, name: &str, condition: WaitCondition) -> Result<Waiter, EngineError> {
        let since = crate::events::now_nanos();
        let info = self.container(name)?;
        Ok(Waiter {
            id: info.record.id.clone(),
            condition,
            first: (info.state.status(), info.state.finished_at.clone()),
            last: info.state.exit_code,
            since,
        })
    }

    /// The second half: polls until the condition holds (`Some(code)`) or `cancelled` says
    /// the caller went away (`None`).
    pub fn finish_wait(
        &self,
        mut w: Waiter,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, EngineError> {
        loop {
            if let Some(code) = self.poll_wait(&mut w)? {
                return Ok(Some(code));
            }
            if cancelled() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One check of a wait's condition: `Some(code)` once it holds, `None` not yet (a
    /// caller that must not block a thread between checks polls this).
    pub fn poll_wait(&self, w: &mut Waiter) -> Result<Option<i32>, EngineError> {
        let first = &w.first;
        match self.container(w.id.as_str()) {
            Ok(i) => {
                w.last = i.state.exit_code;
                let st = i.state.status();
                let done = match w.condition {
                    WaitCondition::NotRunning => !active(st),
                    WaitCondition::NextExit => {
                        matches!(st, Status::Exited | Status::Dead)
                            && (!matches!(first.0, Status::Exited | Status::Dead)
                                || i.state.finished_at != first.1)
                            || (first.0 == Status::Running && st == Status::Restarting)
                    }
                    WaitCondition::Removed => false,
                };
                Ok(done.then_some(w.last))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Ok(Some(self.last_exit_code(&w.id, w.since).unwrap_or(w.last)))
            }
            Err(e) => Err(e),
        }
    }

    /// The exit code of the container's last `die` event since `since` (ns).
    fn last_exit_code(&self, id: &ContainerId, since: i64) -> Option<i32> {
        let events = self.events(Some(since), None).ok()?;
        events
            .iter()
            .rev()
            .filter(|e| e.kind == "container" && e.action == "die" && e.actor.id == id.as_str())
            .find_map(|e| e.actor.attributes.get("exitCode")?.parse().ok())
    }

    /// `pause`/`unpause`: the cgroup freezer (v1 `freezer.state`, v2 `cgroup.freeze`).
    pub fn pause_container(&self, name: &str, pause: bool) -> Result<ContainerId, EngineError> {
        let info = self.container(name)?;
        let id = info.record.id.clone();
        match (info.state.status(), pause) {
            (Status::Running, true) | (Status::Paused, false) => {}
            (Status::Paused, true) => {
                return Err(StateConflict::AlreadyPaused { id: id.to_string() }.into())
            }
            (Status::Running, false) => {
                return Err(StateConflict::NotPaused { id: id.to_string() }.into())
            }
            _ => return Err(not_running(&id)),
        }
        Cgroup::open(&cgroup_path(&id)).freeze(pause)?;
        Ok(id)
    }

    /// The attach socket of a running container with a monitor.
    pub fn attach_socket(&self, name: &str) -> Result<(ContainerInfo, PathBuf), EngineError> {
        let info = self.container(name)?;
        if !active(info.state.status()) {
            return Err(StateConflict::AttachStopped {
                id: info.record.id.to_string(),
            }
            .into());
        }
        if info.state.status() == Status::Paused {
            return Err(StateConflict::AttachPaused {
                id: info.record.id.to_string(),
            }
            .into());
        }
        let sock = self.run_dir(&info.record.id).join(ATTACH_SOCK);
        if info.state.monitor_pid == 0 || !sock.exists() {
            return Err(StateConflict::AttachForeground {
                id: info.record.id.short().to_string(),
            }
            .into());
        }
        Ok((info, sock))
    }

    /// `resize` of a running container's terminal (`-t`): the window size is set on its pty
    /// through pid 1's stdin (the pty's slave side; the monitor holds the master), which
    /// also sends SIGWINCH to the terminal's foreground process group. A container without
    /// a terminal is left alone, as docker does.
    pub fn resize_container(&self, name: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let info = self.container(name)?;
        if !active(info.state.status()) || !info.state.process_alive() {
            return Err(not_running(&info.record.id));
        }
        if !info.record.config.tty {
            return Ok(());
        }
        let path = format!("/proc/{}/fd/0", info.state.pid);
        // the container's pid 1 may have put anything on its fd 0 (a FIFO would block an
        // open): non-blocking, never our controlling terminal, and only a character device
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(&path)
            .map_err(|e| EngineError::io("open the terminal of container", &path, e))?;
        let is_tty = f.metadata().map(|m| m.file_type().is_char_device());
        if !matches!(is_tty, Ok(true)) {
            return Ok(());
        }
        wharf_sys::tty::set_winsize(f.as_fd(), wharf_sys::tty::WinSize { rows, cols })
            .map_err(|e| EngineError::io("resize the terminal of container", &path, e))
    }

    /// `container prune`: removes every container that is not running; returns their ids.
    pub fn prune_containers(&self) -> Result<Vec<ContainerId>, EngineError> {
        let mut out = Vec::new();
        for info in self.containers(true)? {
            if matches!(
                info.state.status(),
                Status::Exited | Status::Created | Status::Dead
            ) {
                let id = self.remove_container(info.record.id.as_str(), false, false)?;
                out.push(id);
            }
        }
        Ok(out)
    }

    /// `system boot`: reconcile every container (running ones recorded before a reboot show as
    /// exited), then start the ones whose restart policy says so: `always`, `unless-stopped`
    /// unless it was stopped by hand, `on-failure` after a failure with retries left.
    /// Returns the containers started, and the ones that failed to start with why.
    #[allow(clippy::type_complexity)]
    pub fn boot(&self) -> Result<(Vec<ContainerId>, Vec<(ContainerId, EngineError)>), EngineError> {
        let mut started = Vec::new();
        let mut failed = Vec::new();
        let _ = std::fs::create_dir_all(self.opts.run_root.join("containers"));
        // what crashed containers and removed networks left behind (a reboot took the
        // kernel's side already; a crash did not): before anything is started again
        let _ = self.reconcile_network();
        for info in self.containers(true)? {
            let st = &info.state;
            if active(st.status()) {
                continue;
            }
            let p = &info.record.host_config.restart_policy;
            let want = match p.name.as_str() {
                "always" => st.status() != Status::Created,
                "unless-stopped" => st.status() != Status::Created && !st.manually_stopped,
                "on-failure" => {
                    st.status() == Status::Exited
                        && !st.manually_stopped
                        && st.exit_code != 0
                        && (p.maximum_retry_count == 0
                            || i64::from(st.restart_count) < p.maximum_retry_count)
                }
                _ => false,
            };
            if !want {
                continue;
            }
            match self.start_detached(&info.record) {
                Ok(()) => started.push(info.record.id.clone()),
                Err(e) => failed.push((info.record.id.clone(), e)),
            }
        }
        Ok((started, failed))
    }

    /// Stops a monitored container for `rm -f`: marker, SIGKILL, wait for the monitor.
    pub(crate) fn kill_monitored(&self, info: &ContainerInfo) -> Result<(), EngineError> {
        let id = &info.record.id;
        self.mark_exit_on_next(id);
        self.signal_pid(info, Signal::SIGKILL);
        let _ = Cgroup::open(&cgroup_path(id)).freeze(false);
        let gone = self.wait_state(id, Some(Duration::from_secs(10)), &|i| {
            !i.state.monitor_alive()
        })?;
        if gone {
            wait_process_gone((info.state.monitor_pid, info.state.monitor_start_time));
        } else {
            let st = &info.state;
            if st.monitor_alive() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(st.monitor_pid),
                    Signal::SIGKILL,
                );
            }
        }
        // `rm` releases the rest (cgroup, run directory, record) once this returns
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sighup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("BOGUS").is_err());
        assert!(parse_signal("99").is_err());
    }
}
