//! The closed set of error kinds every library error maps to, and the ONE table that turns a
//! kind into docker's CLI exit code and the Docker Engine API's HTTP status. Front ends never
//! map errors themselves: they ask the error for its kind and the kind for its code.

/// Exit code of docker's CLI for a command on existing objects (`start`, `stop`, `restart`,
/// `kill`, `wait`, `pause`, `unpause`, `rm`, `inspect`, `rename`, `port`, `attach`, `rmi`,
/// `volume rm|inspect`) that failed, whatever the kind: it tries every object and exits 1 if
/// any failed. The kind's code ([`ErrorKind::exit_code`]: 125, 126, 127) is what `run` and
/// `create` exit with.
pub const OBJECT_COMMAND_FAILED: i32 = 1;

/// What went wrong, independent of which operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Conflict,
    FailedPrecondition,
    PermissionDenied,
    Unavailable,
    NotImplemented,
    Internal,
    /// The container's command does not exist (exec ENOENT, not in `$PATH`): docker's 127.
    CommandNotFound,
    /// The container's command exists but cannot be executed (EACCES, ENOEXEC, a directory):
    /// docker's 126.
    CommandNotExecutable,
    /// A request over a size limit (an API body, a header block): HTTP 413.
    TooLarge,
}

impl ErrorKind {
    /// Every kind, in declaration order (tables, tests, the monitor's report).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidArgument,
        ErrorKind::Conflict,
        ErrorKind::FailedPrecondition,
        ErrorKind::PermissionDenied,
        ErrorKind::Unavailable,
        ErrorKind::NotImplemented,
        ErrorKind::Internal,
        ErrorKind::CommandNotFound,
        ErrorKind::CommandNotExecutable,
        ErrorKind::TooLarge,
    ];

    /// The table: (docker CLI exit code, Docker Engine API HTTP status). docker's CLI exits
    /// (from `run`/`create`; see [`OBJECT_COMMAND_FAILED`]) 125 for every error of the engine itself, 126 when the container's command cannot be
    /// invoked and 127 when it is not found; the daemon answers those two with 400
    /// (`startInvalidConfigError`).
    const fn codes(self) -> (i32, u16) {
        match self {
            ErrorKind::NotFound => (125, 404),
            ErrorKind::AlreadyExists => (125, 409),
            ErrorKind::InvalidArgument => (125, 400),
            ErrorKind::Conflict => (125, 409),
            ErrorKind::FailedPrecondition => (125, 412),
            ErrorKind::PermissionDenied => (125, 403),
            ErrorKind::Unavailable => (125, 503),
            ErrorKind::NotImplemented => (125, 501),
            ErrorKind::Internal => (125, 500),
            ErrorKind::CommandNotFound => (127, 400),
            ErrorKind::CommandNotExecutable => (126, 400),
            ErrorKind::TooLarge => (125, 413),
        }
    }

    /// Exit code of the CLI for an error of this kind.
    pub fn exit_code(self) -> i32 {
        self.codes().0
    }

    /// HTTP status of the Docker Engine API for an error of this kind.
    pub fn http_status(self) -> u16 {
        self.codes().1
    }

    /// A stable name (`not_found`, ...), for reports between wharf processes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not_implemented",
            ErrorKind::Internal => "internal",
            ErrorKind::CommandNotFound => "command_not_found",
            ErrorKind::CommandNotExecutable => "command_not_executable",
            ErrorKind::TooLarge => "too_large",
        }
    }

    /// The kind named by [`ErrorKind::as_str`].
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every library error enum.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented table (docs/cli.md): every kind, its exit code and HTTP status.
    #[test]
    fn every_kind_maps_to_its_documented_codes() {
        let table = [
            (ErrorKind::NotFound, 125, 404),
            (ErrorKind::AlreadyExists, 125, 409),
            (ErrorKind::InvalidArgument, 125, 400),
            (ErrorKind::Conflict, 125, 409),
            (ErrorKind::FailedPrecondition, 125, 412),
            (ErrorKind::PermissionDenied, 125, 403),
            (ErrorKind::Unavailable, 125, 503),
            (ErrorKind::NotImplemented, 125, 501),
            (ErrorKind::Internal, 125, 500),
            (ErrorKind::CommandNotFound, 127, 400),
            (ErrorKind::CommandNotExecutable, 126, 400),
            (ErrorKind::TooLarge, 125, 413),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, exit, status) in table {
            assert_eq!(kind.exit_code(), exit, "{kind:?}");
            assert_eq!(kind.http_status(), status, "{kind:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(ErrorKind::from_name("bogus"), None);
    }
}
