use super::*;
use std::process::{Child, Command, Stdio};

#[test]
fn resolv_conf_parsing() {
    let c = ResolvConf::parse(
        "# comment\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver bogus\n\
         nameserver 10.0.0.3\nnameserver 10.0.0.4\nsearch corp.example. lab.example\n\
         options ndots:2 timeout:1 attempts:3 rotate\n",
    );
    assert_eq!(
        c.nameservers,
        vec![
            "10.0.0.2:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap(),
            "10.0.0.3:53".parse().unwrap()
        ]
    );
    assert_eq!(c.search, vec!["corp.example", "lab.example"]);
    assert_eq!(
        (c.ndots, c.timeout, c.attempts),
        (2, Duration::from_secs(1), 3)
    );
    // no nameserver: the local one; `domain` is a one-entry search list
    let d = ResolvConf::parse("domain x.example\n");
    assert_eq!(d.nameservers, vec!["127.0.0.1:53".parse().unwrap()]);
    assert_eq!(d.search, vec!["x.example"]);
}

#[test]
fn search_order_follows_ndots() {
    let c = ResolvConf {
        search: vec!["a.example".into(), "b.example".into()],
        ..ResolvConf::default()
    };
    assert_eq!(
        candidates(&c, "reg"),
        vec!["reg.a.example", "reg.b.example", "reg"]
    );
    assert_eq!(
        candidates(&c, "reg.corp"),
        vec!["reg.corp", "reg.corp.a.example", "reg.corp.b.example"]
    );
    assert_eq!(candidates(&c, "reg.corp."), vec!["reg.corp"]);
}

#[test]
fn hosts_file_lookup() {
    let t = "127.0.0.1 localhost\n10.1.2.3  reg.corp reg # the registry\n::1 ip6-localhost\n\
             # 10.9.9.9 reg.corp\nbogus reg.corp\n";
    assert_eq!(
        hosts_lookup(t, "REG.corp"),
        vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        hosts_lookup(t, "reg"),
        vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
    );
    assert!(hosts_lookup(t, "other").is_empty());
}

#[test]
fn query_encoding_and_bad_names() {
    let q = encode_query(0x1234, "reg.corp", TYPE_A).unwrap();
    assert_eq!(
        q,
        [
            &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x03reg\x04corp\x00",
            &[0, 1, 0, 1]
        ]
        .concat()
    );
    for bad in [
        "",
        "a..b",
        &"x".repeat(64),
        "a b",
        "évil.example",
        &"a.".repeat(130),
    ] {
        assert!(encode_query(1, bad, TYPE_A).is_err(), "{bad:?}");
    }
}

/// A response to `q` with the given answer records (name as a pointer to the question).
fn response(q: &[u8], flags: u16, answers: &[(u16, &[u8])]) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2..4].copy_from_slice(&flags.to_be_bytes());
    r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    for (t, data) in answers {
        r.extend_from_slice(&[0xc0, 12]);
        r.extend_from_slice(&t.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
    }
    r
}

#[test]
fn responses_parsed_and_hostile_ones_refused() {
    let q = encode_query(7, "reg.corp", TYPE_A).unwrap();
    let ok = response(&q, 0x8180, &[(5, b"\x03foo\x00"), (TYPE_A, &[10, 1, 2, 3])]);
    let a = parse_response(&ok, 7, "reg.corp", TYPE_A).unwrap();
    assert_eq!(a.addrs, vec!["10.1.2.3".parse::<IpAddr>().unwrap()]);
    assert_eq!((a.rcode, a.truncated), (0, false));
    // the question must be ours: other id, other name, other type, or a query
    assert!(parse_response(&ok, 8, "reg.corp", TYPE_A).is_err());
    assert!(parse_response(&ok, 7, "evil.corp", TYPE_A).is_err());
    assert!(parse_response(&ok, 7, "reg.corp", TYPE_AAAA).is_err());
    assert!(parse_response(&q, 7, "reg.corp", TYPE_A).is_err());
    // NXDOMAIN and truncation are reported
    let nx = response(&q, 0x8183, &[]);
    assert_eq!(
        parse_response(&nx, 7, "reg.corp", TYPE_A).unwrap().rcode,
        RCODE_NXDOMAIN
    );
    let tc = response(&q, 0x8380, &[]);
    assert!(
        parse_response(&tc, 7, "reg.corp", TYPE_A)
            .unwrap()
            .truncated
    );
    // every prefix of a good response, a pointer loop, a forward pointer, a wrong-size A
    for n in 0..ok.len() {
        let _ = parse_response(&ok[..n], 7, "reg.corp", TYPE_A); // no panic
    }
    assert!(parse_response(&ok[..ok.len() - 1], 7, "reg.corp", TYPE_A).is_err());
    let mut looped = response(&q, 0x8180, &[(TYPE_A, &[1, 2, 3, 4])]);
    let at = q.len();
    looped[at..at + 2].copy_from_slice(&[0xc0, at as u8]); // points at itself
    assert!(parse_response(&looped, 7, "reg.corp", TYPE_A).is_err());
    let mut fwd = ok.clone();
    fwd[at..at + 2].copy_from_slice(&[0xc0, 0xff]);
    assert!(parse_response(&fwd, 7, "reg.corp", TYPE_A).is_err());
    let short = response(&q, 0x8180, &[(TYPE_A, &[1, 2, 3])]);
    assert!(parse_response(&short, 7, "reg.corp", TYPE_A).is_err());
}

/// Debian's dnsmasq as the DNS server, on a random loopback port.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(args: &[&str]) -> Option<(Dnsmasq, SocketAddr)> {
    let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Dnsmasq(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // ready when it answers over TCP
    for _ in 0..200 {
        if TcpStream::connect(addr).is_ok() {
            return Some((d, addr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("dnsmasq did not start");
}

#[test]
fn resolves_through_a_real_dns_server() {
    // long TXT-free way to force TCP: many A records for one name (> 512 bytes over UDP)
    let many: Vec<String> = (1..=60)
        .map(|i| format!("--host-record=many.wharf.test,10.0.1.{i}"))
        .collect();
    let mut args = vec![
        "--local=/wharf.test/",
        "--address=/reg.wharf.test/10.0.0.7",
        "--host-record=dual.wharf.test,10.0.0.8,fd00::8",
        "--cname=alias.wharf.test,dual.wharf.test",
        "--host-record=short.lab.wharf.test,10.0.0.9",
    ];
    args.extend(many.iter().map(String::as_str));
    let Some((_d, server)) = dnsmasq(&args) else {
        eprintln!("SKIP: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return;
    };
    let conf = ResolvConf {
        nameservers: vec![server],
        search: vec!["lab.wharf.test".into()],
        timeout: Duration::from_secs(2),
        ..ResolvConf::default()
    };
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        dns_lookup(&conf, "reg.wharf.test").unwrap(),
        vec![ip("10.0.0.7")]
    );
    // A and AAAA, IPv4 first; through a CNAME
    assert_eq!(
        dns_lookup(&conf, "dual.wharf.test").unwrap(),
        vec![ip("10.0.0.8"), ip("fd00::8")]
    );
    assert_eq!(
        dns_lookup(&conf, "alias.wharf.test").unwrap(),
        vec![ip("10.0.0.8"), ip("fd00::8")]
    );
    // a short name through the search list
    assert_eq!(dns_lookup(&conf, "short").unwrap(), vec![ip("10.0.0.9")]);
    // a truncated UDP answer is retried over TCP and complete
    let got = dns_lookup(&conf, "many.wharf.test").unwrap();
    assert_eq!(got.len(), 60, "{got:?}");
    // a name nobody has: NotFound, not a hang
    let e = dns_lookup(&conf, "nope.wharf.test").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    // a dead server first: the next one answers
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let conf2 = ResolvConf {
        nameservers: vec![dead.local_addr().unwrap(), server],
        timeout: Duration::from_millis(300),
        ..conf.clone()
    };
    assert_eq!(
        dns_lookup(&conf2, "reg.wharf.test").unwrap(),
        vec![ip("10.0.0.7")]
    );
}

#[test]
fn a_server_that_never_answers_aaaa_does_not_cost_the_whole_timeout() {
    // a minimal DNS server that answers A queries and drops AAAA ones
    let srv = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    srv.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((n, peer)) = srv.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            let qtype = u16::from_be_bytes([q[n - 4], q[n - 3]]);
            if qtype == TYPE_A {
                let _ = srv.send_to(&response(q, 0x8180, &[(TYPE_A, &[10, 0, 0, 42])]), peer);
            }
        }
    });
    // the lookup runs on its own thread; the timeout is a minute, so waiting it out would
    // trip the 30 s hang detector below
    let conf = ResolvConf {
        nameservers: vec![addr],
        timeout: Duration::from_secs(60),
        attempts: 1,
        ..ResolvConf::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(dns_lookup(&conf, "v4only.wharf.test"));
    });
    let got = rx.recv_timeout(Duration::from_secs(30));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
    let got = got
        .expect("waited for the AAAA answer that never comes")
        .unwrap();
    assert_eq!(got, vec!["10.0.0.42".parse::<IpAddr>().unwrap()]);
}
