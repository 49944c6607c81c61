//! Bridge networking in the engine: which addresses and host ports a container gets
//! (`alloc`), the host side of a network (bridge, firewall rules: `firewall`), and the
//! typed requests the front ends send.

pub mod alloc;
pub mod bridge;
pub mod dns;
pub mod endpoint;
pub mod firewall;
pub mod iptables;
pub mod resolver;
