//! Address and host-port allocation, in the volatile run root (a reboot stops every container
//! and so frees everything): one file per allocation, created with `O_EXCL`, holding the
//! container id. Creating the file *is* the allocation, so twenty CLIs starting containers at
//! once never share an address or a port, without a lock; releasing is an unlink by the owner;
//! a leftover of a killed CLI is reconciled against the containers that still run.
//!
//! `<run-root>/networks/<network-id>/ips/<address>` and `<run-root>/ports/<proto>-<port>`.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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
/// not published again on another, which is stricter than docker and never ambiguous).
pub struct Ports {
    dir: PathBuf,
}

/// A host port taken for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    pub proto: Proto,
    pub port: u16,
}

impl Ports {
    pub fn new(run_root: &Path) -> Ports {
        Ports {
            dir: run_root.join("ports"),
        }
    }

    fn file(&self, proto: Proto, port: u16) -> PathBuf {
        self.dir.join(format!("{}-{port}", proto.as_str()))
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
            if Self::host_busy(proto, ip, port) {
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

    pub fn release(&self, p: HostPort, owner: &str) {
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

    /// Frees what owners that no longer run hold; returns how many.
    pub fn reconcile(&self, running: &dyn Fn(&str) -> bool) -> usize {
        let mut n = 0;
        for (p, owner) in self.allocations() {
            if !running(&owner) {
                self.release(p, &owner);
                n += 1;
            }
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
        let ports = Ports::new(d.path());
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
}
