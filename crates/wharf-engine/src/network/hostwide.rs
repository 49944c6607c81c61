//! What every store on the host shares: the default network's bridge `wharf0` carries one
//! subnet per store (each store has its own default network and addresses), so choosing a
//! subnet and putting its gateway on the bridge happen under one host-wide lock
//! (`/run/wharf-subnets.lock`), and each store's default network is registered in
//! `/run/wharf-subnets/<network-id>.json` with the store's root. A registered network whose
//! store no longer has it (the store was deleted: a benchmark's, a test's, an old data-root)
//! is taken off the bridge — address, firewall rules, registry entry — the next time a
//! default network is chosen, so deleted stores never exhaust the address pools.
//! `/run` is per boot, like the addresses it describes. Must not: touch a network whose
//! store still records it.

use super::firewall::Firewall;
use crate::EngineError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::{link, Family, Socket};

const LOCK: &str = "/run/wharf-subnets.lock";
const REGISTRY: &str = "/run/wharf-subnets";

/// Held while a default network's subnet is chosen and put on its bridge (a host without a
/// writable `/run` falls back to the run root: then stores of other run roots are not
/// serialized with it).
pub(crate) fn lock(run_root: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, EngineError> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
    };
    let fallback = run_root.join("subnets.lock");
    let f = match open(Path::new(LOCK)) {
        Ok(f) => f,
        Err(_) => {
            std::fs::create_dir_all(run_root)
                .map_err(|e| EngineError::io("create", run_root, e))?;
            open(&fallback).map_err(|e| EngineError::io("open", &fallback, e))?
        }
    };
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| EngineError::io("lock", LOCK, e.into()))
}

/// One registered default network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The store root that records the network.
    root: PathBuf,
    network: String,
    bridge: String,
    gateway: IpAddr,
    prefix: u8,
    /// The IPv6 gateway and prefix of a dual-stack default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway6: Option<(IpAddr, u8)>,
}

fn entry_path(id: &str) -> PathBuf {
    Path::new(REGISTRY).join(format!("{id}.json"))
}

/// Registers a store's default network (best effort: without a writable `/run` the network
/// is simply never reclaimed).
pub(crate) fn register(root: &Path, net: &NetworkRecord) {
    // absolute: the reclaimer may run anywhere
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if !root.is_absolute() {
        return;
    }
    let e = Entry {
        root,
        network: net.id.clone(),
        bridge: net.bridge.clone(),
        gateway: net.gateway,
        prefix: net.subnet.prefix(),
        gateway6: net.ipv6.map(|v| (v.gateway, v.subnet.prefix())),
    };
    let Ok(body) = serde_json::to_vec(&e) else {
        return;
    };
    if std::fs::create_dir_all(REGISTRY).is_ok() {
        let _ = std::fs::write(entry_path(&net.id), body);
    }
}

/// Whether a live store other than `net`'s registered the same gateway (a subnet two stores
/// came to share: its address must stay on the bridge for the other one).
pub(crate) fn gateway_shared(net: &NetworkRecord, gateway: IpAddr) -> bool {
    entries().into_iter().any(|(_, e, live)| {
        live && e.network != net.id
            && (e.gateway == gateway || e.gateway6.is_some_and(|(g, _)| g == gateway))
    })
}

/// Whether `net` is registered this boot (one stat: the fast path of every start).
pub(crate) fn registered(network_id: &str) -> bool {
    entry_path(network_id).exists()
}

/// Whether `net`'s IPv4 subnet is taken by someone else now: another live store's
/// registered default network, or an address of a host interface other than `net`'s bridge
/// (docker0 came up first after a reboot, say).
pub(crate) fn subnet_taken(net: &NetworkRecord) -> bool {
    let by_store = entries().into_iter().any(|(_, e, live)| {
        live && e.network != net.id
            && wharf_types::net::Subnet::containing(e.gateway, e.prefix)
                .is_some_and(|s| s.overlaps(&net.subnet))
    });
    if by_store {
        return true;
    }
    let Ok(mut s) = Socket::open(Family::Route) else {
        return false;
    };
    let bridge = link::get(&mut s, &net.bridge)
        .ok()
        .flatten()
        .map(|l| l.index);
    link::addresses(&mut s, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|(idx, _, _)| Some(*idx) != bridge)
        .filter_map(|(_, ip, p)| wharf_types::net::Subnet::containing(ip, p))
        .any(|sub| sub.overlaps(&net.subnet))
}

/// Drops `net`'s entry (its store lets it go).
pub(crate) fn unregister(network_id: &str) {
    let _ = std::fs::remove_file(entry_path(network_id));
}

/// Every registered entry with the path of its file and whether its store still records
/// the network.
fn entries() -> Vec<(PathBuf, Entry, bool)> {
    let Ok(rd) = std::fs::read_dir(REGISTRY) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|f| {
            let path = f.path();
            let e = wharf_sys::fs::read_small_file(None, &path, 64 * 1024)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())?;
            let live = e
                .root
                .join("meta")
                .join("networks")
                .join(format!("{}.json", e.network))
                .exists();
            Some((path, e, live))
        })
        .collect()
}

/// The subnets of the default networks of stores that still exist: taken even while their
/// gateway is not on the bridge (after a reboot, before that store's first start).
pub(crate) fn live_subnets() -> Vec<wharf_types::net::Subnet> {
    entries()
        .into_iter()
        .filter(|(_, _, live)| *live)
        .flat_map(|(_, e, _)| {
            std::iter::once((e.gateway, e.prefix))
                .chain(e.gateway6)
                .filter_map(|(gw, p)| wharf_types::net::Subnet::containing(gw, p))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Takes the registered default networks of deleted stores off the host (called under
/// [`lock`]); how many. An address another live store's entry also names stays on the
/// bridge (two stores that came to share a subnet must not take each other's gateway).
pub(crate) fn reclaim() -> usize {
    let all = entries();
    let kept: Vec<IpAddr> = all
        .iter()
        .filter(|(_, _, live)| *live)
        .flat_map(|(_, e, _)| std::iter::once(e.gateway).chain(e.gateway6.map(|(g, _)| g)))
        .collect();
    let mut n = 0;
    for (path, e, live) in all {
        if live {
            continue;
        }
        if let Ok(mut s) = Socket::open(Family::Route) {
            if let Ok(Some(l)) = link::get(&mut s, &e.bridge) {
                if !kept.contains(&e.gateway) {
                    let _ = link::del_address(&mut s, l.index, e.gateway, e.prefix);
                }
                if let Some((gw, prefix)) = e.gateway6 {
                    if !kept.contains(&gw) {
                        let _ = link::del_address(&mut s, l.index, gw, prefix);
                    }
                }
            }
        }
        if let Ok(mut fw) = Firewall::open() {
            let _ = fw.remove_network(&e.network);
        }
        let _ = std::fs::remove_file(&path);
        n += 1;
    }
    n
}
