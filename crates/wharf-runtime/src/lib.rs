//! wharf-runtime: turns a [`spec::ContainerSpec`] into a running, confined process.
//! No tokio, no store (forbidden edges).

pub mod caps;
pub mod cgroup;
pub mod defaults;
pub mod exe;
pub mod exec;
pub mod init;
pub mod net;
pub mod seccomp;
pub mod spec;
pub mod start;
