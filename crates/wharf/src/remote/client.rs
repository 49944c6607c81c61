//! The API client: one negotiated version (`/_ping`'s `Api-Version`, capped at this build's),
//! requests under `/v<version>`, error bodies (`{"message": …}`) turned into
//! [`RemoteError::Daemon`] with their status.

use super::http::{self, Request, Response};
use serde_json::Value;
use std::path::{Path, PathBuf};
use wharf_types::error::CommandClass;
use wharf_types::ErrorKind;

/// Largest error body read.
const MAX_ERROR_BODY: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// What the server refused, with its status: rendered as docker renders it.
    #[error("{message}")]
    Daemon { status: u16, message: String },
    #[error("{command:?} is not available through the API endpoint ({url}) yet")]
    NotAvailable { command: String, url: String },
    #[error("{flag} cannot be sent through the API endpoint yet")]
    Unexpressible { flag: &'static str },
    #[error("invalid {flag} value {value:?}")]
    Parse {
        flag: &'static str,
        value: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unexpected answer from the API: {what}")]
    Shape { what: &'static str },
    #[error(
        "the API server speaks version {server}, older than the oldest this client can use ({min})"
    )]
    TooOld { server: String, min: &'static str },
}

impl RemoteError {
    /// The kind the server's status stands for (docker's CLI: a failed `run` whose command
    /// cannot be found exits 127, cannot be executed 126).
    pub fn kind(&self, class: CommandClass) -> ErrorKind {
        match self {
            RemoteError::Daemon { status, message } => {
                let k = kind_of_status(*status);
                if k == ErrorKind::InvalidArgument
                    && matches!(class, CommandClass::RunsContainer | CommandClass::Exec)
                {
                    if message.contains("executable file not found")
                        || message.contains("no such file or directory")
                    {
                        return ErrorKind::CommandNotFound;
                    }
                    if message.contains("permission denied") {
                        return ErrorKind::CommandNotExecutable;
                    }
                }
                k
            }
            RemoteError::NotAvailable { .. } => ErrorKind::NotImplemented,
            RemoteError::Unexpressible { .. } | RemoteError::Parse { .. } => {
                ErrorKind::InvalidArgument
            }
            RemoteError::Shape { .. } | RemoteError::TooOld { .. } => ErrorKind::Internal,
        }
    }
}

/// The inverse of `ErrorKind::http_status` (the first kind with that status).
fn kind_of_status(status: u16) -> ErrorKind {
    ErrorKind::ALL
        .into_iter()
        .find(|k| k.http_status() == status)
        .unwrap_or(ErrorKind::Internal)
}

#[derive(Clone)]
pub struct Client {
    sock: PathBuf,
    pub url: String,
    /// The negotiated API version (`1.50`).
    pub version: String,
    /// `/_ping`'s `Server` header etc. are not needed; the daemon's OS type is.
    pub os_type: String,
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Client {
    pub fn connect(sock: &Path, url: &str) -> anyhow::Result<Client> {
        let mut c = Client {
            sock: sock.to_path_buf(),
            url: url.to_string(),
            version: String::new(),
            os_type: String::new(),
        };
        let r = http::send(sock, Request::new("GET", "/_ping".into()))?;
        let ours = wharf_api::version::API_VERSION;
        let server = r.header("api-version").unwrap_or(ours).to_string();
        c.os_type = r.header("ostype").unwrap_or("linux").to_string();
        let _ = r.bytes(4096);
        let min = wharf_api::version::MIN_API_VERSION;
        c.version = match (parse_version(&server), parse_version(ours)) {
            (Some(s), Some(o)) if s < o => {
                if parse_version(min).is_some_and(|m| s < m) {
                    return Err(RemoteError::TooOld { server, min }.into());
                }
                server
            }
            _ => ours.to_string(),
        };
        Ok(c)
    }

    pub fn path(&self, p: &str) -> String {
        format!("/v{}{}", self.version, p)
    }

    /// Sends a request under the negotiated version; an error status becomes
    /// [`RemoteError::Daemon`].
    pub fn send(&self, mut req: Request<'_>) -> anyhow::Result<Response> {
        req.target = self.path(&req.target);
        let r = http::send(&self.sock, req)?;
        if r.status >= 400 {
            let status = r.status;
            let body = r.bytes(MAX_ERROR_BODY).unwrap_or_default();
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            let message = if message.is_empty() {
                format!("status {status}")
            } else {
                message
            };
            return Err(RemoteError::Daemon { status, message }.into());
        }
        Ok(r)
    }

    /// A request whose answer is JSON (or nothing: `Null`).
    pub fn json(&self, req: Request<'_>) -> anyhow::Result<Value> {
        let r = self.send(req)?;
        let body = r.bytes(http::MAX_JSON)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&body)?)
    }

    pub fn get(&self, path: String) -> anyhow::Result<Value> {
        self.json(Request::new("GET", path))
    }

    pub fn post(&self, path: String) -> anyhow::Result<Value> {
        self.json(Request::new("POST", path))
    }
}

pub use http::enc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_of_status(404), ErrorKind::NotFound);
        assert_eq!(kind_of_status(409), ErrorKind::AlreadyExists);
        assert_eq!(kind_of_status(400), ErrorKind::InvalidArgument);
        assert_eq!(kind_of_status(500), ErrorKind::Internal);
        let e = RemoteError::Daemon {
            status: 400,
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        };
        assert_eq!(e.kind(CommandClass::RunsContainer).exit_code(), 127);
        assert_eq!(e.kind(CommandClass::Other), ErrorKind::InvalidArgument);
    }
}
