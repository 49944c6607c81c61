//! The host side of a bridge network: the bridge interface with the gateway address, up,
//! forwarding on, and the network's firewall rules — made on first use by whichever wharf
//! process starts the first container on it (under a per-network lock in the run root, so
//! parallel starts make it once), and removed by `network rm`. Everything here is idempotent:
//! an existing bridge is checked, not recreated, so a reboot or a crash in between is healed
//! by the next start.

use super::firewall::{self, Firewall, FirewallError};
use nix::fcntl::{Flock, FlockArg};
use std::path::Path;
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::link;
use wharf_sys::netlink::{Family, NetlinkError, Socket};
use wharf_types::error::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("network {network}: {source}")]
    Link {
        network: String,
        #[source]
        source: NetlinkError,
    },
    #[error("network {network}: interface {bridge} exists and is not a bridge ({kind})")]
    NotABridge {
        network: String,
        bridge: String,
        kind: String,
    },
    #[error("network {network}: {source}")]
    Firewall {
        network: String,
        #[source]
        source: FirewallError,
    },
    #[error("network {network}: {what}: {source}")]
    Io {
        network: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for BridgeError {
    fn kind(&self) -> ErrorKind {
        match self {
            BridgeError::NotABridge { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Unavailable,
        }
    }
}

/// The file in a network's run-root state naming its bridge: reconciliation finds the
/// bridge of a network whose record is gone by it.
pub const BRIDGE_FILE: &str = "bridge";

/// Holds the per-network lock while a bridge is made or removed.
fn lock(run_root: &Path, id: &str, name: &str) -> Result<Flock<std::fs::File>, BridgeError> {
    let dir = run_root.join("networks").join(id);
    let io = |what: &str| {
        let what = what.to_string();
        let network = name.to_string();
        move |source| BridgeError::Io {
            network,
            what,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io("create run directory"))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io("open lock"))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| BridgeError::Io {
        network: name.to_string(),
        what: "lock".into(),
        source: e.into(),
    })
}

/// Makes sure the network's bridge exists with its gateway address, is up, forwards, and
/// has its firewall rules.
pub fn ensure(run_root: &Path, net: &NetworkRecord) -> Result<(), BridgeError> {
    let _l = lock(run_root, &net.id, &net.name)?;
    let named = run_root.join("networks").join(&net.id).join(BRIDGE_FILE);
    if !named.exists() {
        wharf_sys::atomic::write_file(&named, net.bridge.as_bytes(), 0o644).map_err(|source| {
            BridgeError::Io {
                network: net.name.clone(),
                what: "record bridge name".into(),
                source,
            }
        })?;
    }
    let le = |source| BridgeError::Link {
        network: net.name.clone(),
        source,
    };
    let mut s = Socket::open(Family::Route).map_err(le)?;
    let (index, up) = match link::get(&mut s, &net.bridge).map_err(le)? {
        Some(l) if l.kind == "bridge" => (l.index, l.up),
        Some(l) => {
            return Err(BridgeError::NotABridge {
                network: net.name.clone(),
                bridge: net.bridge.clone(),
                kind: if l.kind.is_empty() {
                    "a device".into()
                } else {
                    l.kind
                },
            })
        }
        None => {
            match link::create_bridge(&mut s, &net.bridge, None) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(nix::libc::EEXIST) => {}
                Err(e) => return Err(le(e)),
            }
            (link::index(&mut s, &net.bridge).map_err(le)?, false)
        }
    };
    // (before the addresses: IPv6 must be on for the bridge to take its IPv6 gateway)
    firewall::enable_forwarding(&net.bridge, net.ipv6.is_some()).map_err(|source| {
        BridgeError::Io {
            network: net.name.clone(),
            what: "enable forwarding".into(),
            source,
        }
    })?;
    let have = link::addresses(&mut s, Some(index)).map_err(le)?;
    // the IPv4 gateway and, on a dual-stack network, the IPv6 one (added `nodad`: usable at
    // once, even before the bridge has a port)
    let gateways = std::iter::once((net.gateway, net.subnet.prefix()))
        .chain(net.ipv6.map(|v| (v.gateway, v.subnet.prefix())));
    for (gw, prefix) in gateways {
        if have.iter().any(|(_, ip, p)| *ip == gw && *p == prefix) {
            continue;
        }
        match link::add_address(&mut s, index, gw, prefix) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(nix::libc::EEXIST) => {}
            Err(e) => return Err(le(e)),
        }
    }
    if !up {
        link::set_up(&mut s, index).map_err(le)?;
    }
    let fe = |source| BridgeError::Firewall {
        network: net.name.clone(),
        source,
    };
    let mut fw = Firewall::open().map_err(fe)?;
    fw.ensure_network(net).map_err(fe)?;
    Ok(())
}

/// Removes the bridge, the network's firewall rules and its run-root state.
pub fn remove(run_root: &Path, net: &NetworkRecord) -> Result<(), BridgeError> {
    remove_named(run_root, &net.id, &net.name, &net.bridge)
}

/// [`remove`] by the parts it needs: the network's id, its name (for errors) and its
/// bridge (a network whose record is gone has no record to pass).
pub fn remove_named(
    run_root: &Path,
    id: &str,
    name: &str,
    bridge: &str,
) -> Result<(), BridgeError> {
    {
        let _l = lock(run_root, id, name)?;
        let le = |source| BridgeError::Link {
            network: name.to_string(),
            source,
        };
        let mut s = Socket::open(Family::Route).map_err(le)?;
        if let Some(l) = link::get(&mut s, bridge).map_err(le)? {
            if l.kind == "bridge" {
                link::delete(&mut s, bridge).map_err(le)?;
            }
        }
        if let Ok(mut fw) = Firewall::open() {
            fw.remove_network(id)
                .map_err(|source| BridgeError::Firewall {
                    network: name.to_string(),
                    source,
                })?;
        }
    }
    let _ = std::fs::remove_dir_all(run_root.join("networks").join(id));
    Ok(())
}

/// Takes a network off its bridge without removing the bridge: the gateway address, the
/// network's firewall rules and its run-root state go, the interface stays. For a default
/// network on the shared `wharf0` when its store goes away (a second store on one host, a
/// test's private store): each store's default network has its own subnet on that bridge,
/// and removing the bridge would cut off the others.
pub fn detach(run_root: &Path, net: &NetworkRecord) -> Result<(), BridgeError> {
    {
        let _l = lock(run_root, &net.id, &net.name)?;
        let le = |source| BridgeError::Link {
            network: net.name.clone(),
            source,
        };
        let mut s = Socket::open(Family::Route).map_err(le)?;
        if let Some(l) = link::get(&mut s, &net.bridge).map_err(le)? {
            // an address another live store also uses (a shared subnet) stays
            if !super::hostwide::gateway_shared(net, net.gateway) {
                link::del_address(&mut s, l.index, net.gateway, net.subnet.prefix()).map_err(le)?;
            }
            if let Some(v6) = net.ipv6 {
                if !super::hostwide::gateway_shared(net, v6.gateway) {
                    link::del_address(&mut s, l.index, v6.gateway, v6.subnet.prefix())
                        .map_err(le)?;
                }
            }
        }
        if let Ok(mut fw) = Firewall::open() {
            fw.remove_network(&net.id)
                .map_err(|source| BridgeError::Firewall {
                    network: net.name.clone(),
                    source,
                })?;
        }
    }
    let _ = std::fs::remove_dir_all(run_root.join("networks").join(&net.id));
    super::hostwide::unregister(&net.id);
    Ok(())
}
