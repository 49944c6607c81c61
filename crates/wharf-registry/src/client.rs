//! The distribution client: `pull`, `push`, `login`, `logout` against Docker Registry v2 /
//! OCI distribution registries.
//!
//! - `config`: the registry keys of daemon.json as a value the engine hands in ([`RegistryConfig`]:
//!   `insecure-registries`, `registry-mirrors`, `certs-dir`, `registry-idle-timeout`) and
//!   docker's `~/.docker/config.json` credentials: `auths` and credential helpers
//!   (`credsStore`, `credHelpers`, docker's `get`/`store`/`erase` protocol).
//! - `transport`: one registry endpoint: scheme choice (https first; plain http only as the
//!   fallback for insecure registries), TLS trust (system bundle or `SSL_CERT_FILE`, plus
//!   `certs.d/<host>/*.crt` roots and `*.cert`/`*.key` client certificates), name resolution
//!   without NSS for literals and /etc/hosts, proxies, Basic and Bearer auth, redirects that
//!   never carry credentials to another host or over a https→http downgrade, capped bodies,
//!   registry errors → [`ClientError`].
//! - `pull` / `push`: the two transfer directions; the store side lives in
//!   `wharf_store::distribution` (verification before anything becomes visible).
//!
//! Must not: write to the store except through `wharf_store`, print (callers pass a line sink).

pub mod config;
mod pull;
mod push;
mod transport;

pub use config::RegistryConfig;
pub use pull::{pull, Progress, PullOptions, PullOutcome};
pub use push::{push, push_with, PushOptions};
pub use transport::{
    check_login, download, login, login_to, system_roots, Downloaded, Endpoint, SystemRoots,
};

use wharf_store::distribution::DistError;
use wharf_store::StoreError;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::Digest;

/// Caps on bodies read into memory.
pub const MANIFEST_CAP: u64 = 4 << 20;
pub const CONFIG_CAP: u64 = 8 << 20;
pub const ERROR_BODY_CAP: u64 = 64 << 10;
pub const TOKEN_CAP: u64 = 1 << 20;

/// Every client failure, one line each.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid config file {path}: {msg}")]
    Config { path: String, msg: String },
    #[error("cannot load TLS root certificates from {path}: {msg}")]
    CaBundle { path: String, msg: String },
    #[error("cannot load TLS client certificate {path}: {msg}")]
    ClientCert { path: String, msg: String },
    #[error("TLS handshake with {host} failed: {msg}")]
    Tls { host: String, msg: String },
    #[error("lookup {host}: no such host")]
    UnknownHost { host: String },
    #[error("dial tcp {host}: connect: connection refused")]
    ConnectionRefused { host: String },
    #[error("{url}: {msg}")]
    Transport { url: String, msg: String },
    #[error("unauthorized: authentication required for {what}")]
    Unauthorized { what: String },
    #[error("denied: requested access to {what} is denied")]
    Denied { what: String },
    #[error("manifest for {0} not found: manifest unknown")]
    ManifestUnknown(String),
    #[error("{what}: registry returned {status}: {msg}")]
    Registry {
        what: String,
        status: u16,
        msg: String,
    },
    #[error("unsupported media type {media_type} for {what}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    #[error("{what} is larger than the {limit} bytes allowed")]
    TooLarge { what: String, limit: u64 },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid {what}: {msg}")]
    BadResponse { what: String, msg: String },
    #[error("layer {blob} from {registry} stalled: no data for {idle_secs} s, {resumes} resumes with Range failed")]
    Stalled {
        blob: Digest,
        registry: String,
        idle_secs: f64,
        resumes: u32,
    },
    #[error("refusing {what}")]
    Document {
        what: String,
        #[source]
        source: wharf_types::oci::DocumentError,
    },
    #[error("credential helper docker-credential-{helper}: {msg}")]
    CredHelper { helper: String, msg: String },
    #[error(transparent)]
    Reference(#[from] wharf_types::reference::RefError),
    #[error("invalid reference format: {reference}: push needs a tag, not a digest")]
    PushDigest { reference: String },
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for ClientError {
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Dist(e) => e.kind(),
            ClientError::Store(e) => e.kind(),
            ClientError::Unauthorized { .. } | ClientError::Denied { .. } => {
                ErrorKind::PermissionDenied
            }
            ClientError::ManifestUnknown(_) | ClientError::NoPlatform(_) => ErrorKind::NotFound,
            ClientError::UnknownHost { .. }
            | ClientError::ConnectionRefused { .. }
            | ClientError::Transport { .. }
            | ClientError::Stalled { .. }
            | ClientError::Tls { .. } => ErrorKind::Unavailable,
            ClientError::Io { .. } => ErrorKind::Internal,
            ClientError::CaBundle { .. }
            | ClientError::ClientCert { .. }
            | ClientError::CredHelper { .. } => ErrorKind::FailedPrecondition,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
