//! `exec`: checks that the container runs (docker's messages), builds the runtime's
//! [`ExecSpec`] from the container's record — its final capability set, no_new_privs and
//! seccomp profile, its env/user/workdir as defaults — and starts the command.
//!
//! The caller chooses where the command's stdio goes ([`ExecStdio`]): the CLI's own
//! (`Inherit`, with the foreground loop), fds it supplies (an API server's socket or pipes), or
//! a new pty whose master it gets back; [`ExecSession`] then waits, resizes or kills.
//!
//! Must not: grant more than the container has. `--privileged` on exec is refused unless the
//! container itself is privileged (and then changes nothing: the container already has all).

use crate::refusal::{StateConflict, ValidationError};
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use std::os::fd::OwnedFd;
use wharf_runtime::exec::{ExecIo, ExecOptions, ExecRunning, ExecSpec};
use wharf_runtime::spec::ProcessSpec;
pub use wharf_sys::tty::WinSize;

/// Where an exec'd command's stdio goes, chosen by the front end.
#[derive(Debug)]
pub enum ExecStdio {
    /// The calling process's own stdin/stdout/stderr, and with `tty` a pty pumped to them
    /// (the CLI).
    Inherit,
    /// Fds the caller supplies (pipes, a socketpair, an API connection): the command's fds 0,
    /// 1 and 2; `stdin: None` gives it /dev/null. Not with `tty` (use [`ExecStdio::Pty`]).
    /// The engine closes its copies once the command started, so the caller sees EOF when
    /// the command (and whatever inherited them) is done.
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// A new pty in the container (the request's `tty` is implied): the command's stdio is
    /// its slave; [`ExecSession::master`] hands the master to the caller, `size` is the first
    /// window size.
    Pty { size: Option<WinSize> },
}

/// A started exec with caller-supplied stdio: its pid, its pty (if any), a resize, a kill and
/// the exit code. Dropped without [`ExecSession::wait`], the command is killed and reaped.
#[derive(Debug)]
pub struct ExecSession {
    container: String,
    running: ExecRunning,
}

impl ExecSession {
    /// Host pid of the exec'd command.
    pub fn pid(&self) -> i32 {
        self.running.pid()
    }

    /// A new fd for the pty master (`None` unless started with [`ExecStdio::Pty`]).
    pub fn master(&self) -> Result<Option<OwnedFd>, EngineError> {
        self.running.master().map_err(|e| {
            EngineError::io(
                "duplicate the exec terminal of container",
                &self.container,
                e,
            )
        })
    }

    /// Sets the pty's window size (no-op without a pty).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.running.resize(WinSize { rows, cols }).map_err(|e| {
            EngineError::io("resize the exec terminal of container", &self.container, e)
        })
    }

    /// SIGKILL the command (no-op once it was reaped).
    pub fn kill(&self) {
        self.running.kill();
    }

    /// Waits for the command; its exit code (128+N when killed by signal N).
    pub fn wait(mut self) -> Result<i32, EngineError> {
        let status = self.running.wait()?;
        Ok(status.code())
    }
}

/// Sets the window size of an exec's terminal through a copy of its master
/// ([`ExecSession::master`]) that a front end kept for resizes while the session waits.
pub fn resize_terminal(
    master: std::os::fd::BorrowedFd<'_>,
    rows: u16,
    cols: u16,
) -> Result<(), EngineError> {
    wharf_sys::tty::set_winsize(master, WinSize { rows, cols })
        .map_err(|e| EngineError::io("resize the exec terminal", "pty", e))
}

/// What the user asked to run (`docker exec` flags).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `-e` / `--env-file` entries, `KEY=value` (or `KEY` alone: taken from the caller's env
    /// by the CLI before this point; a bare `KEY` here unsets nothing and is ignored).
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// `KEY=value` overrides replace the container's `KEY`; order: container env, then overrides.
fn merge_env(base: &[String], overrides: &[String], tty: bool) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut env: Vec<String> = base.to_vec();
    for o in overrides.iter().filter(|o| o.contains('=')) {
        let k = key(o);
        env.retain(|e| key(e) != k);
        env.push(o.clone());
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

impl Engine {
    /// The running container `name_or_id`, or docker's error for a missing/stopped/paused one.
    pub fn running_container(&self, name_or_id: &str) -> Result<ContainerInfo, EngineError> {
        let info = self.container(name_or_id)?;
        let id = info.record.id.to_string();
        match info.state.status() {
            Status::Paused => Err(StateConflict::ExecPaused { id: id.to_string() }.into()),
            Status::Running | Status::Restarting if info.state.process_alive() => Ok(info),
            _ => Err(StateConflict::NotRunning { id: id.to_string() }.into()),
        }
    }

    /// The runtime spec of an exec into the container of `info`.
    pub fn exec_spec(
        &self,
        info: &ContainerInfo,
        req: &ExecRequest,
    ) -> Result<ExecSpec, EngineError> {
        let rec = &info.record;
        let hc = &rec.host_config;
        if req.privileged && !hc.privileged {
            return Err(ValidationError::ExecPrivileged {
                id: rec.id.to_string(),
            }
            .into());
        }
        if req.cmd.is_empty() {
            return Err(ValidationError::ExecNoCommand.into());
        }
        let (capabilities, seccomp, no_new_privileges) = crate::run::confinement(rec)?;
        let cwd = req
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| rec.config.working_dir.clone());
        if !cwd.is_empty() && !cwd.starts_with('/') {
            return Err(ValidationError::ExecWorkdirNotAbsolute {
                workdir: cwd.to_string(),
            }
            .into());
        }
        let user = req.user.clone().unwrap_or_else(|| rec.config.user.clone());
        crate::create::validate_user(&user, &hc.group_add)?;
        Ok(ExecSpec {
            container_id: rec.id.to_string(),
            container_pid: info.state.pid,
            cgroup_path: crate::run::cgroup_path(&rec.id),
            process: ProcessSpec {
                args: req.cmd.clone(),
                env: merge_env(&rec.config.env, &req.env, req.tty),
                cwd,
                user,
                additional_groups: hc.group_add.clone(),
                terminal: req.tty,
                stdin: req.interactive,
            },
            capabilities,
            no_new_privileges: no_new_privileges || self.policy.forces_no_new_privileges(),
            seccomp,
            privileged: hc.privileged,
        })
    }

    /// Start an exec in `name_or_id` with the given stdio mode (healthchecks use
    /// `ExecIo::Capture`).
    pub fn exec_start(
        &self,
        name_or_id: &str,
        req: &ExecRequest,
        io: ExecIo,
    ) -> Result<ExecRunning, EngineError> {
        let info = self.running_container(name_or_id)?;
        let spec = self.exec_spec(&info, req)?;
        // the admin policy: the container again, and the exec's own user (a healthcheck's
        // probe is the container's create-time config, checked at start: `health` builds its
        // spec directly and is not logged every interval)
        self.policy_exec(&info.record, info.state.pid, &spec.process.user)?;
        let opts = ExecOptions {
            seccomp_cache_dir: self.seccomp_cache_dir(),
            io,
        };
        let started = wharf_runtime::exec::exec(&spec, &opts);
        // the command holds its own copies of caller-supplied fds now: ours must close, or the
        // caller never sees EOF on a pipe it reads
        drop(opts);
        Ok(started?)
    }

    /// Starts an exec whose stdio the caller supplies (an API server, a test): returns once the
    /// command runs (or with docker's 126/127 reasons). A detached request takes no stdio.
    pub fn exec_with(
        &self,
        name_or_id: &str,
        mut req: ExecRequest,
        stdio: ExecStdio,
    ) -> Result<ExecSession, EngineError> {
        if req.detach && !matches!(stdio, ExecStdio::Inherit) {
            return Err(ValidationError::ExecDetachedStdio.into());
        }
        let io = match stdio {
            ExecStdio::Inherit if req.detach => ExecIo::Null,
            ExecStdio::Inherit => ExecIo::Inherit,
            ExecStdio::Fds { .. } if req.tty => return Err(ValidationError::ExecTtyWithFds.into()),
            ExecStdio::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                req.interactive = stdin.is_some();
                ExecIo::Fds {
                    stdin,
                    stdout,
                    stderr,
                }
            }
            ExecStdio::Pty { size } => {
                req.tty = true;
                ExecIo::Pty { size }
            }
        };
        // exec_start drops `io` (the engine's copies of the caller's fds) before returning
        let running = self.exec_start(name_or_id, &req, io)?;
        Ok(ExecSession {
            container: name_or_id.to_string(),
            running,
        })
    }

    /// `docker exec`: runs the command and returns its exit code (128+N when killed by signal
    /// N); with `detach` returns 0 once it was exec'd.
    pub fn exec(&self, name_or_id: &str, req: ExecRequest) -> Result<i32, EngineError> {
        let io = if req.detach {
            ExecIo::Null
        } else {
            ExecIo::Inherit
        };
        let running = self.exec_start(name_or_id, &req, io)?;
        let status = running.wait_foreground()?;
        Ok(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_replace_keys() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let env = merge_env(&base, &["A=2".into(), "B=3".into(), "C".into()], true);
        assert_eq!(env, vec!["PATH=/bin", "A=2", "B=3", "TERM=xterm"]);
    }
}
