//! Every failure of a request, and its response: docker's `{"message": …}` body with the
//! HTTP status of the error's kind (`ErrorKind::http_status`, the one table). The message
//! is the error and its causes on one line, as the CLI prints it.

use wharf_types::error::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] wharf_engine::EngineError),
    #[error(transparent)]
    Logs(#[from] wharf_engine::containers::LogsError),
    #[error(transparent)]
    Image(#[from] wharf_engine::images::ImageError),
    #[error("client version {version} is too new. Maximum supported API version is {max}")]
    VersionTooNew { version: String, max: &'static str },
    #[error("client version {version} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version")]
    VersionTooOld { version: String, min: &'static str },
    #[error("page not found")]
    NoRoute,
    #[error("invalid JSON body")]
    Json(#[source] serde_json::Error),
    #[error("invalid JSON body: expected {what}")]
    JsonShape { what: &'static str },
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body not received within {secs}s")]
    BodyTimeout { secs: u64 },
    #[error("read the request body")]
    Body(#[source] hyper::Error),
    #[error("invalid value {value:?} for query parameter {name:?}")]
    Query { name: &'static str, value: String },
    #[error("No such exec instance: {id}")]
    NoSuchExec { id: String },
    #[error("exec {id} has already started")]
    ExecStarted { id: String },
    #[error("Bad parameters: you must choose at least one stream")]
    NoStream,
    #[error("too many attach requests waiting for this container's start")]
    TooManyAttach,
    #[error("too many exec instances: the oldest ones are still running")]
    TooManyExecs,
    #[error("this endpoint needs a hijacked connection (Upgrade: tcp)")]
    UpgradeRequired,
    #[error("this endpoint needs a websocket handshake (Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version: 13)")]
    WebsocketRequired,
    #[error("invalid X-Registry-Auth header: expected base64url JSON")]
    RegistryAuth,
    #[error(transparent)]
    Build(#[from] wharf_engine::build::BuildError),
    #[error("BuildKit builds (version=2) are not supported by wharf: set DOCKER_BUILDKIT=0 to use the classic builder API")]
    BuildKit,
    #[error("too many long-lived requests (wait, logs, events, attach, exec, stats) open for uid {uid}: at most {limit}")]
    TooManyLong { uid: u32, limit: usize },
    #[error("{what} is not supported by wharf")]
    Unsupported { what: &'static str },
    #[error("the engine call failed to complete")]
    Task(#[source] tokio::task::JoinError),
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Engine(e) => e.kind(),
            ApiError::Logs(e) => e.kind(),
            ApiError::Image(e) => e.kind(),
            ApiError::Build(e) => e.kind(),
            ApiError::BuildKit => ErrorKind::NotImplemented,
            ApiError::VersionTooNew { .. }
            | ApiError::VersionTooOld { .. }
            | ApiError::Json(_)
            | ApiError::JsonShape { .. }
            | ApiError::Query { .. }
            | ApiError::UpgradeRequired
            | ApiError::WebsocketRequired
            | ApiError::NoStream
            | ApiError::RegistryAuth
            | ApiError::Body(_) => ErrorKind::InvalidArgument,
            ApiError::BodyTimeout { .. } => ErrorKind::InvalidArgument,
            ApiError::NoRoute | ApiError::NoSuchExec { .. } => ErrorKind::NotFound,
            ApiError::ExecStarted { .. } | ApiError::TooManyAttach => ErrorKind::Conflict,
            ApiError::TooManyExecs => ErrorKind::Unavailable,
            ApiError::TooManyLong { .. } => ErrorKind::TooManyRequests,
            ApiError::Unsupported { .. } => ErrorKind::NotImplemented,
            ApiError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            ApiError::Task(_) | ApiError::Io { .. } => ErrorKind::Internal,
        }
    }
}

impl ApiError {
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ApiError {
        move |source| ApiError::Io { what, source }
    }

    /// The error and its causes on one line, without repeats (as the CLI prints them).
    pub fn message(&self) -> String {
        let mut msg = String::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            let c = e.to_string();
            if msg.is_empty() {
                msg = c;
            } else if !msg.contains(&c) {
                msg.push_str(": ");
                msg.push_str(&c);
            }
            cur = e.source();
        }
        msg.replace('\n', " ")
    }

    pub fn status(&self) -> u16 {
        self.kind().http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_the_kind_table() {
        assert_eq!(ApiError::NoRoute.status(), 404);
        assert_eq!(ApiError::BodyTooLarge { limit: 1 }.status(), 413);
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let e = ApiError::Json(json);
        assert_eq!(e.status(), 400);
        assert!(
            e.message().starts_with("invalid JSON body: "),
            "{}",
            e.message()
        );
    }
}
