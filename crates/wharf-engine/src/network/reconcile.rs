//! Nothing of bridge networking outlives its owner: after a crash (`kill -9` of a CLI or a
//! monitor mid-start), a reboot, or a record removed behind wharf's back, this frees what is
//! left — address and port allocations, endpoint files, firewall rules of containers, host
//! veths (`wv<id12>`) — for every container that does not run, and tears down the bridge,
//! rules and run-root state of networks whose record is gone. `system boot` runs it, and
//! `network ls/prune/rm` run it cheaply (a few netlink dumps and directory reads).
//!
//! Several stores may share one host (tests, a second `--root`): the kernel's firewall and
//! links are shared, so only what this store can name as its own is touched — containers it
//! has a record or run-root trace of (allocations, endpoints, run directory), networks it has
//! run-root state for (`<run-root>/networks/<id>/`). Whatever else carries a wharf name
//! belongs to another store and is left alone.
//!
//! A container counts as holding its network while its process runs, or while a foreground
//! CLI or a monitor holds its lock (a start in flight: addresses are taken before the state
//! says running). Locks are probed through `/proc/locks`, never by taking them (a probe
//! would make the monitor's or the client's own non-blocking `flock` fail).
//!
//! Must not: touch a link, rule or file it cannot attribute to this store; fail because one
//! step failed (each step is tried, the first error is reported).

use super::alloc::{Ipam, Ports};
use super::firewall::{Firewall, Owner};
use super::{bridge, endpoint};
use crate::{Engine, EngineError};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::{link, Family, Socket};
use wharf_types::ContainerId;

/// What a reconciliation freed (counts), for `system boot`'s report and the leak tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub addresses: usize,
    pub ports: usize,
    pub endpoints: usize,
    /// Firewall rules of containers that do not run.
    pub container_rules: usize,
    pub veths: usize,
    /// Networks whose record is gone: bridge, rules and run-root state removed.
    pub networks: Vec<String>,
}

/// `/proc/locks` is one line per lock on the host: bounded all the same.
const PROC_LOCKS_MAX: u64 = 4 << 20;

/// (device major, minor, inode) of every file some process holds a `flock` on.
fn flocked_files() -> HashSet<(u32, u32, u64)> {
    let Ok(Some(b)) =
        wharf_sys::fs::read_small_file(None, Path::new("/proc/locks"), PROC_LOCKS_MAX)
    else {
        return HashSet::new();
    };
    String::from_utf8_lossy(&b)
        .lines()
        .filter_map(|l| {
            // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF" ("->" marks a waiter)
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.get(1) != Some(&"FLOCK") {
                return None;
            }
            let mut dev = w.get(5)?.split(':');
            let maj = u32::from_str_radix(dev.next()?, 16).ok()?;
            let min = u32::from_str_radix(dev.next()?, 16).ok()?;
            let ino = dev.next()?.parse().ok()?;
            Some((maj, min, ino))
        })
        .collect()
}

/// Answers "does this container still hold its network?" for one reconciliation.
pub(crate) struct Liveness<'a> {
    engine: &'a Engine,
    records: BTreeSet<String>,
    locks: HashSet<(u32, u32, u64)>,
}

impl<'a> Liveness<'a> {
    pub(crate) fn new(engine: &'a Engine) -> Result<Liveness<'a>, EngineError> {
        let records = engine
            .store
            .containers()?
            .into_iter()
            .map(|r| r.id.as_str().to_string())
            .collect();
        Ok(Liveness {
            engine,
            records,
            locks: flocked_files(),
        })
    }

    fn locked(&self, path: &Path) -> bool {
        locked_in(&self.locks, path)
    }

    /// Whether `id`'s process runs or a start of it is in flight.
    pub(crate) fn live(&self, id: &str) -> bool {
        if !self.records.contains(id) {
            return false;
        }
        let Ok(cid) = id.parse::<ContainerId>() else {
            return false;
        };
        if self.engine.is_running(&cid) {
            return true;
        }
        let dir = self.engine.run_dir(&cid);
        self.locked(&dir.join(crate::monitor::MONITOR_LOCK))
            || self.locked(&dir.join(crate::client::CLIENT_LOCK))
    }

    /// The last check before something of `id`'s is removed: not live, asked again without
    /// the snapshot (a container created, or a start begun, since this reconciliation
    /// began holds its lock by now).
    pub(crate) fn dead_now(&self, id: &str) -> bool {
        if self.live(id) {
            return false;
        }
        let Ok(cid) = id.parse::<ContainerId>() else {
            return true;
        };
        if self.engine.is_running(&cid) {
            return false;
        }
        let locks = flocked_files();
        let dir = self.engine.run_dir(&cid);
        !(locked_in(&locks, &dir.join(crate::monitor::MONITOR_LOCK))
            || locked_in(&locks, &dir.join(crate::client::CLIENT_LOCK)))
    }
}

fn locked_in(locks: &HashSet<(u32, u32, u64)>, path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| {
        let dev = m.dev();
        locks.contains(&(
            nix::sys::stat::major(dev) as u32,
            nix::sys::stat::minor(dev) as u32,
            m.ino(),
        ))
    })
}

impl Engine {
    /// Frees what containers that do not run and networks that are gone left behind (see the
    /// module doc). Every step is tried; the report says what went, the error is the first
    /// step that failed.
    pub fn reconcile_network(&self) -> Result<ReconcileReport, EngineError> {
        let run_root = self.opts.run_root.clone();
        let live = Liveness::new(self)?;
        let records: BTreeMap<String, NetworkRecord> = self
            .store
            .networks()?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let mut report = ReconcileReport::default();
        let mut first: Option<EngineError> = None;
        let mut keep = |r: Result<(), EngineError>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };

        // Containers this store can name: records, and owners of run-root state.
        let mut mine: BTreeSet<String> = live.records.clone();
        let ports = Ports::new(&run_root);
        mine.extend(ports.allocations().into_iter().map(|(_, o)| o));
        let with_state = endpoint::networks_with_state(&run_root);
        for id in &with_state {
            mine.extend(
                Ipam::new(&run_root, id)
                    .allocations()
                    .into_iter()
                    .map(|(_, o)| o),
            );
            mine.extend(
                endpoint::list(&run_root, id)
                    .into_iter()
                    .map(|e| e.container_id),
            );
        }
        if let Ok(rd) = std::fs::read_dir(run_root.join("containers")) {
            mine.extend(
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string)),
            );
        }
        mine.retain(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        let dead: BTreeSet<&String> = mine.iter().filter(|id| !live.live(id)).collect();

        // Networks with run-root state: allocations and endpoints of dead containers; the
        // whole network when its record is gone.
        for id in &with_state {
            match records.get(id) {
                Some(_) => {
                    report.addresses += Ipam::new(&run_root, id).reconcile(&|o| !live.dead_now(o));
                    for ep in endpoint::list(&run_root, id) {
                        if live.dead_now(&ep.container_id) {
                            endpoint::remove(&run_root, id, &ep.container_id);
                            report.endpoints += 1;
                        }
                    }
                }
                None => {
                    keep(self.remove_orphan_network(&run_root, id));
                    report.networks.push(id.clone());
                }
            }
        }
        report.ports += ports.reconcile(&|o| !live.dead_now(o));

        // Firewall rules of dead containers of this store.
        // (no firewall at all: no rules to free)
        if let Ok(mut fw) = Firewall::open() {
            match fw.owners() {
                Ok(owners) => {
                    for (o, _) in owners {
                        if let Owner::Container(id) = o {
                            if dead.contains(&id) && live.dead_now(&id) {
                                match fw.unpublish(&id) {
                                    Ok(n) => report.container_rules += n,
                                    Err(e) => keep(Err(e.into())),
                                }
                            }
                        }
                    }
                }
                Err(e) => keep(Err(e.into())),
            }
        }

        // Host veths of dead containers of this store.
        match Socket::open(Family::Route).and_then(|mut s| {
            let links = link::list(&mut s)?;
            let mut n = 0;
            for l in links.iter().filter(|l| l.kind == "veth") {
                let Some(prefix) = super::host_veth_owner(&l.name) else {
                    continue;
                };
                let owners: Vec<&&String> =
                    dead.iter().filter(|id| id.starts_with(prefix)).collect();
                let alive_twin = mine
                    .iter()
                    .any(|id| id.starts_with(prefix) && live.live(id));
                if owners.is_empty() || alive_twin || !owners.iter().all(|id| live.dead_now(id)) {
                    continue;
                }
                if link::delete(&mut s, &l.name)? {
                    n += 1;
                }
            }
            Ok(n)
        }) {
            Ok(n) => report.veths = n,
            Err(e) => keep(Err(super::bridge::BridgeError::Link {
                network: "(reconcile)".into(),
                source: e,
            }
            .into())),
        }

        match first {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Tears down a network whose record is gone but whose run-root state says this store
    /// made it: its rules (own and in other firewalls' chains), its bridge (named in the
    /// state, else `wh-<id12>`), the state.
    fn remove_orphan_network(&self, run_root: &Path, id: &str) -> Result<(), EngineError> {
        let state = run_root.join("networks").join(id);
        let bridge = wharf_sys::fs::read_small_file(None, &state.join(bridge::BRIDGE_FILE), 64)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| link::valid_name(s).is_ok())
            .unwrap_or_else(|| format!("wh-{}", id.get(..12).unwrap_or(id)));
        let name = format!("(removed) {}", id.get(..12).unwrap_or(id));
        bridge::remove_named(run_root, id, &name, &bridge)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{Flock, FlockArg};

    #[test]
    fn flocks_are_read_from_proc_locks() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("monitor.lock");
        let f = std::fs::File::create(&p).expect("create");
        let m = std::fs::metadata(&p).expect("stat");
        let key = (
            nix::sys::stat::major(m.dev()) as u32,
            nix::sys::stat::minor(m.dev()) as u32,
            m.ino(),
        );
        assert!(!flocked_files().contains(&key));
        let held = Flock::lock(f, FlockArg::LockExclusiveNonblock).expect("lock");
        assert!(flocked_files().contains(&key), "{key:?}");
        drop(held);
        assert!(!flocked_files().contains(&key));
    }

    /// A container created (or a start begun) after a reconciliation took its snapshot is
    /// not removed from under: the last check asks the locks again.
    #[test]
    fn the_last_check_sees_a_start_begun_after_the_snapshot() {
        let d = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open_with(
            crate::EngineOptions {
                root: d.path().join("root"),
                run_root: d.path().join("run"),
                debug: false,
            },
            crate::daemon::DaemonConfig::default(),
        )
        .expect("engine");
        let live = Liveness::new(&engine).expect("liveness");
        let id = "ab".repeat(32);
        let cid: ContainerId = id.parse().expect("id");
        assert!(!live.live(&id) && live.dead_now(&id));
        let dir = engine.run_dir(&cid);
        std::fs::create_dir_all(&dir).expect("run dir");
        let f = std::fs::File::create(dir.join(crate::client::CLIENT_LOCK)).expect("lock file");
        let held = Flock::lock(f, FlockArg::LockExclusiveNonblock).expect("lock");
        assert!(!live.live(&id), "not in the snapshot");
        assert!(!live.dead_now(&id), "but its start holds the client lock");
        drop(held);
        assert!(live.dead_now(&id));
    }
}
