//! The closed set of error kinds every library error maps to, and the ONE table that turns a
//! kind into docker's CLI exit code and the Docker Engine API's HTTP status. Front ends never
//! map errors themselves: they ask the error for its kind and the kind for its code.

/// Exit code of docker's CLI for any failed command other than `run` (and `create`'s 125 for
/// a request that does not parse, `exec`'s 126/127), whatever the error's kind: `start`, `rm`, `images`, `network create`, `pull`,
/// `info`… A command on several objects tries every one and exits 1 if any failed. The
/// kind's code ([`ErrorKind::exit_code`]: 125, 126, 127) is what `run` and `create` exit
/// with; [`ErrorKind::cli_exit_code`] is the one rule.
pub const COMMAND_FAILED: i32 = 1;

/// Which of docker's exit-code rules a CLI command follows when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// `run`: the kind's code (125 for the engine's errors, 126/127 for the container's
    /// command).
    RunsContainer,
    /// `create`: 125 for a request that does not parse (docker's CLI-side checks), 1 for
    /// what docker's daemon refuses (a name in use, a missing image…).
    Create,
    /// `exec`: 126/127 when the command cannot be run, 1 for any other failure.
    Exec,
    /// Everything else: 1.
    Other,
}

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
    /// A caller over its share of a server's capacity (long-lived API requests): HTTP 429.
    TooManyRequests,
}

impl ErrorKind {
    /// Every kind, in declaration order (tables, tests, the monitor's report).
    pub const ALL: [ErrorKind; 13] = [
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
        ErrorKind::TooManyRequests,
    ];

    /// The table: (docker CLI exit code, Docker Engine API HTTP status). docker's CLI exits
    /// (from `run`/`create`; see [`ErrorKind::cli_exit_code`]) 125 for every error of the engine itself, 126 when the container's command cannot be
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
            ErrorKind::TooManyRequests => (125, 429),
        }
    }

    /// Exit code of the CLI for an error of this kind.
    pub fn exit_code(self) -> i32 {
        self.codes().0
    }

    /// Exit code of docker's CLI when a command of `class` fails with an error of this kind:
    /// the one rule every front-end path asks.
    pub fn cli_exit_code(self, class: CommandClass) -> i32 {
        match class {
            CommandClass::RunsContainer => self.exit_code(),
            CommandClass::Create if self == ErrorKind::InvalidArgument => self.exit_code(),
            // docker's exec: a command that cannot start (missing or not executable) is 126
            CommandClass::Exec
                if matches!(
                    self,
                    ErrorKind::CommandNotFound | ErrorKind::CommandNotExecutable
                ) =>
            {
                ErrorKind::CommandNotExecutable.exit_code()
            }
            CommandClass::Create | CommandClass::Exec | CommandClass::Other => COMMAND_FAILED,
        }
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
            ErrorKind::TooManyRequests => "too_many_requests",
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
            (ErrorKind::TooManyRequests, 125, 429),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, exit, status) in table {
            assert_eq!(kind.exit_code(), exit, "{kind:?}");
            assert_eq!(kind.http_status(), status, "{kind:?}");
        }
    }

    /// docker's CLI: only `run`/`create` exit 125; `exec` exits 126 for a command that cannot start; the rest exit 1.
    #[test]
    fn cli_exit_codes_by_command_class() {
        for k in ErrorKind::ALL {
            assert_eq!(k.cli_exit_code(CommandClass::RunsContainer), k.exit_code());
            assert_eq!(k.cli_exit_code(CommandClass::Other), 1, "{k:?}");
        }
        assert_eq!(
            ErrorKind::NotFound.cli_exit_code(CommandClass::RunsContainer),
            125
        );
        assert_eq!(
            ErrorKind::CommandNotFound.cli_exit_code(CommandClass::Exec),
            126
        );
        assert_eq!(
            ErrorKind::CommandNotExecutable.cli_exit_code(CommandClass::Exec),
            126
        );
        assert_eq!(ErrorKind::Conflict.cli_exit_code(CommandClass::Exec), 1);
        assert_eq!(
            ErrorKind::InvalidArgument.cli_exit_code(CommandClass::Create),
            125
        );
        assert_eq!(ErrorKind::Conflict.cli_exit_code(CommandClass::Create), 1);
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
