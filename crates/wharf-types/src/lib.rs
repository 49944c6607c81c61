//! Pure types shared by every wharf crate: validated identifiers (`Digest`, `ImageRef`,
//! `ContainerId`), the subset of the OCI image spec wharf reads and writes, the create-time
//! container configuration, and the closed set of error kinds with their exit-code mapping.
//!
//! This crate does no I/O. Everything here is parsed at a boundary and valid afterwards.

pub mod container;
pub mod digest;
pub mod error;
pub mod hostname;
pub mod id;
pub mod net;
pub mod netopts;
pub mod oci;
pub mod parse;
pub mod ports;
pub mod reference;
pub mod resources;
pub mod sysctl;
pub mod user;

pub use digest::Digest;
pub use error::ErrorKind;
pub use id::ContainerId;
pub use reference::ImageRef;
