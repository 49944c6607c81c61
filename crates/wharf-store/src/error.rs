//! `StoreError`: every failure of a `Store` operation, each mapped to an `ErrorKind`.
//! User-facing "not found"/"conflict" messages copy Docker's wording so CLI output matches.

use crate::layer::LayerError;
use std::io;
use std::path::PathBuf;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::reference::RefError;
use wharf_types::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    #[error("get {0}: no such volume")]
    VolumeNotFound(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error(transparent)]
    Reference(#[from] RefError),
    #[error("invalid reference {0:?}: a tag is required here, not a digest")]
    TagRequired(String),
    #[error("invalid container name ({0:?}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidContainerName(String),
    #[error("create {0}: {0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")]
    InvalidVolumeName(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("container {0} already exists")]
    ContainerExists(String),
    /// Docker's wording for `rmi` refusals; the message is built by the caller.
    #[error("{0}")]
    ImageInUse(String),
    #[error("remove {name}: volume is in use - [{ids}]")]
    VolumeInUse { name: String, ids: String },
    #[error("container {0}: rootfs is still mounted at its merged dir; stop it first")]
    RootfsMounted(String),
    #[error("store at {root} has schema version {found}, newer than the {supported} this wharf understands; upgrade wharf")]
    SchemaTooNew {
        root: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the file system of {path} does not report file types in directory entries (d_type), which overlay needs for whiteouts: on XFS reformat with `mkfs.xfs -n ftype=1` (RHEL 7.3+ defaults to it), on ext4 enable `filetype`, or move the wharf root (--root, WHARF_ROOT) to a file system that has it")]
    NoDType { path: PathBuf },
    #[error("empty image archive: no data")]
    EmptyArchive,
    #[error("no space left on the store {}", .store.display())]
    NoSpace { store: PathBuf },
    #[error("invalid layer archive")]
    Layer(#[from] LayerError),
    #[error("reading the container's file system")]
    Diff(#[from] crate::layer::diff::DiffError),
    #[error("content of {what} does not match {expected}: got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid {what}: {reason}")]
    InvalidSignature { what: String, reason: String },
    #[error("{path} is larger than the {limit} bytes allowed")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("corrupt metadata file {path}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding {what}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::ImageNotFound(_)
            | StoreError::ContainerNotFound(_)
            | StoreError::VolumeNotFound(_) => ErrorKind::NotFound,
            StoreError::Ambiguous(_)
            | StoreError::Reference(_)
            | StoreError::TagRequired(_)
            | StoreError::InvalidContainerName(_)
            | StoreError::InvalidVolumeName(_)
            | StoreError::EmptyArchive => ErrorKind::InvalidArgument,
            StoreError::NameInUse { .. } | StoreError::ContainerExists(_) => {
                ErrorKind::AlreadyExists
            }
            StoreError::ImageInUse(_) | StoreError::VolumeInUse { .. } => ErrorKind::Conflict,
            StoreError::RootfsMounted(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::NoDType { .. }
            | StoreError::NoSpace { .. } => ErrorKind::FailedPrecondition,
            StoreError::Layer(e) => e.kind(),
            StoreError::Diff(e) => e.kind(),
            StoreError::DigestMismatch { .. }
            | StoreError::TooLarge { .. }
            | StoreError::InvalidSignature { .. } => ErrorKind::InvalidArgument,
            StoreError::Corrupt { .. } | StoreError::Encode { .. } => ErrorKind::Internal,
            StoreError::Io { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Internal,
            },
        }
    }
}
