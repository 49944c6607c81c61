//! wharf next to a firewall whose forward policy is drop (docker's `FORWARD` DROP), in
//! private network namespaces: a "host" with a wharf bridge and a link to an "outside"
//! namespace, a "container" on the bridge. Routed traffic — the container reaching the
//! outside (masquerade) and the outside reaching a published port (DNAT) — crosses the host's
//! forward hook. Each combination of wharf's backend (nftables, legacy iptables) and the
//! dropping firewall (iptables-nft's `ip filter`, legacy iptables) is tried: the drop policy
//! cuts the traffic, wharf's next ensure puts accept rules first in that chain (with docker's
//! `DOCKER-USER` jump present), the traffic passes, and removing the network removes them.
#![allow(clippy::unwrap_used)]

use nix::sched::{setns, unshare, CloneFlags};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;
use wharf_engine::network::coexist;
use wharf_engine::network::firewall::{self, Firewall, Owner, Published};
use wharf_engine::network::iptables::Iptables;
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::link::{self, Netns};
use wharf_sys::netlink::{nft, Family, Socket};
use wharf_types::ports::Proto;

fn fetch(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))
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

/// A namespace's interface `eth0` with an address, up, and optionally a default route; a
/// server answering `reply` on `port`.
fn serve_in(ns: &File, addr: IpAddr, gw: Option<IpAddr>, port: u16, reply: &'static str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let fd = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        setns(&fd, CloneFlags::CLONE_NEWNET).unwrap();
        let mut s = Socket::open(Family::Route).unwrap();
        let lo = link::index(&mut s, "lo").unwrap();
        link::set_up(&mut s, lo).unwrap();
        let eth = link::index(&mut s, "eth0").unwrap();
        link::add_address(&mut s, eth, addr, 24).unwrap();
        link::set_up(&mut s, eth).unwrap();
        if let Some(gw) = gw {
            link::add_route(&mut s, None, Some(gw), Some(eth)).unwrap();
        }
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let _ = c.write_all(reply.as_bytes());
        }
    });
    rx.recv().unwrap();
}

fn in_ns<T: Send + 'static>(ns: &File, f: impl FnOnce() -> T + Send + 'static) -> T {
    let fd = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        setns(&fd, CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn iptables(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin).arg("-w").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Nft,
    Legacy,
}

fn have(kind: Kind) -> bool {
    match kind {
        Kind::Nft => nft::available() && std::path::Path::new("/usr/sbin/iptables-nft").exists(),
        Kind::Legacy => Iptables::find().is_some(),
    }
}

/// The private namespaces of a scenario: the calling thread is left in the "host" (a wharf
/// bridge `wc0` 10.52.0.1/24 with the "container" 10.52.0.2 serving "hello" on 80, and `wo0`
/// 10.72.0.1/24 to the "outside" 10.72.0.2 serving "outside" on 81).
struct Lab {
    #[allow(dead_code)]
    host: File,
    ctr: File,
    outside: File,
    net: NetworkRecord,
}

fn lab() -> Lab {
    unshare(CloneFlags::CLONE_NEWNET).unwrap();
    let host = File::open("/proc/thread-self/ns/net").unwrap();
    unshare(CloneFlags::CLONE_NEWNET).unwrap();
    let ctr = File::open("/proc/thread-self/ns/net").unwrap();
    unshare(CloneFlags::CLONE_NEWNET).unwrap();
    let outside = File::open("/proc/thread-self/ns/net").unwrap();
    setns(&host, CloneFlags::CLONE_NEWNET).unwrap();

    // host: bridge wc0 10.52.0.1/24 with the container; wo0 10.72.0.1/24 to the outside
    let mut s = Socket::open(Family::Route).unwrap();
    let lo = link::index(&mut s, "lo").unwrap();
    link::set_up(&mut s, lo).unwrap();
    link::create_bridge(&mut s, "wc0", None).unwrap();
    let br = link::index(&mut s, "wc0").unwrap();
    link::add_address(&mut s, br, ip(10, 52, 0, 1), 24).unwrap();
    link::set_up(&mut s, br).unwrap();
    link::create_veth(
        &mut s,
        "wvc0",
        "eth0",
        Some(Netns::Fd(ctr.as_raw_fd())),
        None,
    )
    .unwrap();
    let wv = link::index(&mut s, "wvc0").unwrap();
    link::set_master(&mut s, wv, br).unwrap();
    link::set_up(&mut s, wv).unwrap();
    link::create_veth(
        &mut s,
        "wo0",
        "eth0",
        Some(Netns::Fd(outside.as_raw_fd())),
        None,
    )
    .unwrap();
    let wo = link::index(&mut s, "wo0").unwrap();
    link::add_address(&mut s, wo, ip(10, 72, 0, 1), 24).unwrap();
    link::set_up(&mut s, wo).unwrap();
    serve_in(&ctr, ip(10, 52, 0, 2), Some(ip(10, 52, 0, 1)), 80, "hello");
    serve_in(&outside, ip(10, 72, 0, 2), None, 81, "outside");

    let net = NetworkRecord {
        id: "d".repeat(64),
        name: "co".into(),
        driver: "bridge".into(),
        created: String::new(),
        bridge: "wc0".into(),
        subnet: "10.52.0.0/24".parse().unwrap(),
        gateway: ip(10, 52, 0, 1),
        ip_range: None,
        internal: false,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        ipv6: None,
    };
    Lab {
        host,
        ctr,
        outside,
        net,
    }
}

fn scenario(wharf: Kind, dropper: Kind) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !have(wharf) || !have(dropper) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{wharf:?}/{dropper:?} not available"
        );
        eprintln!("skipped: {wharf:?}/{dropper:?} not available");
        return;
    }
    std::thread::spawn(move || {
        let Lab {
            ctr, outside, net, ..
        } = lab();
        let mut fw = match wharf {
            Kind::Nft => Firewall::open().unwrap(),
            Kind::Legacy => Firewall::open_legacy().unwrap(),
        };
        fw.ensure_network(&net).unwrap();
        firewall::enable_forwarding("wc0", false).unwrap();
        let cid = "c".repeat(64);
        fw.publish(
            &cid,
            ip(10, 52, 0, 2),
            &[Published {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                container_port: 80,
            }],
        )
        .unwrap();
        let out_of_ctr = || in_ns(&ctr, || fetch("10.72.0.2:81".parse().unwrap()));
        let into_ctr = || in_ns(&outside, || fetch("10.72.0.1:8080".parse().unwrap()));
        assert_eq!(out_of_ctr().unwrap(), "outside");
        assert_eq!(into_ctr().unwrap(), "hello");

        // docker's setup: FORWARD policy DROP, DOCKER-USER jumped to first
        let bin = match dropper {
            Kind::Nft => "/usr/sbin/iptables-nft".to_string(),
            Kind::Legacy => Iptables::find().unwrap().binary().display().to_string(),
        };
        iptables(&bin, &["-N", "DOCKER-USER"]);
        iptables(&bin, &["-A", "DOCKER-USER", "-j", "RETURN"]);
        iptables(&bin, &["-I", "FORWARD", "-j", "DOCKER-USER"]);
        iptables(&bin, &["-P", "FORWARD", "DROP"]);
        // legacy wharf with legacy docker: WHARF-FORWARD already decides in that chain
        let covered = wharf == Kind::Legacy && dropper == Kind::Legacy;
        if !covered {
            assert!(out_of_ctr().is_err(), "the drop policy cuts the traffic");
            assert!(into_ctr().is_err());
        }

        // the next ensure (a container start) opens the dropping chain for the bridge
        fw.ensure_network(&net).unwrap();
        fw.ensure_network(&net).unwrap(); // idempotent
        assert_eq!(out_of_ctr().unwrap(), "outside");
        assert_eq!(into_ctr().unwrap(), "hello");
        let listing = iptables(&bin, &["-S", "FORWARD"]);
        let comment = format!("wharf:net:{}", net.id);
        let ours: Vec<&str> = listing.lines().filter(|l| l.contains(&comment)).collect();
        let foreign = coexist::owners();
        if covered {
            assert!(ours.is_empty(), "{listing}");
            assert!(foreign.is_empty(), "{foreign:?}");
        } else {
            // parsed by iptables itself, first in the chain, one per direction
            assert_eq!(ours.len(), 2, "{listing}");
            assert!(
                listing.lines().nth(1).unwrap().contains(&comment),
                "{listing}"
            );
            assert!(
                ours.iter()
                    .any(|l| l.contains("-i wc0") && l.ends_with("-j ACCEPT")),
                "{listing}"
            );
            assert!(ours.iter().any(|l| l.contains("-o wc0")), "{listing}");
            assert_eq!(foreign, vec![(Owner::Network(net.id.clone()), 2)]);
        }

        // removed with the network: nothing of wharf's is left in that chain
        assert_eq!(fw.unpublish(&cid).unwrap(), 2);
        let removed = fw.remove_network(&net.id).unwrap();
        assert_eq!(removed, if covered { 8 } else { 10 });
        assert!(!iptables(&bin, &["-S", "FORWARD"]).contains("wharf:net:"));
        assert!(coexist::owners().is_empty());
        assert!(fw.owners().unwrap().is_empty());
        assert!(out_of_ctr().is_err(), "the drop policy applies again");
    })
    .join()
    .unwrap();
}

#[test]
fn nft_rules_next_to_iptables_nft_drop() {
    scenario(Kind::Nft, Kind::Nft);
}

#[test]
fn nft_rules_next_to_legacy_drop() {
    scenario(Kind::Nft, Kind::Legacy);
}

#[test]
fn legacy_rules_next_to_iptables_nft_drop() {
    scenario(Kind::Legacy, Kind::Nft);
}

#[test]
fn legacy_rules_next_to_legacy_drop() {
    scenario(Kind::Legacy, Kind::Legacy);
}

/// A daemon of the test's own, killed and reaped on drop (also when the test panics).
struct Daemon(std::process::Child);

impl Daemon {
    /// SIGTERM, then waits (up to 30 s) for it to leave; whether it did.
    fn stop(&mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        eventually(30, || matches!(self.0.try_wait(), Ok(Some(_))))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A UDP echo server on `addr:53` of the calling thread's namespace (the embedded resolver
/// as firewalld's INPUT chain sees it).
fn udp_echo(addr: IpAddr) {
    let s = std::net::UdpSocket::bind(SocketAddr::new(addr, 53)).unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    });
}

/// A question to the gateway's port 53 from the container: answered or not.
fn dns_from(ctr: &File) -> Result<(), String> {
    in_ns(ctr, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .map_err(|e| e.to_string())?;
        s.connect("10.52.0.1:53").map_err(|e| e.to_string())?;
        s.send(b"q").map_err(|e| e.to_string())?;
        let mut b = [0u8; 8];
        match s.recv(&mut b) {
            Ok(1) if b[0] == b'q' => Ok(()),
            Ok(n) => Err(format!("{n} bytes")),
            Err(e) => Err(format!("gateway:53: {e}")),
        }
    })
}

/// firewalld (1.x, nftables backend) running in the private "host" namespace, on a private
/// D-Bus system bus, with an empty configuration directory: nothing of the real host's
/// firewall, bus or firewalld configuration is touched. Its `filter_FORWARD` rejects the
/// containers' outbound traffic and its `filter_INPUT` the resolver's port until wharf's next
/// ensure; published ports pass (firewalld accepts `ct status dnat`); a `--reload` (SIGHUP)
/// drops wharf's rules until the next ensure; firewalld leaving leaves wharf's own table
/// working.
#[test]
fn next_to_firewalld() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (firewalld, dbus) = ("/usr/sbin/firewalld", "/usr/bin/dbus-daemon");
    if !nft::available()
        || !std::path::Path::new(firewalld).exists()
        || !std::path::Path::new(dbus).exists()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "firewalld, dbus-daemon or nf_tables missing"
        );
        eprintln!("skipped: firewalld, dbus-daemon or nf_tables missing");
        return;
    }
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let Lab {
            ctr, outside, net, ..
        } = lab();
        let mut fw = Firewall::open().unwrap();
        fw.ensure_network(&net).unwrap();
        firewall::enable_forwarding("wc0", false).unwrap();
        let cid = "c".repeat(64);
        fw.publish(
            &cid,
            ip(10, 52, 0, 2),
            &[Published {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                container_port: 80,
            }],
        )
        .unwrap();
        udp_echo(ip(10, 52, 0, 1));
        let out_of_ctr = || in_ns(&ctr, || fetch("10.72.0.2:81".parse().unwrap()));
        let into_ctr = || in_ns(&outside, || fetch("10.72.0.1:8080".parse().unwrap()));
        assert_eq!(out_of_ctr().unwrap(), "outside");
        assert_eq!(into_ctr().unwrap(), "hello");
        dns_from(&ctr).unwrap();
        let own = fw.owners().unwrap();

        // a private system bus, then firewalld in this namespace
        let bus = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                bus.display()
            ),
        )
        .unwrap();
        let _dbus = Daemon(
            Command::new(dbus)
                .arg(format!("--config-file={}", conf.display()))
                .args(["--nofork", "--nopidfile"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(eventually(10, || bus.exists()), "the bus did not start");
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(
            etc.join("firewalld.conf"),
            "FirewallBackend=nftables\nDefaultZone=public\n",
        )
        .unwrap();
        let log = dir.path().join("firewalld.log");
        let mut fwd = Daemon(
            Command::new(firewalld)
                .args(["--nofork", "--nopid", "--log-target", "file", "--log-file"])
                .arg(&log)
                .arg("--system-config")
                .arg(&etc)
                .env(
                    "DBUS_SYSTEM_BUS_ADDRESS",
                    format!("unix:path={}", bus.display()),
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let pid = fwd.0.id();
        // up once its main loop handles SIGHUP (its reload), after its rules are loaded
        let handles_sighup = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & 1 != 0)
        };
        assert!(
            eventually(120, || coexist::firewalld_present() && handles_sighup()),
            "firewalld did not start: {}",
            log_text()
        );
        // its rules are complete once the outbound traffic is rejected
        assert!(
            eventually(30, || out_of_ctr().is_err()),
            "firewalld rejects forwarded traffic"
        );
        // it left wharf's own table alone; published ports pass its `ct status dnat accept`
        assert_eq!(fw.owners().unwrap(), own);
        assert_eq!(into_ctr().unwrap(), "hello");
        assert!(
            dns_from(&ctr).is_err(),
            "firewalld rejects the resolver's port"
        );

        // the next ensure (a container start) opens firewalld's chains for the bridge
        fw.ensure_network(&net).unwrap();
        fw.ensure_network(&net).unwrap(); // idempotent
        assert_eq!(out_of_ctr().unwrap(), "outside");
        assert_eq!(into_ctr().unwrap(), "hello");
        dns_from(&ctr).unwrap();
        assert_eq!(
            coexist::owners(),
            vec![(Owner::Network(net.id.clone()), 4)],
            "two forward and two input rules"
        );

        // firewall-cmd --reload (SIGHUP) rebuilds firewalld's table without them: cut until
        // the next ensure
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        assert!(
            eventually(60, || coexist::firewalld_present()
                && coexist::owners().is_empty()
                && out_of_ctr().is_err()),
            "firewalld reloaded: {} {:?}",
            log_text(),
            coexist::owners(),
        );
        fw.ensure_network(&net).unwrap();
        assert_eq!(out_of_ctr().unwrap(), "outside");
        dns_from(&ctr).unwrap();

        // firewalld leaving takes its table (and wharf's rules in it) along; wharf's own
        // table keeps working and the next ensure does not miss firewalld's chains
        assert!(fwd.stop(), "firewalld did not stop: {}", log_text());
        assert!(!coexist::firewalld_present());
        assert!(coexist::owners().is_empty());
        assert_eq!(fw.owners().unwrap(), own);
        fw.ensure_network(&net).unwrap();
        assert_eq!(out_of_ctr().unwrap(), "outside");
        assert_eq!(into_ctr().unwrap(), "hello");
        dns_from(&ctr).unwrap();

        assert_eq!(fw.unpublish(&cid).unwrap(), 2);
        fw.remove_network(&net.id).unwrap();
        assert!(fw.owners().unwrap().is_empty());
    })
    .join()
    .unwrap();
}

/// A dual-stack network next to docker's `ip6 filter FORWARD` with policy DROP (its
/// ip6tables, iptables-nft flavour): routed IPv6 traffic out of the container (masquerade) and
/// into a published port (DNAT) is cut, the next ensure opens that chain for the bridge, and
/// removing the network removes the rules again. An IPv4-only network leaves `ip6` chains alone.
#[test]
fn dual_stack_rules_next_to_ip6tables_nft_drop() {
    let ip6t = "/usr/sbin/ip6tables-nft";
    if !nix::unistd::geteuid().is_root()
        || !nft::available()
        || !std::path::Path::new(ip6t).exists()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root, nf_tables and ip6tables-nft"
        );
        return;
    }
    let v6 = |s: &str| -> IpAddr { s.parse().unwrap() };
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let host = File::open("/proc/thread-self/ns/net").unwrap();
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let ctr = File::open("/proc/thread-self/ns/net").unwrap();
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let outside = File::open("/proc/thread-self/ns/net").unwrap();
        setns(&host, CloneFlags::CLONE_NEWNET).unwrap();

        let mut s = Socket::open(Family::Route).unwrap();
        let lo = link::index(&mut s, "lo").unwrap();
        link::set_up(&mut s, lo).unwrap();
        link::create_bridge(&mut s, "wc6", None).unwrap();
        let br = link::index(&mut s, "wc6").unwrap();
        firewall::enable_forwarding("wc6", true).unwrap();
        link::add_address(&mut s, br, ip(10, 53, 0, 1), 24).unwrap();
        link::add_address(&mut s, br, v6("fd53::1"), 64).unwrap();
        link::set_up(&mut s, br).unwrap();
        for (name, ns) in [("wvc6", &ctr), ("wo6", &outside)] {
            link::create_veth(&mut s, name, "eth0", Some(Netns::Fd(ns.as_raw_fd())), None).unwrap();
        }
        let wv = link::index(&mut s, "wvc6").unwrap();
        link::set_master(&mut s, wv, br).unwrap();
        link::set_up(&mut s, wv).unwrap();
        let wo = link::index(&mut s, "wo6").unwrap();
        link::add_address(&mut s, wo, v6("fd73::1"), 64).unwrap();
        link::set_up(&mut s, wo).unwrap();
        let serve6 =
            |ns: &File, addr: IpAddr, gw: Option<IpAddr>, port: u16, reply: &'static str| {
                let (tx, rx) = std::sync::mpsc::channel();
                let fd = ns.try_clone().unwrap();
                std::thread::spawn(move || {
                    setns(&fd, CloneFlags::CLONE_NEWNET).unwrap();
                    let mut s = Socket::open(Family::Route).unwrap();
                    let lo = link::index(&mut s, "lo").unwrap();
                    link::set_up(&mut s, lo).unwrap();
                    let eth = link::index(&mut s, "eth0").unwrap();
                    link::add_address(&mut s, eth, addr, 64).unwrap();
                    link::set_up(&mut s, eth).unwrap();
                    if let Some(gw) = gw {
                        link::add_route(&mut s, None, Some(gw), Some(eth)).unwrap();
                    }
                    let l = TcpListener::bind(("::", port)).unwrap();
                    tx.send(()).unwrap();
                    for c in l.incoming() {
                        let Ok(mut c) = c else { break };
                        let _ = c.write_all(reply.as_bytes());
                    }
                });
                rx.recv().unwrap();
            };
        serve6(&ctr, v6("fd53::2"), Some(v6("fd53::1")), 80, "hello6");
        serve6(&outside, v6("fd73::2"), None, 81, "outside6");

        let net = NetworkRecord {
            id: "6".repeat(64),
            name: "co6".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wc6".into(),
            subnet: "10.53.0.0/24".parse().unwrap(),
            gateway: ip(10, 53, 0, 1),
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: Some(wharf_store::network::Ipv6Config {
                subnet: "fd53::/64".parse().unwrap(),
                gateway: v6("fd53::1"),
            }),
        };
        let mut fw = Firewall::open().unwrap();
        fw.ensure_network(&net).unwrap();
        let cid = "c".repeat(64);
        fw.publish(
            &cid,
            v6("fd53::2"),
            &[Published {
                host_ip: None,
                host_port: 8080,
                proto: Proto::Tcp,
                container_port: 80,
            }],
        )
        .unwrap();
        let out_of_ctr = || in_ns(&ctr, || fetch("[fd73::2]:81".parse().unwrap()));
        let into_ctr = || in_ns(&outside, || fetch("[fd73::1]:8080".parse().unwrap()));
        assert_eq!(out_of_ctr().unwrap(), "outside6");
        assert_eq!(into_ctr().unwrap(), "hello6");

        iptables(ip6t, &["-P", "FORWARD", "DROP"]);
        assert!(out_of_ctr().is_err(), "the drop policy cuts the traffic");
        assert!(into_ctr().is_err());
        // an IPv4-only network is not added to IPv6 chains
        let mut v4only = net.clone();
        v4only.id = "4".repeat(64);
        v4only.ipv6 = None;
        fw.ensure_network(&v4only).unwrap();
        assert!(!iptables(ip6t, &["-S", "FORWARD"]).contains(&v4only.id));
        assert_eq!(fw.remove_network(&v4only.id).unwrap(), 8);

        fw.ensure_network(&net).unwrap();
        fw.ensure_network(&net).unwrap(); // idempotent
        assert_eq!(out_of_ctr().unwrap(), "outside6");
        assert_eq!(into_ctr().unwrap(), "hello6");
        let listing = iptables(ip6t, &["-S", "FORWARD"]);
        let comment = format!("wharf:net:{}", net.id);
        assert_eq!(
            listing.lines().filter(|l| l.contains(&comment)).count(),
            2,
            "{listing}"
        );

        assert_eq!(fw.unpublish(&cid).unwrap(), 2);
        fw.remove_network(&net.id).unwrap();
        assert!(!iptables(ip6t, &["-S", "FORWARD"]).contains("wharf:net:"));
        assert!(coexist::owners().is_empty());
        assert!(fw.owners().unwrap().is_empty());
        assert!(out_of_ctr().is_err(), "the drop policy applies again");
    })
    .join()
    .unwrap();
}
