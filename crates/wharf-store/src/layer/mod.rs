//! Layer archives: applying an (uncompressed) OCI layer tar to a snapshot directory,
//! converting OCI whiteouts to overlayfs ones. Decompression and hashing happen in the
//! caller (`image`), which streams through a tee; this module only sees tar bytes.

mod apply;

pub use apply::{apply_layer, ApplyStats, LayerError};
