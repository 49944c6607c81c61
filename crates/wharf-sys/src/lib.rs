//! wharf-sys: the only crate allowed to contain `unsafe` and to call libc directly
//! (invariant: everything else has `unsafe_code = "forbid"`). Each function here is a small,
//! safe wrapper around one kernel facility; policy (what to mount, which caps) lives in
//! wharf-runtime and wharf-store.
//!
//! Kernel features are detected at run time (`features`), and every fallback can be forced
//! with `WHARF_DISABLE=openat2,clone3,mountapi` so the old-kernel paths are tested here.

pub mod atomic;
pub mod caps;
pub mod features;
pub mod fs;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod ns;
pub mod openat2;
pub mod process;
pub mod resolve;
pub mod seccomp;
pub mod tty;
pub mod xtables;
