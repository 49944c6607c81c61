//! The host owner's policy (`/etc/wharf/policy.toml`, `WHARF_POLICY`): read once per process
//! in `Engine::open`, enforced inside the engine on create, start (a record created before
//! the policy changed is checked again), exec, the image paths (pull, run, load,
//! import, bundle apply) and build (its Dockerfile's approval, its FROM images), every
//! decision appended to the audit log.
//!
//! A missing file is no policy. A file that cannot be read or parsed fails closed: every
//! guarded operation is refused with the file, line and key; commands that only look or
//! clean up (`ps`, `rm`, `stop`) keep working.
//!
//! Must not: parse argv or print (beyond a warning for an unwritable audit log); read the
//! file unbounded; add an fsync to the start path.

mod audit;
mod enforce;
mod file;
mod rules;

pub use enforce::Explanation;
pub use rules::Decision;

use std::path::{Path, PathBuf};
use wharf_types::error::{ErrorKind, HasKind};

/// Where the policy lives unless `WHARF_POLICY` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/wharf/policy.toml";
/// Where decisions are logged unless the policy's `[audit] path` or `WHARF_AUDIT_LOG` say
/// otherwise.
pub const DEFAULT_AUDIT_PATH: &str = "/var/log/wharf/audit.log";
/// Where the public keys of `registries.require_signed` live unless `trusted_keys` says
/// otherwise.
pub const DEFAULT_TRUSTED_KEYS: &str = "/etc/wharf/trusted-keys";
/// Rotation size unless `[audit] max_size` says otherwise.
pub const DEFAULT_AUDIT_MAX_SIZE: u64 = 10 << 20;
/// The file is root's, but a read into memory still has a cap.
const MAX_FILE_SIZE: u64 = 256 << 10;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file {path}: {message}")]
    Read { path: String, message: String },
    #[error("policy file {path} line {line}, key `{key}`: {message}")]
    Invalid {
        path: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("refused by policy rule `{rule}` ({path}): {message}")]
    Denied {
        rule: String,
        path: String,
        message: String,
    },
}

impl HasKind for PolicyError {
    fn kind(&self) -> ErrorKind {
        match self {
            PolicyError::Denied { .. } => ErrorKind::PermissionDenied,
            PolicyError::Read { .. } | PolicyError::Invalid { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

/// `[registries]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registries {
    /// Registry hosts or repository prefixes (`registry.local:5000`, `docker.io/library`);
    /// `None` = any.
    pub allow: Option<Vec<String>>,
    pub require_digest: bool,
    /// Images must carry a signature by a key in [`Registries::trusted_keys_dir`].
    pub require_signed: bool,
    /// `trusted_keys`; `None` = [`DEFAULT_TRUSTED_KEYS`].
    pub trusted_keys: Option<PathBuf>,
}

impl Registries {
    /// The directory of trusted public keys, read at every decision that needs it.
    pub fn trusted_keys_dir(&self) -> &Path {
        self.trusted_keys
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_TRUSTED_KEYS))
    }
}

/// `bind_mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BindRule {
    #[default]
    Allow,
    Deny,
    /// Host path prefixes, each with "read-only required".
    Paths(Vec<(String, bool)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

/// `[run]`. The booleans that allow something default to true (no policy = docker's rules).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRules {
    pub privileged: bool,
    pub host_network: bool,
    /// The host's UTS, IPC or PID namespace (`--uts host`, `--ipc host`, `--pid host`).
    pub host_namespaces: bool,
    pub seccomp_unconfined: bool,
    pub devices: bool,
    /// Capabilities `--cap-add` may name; `None` = any.
    pub cap_add: Option<Vec<String>>,
    pub bind_mounts: BindRule,
    pub non_root: bool,
    pub no_new_privileges: bool,
    pub nosuid: bool,
    pub published_ports: Option<PortRange>,
    pub required_labels: Vec<String>,
}

impl Default for RunRules {
    fn default() -> Self {
        RunRules {
            privileged: true,
            host_network: true,
            host_namespaces: true,
            seccomp_unconfined: true,
            devices: true,
            cap_add: None,
            bind_mounts: BindRule::Allow,
            non_root: false,
            no_new_privileges: false,
            nosuid: false,
            published_ports: None,
            required_labels: Vec::new(),
        }
    }
}

/// `[limits]`: maxima (bytes, 1e-9 CPUs, processes) and which limits must be set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
    pub require_memory: bool,
    pub require_cpus: bool,
    pub require_pids: bool,
}

/// `[build]`: whether `build` may run at all and which Dockerfiles it may build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRules {
    /// `allow = false` refuses every build.
    pub allow: bool,
    /// `approved_dockerfiles`: sha256 digests of the Dockerfile bytes; `None` = no list.
    pub approved: Option<Vec<wharf_types::Digest>>,
    /// `approved_dir`: a directory of approved Dockerfiles (their digests, read at every
    /// build, bounded, regular files only, fail closed).
    pub approved_dir: Option<PathBuf>,
}

impl Default for BuildRules {
    fn default() -> Self {
        BuildRules {
            allow: true,
            approved: None,
            approved_dir: None,
        }
    }
}

impl BuildRules {
    /// Whether the Dockerfile must be approved (a list or a directory is configured).
    pub fn requires_approval(&self) -> bool {
        self.approved.is_some() || self.approved_dir.is_some()
    }
}

/// A validated policy file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub path: PathBuf,
    pub registries: Registries,
    pub run: RunRules,
    pub build: BuildRules,
    pub limits: Limits,
    pub audit_path: Option<PathBuf>,
    pub audit_max_size: u64,
}

/// What the engine knows about the policy: none, a valid one, or a broken file (fail closed).
#[derive(Debug, Clone)]
pub enum Loaded {
    None,
    Active(Box<Policy>),
    Broken(PolicyError),
}

impl Loaded {
    /// The policy path: `WHARF_POLICY` or [`DEFAULT_PATH`].
    pub fn default_path() -> PathBuf {
        std::env::var_os("WHARF_POLICY")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }

    /// Reads and validates the file at `path`; a missing file is no policy.
    pub fn load(path: &Path) -> Loaded {
        let read_err = |message: String| {
            Loaded::Broken(PolicyError::Read {
                path: path.display().to_string(),
                message,
            })
        };
        let bytes = match wharf_sys::fs::read_small_file(None, path, MAX_FILE_SIZE) {
            Ok(Some(b)) => b,
            Ok(None) => return Loaded::None,
            Err(e) => return read_err(e.to_string()),
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return read_err("not UTF-8".into()),
        };
        match file::parse(path, &text) {
            Ok(mut p) => {
                if p.audit_max_size == 0 {
                    p.audit_max_size = DEFAULT_AUDIT_MAX_SIZE;
                }
                Loaded::Active(Box::new(p))
            }
            Err(e) => Loaded::Broken(e),
        }
    }

    /// Validates a file before it is installed (`wharf policy check FILE`): a missing file is
    /// an error here.
    pub fn validate(path: &Path) -> Result<Policy, PolicyError> {
        match Loaded::load(path) {
            Loaded::Active(p) => Ok(*p),
            Loaded::Broken(e) => Err(e),
            Loaded::None => Err(PolicyError::Read {
                path: path.display().to_string(),
                message: "no such file".into(),
            }),
        }
    }

    fn audit_path(&self) -> PathBuf {
        if let Some(p) = std::env::var_os("WHARF_AUDIT_LOG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        match self {
            Loaded::Active(p) => p.audit_path.clone(),
            _ => None,
        }
        .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_PATH))
    }

    /// Turns a decision into the operation's result, appending it to the audit log. No
    /// policy: allowed and not logged.
    pub(crate) fn enforce(
        &self,
        caller: &crate::Caller,
        action: &str,
        target: &str,
        decide: impl FnOnce(&Policy) -> Decision,
    ) -> Result<(), PolicyError> {
        if matches!(self, Loaded::None) {
            return Ok(());
        }
        self.enforce_logged_to(&self.audit_path(), caller, action, target, decide)
    }

    /// [`Loaded::enforce`] with the audit log at `log`.
    fn enforce_logged_to(
        &self,
        log: &Path,
        caller: &crate::Caller,
        action: &str,
        target: &str,
        decide: impl FnOnce(&Policy) -> Decision,
    ) -> Result<(), PolicyError> {
        let (decision, max) = match self {
            Loaded::None => return Ok(()),
            Loaded::Active(p) => (decide(p), p.audit_max_size),
            Loaded::Broken(e) => (
                Decision::Refused {
                    rule: "policy-file".into(),
                    message: e.to_string(),
                },
                DEFAULT_AUDIT_MAX_SIZE,
            ),
        };
        let (rule, allowed, reason) = match &decision {
            Decision::Allowed => ("", true, ""),
            Decision::Refused { rule, message } => (rule.as_str(), false, message.as_str()),
        };
        audit::append(
            log,
            max,
            &audit::Record {
                caller,
                action,
                target,
                rule,
                allowed,
                reason,
            },
        );
        match (decision, self) {
            (Decision::Allowed, _) => Ok(()),
            (Decision::Refused { .. }, Loaded::Broken(e)) => Err(e.clone()),
            (Decision::Refused { rule, message }, _) => Err(PolicyError::Denied {
                rule,
                path: self.path_display(),
                message,
            }),
        }
    }

    fn path_display(&self) -> String {
        match self {
            Loaded::Active(p) => p.path.display().to_string(),
            _ => String::new(),
        }
    }

    /// `no_new_privileges = true`: every process (start and exec) gets no_new_privs.
    pub(crate) fn forces_no_new_privileges(&self) -> bool {
        matches!(self, Loaded::Active(p) if p.run.no_new_privileges)
    }

    /// The policy's forced protections, applied to every spec the engine builds:
    /// no_new_privs, a `nosuid` rootfs, and under a pids maximum the default pids limit made
    /// explicit (so a host without the pids controller fails the start instead of running
    /// the container unlimited).
    pub(crate) fn harden(&self, spec: &mut wharf_runtime::spec::ContainerSpec) {
        if let Loaded::Active(p) = self {
            if p.run.no_new_privileges {
                spec.security.no_new_privileges = true;
            }
            if p.run.nosuid {
                spec.rootfs.nosuid = true;
            }
            if let Some(max) = p.limits.pids {
                if spec.cgroup.pids_limit.is_none() {
                    spec.cgroup.pids_limit = Some(crate::run::DEFAULT_PIDS_LIMIT.min(max));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_fails_closed() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(Loaded::load(&t.path().join("none")), Loaded::None));
        // a directory, a FIFO, a huge file, bytes that are not UTF-8: refused, never read
        // unbounded or blocked on
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let big = t.path().join("big.toml");
        std::fs::write(&big, "#".repeat(MAX_FILE_SIZE as usize + 1)).unwrap();
        let bin = t.path().join("bin.toml");
        std::fs::write(&bin, b"[run]\nprivileged = false # \xff\n").unwrap();
        for p in [t.path().to_path_buf(), fifo, big, bin] {
            match Loaded::load(&p) {
                Loaded::Broken(PolicyError::Read { path, .. }) => {
                    assert_eq!(path, p.display().to_string())
                }
                other => panic!("{}: {other:?}", p.display()),
            }
        }
        let ok = t.path().join("ok.toml");
        std::fs::write(&ok, "[run]\nprivileged = false\n").unwrap();
        let Loaded::Active(p) = Loaded::load(&ok) else {
            panic!("not loaded")
        };
        assert_eq!(p.audit_max_size, DEFAULT_AUDIT_MAX_SIZE);
        assert!(Loaded::validate(&t.path().join("none")).is_err());
    }

    #[test]
    fn broken_policy_refuses_and_denials_carry_rule_and_file() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("a.log");
        let broken = Loaded::Broken(PolicyError::Read {
            path: "/p".into(),
            message: "x".into(),
        });
        let e = broken
            .enforce_logged_to(&log, &crate::Caller::current(), "start", "c", |_| {
                Decision::Allowed
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        let active = Loaded::Active(Box::new(Policy {
            path: "/etc/wharf/policy.toml".into(),
            ..Policy::default()
        }));
        let e = active
            .enforce_logged_to(&log, &crate::Caller::current(), "create", "busybox", |_| {
                Decision::Refused {
                    rule: "run.privileged".into(),
                    message: "--privileged is not allowed".into(),
                }
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "refused by policy rule `run.privileged` (/etc/wharf/policy.toml): --privileged is not allowed"
        );
        assert!(Loaded::None
            .enforce(&crate::Caller::current(), "x", "y", |_| unreachable!())
            .is_ok());
        let lines = std::fs::read_to_string(&log).unwrap();
        let rules: Vec<String> = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"].to_string())
            .collect();
        assert_eq!(rules, ["\"policy-file\"", "\"run.privileged\""]);
        // every line names its caller (here the process itself, as for the CLI)
        let me = crate::Caller::current();
        for l in lines.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["caller_uid"], me.uid);
            assert_eq!(v["caller_gid"], me.gid);
            assert_eq!(v["caller_pid"], me.pid);
        }
    }
}
