//! Engine errors: one enum, each variant typed (refusals in `crate::refusal`, library errors
//! as their source) and mapped to the closed `ErrorKind` set, which alone decides the CLI's
//! exit code and the API's HTTP status (`ErrorKind::{exit_code, http_status}`).

use crate::refusal::{StateConflict, ValidationError};
use wharf_types::error::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] wharf_store::StoreError),
    /// The container's process (or an exec's) could not be started: the runtime's error,
    /// whose kind says 127 (command not found), 126 (not executable) or 125.
    #[error(transparent)]
    Start(#[from] wharf_runtime::start::StartError),
    /// A start that failed in the container's monitor (another process), with the kind and
    /// message the monitor reported (its source error stayed in that process).
    #[error("{message}")]
    StartReported { kind: ErrorKind, message: String },
    /// `cp` could not mount a stopped container's file system (runtime error).
    #[error("mount the filesystem of container {name}: {error}")]
    ContainerFs {
        name: String,
        error: wharf_runtime::start::StartError,
    },
    /// The container's log driver could not be opened when it started.
    #[error("failed to initialize logging driver: {0}")]
    LogDriver(wharf_logs::LogError),
    #[error(transparent)]
    Log(#[from] wharf_logs::LogError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    State(#[from] StateConflict),
    #[error(transparent)]
    Parse(#[from] wharf_types::parse::ParseError),
    #[error(transparent)]
    User(#[from] wharf_types::user::UserError),
    #[error(transparent)]
    Hostname(#[from] wharf_types::hostname::HostnameError),
    #[error("capabilities: {0}")]
    Caps(#[from] wharf_runtime::caps::CapsError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] wharf_runtime::cgroup::CgroupError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The container's process was still there `waited_secs` after SIGKILL.
    #[error("container {id} did not stop: still running {waited_secs}s after SIGKILL")]
    StopFailed { id: String, waited_secs: u64 },
    #[error(transparent)]
    Transition(#[from] crate::state::InvalidTransition),
    #[error(transparent)]
    Config(#[from] crate::daemon::ConfigError),
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error(transparent)]
    Network(#[from] wharf_store::network::NetworkError),
    #[error(transparent)]
    Alloc(#[from] crate::network::alloc::AllocError),
    #[error(transparent)]
    Bridge(#[from] crate::network::bridge::BridgeError),
    #[error(transparent)]
    Firewall(#[from] crate::network::firewall::FirewallError),
    #[error(transparent)]
    Port(#[from] wharf_types::ports::PortError),
    #[error(transparent)]
    NetOpt(#[from] wharf_types::netopts::NetOptError),
    #[error(transparent)]
    Sysctl(#[from] wharf_types::sysctl::SysctlError),
    /// The container's interface could not be set up (netlink), naming the container.
    #[error("container {id}: {source}")]
    Link {
        id: String,
        #[source]
        source: wharf_sys::netlink::NetlinkError,
    },
}

impl EngineError {
    pub fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        EngineError::Io {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Exit code of the CLI for this error: its kind's (`ErrorKind::exit_code`).
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }
}

impl HasKind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Start(e) => e.kind(),
            EngineError::StartReported { kind, .. } => *kind,
            EngineError::ContainerFs { error, .. } => error.kind(),
            EngineError::LogDriver(e) | EngineError::Log(e) => e.kind(),
            EngineError::Invalid(e) => e.kind(),
            EngineError::State(e) => e.kind(),
            EngineError::Parse(e) => e.kind(),
            EngineError::User(e) => e.kind(),
            EngineError::Hostname(e) => e.kind(),
            EngineError::Caps(e) => e.kind(),
            EngineError::Cgroup(e) => e.kind(),
            EngineError::Io { .. } => ErrorKind::Internal,
            EngineError::StopFailed { .. } => ErrorKind::Internal,
            EngineError::Policy(e) => e.kind(),
            EngineError::Transition(_) => ErrorKind::Conflict,
            EngineError::Config(e) => e.kind(),
            EngineError::Trust(e) => e.kind(),
            EngineError::Network(e) => e.kind(),
            EngineError::Alloc(e) => e.kind(),
            EngineError::Bridge(e) => e.kind(),
            EngineError::Firewall(e) => e.kind(),
            EngineError::Port(e) => e.kind(),
            EngineError::NetOpt(e) => e.kind(),
            EngineError::Sysctl(e) => e.kind(),
            EngineError::Link { .. } => ErrorKind::Unavailable,
        }
    }
}

/// The kind of any error a front end holds: the first error in its `source()` chain whose
/// type is one of the libraries' (engine, store, runtime, logs, types); `Internal` when none
/// is. With `ErrorKind::{exit_code, http_status}` this is the whole mapping a front end
/// needs: it has none of its own.
pub fn kind_of(e: &(dyn std::error::Error + 'static)) -> ErrorKind {
    kind_in(std::iter::successors(Some(e), |e| e.source()))
}

/// [`kind_of`] over a chain a front end already has (`anyhow::Error::chain`).
pub fn kind_in<'a>(
    chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> ErrorKind {
    chain
        .into_iter()
        .find_map(known_kind)
        .unwrap_or(ErrorKind::Internal)
}

/// The kind of `e` when its type is one of the libraries' errors.
pub fn known_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    macro_rules! try_kind {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = e.downcast_ref::<$t>() {
                return Some(e.kind());
            })*
        };
    }
    try_kind!(
        EngineError,
        crate::build::BuildError,
        ValidationError,
        StateConflict,
        crate::policy::PolicyError,
        wharf_store::StoreError,
        wharf_store::archive::ArchiveError,
        wharf_store::bundle::BundleError,
        wharf_store::distribution::DistError,
        wharf_store::layer::LayerError,
        wharf_runtime::start::StartError,
        wharf_runtime::caps::CapsError,
        wharf_runtime::cgroup::CgroupError,
        wharf_runtime::seccomp::SeccompError,
        wharf_logs::LogError,
        wharf_types::parse::ParseError,
        wharf_types::user::UserError,
        wharf_types::hostname::HostnameError,
        wharf_types::ports::PortError,
        wharf_types::netopts::NetOptError,
        wharf_types::sysctl::SysctlError,
        wharf_types::net::SubnetError,
        crate::images::ImageError,
        crate::daemon::ConfigError,
        crate::trust::TrustError,
        crate::network::alloc::AllocError,
        crate::network::firewall::FirewallError,
        crate::network::bridge::BridgeError,
        wharf_store::network::NetworkError,
        wharf_registry::client::ClientError,
        wharf_registry::ServeError,
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_runtime::start::StartError;

    #[test]
    fn start_failures_keep_their_kind() {
        // the reports of init's exec (ENOENT → 127, EACCES → 126), as the runtime types them
        let missing = EngineError::from(StartError::Exec {
            code: 127,
            message: "exec: \"/nope\": stat /nope: no such file or directory".into(),
        });
        assert_eq!(missing.kind(), ErrorKind::CommandNotFound);
        assert_eq!(missing.exit_code(), 127);
        assert_eq!(missing.kind().http_status(), 400);
        let denied = EngineError::from(StartError::Exec {
            code: 126,
            message: "exec: \"/etc/passwd\": permission denied".into(),
        });
        assert_eq!(denied.kind(), ErrorKind::CommandNotExecutable);
        assert_eq!(denied.exit_code(), 126);
        let other = EngineError::from(StartError::Exec {
            code: 125,
            message: "setresuid 1000: operation not permitted".into(),
        });
        assert_eq!(other.exit_code(), 125);
        // the monitor's report carries the kind across processes
        let reported = EngineError::StartReported {
            kind: ErrorKind::CommandNotFound,
            message: "x".into(),
        };
        assert_eq!(reported.exit_code(), 127);
    }

    #[test]
    fn kind_of_finds_library_errors_in_a_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapper(#[source] EngineError);
        let inner = EngineError::from(ValidationError::NetworkNotFound { name: "x".into() });
        assert_eq!(kind_of(&Wrapper(inner)), ErrorKind::NotFound);
        let io = std::io::Error::other("plain");
        assert_eq!(kind_of(&io), ErrorKind::Internal);
        assert_eq!(kind_of(&io).exit_code(), 125);
    }
}
