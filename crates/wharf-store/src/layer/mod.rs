//! Layer archives: applying an (uncompressed) OCI layer tar to a snapshot directory,
//! converting OCI whiteouts to overlayfs ones, reading a layer back as its blob, and the
//! reverse direction (`diff`): a container's upper dir as a layer tar or a change list.
//! Decompression and hashing happen in the caller, which streams through a tee.

mod apply;
mod changes;
pub mod diff;
pub(crate) mod source;
pub(crate) mod tarsplit;

pub(crate) use apply::apply_layer_observed;
pub use apply::{apply_layer, ApplyStats, LayerError};
