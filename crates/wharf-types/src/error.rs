//! The closed set of error kinds every library error maps to, and the one place that turns a
//! kind into a CLI exit code (and later an HTTP status).

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
}

impl ErrorKind {
    /// Exit code of the CLI for an error of this kind. Docker uses 125 for every error of the
    /// engine itself (as opposed to the container's own exit code), and so does wharf.
    pub fn exit_code(self) -> i32 {
        125
    }

    /// HTTP status of the Docker Engine API for an error of this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::FailedPrecondition => 412,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Internal => 500,
        }
    }
}

/// Implemented by every library error enum.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(ErrorKind::Internal.exit_code(), 125);
    }
}
