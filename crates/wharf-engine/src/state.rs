//! Docker's container state machine, owned by the engine (the runtime only reports a pid and
//! an exit status). The state is stored apart from the create-time record and can always be
//! rebuilt: a `Running` state whose process is gone (killed from outside, host rebooted) is
//! reconciled to `Exited` when read.
//!
//! ```text
//! created ──start──▶ running ──exit──▶ exited ──start──▶ running
//!                      │  ▲                │
//!                 pause│  │unpause         └──remove──▶ (gone)
//!                      ▼  │
//!                     paused          running ──▶ restarting ──▶ running | exited
//! any ──(unrecoverable)──▶ dead
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether `self → to` is a legal transition.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Created, Running)
                | (Created, Exited)
                | (Running, Exited)
                | (Running, Paused)
                | (Running, Restarting)
                | (Paused, Running)
                | (Paused, Exited)
                | (Restarting, Running)
                | (Restarting, Exited)
                | (Exited, Running)
                | (_, Dead)
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("container state cannot change from {from} to {to}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// The runtime state of one container (Docker's `State` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: Status,
    /// Host pid of the container's pid 1 while running, else 0.
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22): with the boot id
    /// it tells a live process from a recycled pid.
    #[serde(default)]
    pub pid_start_time: u64,
    #[serde(default)]
    pub boot_id: String,
    pub exit_code: i32,
    #[serde(rename = "OOMKilled", default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: String,
    /// RFC 3339; docker's zero time when never started.
    pub started_at: String,
    pub finished_at: String,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for ContainerState {
    fn default() -> Self {
        ContainerState {
            status: Status::Created,
            pid: 0,
            pid_start_time: 0,
            boot_id: String::new(),
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
        }
    }
}

impl ContainerState {
    fn transition(&mut self, to: Status) -> Result<(), InvalidTransition> {
        if !self.status.can_become(to) {
            return Err(InvalidTransition {
                from: self.status.as_str(),
                to: to.as_str(),
            });
        }
        self.status = to;
        Ok(())
    }

    pub fn set_running(&mut self, pid: i32, now: String) -> Result<(), InvalidTransition> {
        self.transition(Status::Running)?;
        self.pid = pid;
        self.pid_start_time = process_start_time(pid).unwrap_or(0);
        self.boot_id = boot_id();
        self.started_at = now;
        self.exit_code = 0;
        self.oom_killed = false;
        self.error.clear();
        Ok(())
    }

    pub fn set_exited(
        &mut self,
        exit_code: i32,
        oom_killed: bool,
        now: String,
    ) -> Result<(), InvalidTransition> {
        self.transition(Status::Exited)?;
        self.pid = 0;
        self.pid_start_time = 0;
        self.exit_code = exit_code;
        self.oom_killed = oom_killed;
        self.finished_at = now;
        Ok(())
    }

    /// Whether the recorded process is still the one we started.
    pub fn process_alive(&self) -> bool {
        self.pid > 0
            && self.boot_id == boot_id()
            && process_start_time(self.pid) == Some(self.pid_start_time)
    }

    /// Fixes a state whose process vanished without wharf seeing it exit (killed from
    /// outside together with its parent, or the host rebooted). Returns true if changed.
    pub fn reconcile(&mut self, now: String) -> bool {
        if matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && !self.process_alive()
        {
            self.status = Status::Exited;
            self.pid = 0;
            self.exit_code = 255;
            self.error = "container process vanished while wharf was not watching it".into();
            self.finished_at = now;
            return true;
        }
        false
    }
}

/// The kernel's boot id: changes on every boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 (starttime) of /proc/<pid>/stat.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')': fields start after the last ')'
    let rest = &s[s.rfind(')')? + 1..];
    // rest starts with " state ppid ..." : state is field 3, so starttime (22) is index 19
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let mut s = ContainerState::default();
        assert!(s.set_exited(0, false, "t".into()).is_ok());
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        assert!(s.process_alive());
        assert!(s.set_running(1, "t".into()).is_err());
        s.set_exited(3, false, "t2".into()).unwrap();
        assert_eq!(s.exit_code, 3);
        assert!(!Status::Exited.can_become(Status::Paused));
        assert!(Status::Paused.can_become(Status::Dead));
    }

    #[test]
    fn reconcile_dead_pid() {
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.pid_start_time += 1; // a recycled pid
        assert!(s.reconcile("now".into()));
        assert_eq!(s.status, Status::Exited);
        assert_eq!(s.exit_code, 255);
        let mut live = ContainerState::default();
        live.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        assert!(!live.reconcile("now".into()));
    }

    #[test]
    fn start_time_of_self() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(-1).is_none());
    }
}
