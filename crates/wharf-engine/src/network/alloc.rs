//! Address and host-port allocation, in the volatile run root (a reboot stops every container
//! and so frees everything): one file per allocation, created with `O_EXCL`, holding the
//! container id. Creating the file *is* the allocation, so twenty CLIs starting containers at
//! once never share an address or a port, without a lock; releasing is an unlink by the owner;
//! a leftover of a killed CLI is reconciled against the containers that still run.
//!
//! `<run-root>/networks/<network-id>/ips/<address>` and `<run-root>/ports/<proto>-<port>`.
//! A host port is also claimed host-wide (`/run/wharf-ports/<proto>-<port>`, see
//! `hostports`): the firewall's DNAT rules are one namespace for every store on the host.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::hostports::{self, HostPorts, Outcome};
use wharf_store::network::NetworkRecord;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::net::Subnet;
use wharf_types::ports::Proto;

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error(
        "no available {family} addresses on this network's address pools: {network} ({range})"
    )]
    NoAddress {
        family: &'static str,
        network: String,
        range: Subnet,
    },
    #[error("Address already in use: {0}")]
    AddressInUse(IpAddr),
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    AddressOutside(IpAddr),
    #[error("user specified IP address is supported on user defined networks only")]
    AddressOnDefault,
    #[error("Bind for {addr}:{port} failed: port is already allocated")]
    PortAllocated { addr: String, port: u16 },
    #[error("driver failed programming external connectivity: listen {proto} {addr}:{port}: bind: address already in use")]
    PortBusy {
        proto: Proto,
        addr: String,
        port: u16,
    },
    #[error("no free host port in {low}-{high} for {proto}")]
    NoPort { low: u16, high: u16, proto: Proto },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HasKind for AllocError {
    fn kind(&self) -> ErrorKind {
        match self {
            AllocError::NoAddress { .. } | AllocError::NoPort { .. } => ErrorKind::Unavailable,
            AllocError::AddressInUse(_)
            | AllocError::PortAllocated { .. }
            | AllocError::PortBusy { .. } => ErrorKind::Conflict,
            AllocError::AddressOutside(_) | AllocError::AddressOnDefault => {
                ErrorKind::InvalidArgument
            }
            AllocError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AllocError + use<> {
    let path = path.to_path_buf();
    move |source| AllocError::Io { op, path, source }
}

/// Claim `path` for `owner`: true if it was free.
fn claim(path: &Path, owner: &str) -> Result<bool, AllocError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(owner.as_bytes())
                .map_err(io_err("write allocation", path))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err("create allocation", path)(e)),
    }
}

fn owner_of(path: &Path) -> Option<String> {
    // 64 hex is all an owner ever is; anything longer is not ours
    let b = wharf_sys::fs::read_small_file(None, path, 128).ok()??;
    String::from_utf8(b).ok()
}

/// Unlink `path` if `owner` holds it.
fn release_if_owner(path: &Path, owner: &str) {
    if owner_of(path).as_deref() == Some(owner) {
        let _ = std::fs::remove_file(path);
    }
}

/// Every allocation in `dir` as (file name, owner).
fn list(dir: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let owner = owner_of(&e.path())?;
            Some((name, owner))
        })
        .collect()
}

/// Addresses of one network.
pub struct Ipam {
    dir: PathBuf,
}

impl Ipam {
    pub fn new(run_root: &Path, network_id: &str) -> Ipam {
        Ipam {
            dir: run_root.join("networks").join(network_id).join("ips"),
        }
    }

    fn ensure_dir(&self) -> Result<(), AllocError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))
    }

    /// An address for `owner`: `want` if given (and free, inside the range), else the first
    /// free one of the ip-range (or subnet), skipping the network address, the gateway and
    /// the broadcast address.
    pub fn allocate(
        &self,
        net: &NetworkRecord,
        owner: &str,
        want: Option<IpAddr>,
    ) -> Result<IpAddr, AllocError> {
        self.allocate_in(
            &net.name,
            net.subnet,
            net.gateway,
            net.ip_range,
            owner,
            want,
        )
    }

    /// The IPv6 address of `owner` on a dual-stack network (`want`: `--ip6`), in the same
    /// directory of allocations; `None` on a network without IPv6.
    pub fn allocate6(
        &self,
        net: &NetworkRecord,
        owner: &str,
        want: Option<IpAddr>,
    ) -> Result<Option<IpAddr>, AllocError> {
        let Some(v6) = net.ipv6 else {
            return Ok(None);
        };
        self.allocate_in(&net.name, v6.subnet, v6.gateway, None, owner, want)
            .map(Some)
    }

    fn allocate_in(
        &self,
        network: &str,
        subnet: Subnet,
        gateway: IpAddr,
        ip_range: Option<Subnet>,
        owner: &str,
        want: Option<IpAddr>,
    ) -> Result<IpAddr, AllocError> {
        self.ensure_dir()?;
        let range = ip_range.unwrap_or(subnet);
        let reserved =
            |ip: IpAddr| ip == gateway || ip == subnet.addr() || Some(ip) == subnet.broadcast();
        if let Some(ip) = want {
            if !subnet.contains(ip) || reserved(ip) {
                return Err(AllocError::AddressOutside(ip));
            }
            return if claim(&self.dir.join(ip.to_string()), owner)? {
                Ok(ip)
            } else {
                Err(AllocError::AddressInUse(ip))
            };
        }
        let limit = range.size().min(1 << 20);
        for n in 0..limit {
            let Some(ip) = range.nth(n) else { break };
            if reserved(ip) {
                continue;
            }
            if claim(&self.dir.join(ip.to_string()), owner)? {
                return Ok(ip);
            }
        }
        Err(AllocError::NoAddress {
            family: if subnet.is_ipv4() { "IPv4" } else { "IPv6" },
            network: network.to_string(),
            range,
        })
    }

    pub fn release(&self, ip: IpAddr, owner: &str) {
        release_if_owner(&self.dir.join(ip.to_string()), owner);
    }

    /// Releases every address `owner` holds (a start killed before its endpoint was written).
    pub fn release_all(&self, owner: &str) {
        for (ip, o) in self.allocations() {
            if o == owner {
                self.release(ip, &o);
            }
        }
    }

    /// Every address held, with its owner.
    pub fn allocations(&self) -> Vec<(IpAddr, String)> {
        list(&self.dir)
            .into_iter()
            .filter_map(|(n, o)| Some((n.parse().ok()?, o)))
            .collect()
    }

    /// Frees what owners that no longer run hold; returns how many.
    pub fn reconcile(&self, running: &dyn Fn(&str) -> bool) -> usize {
        let mut n = 0;
        for (ip, owner) in self.allocations() {
            if !running(&owner) {
                self.release(ip, &owner);
                n += 1;
            }
        }
        n
    }
}

/// Host ports (one namespace for every host address: a port published on one address is
/// not published again on another, which is stricter than docker and never ambiguous; and
/// one namespace for every store on the host, through the host-wide claims of `hostports`).
pub struct Ports {
    dir: PathBuf,
    run_root: PathBuf,
    host: Option<HostPorts>,
}

/// A host port taken for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    pub proto: Proto,
    pub port: u16,
}

impl Ports {
    /// A store's ports, claimed host-wide in `/run/wharf-ports` too.
    pub fn new(run_root: &Path) -> Ports {
        Ports::with_host_dir(run_root, Some(Path::new(hostports::DIR)))
    }

    /// A store's ports with host-wide claims in `host_dir` (`None`: claimed in the run root
    /// only, as on a host without a writable `/run`). Tests use their own directory.
    pub fn with_host_dir(run_root: &Path, host_dir: Option<&Path>) -> Ports {
        Ports {
            dir: run_root.join("ports"),
            run_root: run_root.to_path_buf(),
            host: host_dir.map(HostPorts::new),
        }
    }

    fn name(proto: Proto, port: u16) -> String {
        format!("{}-{port}", proto.as_str())
    }

    fn file(&self, proto: Proto, port: u16) -> PathBuf {
        self.dir.join(Self::name(proto, port))
    }

    /// The run root as host-wide claims name it (absolute, symlinks resolved); `None` when
    /// it does not exist (then it holds no port either).
    fn canonical_root(&self) -> Option<PathBuf> {
        std::fs::canonicalize(&self.run_root).ok()
    }

    /// Claims a port host-wide (the store's own file is already held); true unless another
    /// store's live claim holds it.
    fn claim_host(
        &self,
        root: Option<&Path>,
        proto: Proto,
        port: u16,
        owner: &str,
    ) -> Result<bool, AllocError> {
        let (Some(host), Some(root)) = (&self.host, root) else {
            return Ok(true);
        };
        Ok(match host.claim(&Self::name(proto, port), root, owner)? {
            Outcome::Claimed | Outcome::Unavailable => true,
            Outcome::Held => false,
        })
    }

    fn release_host(&self, root: Option<&Path>, p: HostPort, owner: &str) {
        if let (Some(host), Some(root)) = (&self.host, root) {
            host.release(&Self::name(p.proto, p.port), root, owner);
        }
    }

    /// Whether some host process already listens on the port (`bind` fails): publishing
    /// would silently shadow it, so the start is refused with docker's wording.
    fn host_busy(proto: Proto, ip: Option<IpAddr>, port: u16) -> bool {
        let addr = SocketAddr::new(ip.unwrap_or(IpAddr::from([0u8, 0, 0, 0])), port);
        let r = match proto {
            Proto::Tcp => std::net::TcpListener::bind(addr).map(drop),
            Proto::Udp => std::net::UdpSocket::bind(addr).map(drop),
            Proto::Sctp => Ok(()),
        };
        matches!(r, Err(e) if e.kind() == io::ErrorKind::AddrInUse)
    }

    /// Take a port for `owner`: one of `wanted` (inclusive; a single port when both ends
    /// agree), else any of `range`, starting from a pseudo-random point so parallel starts
    /// rarely race for the same one.
    pub fn allocate(
        &self,
        proto: Proto,
        ip: Option<IpAddr>,
        wanted: Option<(u16, u16)>,
        range: (u16, u16),
        owner: &str,
    ) -> Result<HostPort, AllocError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let root = self.canonical_root();
        let addr = ip.map_or_else(|| "0.0.0.0".to_string(), |i| i.to_string());
        let (low, high, specific) = match wanted {
            Some((a, b)) => (a, b, a == b),
            None => (range.0, range.1, false),
        };
        let span = u32::from(high - low) + 1;
        let start = if specific {
            0
        } else {
            (std::process::id()
                ^ u32::from_str_radix(owner.get(..8).unwrap_or("0"), 16).unwrap_or(0))
                % span
        };
        for i in 0..span {
            let port = low + ((start + i) % span) as u16;
            let f = self.file(proto, port);
            if !claim(&f, owner)? {
                if specific {
                    return Err(AllocError::PortAllocated { addr, port });
                }
                continue;
            }
            // the store's own file first, then the host-wide claim (and released in the
            // opposite order): a host-wide claim whose store does not hold the port is stale
            if !self.claim_host(root.as_deref(), proto, port, owner)? {
                let _ = std::fs::remove_file(&f);
                if specific {
                    return Err(AllocError::PortAllocated { addr, port });
                }
                continue;
            }
            if Self::host_busy(proto, ip, port) {
                self.release_host(root.as_deref(), HostPort { proto, port }, owner);
                let _ = std::fs::remove_file(&f);
                if specific {
                    return Err(AllocError::PortBusy { proto, addr, port });
                }
                continue;
            }
            return Ok(HostPort { proto, port });
        }
        Err(AllocError::NoPort { low, high, proto })
    }

    /// Releases `p` if `owner` holds it: the host-wide claim first (only if it is this
    /// store's `owner`'s), then the store's own file.
    pub fn release(&self, p: HostPort, owner: &str) {
        self.release_host(self.canonical_root().as_deref(), p, owner);
        release_if_owner(&self.file(p.proto, p.port), owner);
    }

    /// Every port held, with its owner.
    pub fn allocations(&self) -> Vec<(HostPort, String)> {
        list(&self.dir)
            .into_iter()
            .filter_map(|(n, o)| {
                let (proto, port) = n.split_once('-')?;
                let proto = match proto {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    "sctp" => Proto::Sctp,
                    _ => return None,
                };
                Some((
                    HostPort {
                        proto,
                        port: port.parse().ok()?,
                    },
                    o,
                ))
            })
            .collect()
    }

    /// Releases every port `owner` holds.
    pub fn release_all(&self, owner: &str) {
        for (p, o) in self.allocations() {
            if o == owner {
                self.release(p, &o);
            }
        }
    }

    /// Frees what owners that no longer run hold; returns how many. Stale host-wide claims
    /// (of any store: a crash, a deleted store) go too, uncounted.
    pub fn reconcile(&self, running: &dyn Fn(&str) -> bool) -> usize {
        let mut n = 0;
        for (p, owner) in self.allocations() {
            if !running(&owner) {
                self.release(p, &owner);
                n += 1;
            }
        }
        if let Some(host) = &self.host {
            host.sweep();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn net(subnet: &str, range: Option<&str>) -> NetworkRecord {
        let subnet: Subnet = subnet.parse().expect("subnet");
        NetworkRecord {
            id: "0".repeat(64),
            name: "t".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wh-test".into(),
            gateway: subnet.nth(1).expect("gw"),
            subnet,
            ip_range: range.map(|r| r.parse().expect("range")),
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: None,
        }
    }

    fn owner(i: u32) -> String {
        format!("{i:064x}")
    }

    #[test]
    fn addresses_in_order_reused_after_release() {
        let d = tempfile::tempdir().expect("tempdir");
        let ipam = Ipam::new(d.path(), "n");
        let n = net("10.0.0.0/29", None);
        let a = ipam.allocate(&n, &owner(1), None).expect("a");
        let b = ipam.allocate(&n, &owner(2), None).expect("b");
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("10.0.0.2".into(), "10.0.0.3".into())
        );
        for i in 3..7 {
            let _ = ipam.allocate(&n, &owner(i), None);
        }
        // .2-.6 taken, .7 is broadcast
        let e = ipam.allocate(&n, &owner(9), None).expect_err("full");
        assert!(matches!(e, AllocError::NoAddress { .. }), "{e}");
        ipam.release(a, &owner(2)); // not the owner: kept
        assert!(ipam.allocate(&n, &owner(9), None).is_err());
        ipam.release(a, &owner(1));
        assert_eq!(ipam.allocate(&n, &owner(9), None).expect("reuse"), a);
        ipam.release_all(&owner(3));
        assert!(ipam.allocations().iter().all(|(_, o)| *o != owner(3)));
        let again = ipam.allocate(&n, &owner(3), None).expect("again");
        // reconcile frees owners that are gone
        let _ = again;
        let freed = ipam.reconcile(&|o| o == owner(9));
        assert_eq!(freed, 4); // owners 2-5; owner 6 never got one
        assert_eq!(ipam.allocations().len(), 1);
    }

    #[test]
    fn ipv6_addresses_beside_ipv4_ones() {
        let d = tempfile::tempdir().expect("tempdir");
        let ipam = Ipam::new(d.path(), "n");
        let v4 = net("10.5.0.0/24", None);
        assert_eq!(ipam.allocate6(&v4, &owner(1), None).expect("none"), None);
        let mut n = v4.clone();
        n.ipv6 = Some(wharf_store::network::Ipv6Config {
            subnet: "fd05::/64".parse().expect("subnet"),
            gateway: "fd05::1".parse().expect("gw"),
        });
        let a4 = ipam.allocate(&n, &owner(1), None).expect("a4");
        let a6 = ipam.allocate6(&n, &owner(1), None).expect("a6");
        let b6 = ipam.allocate6(&n, &owner(2), None).expect("b6");
        assert_eq!(a4.to_string(), "10.5.0.2");
        assert_eq!(a6.map(|a| a.to_string()).as_deref(), Some("fd05::2"));
        assert_eq!(b6.map(|a| a.to_string()).as_deref(), Some("fd05::3"));
        let want: IpAddr = "fd05::99".parse().expect("ip");
        assert_eq!(
            ipam.allocate6(&n, &owner(3), Some(want)).expect("want"),
            Some(want)
        );
        assert!(matches!(
            ipam.allocate6(&n, &owner(4), Some(want)),
            Err(AllocError::AddressInUse(_))
        ));
        for bad in ["fd05::1", "fd05::", "fd06::2"] {
            let e = ipam
                .allocate6(&n, &owner(4), bad.parse().ok())
                .expect_err(bad);
            assert!(matches!(e, AllocError::AddressOutside(_)), "{bad}: {e}");
        }
        // released by owner, both families
        ipam.release_all(&owner(1));
        let left: Vec<String> = ipam
            .allocations()
            .iter()
            .map(|(ip, _)| ip.to_string())
            .collect();
        assert!(!left.contains(&"fd05::2".to_string()) && !left.contains(&"10.5.0.2".to_string()));
        assert_eq!(ipam.reconcile(&|o| o == owner(2)), 1, "{left:?}");
        assert_eq!(ipam.allocations().len(), 1);
    }

    #[test]
    fn requested_addresses_and_ranges() {
        let d = tempfile::tempdir().expect("tempdir");
        let ipam = Ipam::new(d.path(), "n");
        let n = net("10.1.0.0/16", Some("10.1.5.0/24"));
        assert_eq!(
            ipam.allocate(&n, &owner(1), None)
                .expect("range")
                .to_string(),
            "10.1.5.0"
        );
        let want: IpAddr = "10.1.9.9".parse().expect("ip");
        assert_eq!(
            ipam.allocate(&n, &owner(2), Some(want)).expect("want"),
            want
        );
        let e = ipam.allocate(&n, &owner(3), Some(want)).expect_err("taken");
        assert_eq!(e.to_string(), "Address already in use: 10.1.9.9");
        for bad in ["10.2.0.1", "10.1.0.1", "10.1.255.255", "10.1.0.0"] {
            let ip: IpAddr = bad.parse().expect("ip");
            assert!(
                matches!(
                    ipam.allocate(&n, &owner(4), Some(ip)),
                    Err(AllocError::AddressOutside(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn parallel_allocations_are_distinct() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().to_path_buf();
        let n = net("10.3.0.0/24", None);
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let (root, n) = (root.clone(), n.clone());
                std::thread::spawn(move || {
                    Ipam::new(&root, "n")
                        .allocate(&n, &owner(i), None)
                        .expect("alloc")
                })
            })
            .collect();
        let mut ips: Vec<IpAddr> = hs.into_iter().map(|h| h.join().expect("join")).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 20);
    }

    #[test]
    fn host_ports() {
        let d = tempfile::tempdir().expect("tempdir");
        let ports = Ports::with_host_dir(d.path(), Some(&d.path().join("host")));
        // a port some host process listens on is refused, and left unclaimed
        let l = std::net::TcpListener::bind("0.0.0.0:0").expect("listen");
        let busy = l.local_addr().expect("addr").port();
        let e = ports
            .allocate(
                Proto::Tcp,
                None,
                Some((busy, busy)),
                (49153, 65535),
                &owner(1),
            )
            .expect_err("busy");
        assert!(e.to_string().contains("address already in use"), "{e}");
        assert!(ports.allocations().is_empty());
        // a specific free one, then refused for another container
        let free = {
            let l2 = std::net::TcpListener::bind("0.0.0.0:0").expect("listen");
            l2.local_addr().expect("addr").port()
        };
        let p = ports
            .allocate(
                Proto::Tcp,
                None,
                Some((free, free)),
                (49153, 65535),
                &owner(1),
            )
            .expect("free");
        assert_eq!(p.port, free);
        let e = ports
            .allocate(
                Proto::Tcp,
                None,
                Some((free, free)),
                (49153, 65535),
                &owner(2),
            )
            .expect_err("allocated");
        assert_eq!(
            e.to_string(),
            format!("Bind for 0.0.0.0:{free} failed: port is already allocated")
        );
        // the same number over udp is another port
        ports
            .allocate(
                Proto::Udp,
                None,
                Some((free, free)),
                (49153, 65535),
                &owner(2),
            )
            .expect("udp");
        // from a range of three: three distinct, then none left
        let got: Vec<u16> = (0..3)
            .map(|i| {
                ports
                    .allocate(Proto::Sctp, None, None, (60000, 60002), &owner(10 + i))
                    .expect("range")
                    .port
            })
            .collect();
        let mut s = got.clone();
        s.sort();
        assert_eq!(s, vec![60000, 60001, 60002]);
        assert!(matches!(
            ports.allocate(Proto::Sctp, None, None, (60000, 60002), &owner(20)),
            Err(AllocError::NoPort { .. })
        ));
        ports.release_all(&owner(1));
        assert!(ports.allocations().iter().all(|(_, o)| *o != owner(1)));
        assert_eq!(ports.reconcile(&|_| false), 4);
        assert!(ports.allocations().is_empty());
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("0.0.0.0:0").expect("listen");
        l.local_addr().expect("addr").port()
    }

    /// Two stores (two run roots) sharing one host-wide claims directory.
    fn two_stores(d: &Path) -> (Ports, Ports, PathBuf) {
        let host = d.join("host-ports");
        (
            Ports::with_host_dir(&d.join("a"), Some(&host)),
            Ports::with_host_dir(&d.join("b"), Some(&host)),
            host,
        )
    }

    #[test]
    fn a_host_port_is_taken_once_per_host() {
        let d = tempfile::tempdir().expect("tempdir");
        let (a, b, host) = two_stores(d.path());
        let range = (49153, 65535);
        let free = free_port();
        let p = a
            .allocate(Proto::Tcp, None, Some((free, free)), range, &owner(1))
            .expect("a");
        // another store, another owner, even the same owner id: docker's refusal, and the
        // store's own claim rolled back
        for o in [owner(2), owner(1)] {
            let e = b
                .allocate(Proto::Tcp, None, Some((free, free)), range, &o)
                .expect_err("taken by a");
            assert_eq!(
                e.to_string(),
                format!("Bind for 0.0.0.0:{free} failed: port is already allocated")
            );
            assert!(b.allocations().is_empty(), "{:?}", b.allocations());
        }
        // a range of one port
        a.allocate(Proto::Sctp, None, None, (61000, 61000), &owner(3))
            .expect("a range");
        assert!(matches!(
            b.allocate(Proto::Sctp, None, None, (61000, 61000), &owner(4)),
            Err(AllocError::NoPort { .. })
        ));
        assert!(b.allocations().is_empty());
        // released by the wrong owner, or the same owner id of another store: refused
        a.release(p, &owner(2));
        b.release(p, &owner(1));
        b.release_all(&owner(1));
        assert_eq!(b.reconcile(&|_| false), 0);
        let claim = HostPorts::new(&host)
            .read(&format!("tcp-{free}"))
            .expect("claim");
        assert_eq!(claim.owner, owner(1));
        assert_eq!(
            claim.run_root,
            std::fs::canonicalize(d.path().join("a")).expect("canonical")
        );
        assert!(b
            .allocate(Proto::Tcp, None, Some((free, free)), range, &owner(2))
            .is_err());
        // released by its owner: the other store gets it
        a.release(p, &owner(1));
        assert!(!host.join(format!("tcp-{free}")).exists());
        assert!(a.allocations().iter().all(|(hp, _)| *hp != p));
        assert_eq!(
            b.allocate(Proto::Tcp, None, Some((free, free)), range, &owner(2))
                .expect("b after release"),
            p
        );
        // reconcile releases the host-wide claims with the store's own files
        assert_eq!(b.reconcile(&|_| false), 1);
        assert_eq!(a.reconcile(&|_| false), 1);
        let left: Vec<String> = std::fs::read_dir(&host)
            .expect("host dir")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn stale_host_wide_claims_are_taken_over_once() {
        let d = tempfile::tempdir().expect("tempdir");
        let (a, b, host) = two_stores(d.path());
        // a deleted store: its run root went with its claim still there
        a.allocate(Proto::Udp, None, None, (61001, 61001), &owner(1))
            .expect("a");
        std::fs::remove_dir_all(d.path().join("a")).expect("delete a's run root");
        assert_eq!(
            b.allocate(Proto::Udp, None, None, (61001, 61001), &owner(2))
                .expect("taken over")
                .port,
            61001
        );
        let claims = HostPorts::new(&host);
        assert_eq!(claims.read("udp-61001").map(|c| c.owner), Some(owner(2)));
        // a crash after the store's file went, before the host-wide claim did (a live store
        // whose file no longer names the claim's owner) — many takers at once: one wins
        let port = free_port();
        let b_root = std::fs::canonicalize(d.path().join("b")).expect("canonical");
        std::fs::write(
            host.join(format!("tcp-{port}")),
            format!("{}\n{}", owner(9), b_root.display()),
        )
        .expect("stale claim");
        let won: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8u32)
                .map(|i| {
                    let (root, host) = (d.path().join(format!("t{i}")), host.clone());
                    s.spawn(move || {
                        let r = Ports::with_host_dir(&root, Some(&host)).allocate(
                            Proto::Tcp,
                            None,
                            Some((port, port)),
                            (49153, 65535),
                            &owner(100 + i),
                        );
                        match r {
                            Ok(_) => true,
                            Err(AllocError::PortAllocated { .. }) => false,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("join")).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        let c = claims.read(&format!("tcp-{port}")).expect("claim");
        let i = (0..8u32)
            .find(|i| c.owner == owner(100 + i))
            .expect("a taker's claim");
        assert_eq!(
            Some(c.run_root),
            std::fs::canonicalize(d.path().join(format!("t{i}"))).ok()
        );
        // the losers hold nothing
        for j in (0..8u32).filter(|j| *j != i) {
            let p = Ports::with_host_dir(&d.path().join(format!("t{j}")), Some(&host));
            assert!(p.allocations().is_empty(), "t{j}");
        }
        // reconcile sweeps stale claims of any store, and leaves live ones
        std::fs::write(
            host.join("sctp-61002"),
            format!("{}\n{}", owner(7), d.path().join("gone").display()),
        )
        .expect("stale claim");
        b.reconcile(&|_| true);
        assert!(!host.join("sctp-61002").exists());
        assert!(host.join(format!("tcp-{port}")).exists());
        assert!(host.join("udp-61001").exists());
    }

    #[test]
    fn without_a_writable_run_ports_are_per_store() {
        // sysfs refuses a new directory even to root: the documented fallback
        let d = tempfile::tempdir().expect("tempdir");
        let host = Path::new("/sys/wharf-ports-test");
        let a = Ports::with_host_dir(&d.path().join("a"), Some(host));
        let b = Ports::with_host_dir(&d.path().join("b"), Some(host));
        let free = free_port();
        for (p, o) in [(&a, owner(1)), (&b, owner(2))] {
            p.allocate(Proto::Tcp, None, Some((free, free)), (49153, 65535), &o)
                .expect("per store");
        }
        assert!(!host.exists());
        assert_eq!(a.reconcile(&|_| false) + b.reconcile(&|_| false), 2);
    }
}
