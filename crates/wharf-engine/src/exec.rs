//! `exec`: checks that the container runs (docker's messages), builds the runtime's
//! [`ExecSpec`] from the container's record — its final capability set, no_new_privs and
//! seccomp profile, its env/user/workdir as defaults — and starts the command.
//!
//! Must not: grant more than the container has. `--privileged` on exec is refused unless the
//! container itself is privileged (and then changes nothing: the container already has all).

use crate::refusal::{StateConflict, ValidationError};
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use wharf_runtime::exec::{ExecIo, ExecOptions, ExecRunning, ExecSpec};
use wharf_runtime::spec::ProcessSpec;

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
        match info.state.status {
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
        Ok(wharf_runtime::exec::exec(&spec, &opts)?)
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
