//! Engine errors: one enum, each variant mapped to the closed `ErrorKind` set.

use wharf_types::error::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] wharf_store::StoreError),
    #[error("{message}")]
    Start {
        message: String,
        /// 125, 126 (not executable) or 127 (not found), like docker.
        exit_code: i32,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    User(#[from] wharf_types::user::UserError),
    #[error(transparent)]
    Hostname(#[from] wharf_types::hostname::HostnameError),
    #[error("{0}")]
    NotImplemented(String),
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
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error("container {id} did not stop: {detail}")]
    StopFailed { id: String, detail: String },
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

    /// Exit code of the CLI for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Start { exit_code, .. } => *exit_code,
            other => other.kind().exit_code(),
        }
    }
}

impl HasKind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Start { .. } => ErrorKind::FailedPrecondition,
            EngineError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::User(e) => e.kind(),
            EngineError::Hostname(e) => e.kind(),
            EngineError::NotImplemented(_) => ErrorKind::NotImplemented,
            EngineError::Caps(_) => ErrorKind::InvalidArgument,
            EngineError::Cgroup(_) => ErrorKind::Unavailable,
            EngineError::Io { .. } => ErrorKind::Internal,
            EngineError::StopFailed { .. } => ErrorKind::Internal,
            EngineError::Policy(e) => e.kind(),
            EngineError::Trust(e) => e.kind(),
        }
    }
}
