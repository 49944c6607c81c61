//! The remaining run flags of bridge networking, through the binary: `--sysctl` (written in
//! the container's namespaces and read back there, docker's refusals, a sysctl the kernel
//! lacks fails the start), `--dns` on a user network (the embedded resolver forwards that
//! container's questions to its servers — a tiny DNS responder of the test's — and not the
//! others'), and `-p` with `--network host` (docker's warning on stderr, the container runs).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::net::*;
use common::*;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

#[test]
fn sysctls_are_written_in_the_containers_namespaces() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let host_rmid = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let out = w.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "net.core.somaxconn=1024",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
        "--sysctl",
        "net.ipv4.conf.eth0.rp_filter=2",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/core/somaxconn",
        "/proc/sys/kernel/shm_rmid_forced",
        "/proc/sys/net/ipv4/conf/eth0/rp_filter",
    ]);
    assert_eq!(out, "1\n1024\n1\n2\n");
    // the host's own values are untouched (they are the container's namespaces' only)
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_rmid
    );
    // recorded as docker's HostConfig.Sysctls; /proc/sys stays read-only for the process
    w.ok(&[
        "create",
        "--name",
        "sx",
        "--network",
        "none",
        "--sysctl",
        "net.core.somaxconn=512",
        "busybox",
        "sh",
        "-c",
        "cat /proc/sys/net/core/somaxconn; echo 1 > /proc/sys/net/core/somaxconn && echo WROTE",
    ]);
    assert_eq!(
        w.ok(&["inspect", "-f", "{{json .HostConfig.Sysctls}}", "sx"])
            .trim(),
        r#"{"net.core.somaxconn":"512"}"#
    );
    let o = w.run(&["start", "-a", "sx"]);
    assert_eq!(stdout(&o), "512\n", "{}", stderr(&o));
    // a sysctl the kernel does not have, or a value it refuses: the start fails naming it
    for (flag, want) in [
        ("net.ipv4.no_such_knob=1", "net.ipv4.no_such_knob"),
        ("net.core.somaxconn=notanumber", "net.core.somaxconn"),
    ] {
        let o = w.run(&["run", "--rm", "--sysctl", flag, "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{flag}: {}", stderr(&o));
    }
    // docker's refusals, before anything is created
    for (args, want) in [
        (
            vec!["--sysctl", "kernel.hostname=x"],
            r#"invalid argument "kernel.hostname=x" for "--sysctl" flag: sysctl 'kernel.hostname=x' is not allowed"#,
        ),
        (
            vec!["--sysctl", "vm.swappiness=1"],
            "sysctl 'vm.swappiness=1' is not allowed",
        ),
        (
            vec!["--sysctl", "net.ipv4.ip_forward"],
            "sysctl 'net.ipv4.ip_forward' is not allowed",
        ),
        (
            vec!["--sysctl", "net./../kernel/core_pattern=x"],
            "a sysctl name is dot-separated components",
        ),
        (
            vec!["--network", "host", "--sysctl", "net.core.somaxconn=1"],
            r#"sysctl "net.core.somaxconn" not allowed in host network namespace"#,
        ),
        (
            vec![
                "--network",
                "container:sx",
                "--sysctl",
                "net.core.somaxconn=1",
            ],
            r#"sysctl "net.core.somaxconn" not allowed in a joined network namespace"#,
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    // the IPC ones are the container's own with the host's network too
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "busybox",
        "cat",
        "/proc/sys/fs/mqueue/msg_max",
    ]);
    assert_eq!(out, "20\n");
    w.ok(&["rm", "sx"]);
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

/// A DNS responder on `addr:53/udp` answering every A question with `answer` (one record,
/// the question echoed), until dropped.
struct Responder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(addr: Ipv4Addr, answer: Ipv4Addr) -> Responder {
        let sock = UdpSocket::bind((addr, 53)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut b = [0u8; 512];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut b) else {
                    continue;
                };
                let q = &b[..n];
                // header, then the question's name (labels up to the zero), type, class
                let Some(end) = q
                    .get(12..)
                    .and_then(|r| r.iter().position(|&l| l == 0))
                    .map(|p| 12 + p + 5)
                    .filter(|&e| e <= n)
                else {
                    continue;
                };
                let mut r = q[..end].to_vec();
                r[2] = 0x81; // QR, RD
                r[3] = 0x80; // RA, NOERROR
                r[6..8].copy_from_slice(&1u16.to_be_bytes()); // one answer
                r[8..12].fill(0);
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer.octets());
                let _ = sock.send_to(&r, from);
            }
        });
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn dns_on_a_user_network_forwards_to_the_containers_servers() {
    let w = Wharf::new().with_busybox();
    let net = UserNetwork::create(&w, "fwd", "10.213.61.0/24");
    let _c = Cleanup(&w);
    // the responder on its own loopback address: the resolver runs in the host's namespace
    let ns = Ipv4Addr::new(127, 61, (std::process::id() % 250) as u8 + 1, 53);
    let _dns = Responder::start(ns, Ipv4Addr::new(198, 51, 100, 7));
    w.ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "fwd",
        "busybox",
        "sleep",
        "300",
    ]);
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "--dns",
        &ns.to_string(),
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup external.example.; nslookup peer",
    ]);
    // the container still asks the embedded resolver (names of the network keep working) …
    assert!(
        out.contains(&format!("nameserver {}\n", net.rec.gateway)),
        "{out}"
    );
    assert!(!out.contains(&format!("nameserver {ns}")), "{out}");
    // … which forwards its other questions to its --dns server
    assert!(out.contains("Address: 198.51.100.7"), "{out}");
    assert!(out.contains("Address: 10.213.61."), "peer by name: {out}");
    // a container without --dns on the same network is not sent there
    let o = w.run(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "busybox",
        "nslookup",
        "-timeout=2",
        "external.example.",
    ]);
    assert!(!stdout(&o).contains("198.51.100.7"), "{}", stdout(&o));
    let id = full_id(&w, "peer");
    w.ok(&["rm", "-f", "peer"]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
}

#[test]
fn published_ports_with_host_network_warn_like_docker() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let warning = "WARNING: Published ports are discarded when using host network mode\n";
    let o = w.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "8080:80",
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ran\n");
    assert_eq!(stderr(&o), warning);
    // create and run -d say it too (before the id), and nothing is published
    for cmd in [vec!["create"], vec!["run", "-d"]] {
        let mut a = cmd.clone();
        a.extend([
            "--network",
            "host",
            "-p",
            "8081:80",
            "busybox",
            "sleep",
            "30",
        ]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(0), "{a:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), warning, "{a:?}");
        let id = stdout(&o).trim().to_string();
        assert_eq!(id.len(), 64, "{a:?}: {}", stdout(&o));
        assert_eq!(w.ok(&["port", &id]), "", "{a:?}");
    }
    // no warning without -p, nor for -p on a bridge
    let o = w.run(&["run", "--rm", "--network", "host", "busybox", "true"]);
    assert_eq!(stderr(&o), "");
    let o = w.run(&["create", "-p", "80", "busybox", "true"]);
    assert_eq!(stderr(&o), "", "{}", stdout(&o));
}
