//! Network helpers for tests: the host's own address, free ports, plain HTTP over std
//! sockets, user networks made in a test's store (removed with their bridge on drop), and
//! what a container may have left behind on the host (veth, firewall rules, allocations,
//! endpoints) — counted by container id, so tests running in parallel do not see each other.
#![allow(dead_code)]

use super::Wharf;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wharf_engine::network::bridge;
use wharf_engine::network::firewall::{Firewall, Owner};
use wharf_store::network::{NetworkRecord, NewNetwork};

/// Removes what a test store's default network put on the host: its gateway address on
/// `wharf0`, its rules (both firewall backends) and run-root state. The bridge stays.
pub fn forget_default_network(root: &Path, run_root: &Path) {
    if !root.join("meta").join("networks").exists() {
        return;
    }
    let Ok(store) = wharf_store::Store::open(root) else {
        return;
    };
    if let Ok(net) = store.network("bridge") {
        let _ = bridge::detach(run_root, &net);
        if let Some(mut fw) = legacy() {
            let _ = fw.remove_network(&net.id);
        }
    }
}

/// The legacy iptables backend, when its tables are in use on this host (asking iptables-legacy
/// otherwise would load them).
fn legacy() -> Option<Firewall> {
    let names = std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
    if !names.lines().any(|l| l.trim() == "nat") {
        return None;
    }
    Firewall::open_legacy().ok()
}

/// An IPv4 address of the host that is not loopback and not one of a bridge's.
pub fn host_address() -> IpAddr {
    let out = super::sh("ip -4 -o addr show scope global");
    for l in super::stdout(&out).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(dev), Some(addr)) = (w.get(1), w.get(3)) else {
            continue;
        };
        if ["wharf", "wh-", "docker", "br-", "veth", "wv"]
            .iter()
            .any(|p| dev.starts_with(p))
        {
            continue;
        }
        if let Some(ip) = addr.split('/').next().and_then(|a| a.parse().ok()) {
            return ip;
        }
    }
    panic!(
        "the host has no global IPv4 address: {}",
        super::stdout(&out)
    );
}

/// A global IPv6 address of the host that is not one of a bridge's; `None`: the host has no
/// IPv6 (tests of dual-stack networks skip then, and fail under CI=true).
pub fn host_address6() -> Option<IpAddr> {
    let out = super::sh("ip -6 -o addr show scope global");
    for l in super::stdout(&out).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(dev), Some(addr)) = (w.get(1), w.get(3)) else {
            continue;
        };
        if ["wharf", "wh-", "docker", "br-", "veth", "wv"]
            .iter()
            .any(|p| dev.starts_with(p))
        {
            continue;
        }
        if let Some(ip) = addr.split('/').next().and_then(|a| a.parse().ok()) {
            return Some(ip);
        }
    }
    None
}

/// A TCP port nothing listens on right now (tests pick theirs this way, not by number).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `GET path` over HTTP/1.0 with std sockets; the body, or `None` on any failure.
pub fn http_get(ip: IpAddr, port: u16, path: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    s.take(1 << 20).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// `http_get` retried for up to `secs` (a detached server needs a moment to listen).
pub fn http_get_eventually(ip: IpAddr, port: u16, path: &str, secs: u64) -> Option<String> {
    let mut got = None;
    super::eventually(secs, || {
        got = http_get(ip, port, path);
        got.is_some()
    });
    got
}

/// A user-defined bridge network in a test's store, made with the store directly; its
/// bridge, rules and record are removed on drop (after the test removed its containers),
/// and so is the test store's DNS resolver.
pub struct UserNetwork {
    pub rec: NetworkRecord,
    root: PathBuf,
    run_root: PathBuf,
}

impl UserNetwork {
    /// `subnet`: distinct per test (tests run in parallel and share the host's routes).
    pub fn create(w: &Wharf, name: &str, subnet: &str) -> UserNetwork {
        let store = wharf_store::Store::open(&w.root()).expect("open store");
        let rec = store
            .create_network(
                &NewNetwork {
                    name: name.into(),
                    subnet: Some(subnet.parse().expect("subnet")),
                    ..Default::default()
                },
                &wharf_types::net::default_pools(),
                &[],
            )
            .expect("create network");
        UserNetwork {
            rec,
            root: w.root(),
            run_root: w.run_root(),
        }
    }
}

impl Drop for UserNetwork {
    fn drop(&mut self) {
        stop_resolver(&self.root);
        let _ = bridge::remove(&self.run_root, &self.rec);
        if let Ok(s) = wharf_store::Store::open(&self.root) {
            let _ = s.remove_network(&self.rec.id);
        }
    }
}

/// Kills the `wharf __dns` process serving a test store (it would leave by itself once idle).
pub fn stop_resolver(root: &Path) {
    for pid in resolver_pids(root) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The pids of `wharf __dns` processes of a store.
pub fn resolver_pids(root: &Path) -> Vec<i32> {
    let want = root.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("__dns") && args.get(2) == Some(&want) {
            out.push(pid);
        }
    }
    out
}

/// Everything container `id` (full id) still holds on the host: its veth, firewall rules
/// (nftables table and legacy chains), host-port (the store's and host-wide) and address
/// allocations, endpoint files.
pub fn leftovers(w: &Wharf, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    // the kernel removes the veths with the container's namespace, lazily: give it a moment
    let gone = super::eventually(5, || host_veths(id).is_empty());
    if !gone {
        for v in host_veths(id) {
            out.push(format!("veth {v}"));
        }
    }
    for fw in [Firewall::open().ok(), legacy()].into_iter().flatten() {
        let mut fw = fw;
        let backend = fw.backend();
        for (o, n) in fw.owners().unwrap_or_default() {
            if o == Owner::Container(id.to_string()) {
                out.push(format!("{n} {backend} rules"));
            }
        }
    }
    let run = w.run_root();
    let owned = |dir: PathBuf, what: &str, out: &mut Vec<String>| {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if std::fs::read_to_string(e.path()).is_ok_and(|o| o == id) {
                out.push(format!("{what} {}", e.path().display()));
            }
        }
    };
    owned(run.join("ports"), "port", &mut out);
    // host-wide claims: `<owner>\n<run root>`
    for e in std::fs::read_dir(wharf_engine::network::hostports::DIR)
        .into_iter()
        .flatten()
        .flatten()
    {
        let claim = std::fs::read_to_string(e.path()).unwrap_or_default();
        if claim.split_once('\n').is_some_and(|(o, _)| o == id) {
            out.push(format!("host-wide port {}", e.path().display()));
        }
    }
    for n in std::fs::read_dir(run.join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        owned(n.path().join("ips"), "address", &mut out);
        let ep = n.path().join("endpoints").join(format!("{id}.json"));
        if ep.exists() {
            out.push(format!("endpoint {}", ep.display()));
        }
    }
    out
}

/// The host ends of container `id`'s veths (`wv<id12>` for `eth0`, then one letter more for
/// `eth1`…).
pub fn host_veths(id: &str) -> Vec<String> {
    let base = wharf_engine::network::host_veth_name(id, 0).unwrap_or_default();
    let mut out: Vec<String> = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with(&base) && n.len() <= base.len() + 1)
        .collect();
    out.sort();
    out
}

/// A container's full id.
pub fn full_id(w: &Wharf, name: &str) -> String {
    w.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}
