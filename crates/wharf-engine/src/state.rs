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
//!
//! A detached container has a monitor (`wharf __monitor`) that is the only writer of its state
//! while it lives; its pid and start time are recorded here, so a monitor killed from outside
//! is noticed when the state is read (the container is then exited with an error). `Paused` is
//! derived when read from the cgroup freezer (the monitor keeps writing `running`).
//!
//! The status is private: every change goes through a method that checks
//! [`Status::can_become`] and returns [`InvalidTransition`] for the caller to handle. The
//! transitions that override what was recorded are separate, named methods:
//! [`ContainerState::reconcile`] (a process, monitor or client that died unseen, a reboot),
//! [`ContainerState::stop_restarting`] (a manual stop while the restart policy waits) and
//! [`ContainerState::set_dead`] (a state the engine cannot make sense of any more).

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
                // a restart that failed to start waits for the next attempt
                | (Restarting, Restarting)
                | (Restarting, Exited)
                | (Exited, Running)
                | (_, Dead)
        )
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("container state cannot change from {from} to {to}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// The runtime state of one container (Docker's `State` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// Changed only through the transition methods below.
    status: Status,
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
    /// Restarts done by the restart policy since the last manual start (docker's RestartCount).
    #[serde(default)]
    pub restart_count: u32,
    /// `stop`/`kill` asked for this exit: `unless-stopped` and `on-failure` do not restart it
    /// (not even at `system boot` for `unless-stopped`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// The monitor of a detached container (0 = none, e.g. a foreground `run`).
    #[serde(default)]
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// "starting", "healthy", "unhealthy".
    pub status: String,
    pub failing_streak: u32,
    /// The last 5 probes, oldest first.
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl Health {
    pub const KEEP: usize = 5;

    pub fn starting() -> Health {
        Health {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Records one probe (docker's rules: success → healthy and streak 0; a failure after the
    /// start period increments the streak, `retries` consecutive failures → unhealthy).
    pub fn record(&mut self, probe: HealthLog, retries: u32, in_start_period: bool) {
        if probe.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !in_start_period || self.status != "starting" {
            self.failing_streak += 1;
            if self.failing_streak >= retries.max(1) {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(probe);
        if self.log.len() > Self::KEEP {
            let extra = self.log.len() - Self::KEEP;
            self.log.drain(..extra);
        }
    }
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
            restart_count: 0,
            manually_stopped: false,
            monitor_pid: 0,
            monitor_start_time: 0,
            health: None,
        }
    }
}

impl ContainerState {
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether the container has a process or is about to (running, paused, restarting).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }

    /// Whether `start` may move this state to running (checked before anything is started).
    pub fn check_start(&self) -> Result<(), InvalidTransition> {
        if self.status.can_become(Status::Running) {
            Ok(())
        } else {
            Err(InvalidTransition {
                from: self.status.as_str(),
                to: Status::Running.as_str(),
            })
        }
    }

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

    /// running → restarting: pid 1 exited and the restart policy will start it again.
    pub fn set_restarting(
        &mut self,
        exit_code: i32,
        oom_killed: bool,
        now: String,
    ) -> Result<(), InvalidTransition> {
        self.transition(Status::Restarting)?;
        self.pid = 0;
        self.pid_start_time = 0;
        self.exit_code = exit_code;
        self.oom_killed = oom_killed;
        self.finished_at = now;
        self.health = None;
        Ok(())
    }

    /// Forced: a manual stop (`stop`, `kill`, `rm -f`) while the restart policy waits to start
    /// the container again: it stays down with the exit code and time of its last run.
    pub fn stop_restarting(&mut self) -> Result<(), InvalidTransition> {
        if self.status != Status::Restarting {
            return Err(InvalidTransition {
                from: self.status.as_str(),
                to: Status::Exited.as_str(),
            });
        }
        self.transition(Status::Exited)?;
        self.manually_stopped = true;
        self.monitor_pid = 0;
        self.monitor_start_time = 0;
        Ok(())
    }

    /// Forced, from any state: the engine cannot make sense of this container's state any
    /// more (docker's `dead`); `reason` is kept as its error. Such a container can only be
    /// removed.
    pub fn set_dead(&mut self, reason: String) {
        self.force(Status::Dead);
        self.pid = 0;
        self.pid_start_time = 0;
        self.monitor_pid = 0;
        self.monitor_start_time = 0;
        self.error = reason;
    }

    /// The freezer says the cgroup is frozen: a running container shows as paused. A view
    /// derived when the state is read (the monitor keeps recording `running`), never stored.
    pub fn observe_frozen(&mut self) {
        if self.status == Status::Running {
            self.status = Status::Paused;
        }
    }

    /// The one unchecked change, for the forced transitions above and `reconcile`.
    fn force(&mut self, to: Status) {
        self.status = to;
    }

    /// Forced: the process ended without wharf recording it (see `reconcile`).
    fn force_exited(&mut self, exit_code: i32, error: &str, now: String) {
        self.force(Status::Exited);
        self.pid = 0;
        self.pid_start_time = 0;
        self.exit_code = exit_code;
        self.error = error.into();
        self.finished_at = now;
        if let Some(h) = &mut self.health {
            h.status = "unhealthy".into();
        }
    }

    /// Whether the recorded monitor is still the process that was started.
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid > 0
            && self.boot_id == boot_id()
            && process_start_time(self.monitor_pid) == Some(self.monitor_start_time)
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
        self.monitor_pid = 0;
        self.monitor_start_time = 0;
        if let Some(h) = &mut self.health {
            h.status = "unhealthy".into();
        }
        Ok(())
    }

    /// Whether the recorded process is still the one we started.
    pub fn process_alive(&self) -> bool {
        self.pid > 0
            && self.boot_id == boot_id()
            && process_start_time(self.pid) == Some(self.pid_start_time)
    }

    /// Fixes a state whose process vanished without wharf seeing it exit (killed from
    /// outside together with its parent, or the host rebooted), or whose foreground client
    /// was killed (`client`, see `crate::client`). Returns true if changed.
    pub fn reconcile(&mut self, now: String, client: Client) -> bool {
        let active = matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        );
        if (active || self.status == Status::Created)
            && self.monitor_pid == 0
            && client == Client::Gone
        {
            // The CLI running it in the foreground was killed, at any phase of the start or
            // while the command ran: its pid 1 died with it (PR_SET_PDEATHSIG(SIGKILL)), so
            // the container was killed, and 137 (128 + SIGKILL) says so, as for a dead monitor.
            self.force_exited(
                137,
                "the wharf client running the container was killed: container killed with it",
                now,
            );
            return true;
        }
        if active && self.monitor_pid > 0 && !self.monitor_alive() {
            // A monitored container dies with its monitor (PR_SET_PDEATHSIG); the caller
            // removes the cgroup, which kills anything left.
            let booted = self.boot_id != boot_id();
            self.monitor_pid = 0;
            self.monitor_start_time = 0;
            if booted {
                self.force_exited(255, "container was running when the host shut down", now);
            } else {
                self.force_exited(137, "container monitor died: container killed", now);
            }
            return true;
        }
        if active && self.monitor_pid == 0 && client == Client::Unknown && !self.process_alive() {
            self.force_exited(
                255,
                "container process vanished while wharf was not watching it",
                now,
            );
            return true;
        }
        false
    }
}

/// The foreground client of a container without a monitor (`crate::client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// No client lock: created by `create`, started by a monitor, or removed with the run
    /// directory (reboot).
    Unknown,
    /// A live CLI runs the container: it records the exit itself.
    Alive,
    /// The CLI finished cleanly just now: the state it recorded is the truth.
    Finished,
    /// The CLI was killed (lock left behind, nobody holds it): so was the container.
    Gone,
}

/// Docker's STATUS column: `Up 3 seconds`, `Up 2 minutes (healthy)`, `Up 5 seconds (Paused)`,
/// `Exited (1) 3 seconds ago`, `Restarting (1) 2 seconds ago`, `Created`.
pub fn status_text(st: &ContainerState, since: &dyn Fn(&str) -> String) -> String {
    match st.status() {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match st.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(&st.started_at))
        }
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// The kernel's boot id: changes on every boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 (starttime) of /proc/<pid>/stat, for a process that is running: a zombie (Z)
/// or dead (X) process is not, even while its parent has not reaped it yet (`None`).
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')': fields start after the last ')'
    let rest = s.get(s.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // rest starts with " state ppid ..." : state is field 3, so starttime (22) is index 19
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
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

    /// Every pair of states: exactly docker's transitions are allowed, the rest refused with
    /// the two states named.
    #[test]
    fn transition_table() {
        use Status::*;
        let all = [Created, Running, Paused, Restarting, Exited, Dead];
        let allowed = [
            (Created, Running),
            (Created, Exited),
            (Running, Exited),
            (Running, Paused),
            (Running, Restarting),
            (Paused, Running),
            (Paused, Exited),
            (Restarting, Running),
            (Restarting, Restarting),
            (Restarting, Exited),
            (Exited, Running),
        ];
        for from in all {
            for to in all {
                let want = to == Dead || allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), want, "{from:?} -> {to:?}");
            }
        }
        // refused through the methods, with a typed error and nothing changed
        let mut s = ContainerState::default();
        let e = s.set_restarting(1, false, "t".into()).unwrap_err();
        assert_eq!(
            e,
            InvalidTransition {
                from: "created",
                to: "restarting"
            }
        );
        assert_eq!(
            e.to_string(),
            "container state cannot change from created to restarting"
        );
        assert_eq!((s.status(), s.exit_code), (Created, 0));
        s.set_exited(2, false, "t".into()).unwrap();
        assert!(s.set_exited(3, false, "t".into()).is_err());
        assert_eq!(s.exit_code, 2);
        assert!(s.set_restarting(1, false, "t".into()).is_err());
        assert!(s.check_start().is_ok());
        // dead: only removal is left
        s.set_dead("broken".into());
        assert_eq!((s.status(), s.error.as_str()), (Dead, "broken"));
        assert!(s.check_start().is_err());
        assert!(s
            .set_running(std::process::id() as i32, "t".into())
            .is_err());
        assert!(!s.is_active());
    }

    #[test]
    fn forced_transitions() {
        // a manual stop of a restarting container: exited, stopped by hand, last code kept
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        assert!(s.stop_restarting().is_err(), "running is not restarting");
        s.set_restarting(3, false, "t1".into()).unwrap();
        // a failed restart attempt stays restarting
        s.set_restarting(4, false, "t2".into()).unwrap();
        s.monitor_pid = 42;
        s.stop_restarting().unwrap();
        assert_eq!(s.status(), Status::Exited);
        assert!(s.manually_stopped);
        assert_eq!(
            (s.exit_code, s.monitor_pid, s.finished_at.as_str()),
            (4, 0, "t2")
        );
        assert!(s.stop_restarting().is_err());
        // frozen is a view: only a running state shows as paused
        let mut e = s.clone();
        e.observe_frozen();
        assert_eq!(e.status(), Status::Exited);
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.observe_frozen();
        assert_eq!(s.status(), Status::Paused);
        // reconcile forces exited from any active state, whatever the table says
        s.pid_start_time += 1;
        assert!(s.reconcile("now".into(), Client::Unknown));
        assert_eq!((s.status(), s.exit_code), (Status::Exited, 255));
    }

    #[test]
    fn reconcile_dead_pid() {
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.pid_start_time += 1; // a recycled pid
        assert!(s.reconcile("now".into(), Client::Unknown));
        assert_eq!(s.status(), Status::Exited);
        assert_eq!(s.exit_code, 255);
        let mut live = ContainerState::default();
        live.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        assert!(!live.reconcile("now".into(), Client::Unknown));
    }

    #[test]
    fn texts() {
        let since = |_: &str| "3 seconds".to_string();
        let mut s = ContainerState::default();
        assert_eq!(status_text(&s, &since), "Created");
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        assert_eq!(status_text(&s, &since), "Up 3 seconds");
        s.health = Some(Health::starting());
        assert_eq!(status_text(&s, &since), "Up 3 seconds (health: starting)");
        let mut frozen = s.clone();
        frozen.observe_frozen();
        assert_eq!(status_text(&frozen, &since), "Up 3 seconds (Paused)");
        s.set_restarting(1, false, "t".into()).unwrap();
        assert_eq!(status_text(&s, &since), "Restarting (1) 3 seconds ago");
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.set_exited(137, false, "t".into()).unwrap();
        assert_eq!(status_text(&s, &since), "Exited (137) 3 seconds ago");
    }

    #[test]
    fn health_rules() {
        let probe = |c| HealthLog {
            start: "a".into(),
            end: "b".into(),
            exit_code: c,
            output: String::new(),
        };
        let mut h = Health::starting();
        h.record(probe(1), 3, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(probe(0), 3, false);
        assert_eq!(h.status, "healthy");
        for _ in 0..2 {
            h.record(probe(1), 3, false);
        }
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 2));
        h.record(probe(1), 3, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 3));
        for _ in 0..4 {
            h.record(probe(1), 3, false);
        }
        assert_eq!(h.log.len(), Health::KEEP);
    }

    #[test]
    fn dead_monitor_is_noticed() {
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.monitor_pid = std::process::id() as i32;
        s.monitor_start_time = process_start_time(s.monitor_pid).unwrap();
        assert!(!s.reconcile("now".into(), Client::Unknown));
        s.monitor_start_time += 1;
        assert!(s.reconcile("now".into(), Client::Unknown));
        assert_eq!(s.status(), Status::Exited);
        assert!(s.error.contains("monitor died"), "{}", s.error);
    }

    #[test]
    fn killed_client_means_killed_container() {
        // killed before the start went anywhere: created → exited 137
        let mut s = ContainerState::default();
        assert!(s.reconcile("now".into(), Client::Gone));
        assert_eq!((s.status(), s.exit_code), (Status::Exited, 137));
        assert!(s.error.contains("client"), "{}", s.error);
        // a live client records the exit itself, even once the process is gone
        let mut s = ContainerState::default();
        s.set_running(std::process::id() as i32, "t".into())
            .unwrap();
        s.pid_start_time += 1;
        assert!(!s.reconcile("now".into(), Client::Alive));
        assert!(!s.reconcile("now".into(), Client::Finished));
        assert!(s.reconcile("now".into(), Client::Gone));
        assert_eq!((s.status(), s.exit_code), (Status::Exited, 137));
        // an exited container stays as recorded
        assert!(!s.reconcile("later".into(), Client::Gone));
        assert_eq!(s.finished_at, "now");
    }

    #[test]
    fn start_time_of_self() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(-1).is_none());
    }
}
