//! Layer archives: applying an (uncompressed) OCI layer tar to a snapshot directory,
//! converting OCI whiteouts to overlayfs ones, and reading a layer back as its blob.
//! Decompression and hashing happen in the caller, which streams through a tee.

mod apply;
pub(crate) mod source;
pub(crate) mod tarsplit;

pub(crate) use apply::apply_layer_observed;
pub use apply::{apply_layer, ApplyStats, LayerError};
