//! wharf-runtime: turns a [`spec::ContainerSpec`] into a running, confined process.
//! No tokio, no store (forbidden edges). OWNED BY: runtime helper.

pub mod spec;
