//! `wharf __dns`: the one resolver process of the host for every user-defined network. It
//! listens on each such network's gateway address, port 53 (UDP and TCP), answers from the
//! endpoints in the run root (`endpoint`) and forwards the rest: to the asking container's
//! `--dns` servers when it has some (found by the question's source address among the
//! network's endpoints, as docker's embedded resolver forwards per container), else to the
//! host's resolvers (`/etc/resolv.conf`, loopback ones included: it runs in the host's
//! namespace). Started on
//! demand by the first container that needs it, it holds `<run-root>/dns.lock` while alive (a
//! second one leaves at once) and exits when no network has needed it for a while.
//!
//! `ensure_running` is what a start on a user network calls: it spawns `wharf __dns` when no
//! resolver holds the lock (the process detaches: own session, stdio on /dev/null, re-parented
//! away from the caller so no monitor keeps a zombie), then waits (bounded) until the
//! network's gateway:53 is served, so the container's first question is answered.

use super::dns::{self, Known, Question};
use super::endpoint::{self, Endpoint};
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an upstream gets per question.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Questions being forwarded at once; more are answered SERVFAIL.
const MAX_IN_FLIGHT: usize = 64;

/// The networks to serve: (network id, gateway) of every network with endpoints whose
/// gateway is given by `gateway_of` (`None`: no embedded DNS, e.g. docker's default bridge).
fn wanted(
    run_root: &Path,
    gateway_of: &dyn Fn(&str) -> Option<IpAddr>,
) -> BTreeMap<String, IpAddr> {
    endpoint::networks_with_state(run_root)
        .into_iter()
        .filter(|n| !endpoint::list(run_root, n).is_empty())
        .filter_map(|n| gateway_of(&n).map(|g| (n, g)))
        .collect()
}

/// The answer for a question asked from `from` on `network`: the `--link` aliases of the
/// asking container first (its own only), then the names on the network, then (docker's
/// embedded DNS knows every network its container is on) the names on the asker's other
/// networks.
fn lookup(run_root: &Path, network: &str, from: Option<IpAddr>, q: &Question) -> Option<Known> {
    let eps: Vec<Endpoint> = endpoint::list(run_root, network);
    let asker = from.and_then(|ip| eps.iter().find(|e| e.addresses().contains(&ip)));
    // the asker's other networks, read only when the asked one has no answer
    let others = || -> Vec<Vec<Endpoint>> {
        let Some(a) = asker else { return Vec::new() };
        endpoint::networks_with_state(run_root)
            .into_iter()
            .filter(|n| n != network && endpoint::read(run_root, n, &a.container_id).is_some())
            .map(|n| endpoint::list(run_root, &n))
            .collect()
    };
    if q.qtype == dns::TYPE_PTR {
        let ip = dns::ptr_address(&q.name)?;
        let name = |eps: &[Endpoint]| {
            eps.iter()
                .find(|e| e.addresses().contains(&ip))
                .map(|e| Known::Name(e.name.clone()))
        };
        return name(&eps).or_else(|| others().iter().find_map(|o| name(o)));
    }
    // every family's addresses: the answer keeps those of the type asked (A or AAAA)
    let hits = |eps: &[Endpoint]| -> Vec<IpAddr> {
        eps.iter()
            .filter(|e| e.answers_to(&q.name))
            .flat_map(|e| e.addresses())
            .collect()
    };
    if let Some(a) = asker {
        for l in a
            .links
            .iter()
            .filter(|l| l.alias.eq_ignore_ascii_case(&q.name))
        {
            if let Some(t) = eps.iter().find(|e| e.container_id == l.container_id) {
                return Some(Known::Addresses(t.addresses()));
            }
        }
    }
    let mut hit = hits(&eps);
    if hit.is_empty() {
        hit = others()
            .iter()
            .map(|o| hits(o))
            .find(|h| !h.is_empty())
            .unwrap_or_default();
    }
    (!hit.is_empty()).then_some(Known::Addresses(hit))
}

/// Where a question from `from` is forwarded: the asking container's `--dns` servers (port
/// 53) when its endpoint on the network has some, else the host's resolvers.
fn upstreams_for(
    eps: &[Endpoint],
    from: IpAddr,
    host: &Arc<Vec<SocketAddr>>,
) -> Arc<Vec<SocketAddr>> {
    match eps
        .iter()
        .find(|e| e.addresses().contains(&from))
        .filter(|e| !e.dns.is_empty())
    {
        Some(e) => Arc::new(e.dns.iter().map(|ip| SocketAddr::new(*ip, 53)).collect()),
        None => host.clone(),
    }
}

struct Listener {
    udp: UdpSocket,
    tcp: TcpListener,
}

fn bind(gw: IpAddr) -> std::io::Result<Listener> {
    let addr = SocketAddr::new(gw, 53);
    Ok(Listener {
        udp: UdpSocket::bind(addr)?,
        tcp: TcpListener::bind(addr)?,
    })
}

fn serve_tcp(
    mut c: TcpStream,
    run_root: PathBuf,
    network: String,
    host_upstreams: Arc<Vec<SocketAddr>>,
) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
    let mut len = [0u8; 2];
    if c.read_exact(&mut len).is_err() {
        return;
    }
    let n = usize::from(u16::from_be_bytes(len));
    if n > dns::MAX_TCP {
        return;
    }
    let mut msg = vec![0u8; n];
    if c.read_exact(&mut msg).is_err() {
        return;
    }
    let from = c.peer_addr().ok().map(|a| a.ip());
    let upstreams = match from {
        Some(ip) => upstreams_for(&endpoint::list(&run_root, &network), ip, &host_upstreams),
        None => host_upstreams,
    };
    let look = |q: &Question| lookup(&run_root, &network, from, q);
    if let Some(r) = dns::handle(&msg, &look, &upstreams, UPSTREAM_TIMEOUT) {
        let mut out = (r.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        let _ = c.write_all(&out);
    }
}

/// Runs the resolver until no network has needed it for `idle_exit`. Returns at once when
/// another resolver holds the lock.
pub fn serve(
    run_root: &Path,
    gateway_of: &dyn Fn(&str) -> Option<IpAddr>,
    idle_exit: Duration,
) -> std::io::Result<()> {
    std::fs::create_dir_all(run_root)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(run_root.join("dns.lock"))?;
    let Ok(_lock) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
        return Ok(());
    };
    let upstreams = Arc::new(wharf_sys::resolve::ResolvConf::system().nameservers);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut listeners: BTreeMap<String, (IpAddr, Listener)> = BTreeMap::new();
    let mut idle_since = Instant::now();
    let mut last_scan = Instant::now() - Duration::from_secs(10);
    const SCAN: Duration = Duration::from_millis(250);
    let mut buf = vec![0u8; dns::MAX_UDP];
    loop {
        if last_scan.elapsed() >= SCAN {
            last_scan = Instant::now();
            let want = wanted(run_root, gateway_of);
            listeners.retain(|n, (g, _)| want.get(n) == Some(g));
            for (n, g) in &want {
                if !listeners.contains_key(n) {
                    // the bridge may not have its address yet: retried on the next scan
                    if let Ok(l) = bind(*g) {
                        listeners.insert(n.clone(), (*g, l));
                    }
                }
            }
            if want.is_empty() {
                // a start writes its endpoint before it looks for a resolver: one that
                // arrives after this scan sees the lock held and relies on us, so look once
                // more right before leaving (the window left is the two lines below)
                if idle_since.elapsed() >= idle_exit && wanted(run_root, gateway_of).is_empty() {
                    return Ok(());
                }
            } else {
                idle_since = Instant::now();
            }
        }
        let order: Vec<&String> = listeners.keys().collect();
        let mut fds: Vec<PollFd> = Vec::new();
        for n in &order {
            let (_, l) = &listeners[*n];
            fds.push(PollFd::new(l.udp.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(l.tcp.as_fd(), PollFlags::POLLIN));
        }
        let ready: Vec<(usize, bool)> = match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(0) | Err(_) => Vec::new(),
            Ok(_) => fds
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                .map(|(i, _)| (i / 2, i % 2 == 0))
                .collect(),
        };
        let names: Vec<String> = order.into_iter().cloned().collect();
        drop(fds);
        for (idx, is_udp) in ready {
            let network = names[idx].clone();
            let (_, l) = &listeners[&network];
            if is_udp {
                let Ok((n, from)) = l.udp.recv_from(&mut buf) else {
                    continue;
                };
                let msg = buf[..n].to_vec();
                let look = |q: &Question| lookup(run_root, &network, Some(from.ip()), q);
                // answered from the endpoints right here; only forwarding goes to a thread
                let local = dns::parse_query(&msg)
                    .ok()
                    .and_then(|q| look(&q).map(|k| dns::answer(&q, &k)));
                if let Some(r) = local {
                    let _ = l.udp.send_to(&r, from);
                    continue;
                }
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    if let Ok(q) = dns::parse_query(&msg) {
                        let _ = l.udp.send_to(&dns::servfail(&q), from);
                    }
                    continue;
                }
                let Ok(sock) = l.udp.try_clone() else {
                    continue;
                };
                let ups = upstreams_for(&endpoint::list(run_root, &network), from.ip(), &upstreams);
                let fl = in_flight.clone();
                fl.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    let none = |_: &Question| None;
                    if let Some(r) = dns::handle(&msg, &none, &ups, UPSTREAM_TIMEOUT) {
                        let _ = sock.send_to(&r, from);
                    }
                    fl.fetch_sub(1, Ordering::Relaxed);
                });
            } else if let Ok((c, _)) = l.tcp.accept() {
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    continue;
                }
                let (ups, fl) = (upstreams.clone(), in_flight.clone());
                let root = run_root.to_path_buf();
                fl.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    serve_tcp(c, root, network, ups);
                    fl.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
}

/// How long a resolver with nothing to serve stays.
pub const IDLE_EXIT: Duration = Duration::from_secs(30);

/// Whether a resolver holds `<run-root>/dns.lock`.
fn running(run_root: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(run_root.join("dns.lock"))
    else {
        return false;
    };
    // taken (and dropped at once): nobody holds it
    Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err()
}

/// Whether something listens on `gateway:53/udp` (a probe bind fails with EADDRINUSE).
fn served(gateway: IpAddr) -> bool {
    matches!(
        UdpSocket::bind(SocketAddr::new(gateway, 53)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
    )
}

/// Makes sure the resolver runs and serves `gateway` (a user network with a container on
/// it), waiting at most 3 s. Best effort: a resolver that cannot start leaves the container
/// without name resolution, not without a start (`debug` says so).
pub fn ensure_running(root: &Path, run_root: &Path, gateway: IpAddr, debug: bool) {
    if served(gateway) {
        return;
    }
    if !running(run_root) {
        let spawned = std::process::Command::new("/proc/self/exe")
            .arg0("wharf")
            .arg("__dns")
            .arg(root)
            .arg(run_root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Err(e) = spawned {
            if debug {
                eprintln!("wharf: cannot start the DNS resolver: {e}");
            }
            return;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !served(gateway) {
        if Instant::now() >= deadline {
            if debug {
                eprintln!("wharf: the DNS resolver does not serve {gateway}:53 yet");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `wharf __dns ROOT RUNROOT [--serve]`: without `--serve`, starts the serving process and
/// returns at once (so the caller reaps it right away and the server is re-parented); with
/// it, detaches (new session, no inherited fds) and serves until idle. The default network
/// has no embedded DNS (docker's): only user networks are served.
pub fn dns_main(args: &[std::ffi::OsString]) -> ! {
    let (Some(root), Some(run_root)) = (args.first(), args.get(1)) else {
        eprintln!("wharf __dns is internal: ROOT RUNROOT");
        std::process::exit(125);
    };
    let (root, run_root) = (PathBuf::from(root), PathBuf::from(run_root));
    if !args.iter().skip(2).any(|a| a == "--serve") {
        let r = std::process::Command::new("/proc/self/exe")
            .arg0("wharf")
            .arg("__dns")
            .arg(&root)
            .arg(&run_root)
            .arg("--serve")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        std::process::exit(if r.is_ok() { 0 } else { 1 });
    }
    // single-threaded here and owning no fd yet: closing the inherited ones is sound
    let _ = wharf_sys::process::close_fds_from(3);
    let _ = nix::unistd::setsid();
    let Ok(store) = wharf_store::Store::open(&root) else {
        std::process::exit(1);
    };
    let gateway_of = |id: &str| {
        store
            .network(id)
            .ok()
            .filter(|n| n.name != super::DEFAULT_NETWORK)
            .map(|n| n.gateway)
    };
    let code = match serve(&run_root, &gateway_of, IDLE_EXIT) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(c: char, name: &str, net: &str, ip: &str) -> Endpoint {
        Endpoint {
            container_id: c.to_string().repeat(64),
            name: name.into(),
            aliases: vec![],
            network_id: net.into(),
            ip: ip.parse().expect("ip"),
            prefix: 24,
            gateway: "10.0.0.1".parse().expect("ip"),
            mac: String::new(),
            ports: vec![],
            ifname: "eth0".into(),
            host_veth: String::new(),
            links: vec![],
            dns: vec![],
            ipv6: None,
        }
    }

    fn addrs(k: Option<Known>) -> Vec<IpAddr> {
        match k {
            Some(Known::Addresses(a)) => a,
            _ => Vec::new(),
        }
    }

    #[test]
    fn other_networks_of_the_asker_and_its_links() {
        let d = tempfile::tempdir().expect("tempdir");
        let (n1, n2) = ("1".repeat(64), "2".repeat(64));
        // web is on n1 and n2, db only on n2, lone only on n1
        let mut web = ep('a', "web", &n1, "10.1.0.2");
        web.links.push(endpoint::LinkAlias {
            alias: "lone-alias".into(),
            container_id: "c".repeat(64),
        });
        endpoint::write(d.path(), &web).expect("write");
        endpoint::write(d.path(), &ep('a', "web", &n2, "10.2.0.2")).expect("write");
        endpoint::write(d.path(), &ep('b', "db", &n2, "10.2.0.3")).expect("write");
        endpoint::write(d.path(), &ep('c', "lone", &n1, "10.1.0.4")).expect("write");
        let q = |name: &str| dns::parse_query(&dns::query(1, name, dns::TYPE_A)).expect("query");
        let web_ip = Some("10.1.0.2".parse().expect("ip"));
        let lone_ip = Some("10.1.0.4".parse().expect("ip"));
        // web asks on n1 for db (on n2 only): found through web's other network
        assert_eq!(
            addrs(lookup(d.path(), &n1, web_ip, &q("db"))),
            ["10.2.0.3".parse::<IpAddr>().expect("ip")]
        );
        // lone is on n1 only: db is not its business
        assert!(lookup(d.path(), &n1, lone_ip, &q("db")).is_none());
        // the link alias answers for web only
        assert_eq!(
            addrs(lookup(d.path(), &n1, web_ip, &q("lone-alias"))),
            ["10.1.0.4".parse::<IpAddr>().expect("ip")]
        );
        assert!(lookup(d.path(), &n1, lone_ip, &q("lone-alias")).is_none());
    }

    #[test]
    fn ipv6_of_a_dual_stack_second_network() {
        let d = tempfile::tempdir().expect("tempdir");
        let (n1, n2) = ("1".repeat(64), "2".repeat(64));
        // web: eth0 on n1 (IPv4 only), eth1 on n2 (dual stack); db on n2 only
        endpoint::write(d.path(), &ep('a', "web", &n1, "10.1.0.2")).expect("write");
        let six = |mut e: Endpoint, ip: &str| {
            e.ipv6 = Some(endpoint::EndpointV6 {
                ip: ip.parse().expect("ip6"),
                prefix: 64,
                gateway: "fd02::1".parse().expect("gw6"),
            });
            e
        };
        endpoint::write(d.path(), &six(ep('a', "web", &n2, "10.2.0.2"), "fd02::2")).expect("w");
        endpoint::write(d.path(), &six(ep('b', "db", &n2, "10.2.0.3"), "fd02::3")).expect("w");
        let web_ip = Some("10.1.0.2".parse().expect("ip"));
        let q = |name: &str, t| dns::parse_query(&dns::query(1, name, t)).expect("query");
        // web asks its first network's resolver: db's every address (the answer keeps AAAA)
        assert_eq!(
            addrs(lookup(d.path(), &n1, web_ip, &q("db", dns::TYPE_AAAA))),
            ["10.2.0.3", "fd02::3"]
                .map(|a| a.parse::<IpAddr>().expect("ip"))
                .to_vec()
        );
        // the asker found by its IPv6 address too
        let web6 = Some("fd02::2".parse().expect("ip"));
        assert!(lookup(d.path(), &n2, web6, &q("db", dns::TYPE_A)).is_some());
        // ip6.arpa of an address on the asker's other network
        let ptr = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.d.f.ip6.arpa";
        match lookup(d.path(), &n1, web_ip, &q(ptr, dns::TYPE_PTR)) {
            Some(Known::Name(n)) => assert_eq!(n, "db"),
            other => panic!("PTR: {}", other.is_some()),
        }
        assert!(lookup(d.path(), &n1, None, &q(ptr, dns::TYPE_PTR)).is_none());
    }

    #[test]
    fn upstreams_per_asking_container() {
        let ep = |ip: &str, dns: &[&str]| Endpoint {
            container_id: ip.replace('.', "").repeat(8),
            name: ip.into(),
            aliases: vec![],
            network_id: "e".repeat(64),
            ip: ip.parse().expect("ip"),
            prefix: 24,
            gateway: "10.70.0.1".parse().expect("ip"),
            mac: String::new(),
            ports: vec![],
            dns: dns.iter().map(|d| d.parse().expect("ip")).collect(),
            ifname: "eth0".into(),
            host_veth: String::new(),
            links: vec![],
            ipv6: None,
        };
        let eps = [
            ep("10.70.0.2", &["192.0.2.53", "192.0.2.54"]),
            ep("10.70.0.3", &[]),
        ];
        let host = Arc::new(vec!["198.51.100.1:53".parse().expect("addr")]);
        let at = |ip: &str| upstreams_for(&eps, ip.parse().expect("ip"), &host);
        assert_eq!(
            *at("10.70.0.2"),
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().expect("addr"),
                "192.0.2.54:53".parse().expect("addr")
            ]
        );
        // no --dns, or not a container of the network: the host's resolvers
        assert_eq!(*at("10.70.0.3"), *host);
        assert_eq!(*at("10.70.0.9"), *host);
    }

    #[test]
    fn serves_endpoints_and_exits_when_idle() {
        let d = tempfile::tempdir().expect("tempdir");
        let net = "e".repeat(64);
        let ep = Endpoint {
            container_id: "f".repeat(64),
            name: "db".into(),
            aliases: vec!["database".into()],
            network_id: net.clone(),
            ip: "10.70.0.2".parse().expect("ip"),
            prefix: 16,
            gateway: "127.0.0.77".parse().expect("ip"),
            mac: String::new(),
            ports: vec![],
            ipv6: Some(endpoint::EndpointV6 {
                ip: "fd70::2".parse().expect("ip6"),
                prefix: 64,
                gateway: "fd70::1".parse().expect("gw6"),
            }),
            dns: vec![],
            ifname: "eth0".into(),
            host_veth: String::new(),
            links: vec![],
        };
        endpoint::write(d.path(), &ep).expect("endpoint");
        let root = d.path().to_path_buf();
        let server = std::thread::spawn(move || {
            serve(
                &root,
                &|_| "127.0.0.77".parse().ok(),
                Duration::from_millis(300),
            )
        });
        let c = UdpSocket::bind("127.0.0.1:0").expect("client");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut got = Vec::new();
        for _ in 0..50 {
            let _ = c.send_to(&dns::query(3, "database", dns::TYPE_A), "127.0.0.77:53");
            let mut b = [0u8; 512];
            if let Ok((n, _)) = c.recv_from(&mut b) {
                got = dns::answers(&b[..n]);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(got, vec!["10.70.0.2".parse::<IpAddr>().expect("ip")]);
        // AAAA: the container's IPv6 address on a dual-stack network
        let _ = c.send_to(&dns::query(5, "db", dns::TYPE_AAAA), "127.0.0.77:53");
        let mut b = [0u8; 512];
        let (n, _) = c.recv_from(&mut b).expect("AAAA answer");
        assert_eq!(
            dns::answers(&b[..n]),
            vec!["fd70::2".parse::<IpAddr>().expect("ip")]
        );
        // over TCP too
        let mut t = TcpStream::connect("127.0.0.77:53").expect("tcp");
        let q = dns::query(4, "db", dns::TYPE_A);
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&q);
        t.write_all(&m).expect("write");
        let mut len = [0u8; 2];
        t.read_exact(&mut len).expect("len");
        let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
        t.read_exact(&mut r).expect("body");
        assert_eq!(
            dns::answers(&r),
            vec!["10.70.0.2".parse::<IpAddr>().expect("ip")]
        );
        // a second resolver leaves at once
        serve(d.path(), &|_| None, Duration::from_secs(60)).expect("second");
        // no endpoints left: the server exits
        endpoint::remove(d.path(), &net, &"f".repeat(64));
        server.join().expect("join").expect("serve");
    }
}
