//! The firewall's rules against the real kernel, in private network namespaces: a "host"
//! namespace with a bridge, a "container" namespace on a veth serving TCP, and traffic through
//! a published port from the host's own address, from 127.0.0.1 and from the container to
//! itself (hairpin); rules removed by owner leave nothing and close the port.
#![allow(clippy::unwrap_used)]

use nix::sched::{setns, unshare, CloneFlags};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;
use wharf_engine::network::firewall::{self, Firewall, Owner, Published};
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::link::{self, Netns};
use wharf_sys::netlink::{nft, Family, Socket};
use wharf_types::ports::Proto;

fn fetch(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read {addr}: {e}"))?;
    Ok(out)
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn published_port_from_host_localhost_and_hairpin() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nf_tables is not available"
        );
        return;
    }
    traffic(Firewall::open, "nftables");
}

/// The same rules and traffic with legacy iptables (RHEL 7's path).
#[test]
fn published_port_with_legacy_iptables() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if wharf_engine::network::iptables::Iptables::find().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no iptables-legacy on this host"
        );
        return;
    }
    traffic(Firewall::open_legacy, "iptables");
}

fn traffic(open: fn() -> Result<Firewall, firewall::FirewallError>, backend: &'static str) {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let host_ns = File::open("/proc/thread-self/ns/net").unwrap();
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let ctr_ns = File::open("/proc/thread-self/ns/net").unwrap();
        setns(&host_ns, CloneFlags::CLONE_NEWNET).unwrap();

        // host: bridge 10.50.0.1/24, veth into the container namespace
        let mut s = Socket::open(Family::Route).unwrap();
        let lo = link::index(&mut s, "lo").unwrap();
        link::set_up(&mut s, lo).unwrap();
        link::create_bridge(&mut s, "wb0", None).unwrap();
        let br = link::index(&mut s, "wb0").unwrap();
        link::add_address(&mut s, br, ip(10, 50, 0, 1), 24).unwrap();
        link::set_up(&mut s, br).unwrap();
        link::create_veth(
            &mut s,
            "wv0",
            "eth0",
            Some(Netns::Fd(ctr_ns.as_raw_fd())),
            None,
        )
        .unwrap();
        let wv = link::index(&mut s, "wv0").unwrap();
        link::set_master(&mut s, wv, br).unwrap();
        link::set_hairpin(&mut s, wv, true).unwrap();
        link::set_up(&mut s, wv).unwrap();

        // container: eth0 10.50.0.2/24, a server answering "hello" to every connection
        let (tx, rx) = std::sync::mpsc::channel();
        let ctr_fd = ctr_ns.try_clone().unwrap();
        std::thread::spawn(move || {
            setns(&ctr_fd, CloneFlags::CLONE_NEWNET).unwrap();
            let mut s = Socket::open(Family::Route).unwrap();
            let lo = link::index(&mut s, "lo").unwrap();
            link::set_up(&mut s, lo).unwrap();
            let eth = link::index(&mut s, "eth0").unwrap();
            link::add_address(&mut s, eth, ip(10, 50, 0, 2), 24).unwrap();
            link::set_up(&mut s, eth).unwrap();
            link::add_route(&mut s, None, Some(ip(10, 50, 0, 1)), Some(eth)).unwrap();
            let l = TcpListener::bind("0.0.0.0:80").unwrap();
            tx.send(()).unwrap();
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                let _ = c.write_all(b"hello");
            }
        });
        rx.recv().unwrap();

        let net = NetworkRecord {
            id: "a".repeat(64),
            name: "t".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wb0".into(),
            subnet: "10.50.0.0/24".parse().unwrap(),
            gateway: ip(10, 50, 0, 1),
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: None,
        };
        let mut fw = open().unwrap();
        assert_eq!(fw.backend(), backend);
        fw.ensure_network(&net).unwrap();
        fw.ensure_network(&net).unwrap(); // idempotent
        firewall::enable_forwarding("wb0", false).unwrap();
        let cid = "c".repeat(64);
        fw.publish(
            &cid,
            ip(10, 50, 0, 2),
            &[Published {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                container_port: 80,
            }],
        )
        .unwrap();
        let owners = fw.owners().unwrap();
        assert_eq!(
            owners,
            vec![
                (Owner::Network("a".repeat(64)), 8),
                (Owner::Container(cid.clone()), 2)
            ]
        );

        // from the host's own address and from localhost
        assert_eq!(fetch("10.50.0.1:8080".parse().unwrap()).unwrap(), "hello");
        assert_eq!(fetch("127.0.0.1:8080".parse().unwrap()).unwrap(), "hello");
        // the container reaching its own published port through the host (hairpin)
        let ctr_fd = ctr_ns.try_clone().unwrap();
        let hairpin = std::thread::spawn(move || {
            setns(&ctr_fd, CloneFlags::CLONE_NEWNET).unwrap();
            fetch("10.50.0.1:8080".parse().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(hairpin.unwrap(), "hello");

        // unpublished: the port is closed again, only the network's rules stay
        assert_eq!(fw.unpublish(&cid).unwrap(), 2);
        assert_eq!(fw.unpublish(&cid).unwrap(), 0);
        assert!(fetch("10.50.0.1:8080".parse().unwrap()).is_err());
        assert_eq!(fw.remove_network(&net.id).unwrap(), 8);
        assert!(fw.owners().unwrap().is_empty());
    })
    .join()
    .unwrap();
}

/// A dual-stack network: the same rules in `ip6 wharf` (or ip6tables), traffic to the
/// container's IPv6 address through a port published on the host's IPv6 address, on `::1`
/// and from the container to itself; removed by owner from both families.
#[test]
fn published_port_over_ipv6_nftables() {
    if !nix::unistd::geteuid().is_root() || !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root and nf_tables"
        );
        return;
    }
    traffic6(Firewall::open, "nftables");
}

#[test]
fn published_port_over_ipv6_legacy() {
    use wharf_engine::network::iptables::Iptables;
    if !nix::unistd::geteuid().is_root()
        || Iptables::find().is_none()
        || Iptables::find6().is_none()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root, iptables-legacy and ip6tables-legacy"
        );
        return;
    }
    traffic6(Firewall::open_legacy, "iptables");
}

fn traffic6(open: fn() -> Result<Firewall, firewall::FirewallError>, backend: &'static str) {
    let v6 = |s: &str| -> IpAddr { s.parse().unwrap() };
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let host_ns = File::open("/proc/thread-self/ns/net").unwrap();
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let ctr_ns = File::open("/proc/thread-self/ns/net").unwrap();
        setns(&host_ns, CloneFlags::CLONE_NEWNET).unwrap();

        let mut s = Socket::open(Family::Route).unwrap();
        let lo = link::index(&mut s, "lo").unwrap();
        link::set_up(&mut s, lo).unwrap();
        link::create_bridge(&mut s, "wb6", None).unwrap();
        let br = link::index(&mut s, "wb6").unwrap();
        link::add_address(&mut s, br, ip(10, 51, 0, 1), 24).unwrap();
        link::add_address(&mut s, br, v6("fd51::1"), 64).unwrap();
        link::set_up(&mut s, br).unwrap();
        link::create_veth(
            &mut s,
            "wv6",
            "eth0",
            Some(Netns::Fd(ctr_ns.as_raw_fd())),
            None,
        )
        .unwrap();
        let wv = link::index(&mut s, "wv6").unwrap();
        link::set_master(&mut s, wv, br).unwrap();
        link::set_hairpin(&mut s, wv, true).unwrap();
        link::set_up(&mut s, wv).unwrap();

        // container: eth0 10.51.0.2/24 and fd51::2/64 (nodad: usable at once), a server on
        // [::]:80 answering "hello6"
        let (tx, rx) = std::sync::mpsc::channel();
        let ctr_fd = ctr_ns.try_clone().unwrap();
        std::thread::spawn(move || {
            setns(&ctr_fd, CloneFlags::CLONE_NEWNET).unwrap();
            let mut s = Socket::open(Family::Route).unwrap();
            let lo = link::index(&mut s, "lo").unwrap();
            link::set_up(&mut s, lo).unwrap();
            let eth = link::index(&mut s, "eth0").unwrap();
            link::add_address(&mut s, eth, ip(10, 51, 0, 2), 24).unwrap();
            link::add_address(&mut s, eth, v6("fd51::2"), 64).unwrap();
            link::set_up(&mut s, eth).unwrap();
            link::add_route(&mut s, None, Some(ip(10, 51, 0, 1)), Some(eth)).unwrap();
            link::add_route(&mut s, None, Some(v6("fd51::1")), Some(eth)).unwrap();
            let l = TcpListener::bind("[::]:80").unwrap();
            tx.send(()).unwrap();
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                let _ = c.write_all(b"hello6");
            }
        });
        rx.recv().unwrap();

        let net = NetworkRecord {
            id: "d".repeat(64),
            name: "t6".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wb6".into(),
            subnet: "10.51.0.0/24".parse().unwrap(),
            gateway: ip(10, 51, 0, 1),
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: Some(wharf_store::network::Ipv6Config {
                subnet: "fd51::/64".parse().unwrap(),
                gateway: v6("fd51::1"),
            }),
        };
        let mut fw = open().unwrap();
        assert_eq!(fw.backend(), backend);
        fw.ensure_network(&net).unwrap();
        fw.ensure_network(&net).unwrap(); // idempotent
        firewall::enable_forwarding("wb6", true).unwrap();
        let cid = "e".repeat(64);
        let ports = [
            // on every address: both families
            Published {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                container_port: 80,
            },
            // on the IPv6 unspecified address: IPv6 only
            Published {
                host_ip: Some(v6("::")),
                host_port: 8081,
                proto: Proto::Tcp,
                container_port: 80,
            },
        ];
        fw.publish(&cid, ip(10, 51, 0, 2), &ports).unwrap();
        fw.publish(&cid, v6("fd51::2"), &ports).unwrap();
        assert_eq!(
            fw.owners().unwrap(),
            vec![
                (Owner::Network("d".repeat(64)), 15),
                (Owner::Container(cid.clone()), 6)
            ]
        );

        assert_eq!(fetch("[fd51::1]:8080".parse().unwrap()).unwrap(), "hello6");
        assert_eq!(fetch("[fd51::1]:8081".parse().unwrap()).unwrap(), "hello6");
        // ::1 is not published (the kernel would drop the replies): refused, not hanging
        let e = fetch("[::1]:8080".parse().unwrap()).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        assert_eq!(fetch("10.51.0.1:8080".parse().unwrap()).unwrap(), "hello6");
        assert!(fetch("10.51.0.1:8081".parse().unwrap()).is_err(), "v6 only");
        let ctr_fd = ctr_ns.try_clone().unwrap();
        let hairpin = std::thread::spawn(move || {
            setns(&ctr_fd, CloneFlags::CLONE_NEWNET).unwrap();
            fetch("[fd51::1]:8080".parse().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(hairpin.unwrap(), "hello6");

        assert_eq!(fw.unpublish(&cid).unwrap(), 6);
        assert!(fetch("[fd51::1]:8080".parse().unwrap()).is_err());
        assert_eq!(fw.remove_network(&net.id).unwrap(), 15);
        assert!(fw.owners().unwrap().is_empty());
    })
    .join()
    .unwrap();
}

#[test]
fn bridge_made_once_checked_and_removed() {
    if !nix::unistd::geteuid().is_root() || !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root and nf_tables"
        );
        return;
    }
    std::thread::spawn(|| {
        use wharf_engine::network::bridge;
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let run = tempfile::tempdir().unwrap();
        let mut net = NetworkRecord {
            id: "b".repeat(64),
            name: "app".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wh-test1".into(),
            subnet: "10.60.0.0/16".parse().unwrap(),
            gateway: ip(10, 60, 0, 1),
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: None,
        };
        // parallel first starts make it once
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (run, net) = (run.path().to_path_buf(), net.clone());
                let ns = File::open("/proc/thread-self/ns/net").unwrap();
                std::thread::spawn(move || {
                    setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                    bridge::ensure(&run, &net)
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap().unwrap();
        }
        bridge::ensure(run.path(), &net).unwrap();
        let mut s = Socket::open(Family::Route).unwrap();
        let l = link::get(&mut s, "wh-test1").unwrap().unwrap();
        assert!(l.up && l.kind == "bridge");
        let v4: Vec<_> = link::addresses(&mut s, Some(l.index))
            .unwrap()
            .into_iter()
            .filter(|(_, a, _)| a.is_ipv4())
            .collect();
        assert_eq!(
            v4,
            vec![(l.index, ip(10, 60, 0, 1), 16)],
            "address added once"
        );
        // a bridge someone set down, and its gateway address taken off, are healed by the
        // next start's ensure (it skips only what is already so)
        let down = std::process::Command::new("ip")
            .args(["link", "set", "wh-test1", "down"])
            .status()
            .unwrap();
        assert!(down.success());
        assert!(!link::get(&mut s, "wh-test1").unwrap().unwrap().up);
        bridge::ensure(run.path(), &net).unwrap();
        assert!(link::get(&mut s, "wh-test1").unwrap().unwrap().up);
        assert!(link::del_address(&mut s, l.index, ip(10, 60, 0, 1), 16).unwrap());
        bridge::ensure(run.path(), &net).unwrap();
        assert!(link::addresses(&mut s, Some(l.index)).unwrap().contains(&(
            l.index,
            ip(10, 60, 0, 1),
            16
        )));
        let mut fw = Firewall::open().unwrap();
        assert_eq!(
            fw.owners().unwrap(),
            vec![(Owner::Network("b".repeat(64)), 8)]
        );
        // an interface of that name that is not a bridge is not taken over
        link::create_veth(&mut s, "wh-test2", "wh-test2p", None, None).unwrap();
        net.bridge = "wh-test2".into();
        let e = bridge::ensure(run.path(), &net).unwrap_err();
        assert!(e.to_string().contains("is not a bridge"), "{e}");
        net.bridge = "wh-test1".into();
        bridge::remove(run.path(), &net).unwrap();
        bridge::remove(run.path(), &net).unwrap(); // idempotent
        assert!(link::get(&mut s, "wh-test1").unwrap().is_none());
        assert!(fw.owners().unwrap().is_empty());
        assert!(!run.path().join("networks").join("b".repeat(64)).exists());
    })
    .join()
    .unwrap();
}
