//! Bridge networking through the binary, with real traffic: published ports reached from the
//! host's address and from 127.0.0.1 (std sockets), `-P` from the configured range, names and
//! aliases on a user network through the embedded resolver, the /etc files, `container:`,
//! docker's refusals, and that nothing is left behind — no veth, firewall rule, allocation or
//! endpoint of the test's containers — after `rm -f`, a killed monitor, a killed foreground
//! CLI, a start that failed on a taken port (in the same store or another one: host ports are
//! one namespace per host), and on the legacy iptables path. Each test
//! counts only its own containers (by id), networks and ports.

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::net::*;
use common::*;
use std::net::IpAddr;

/// A busybox web server answering `/i` with `body` on `port` inside the container.
fn httpd(body: &str, port: u16) -> String {
    format!("mkdir -p /w{port} && echo {body} > /w{port}/i && exec httpd -f -p {port} -h /w{port}")
}

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

#[test]
fn published_port_reached_from_host_address_localhost_and_hairpin() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let port = free_port();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "--expose",
        "90",
        "busybox",
        "sh",
        "-c",
        &httpd("hello", 80),
    ]);
    let host = host_address();
    assert_eq!(
        http_get_eventually(host, port, "/i", 10).as_deref(),
        Some("hello\n"),
        "via {host}:{port}"
    );
    assert_eq!(
        http_get(localhost(), port, "/i").as_deref(),
        Some("hello\n"),
        "via 127.0.0.1"
    );
    // docker's PORTS column, `port` and inspect's NetworkSettings
    assert_eq!(
        w.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
        format!("90/tcp, 0.0.0.0:{port}->80/tcp")
    );
    assert_eq!(
        w.ok(&["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(
        w.ok(&["port", "web", "80/tcp"]),
        format!("0.0.0.0:{port}\n")
    );
    let o = w.run(&["port", "web", "90"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("No public port '90/tcp' published for web"),
        "{}",
        stderr(&o)
    );
    let ip = w
        .ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])
        .trim()
        .to_string();
    let ip: IpAddr = ip.parse().unwrap_or_else(|_| panic!("address {ip:?}"));
    let ports = w.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]);
    assert_eq!(
        ports.trim(),
        format!(
            "{{\"80/tcp\":[{{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"{port}\"}}],\"90/tcp\":null}}"
        )
    );
    let mac = w.ok(&["inspect", "-f", "{{.NetworkSettings.MacAddress}}", "web"]);
    assert!(mac.starts_with("02:42:"), "{mac}");
    // hairpin: the container reaches itself through its published port on the host address
    let out = w.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        &format!("printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"),
    ]);
    assert!(out.contains("hello"), "hairpin: {out}");
    // another container on the default bridge reaches it by address
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80"),
    ]);
    assert!(out.contains("hello"), "container to container: {out}");
    let id = full_id(&w, "web");
    w.ok(&["rm", "-f", "web"]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    assert_eq!(http_get(localhost(), port, "/i"), None, "unpublished");
}

#[test]
fn publish_all_takes_ports_from_the_configured_range() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    // a range of its own, so parallel tests do not compete for it
    let low = free_port().clamp(20000, 60000);
    let cfg = w.dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        format!("{{\"published-port-range\": \"{low}-{}\"}}", low + 9),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = w.command(args).env("WHARF_CONFIG", &cfg).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(&[
        "run",
        "-d",
        "--name",
        "pall",
        "-P",
        "--expose",
        "7000-7001",
        "-p",
        "7002",
        "busybox",
        "sh",
        "-c",
        &format!("({}) & {}", httpd("seven", 7000), httpd("two", 7002)),
    ]);
    let lines = run(&["port", "pall"]);
    let mut got = Vec::new();
    for l in lines.lines() {
        let (ctr, host) = l.split_once(" -> ").unwrap();
        let hp: u16 = host.rsplit_once(':').unwrap().1.parse().unwrap();
        assert!(
            (low..=low + 9).contains(&hp),
            "{l} outside {low}-{}",
            low + 9
        );
        got.push((ctr.to_string(), hp));
    }
    let ctrs: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(ctrs, ["7000/tcp", "7001/tcp", "7002/tcp"], "{lines}");
    let p7000 = got[0].1;
    let p7002 = got[2].1;
    assert_eq!(
        http_get_eventually(host_address(), p7000, "/i", 10).as_deref(),
        Some("seven\n")
    );
    assert_eq!(
        http_get_eventually(localhost(), p7002, "/i", 10).as_deref(),
        Some("two\n")
    );
    let id = full_id(&w, "pall");
    w.ok(&["rm", "-f", "pall"]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
}

#[test]
fn user_network_names_and_aliases_resolve() {
    let w = Wharf::new().with_busybox();
    let net = UserNetwork::create(&w, "app", "10.213.7.0/24");
    let _c = Cleanup(&w);
    w.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "300",
    ]);
    let db_ip = w
        .ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.app.IPAddress}}",
            "db",
        ])
        .trim()
        .to_string();
    assert!(db_ip.starts_with("10.213.7."), "{db_ip}");
    // docker leaves the top-level address empty off the default bridge
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"])
            .trim(),
        ""
    );
    assert_eq!(
        w.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.app.Aliases}} {{.NetworkSettings.Networks.app.NetworkID}} {{.HostConfig.NetworkMode}}",
            "db"
        ])
        .trim(),
        format!("[\"database\"] {} app", net.rec.id)
    );
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup db; nslookup database; ping -c1 -W3 db",
    ]);
    assert!(
        out.contains(&format!("nameserver {}\n", net.rec.gateway)),
        "{out}"
    );
    assert!(out.contains("options ndots:0"), "{out}");
    assert_eq!(
        out.matches(&format!("Address: {db_ip}")).count(),
        2,
        "name and alias: {out}"
    );
    assert!(out.contains("1 packets received"), "{out}");
    // an unknown name is not answered with an address
    let o = w.run(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "nosuchcontainer",
    ]);
    assert!(!stdout(&o).contains("Address: 10.213.7."), "{}", stdout(&o));
    // the default bridge has no embedded DNS: the host's resolvers (docker's rule)
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = w.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains(&net.rec.gateway.to_string()), "{resolv}");
    for ns in host_resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
    {
        let ns = ns.trim();
        let loopback = ns.parse::<IpAddr>().is_ok_and(|i| i.is_loopback());
        assert_eq!(resolv.contains(ns), !loopback, "{ns}: {resolv}");
    }
    let id = full_id(&w, "db");
    w.ok(&["rm", "-f", "db"]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    assert!(!resolver_pids(&w.root()).is_empty(), "one resolver serves");
}

#[test]
fn etc_files_and_interface_options() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let out = w.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.0.0.9",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.0.0.2",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "timeout:1",
        "--mac-address",
        "02:42:0A:00:00:99",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /sys/class/net/eth0/address; ip -4 route",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    let (hosts, resolv, link) = (parts[0], parts[1], parts[2]);
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("10.0.0.9\tdb.local\n"), "{hosts}");
    let gw = link
        .lines()
        .find_map(|l| l.strip_prefix("default via "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("default route: {link}"));
    assert!(
        hosts.contains(&format!("{gw}\tgw\n")),
        "host-gateway: {hosts}"
    );
    // the container's own line comes last, with its address
    let last = hosts.lines().last().unwrap();
    assert!(last.ends_with("\tbox"), "{hosts}");
    assert_eq!(
        resolv,
        "nameserver 10.0.0.2\nsearch corp.example\noptions timeout:1\n"
    );
    assert!(link.starts_with("02:42:0a:00:00:99\n"), "{link}");
    // none: no eth0, but the files still say what was asked
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--add-host",
        "h:10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; ls /sys/class/net",
    ]);
    assert!(
        out.contains("10.1.2.3\th\n") && !out.contains("eth0"),
        "{out}"
    );
    // bad values name what is wrong, nothing is created
    for (args, want) in [
        (
            vec!["--dns", "nope"],
            "IP address is not correctly formatted: nope",
        ),
        (vec!["--add-host", "nocolon"], "bad format for add-host"),
        (vec!["--mac-address", "zz"], "zz is not a valid mac address"),
        (vec!["--dns-search", "a_b"], "a_b is not a valid domain"),
        (vec!["-p", "99999:80"], "invalid hostPort: 99999"),
        (vec!["--expose", "x"], "invalid containerPort: x"),
        (
            vec!["-p", "[::1]:8080:80"],
            "publishing on the IPv6 loopback address ::1 is not supported",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}");
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

#[test]
fn container_network_mode_and_docker_conflicts() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    w.ok(&["run", "-d", "--name", "aa", "busybox", "sleep", "300"]);
    let a_ip = w
        .ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "aa"])
        .trim()
        .to_string();
    let a_host = w
        .ok(&["inspect", "-f", "{{.Config.Hostname}}", "aa"])
        .trim()
        .to_string();
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "container:aa",
        "busybox",
        "sh",
        "-c",
        "hostname; ip -4 -o addr show eth0; tail -1 /etc/hosts",
    ]);
    let mut l = out.lines();
    assert_eq!(l.next(), Some(a_host.as_str()), "{out}");
    assert!(
        l.next().unwrap_or("").contains(&format!("{a_ip}/")),
        "{out}"
    );
    assert_eq!(
        l.next(),
        Some(format!("{a_ip}\t{a_host}").as_str()),
        "{out}"
    );
    for (args, want) in [
        (
            vec!["--network", "container:aa", "-p", "80:80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--network", "container:aa", "--expose", "80"],
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            vec!["--network", "container:aa", "-h", "x"],
            "conflicting options: hostname and the network mode",
        ),
        (
            vec!["--network", "container:aa", "--dns", "1.1.1.1"],
            "conflicting options: dns and the network mode",
        ),
        (
            vec!["--network", "container:aa", "--add-host", "h:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            vec!["--network", "host", "--mac-address", "02:42:00:00:00:01"],
            "conflicting options: mac-address and the network mode",
        ),
        (
            vec!["--network", "none", "-p", "80"],
            "conflicting options: port publishing and the none network mode",
        ),
        (
            vec!["--ip", "172.17.0.99"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["--network-alias", "x"],
            "network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            vec!["--network", "nosuchnet"],
            "network nosuchnet not found",
        ),
        (
            vec!["--network", "container:nosuch"],
            "No such container: nosuch",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    // a joiner loses the network with the container that owns it (docker's behaviour; the
    // address goes back to the pool, so the veth must not live on in the joiner)
    w.ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--network",
        "container:aa",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(w
        .ok(&["exec", "joiner", "ls", "/sys/class/net"])
        .contains("eth0"));
    w.ok(&["restart", "-t", "0", "aa"]);
    assert!(
        eventually(5, || !w
            .ok(&["exec", "joiner", "ls", "/sys/class/net"])
            .contains("eth0")),
        "the joiner still has aa's interface"
    );
    w.ok(&["rm", "-f", "joiner"]);
    // a stopped container has no namespace to join
    w.ok(&["stop", "-t", "0", "aa"]);
    let o = w.run(&[
        "run",
        "--rm",
        "--network",
        "container:aa",
        "busybox",
        "true",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("cannot join network of a non running container"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn port_already_allocated_leaves_nothing() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let taken = free_port();
    let other = free_port();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "-p",
        &format!("{taken}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("first", 80),
    ]);
    let o = w.run(&[
        "run",
        "-d",
        "--name",
        "second",
        "-p",
        &format!("{other}:81"),
        "-p",
        &format!("{taken}:80"),
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Bind for 0.0.0.0:{taken} failed: port is already allocated"
        )),
        "{}",
        stderr(&o)
    );
    let second = full_id(&w, "second");
    assert_eq!(leftovers(&w, &second), Vec::<String>::new());
    assert_eq!(
        http_get_eventually(localhost(), taken, "/i", 10).as_deref(),
        Some("first\n"),
        "the first container keeps its port"
    );
    assert_eq!(http_get(localhost(), other, "/i"), None);
    // a port some host process listens on: docker's "address already in use"
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy = l.local_addr().unwrap().port();
    let o = w.run(&[
        "run",
        "--rm",
        "-p",
        &format!("{busy}:80"),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!("0.0.0.0:{busy}: bind: address already in use")),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.ok(&["ps", "-aq"]).lines().count(), 2, "first and second");
    // the failed container starts once the port is free
    let first = full_id(&w, "first");
    w.ok(&["rm", "-f", "first"]);
    assert_eq!(leftovers(&w, &first), Vec::<String>::new());
    w.ok(&["start", "second"]);
    w.ok(&["rm", "-f", "second"]);
    assert_eq!(leftovers(&w, &second), Vec::<String>::new());
}

/// Host ports are one namespace per host: two stores (two run roots) asking for the same
/// port, by number or from a `-P` range of one port, never both get it — the second start
/// fails with docker's message and leaves nothing — and the port passes to the other store
/// once its holder is gone.
#[test]
fn two_stores_never_share_a_host_port() {
    let a = Wharf::new().with_busybox();
    let _ca = Cleanup(&a);
    let b = Wharf::new().with_busybox();
    let _cb = Cleanup(&b);
    let port = free_port();
    let web = |w: &Wharf, body: &str| {
        w.run(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            &httpd(body, 80),
        ])
    };
    let o = web(&a, "a");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = web(&b, "b");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Bind for 0.0.0.0:{port} failed: port is already allocated"
        )),
        "{}",
        stderr(&o)
    );
    let (a_web, b_web) = (full_id(&a, "web"), full_id(&b, "web"));
    assert_eq!(leftovers(&b, &b_web), Vec::<String>::new());
    assert_eq!(
        http_get_eventually(localhost(), port, "/i", 10).as_deref(),
        Some("a\n"),
        "the first store keeps its port"
    );

    // -P from a published-port-range of one port, in both stores
    let one = free_port();
    let publish_all = |w: &Wharf| {
        let cfg = w.dir.path().join("daemon.json");
        std::fs::write(
            &cfg,
            format!("{{\"published-port-range\": \"{one}-{one}\"}}"),
        )
        .unwrap();
        w.command(&[
            "run", "-d", "--name", "pall", "-P", "--expose", "7000", "busybox", "sleep", "300",
        ])
        .env("WHARF_CONFIG", &cfg)
        .output()
        .unwrap()
    };
    let o = publish_all(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        a.ok(&["port", "pall"]),
        format!("7000/tcp -> 0.0.0.0:{one}\n")
    );
    let o = publish_all(&b);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("no free host port in {one}-{one} for tcp")),
        "{}",
        stderr(&o)
    );
    let (a_pall, b_pall) = (full_id(&a, "pall"), full_id(&b, "pall"));
    assert_eq!(leftovers(&b, &b_pall), Vec::<String>::new());

    // the holder goes: the other store's container starts on the port
    a.ok(&["rm", "-f", "web", "pall"]);
    assert_eq!(leftovers(&a, &a_web), Vec::<String>::new());
    assert_eq!(leftovers(&a, &a_pall), Vec::<String>::new());
    b.ok(&["start", "web"]);
    assert_eq!(
        http_get_eventually(localhost(), port, "/i", 10).as_deref(),
        Some("b\n")
    );
    b.ok(&["rm", "-f", "web", "pall"]);
    assert_eq!(leftovers(&b, &b_web), Vec::<String>::new());
}

#[test]
fn twenty_parallel_starts_get_distinct_addresses() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    w.ok(&["run", "-d", "busybox", "sleep", "300"])
                        .trim()
                        .to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = ids
        .iter()
        .map(|id| {
            w.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id])
                .trim()
                .to_string()
        })
        .collect();
    assert!(ips.iter().all(|i| i.parse::<IpAddr>().is_ok()), "{ips:?}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    w.ok(&args);
    for id in &ids {
        assert_eq!(leftovers(&w, id), Vec::<String>::new(), "{id}");
    }
}

#[test]
fn killed_monitor_and_killed_cli_leave_nothing() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    // a killed monitor: its container dies with it; `ps` notices and releases
    let port = free_port();
    let id = w
        .ok(&[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            &httpd("m", 80),
        ])
        .trim()
        .to_string();
    assert!(http_get_eventually(localhost(), port, "/i", 10).is_some());
    let st = std::fs::read_to_string(w.root().join("containers").join(&id).join("state.json"))
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_default();
    let monitor = v["MonitorPid"]
        .as_i64()
        .or(v["monitor_pid"].as_i64())
        .unwrap_or(0);
    assert!(monitor > 0, "monitor pid in {st}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        eventually(10, || {
            w.ok(&["ps", "-a"]);
            leftovers(&w, &id).is_empty()
        }),
        "{:?}",
        leftovers(&w, &id)
    );
    w.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());

    // kill -9 of a foreground `run` at points from mid-start to running
    for delay_ms in [5u64, 20, 40, 80, 150, 400] {
        let name = format!("fg{delay_ms}");
        let p = free_port();
        let mut child = w
            .command(&[
                "run",
                "--name",
                &name,
                "-p",
                &format!("{p}:80"),
                "busybox",
                "sleep",
                "300",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // the next command reconciles the killed client's container
        let ps = w.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
        let Some(id) = ps
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)
        else {
            continue; // killed before the record was written
        };
        assert!(
            eventually(10, || {
                w.ok(&["ps", "-a"]);
                leftovers(&w, &id).is_empty()
            }),
            "killed after {delay_ms} ms: {:?}",
            leftovers(&w, &id)
        );
        w.ok(&["rm", "-f", &id]);
        assert_eq!(leftovers(&w, &id), Vec::<String>::new(), "{delay_ms} ms");
    }
}

#[test]
fn legacy_iptables_end_to_end() {
    if wharf_engine::network::iptables::Iptables::find().is_none() {
        eprintln!("SKIP: no legacy iptables (apt-get install iptables)");
        return;
    }
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let legacy = |args: &[&str]| {
        let o = w
            .command(args)
            .env("WHARF_DISABLE", "nftables")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let port = free_port();
    let id = legacy(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("legacy", 80),
    ])
    .trim()
    .to_string();
    assert_eq!(
        http_get_eventually(host_address(), port, "/i", 10).as_deref(),
        Some("legacy\n")
    );
    assert_eq!(
        http_get(localhost(), port, "/i").as_deref(),
        Some("legacy\n")
    );
    let rules = stdout(&sh(
        "iptables-legacy -w -t nat -S WHARF-PORTS 2>&1 || iptables -w -t nat -S WHARF-PORTS",
    ));
    assert!(rules.contains(&format!("wharf:ctr:{id}")), "{rules}");
    legacy(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    assert_eq!(http_get(localhost(), port, "/i"), None);
}

/// A store that goes away without a word (a deleted data-root, a benchmark's temp dir) leaves
/// its default network's subnet on the shared `wharf0`: the next store that makes its own
/// default network takes it off (address and rules), so the address pools never run dry.
#[test]
fn a_deleted_stores_default_network_is_reclaimed() {
    let a = Wharf::new().with_busybox();
    a.ok(&["run", "--rm", "busybox", "true"]);
    let store = wharf_store::Store::open(&a.root()).unwrap();
    let net = store.network("bridge").unwrap();
    drop(store);
    let on_bridge =
        |gw: IpAddr| stdout(&sh("ip -4 -o addr show dev wharf0")).contains(&format!("inet {gw}/"));
    let has_rules = |id: &str| {
        wharf_engine::network::firewall::Firewall::open()
            .and_then(|mut f| f.owners())
            .unwrap()
            .iter()
            .any(|(o, _)| *o == wharf_engine::network::firewall::Owner::Network(id.into()))
    };
    assert!(on_bridge(net.gateway) && has_rules(&net.id));
    // the store disappears from under wharf
    let gone = a.dir.path().join("root-gone");
    std::fs::rename(a.root(), &gone).unwrap();
    let b = Wharf::new().with_busybox();
    b.ok(&["run", "--rm", "busybox", "true"]);
    assert!(!has_rules(&net.id), "rules of {} left", net.id);
    assert!(
        !std::path::Path::new(&format!("/run/wharf-subnets/{}.json", net.id)).exists(),
        "still registered"
    );
    // its subnet is free again: b may have taken it, else it is off the bridge
    let b_net = wharf_store::Store::open(&b.root())
        .unwrap()
        .network("bridge")
        .unwrap();
    // (or another live store running in parallel took the freed subnet meanwhile: then its
    // registry entry names that gateway)
    let taken_by_other = || {
        std::fs::read_dir("/run/wharf-subnets")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .any(|v| {
                v["gateway"].as_str() == Some(net.gateway.to_string().as_str())
                    && v["root"]
                        .as_str()
                        .is_some_and(|r| std::path::Path::new(r).exists())
            })
    };
    assert!(
        b_net.gateway == net.gateway || !on_bridge(net.gateway) || taken_by_other(),
        "{} still on wharf0",
        net.gateway
    );
    std::fs::rename(&gone, a.root()).unwrap();
}

/// A store's default network made before a reboot (`/run` starts empty: nothing registered,
/// no address on `wharf0`) whose subnet another store took meanwhile moves to a free subnet at
/// its first start: two stores never share a gateway, and the other store keeps its address.
#[test]
fn a_default_network_from_before_a_reboot_leaves_a_taken_subnet() {
    let a = Wharf::new().with_busybox();
    a.ok(&["run", "--rm", "busybox", "true"]);
    let old = wharf_store::Store::open(&a.root())
        .unwrap()
        .network("bridge")
        .unwrap();
    // "reboot" for a: its address, rules, run-root state and registration go
    forget_default_network(&a.root(), &a.run_root());
    // b is told to take exactly that subnet (daemon.json's bip)
    let b = Wharf::new().with_busybox();
    let cfg = b.dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"bip": "{}/{}"}}"#, old.gateway, old.subnet.prefix()),
    )
    .unwrap();
    let o = b
        .command(&["run", "--rm", "busybox", "true"])
        .env("WHARF_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let b_net = wharf_store::Store::open(&b.root())
        .unwrap()
        .network("bridge")
        .unwrap();
    assert_eq!(b_net.gateway, old.gateway);
    // a's first start after its "reboot": a new default network on another subnet
    let out = a.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    let new = wharf_store::Store::open(&a.root())
        .unwrap()
        .network("bridge")
        .unwrap();
    assert_ne!(new.id, old.id);
    assert!(
        !new.subnet.overlaps(&old.subnet),
        "{} vs {}",
        new.subnet,
        old.subnet
    );
    assert!(!out.contains(&format!("inet {}", old.gateway)), "{out}");
    let on_bridge = stdout(&sh("ip -4 -o addr show dev wharf0"));
    assert!(
        on_bridge.contains(&format!("inet {}/", old.gateway)),
        "b's gateway stays: {on_bridge}"
    );
    assert!(
        on_bridge.contains(&format!("inet {}/", new.gateway)),
        "{on_bridge}"
    );
}

/// Every start of a restart policy's loop takes the network again and every exit gives it
/// back: while it runs its port is published, once it gave up nothing is left.
#[test]
fn restarts_take_and_release_the_network_each_time() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let port = free_port();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            &format!("({}) & sleep 1; exit 3", httpd("r", 80)),
        ])
        .trim()
        .to_string();
    assert_eq!(
        http_get_eventually(localhost(), port, "/i", 10).as_deref(),
        Some("r\n")
    );
    assert!(
        eventually(30, || {
            w.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &id])
                .trim()
                == "exited 2"
        }),
        "{}",
        w.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &id])
    );
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    assert_eq!(http_get(localhost(), port, "/i"), None);
    // and it starts again on the same port
    w.ok(&["start", &id]);
    assert_eq!(
        http_get_eventually(localhost(), port, "/i", 10).as_deref(),
        Some("r\n")
    );
    w.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
}
