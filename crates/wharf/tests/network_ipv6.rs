//! Dual-stack bridge networks through the binary, with real traffic: `network create --ipv6`,
//! a container reached over IPv6 by name from another one (embedded DNS answering AAAA), a
//! port published on the host's IPv6 address and on `::1`, hairpin over IPv6, `--ip6`,
//! docker's inspect fields, the default bridge with daemon.json's `ipv6`/`fixed-cidr-v6`, the
//! legacy ip6tables path — and that `rm -f` and `network rm` leave no IPv6 address,
//! allocation or rule behind. Skipped when the host has no IPv6 (a failure under CI=true).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::net::*;
use common::*;
use std::net::IpAddr;
use wharf_engine::network::firewall::{Firewall, Owner};

/// The host's IPv6 address, or `None` (skip) when it has none.
fn host6() -> Option<IpAddr> {
    let a = host_address6();
    if a.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the host has no global IPv6 address"
        );
        eprintln!("SKIP: the host has no global IPv6 address");
    }
    a
}

fn httpd(body: &str) -> String {
    format!("mkdir -p /w && echo {body} > /w/i && exec httpd -f -p 80 -h /w")
}

/// A network made with `network create` (as a user would), removed on drop after the test's
/// containers (declare it before `Cleanup`), with the test store's resolver.
struct CliNetwork<'a> {
    w: &'a Wharf,
    name: String,
    env: Vec<(&'static str, &'static str)>,
    id: String,
}

impl<'a> CliNetwork<'a> {
    fn create(
        w: &'a Wharf,
        name: &str,
        flags: &[&str],
        env: &[(&'static str, &'static str)],
    ) -> CliNetwork<'a> {
        let mut a = vec!["network", "create"];
        a.extend_from_slice(flags);
        a.push(name);
        let o = w.command(&a).envs(env.iter().copied()).output().unwrap();
        assert!(o.status.success(), "{a:?}: {}", stderr(&o));
        CliNetwork {
            w,
            name: name.into(),
            env: env.to_vec(),
            id: stdout(&o).trim().to_string(),
        }
    }

    /// Every rule the network owns, in every firewall backend in use.
    fn rules(&self) -> usize {
        owned_rules(&Owner::Network(self.id.clone()))
    }
}

impl Drop for CliNetwork<'_> {
    fn drop(&mut self) {
        stop_resolver(&self.w.root());
        let _ = self
            .w
            .command(&["network", "rm", &self.name])
            .envs(self.env.iter().copied())
            .output();
    }
}

fn owned_rules(owner: &Owner) -> usize {
    let legacy = Firewall::open_legacy()
        .ok()
        .filter(|_| std::path::Path::new("/proc/net/ip6_tables_names").exists());
    [Firewall::open().ok(), legacy]
        .into_iter()
        .flatten()
        .map(|mut fw| {
            fw.owners()
                .unwrap_or_default()
                .into_iter()
                .filter(|(o, _)| o == owner)
                .map(|(_, n)| n)
                .sum::<usize>()
        })
        .sum()
}

fn addresses_of(dev: &str) -> String {
    stdout(&sh(&format!("ip -o addr show dev {dev} 2>/dev/null")))
}

#[test]
fn dual_stack_network_by_name_published_port_and_release() {
    let Some(host6) = host6() else { return };
    let w = Wharf::new().with_busybox();
    let net = CliNetwork::create(
        &w,
        "app6",
        &[
            "--ipv6",
            "--subnet",
            "10.214.6.0/24",
            "--subnet",
            "fd00:214:6::/64",
        ],
        &[],
    );
    let _c = Cleanup(&w);
    // docker's fields: EnableIPv6, both subnets in IPAM.Config, the IPv6 column
    let v = w.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{json .IPAM.Config}}",
        "app6",
    ]);
    assert!(v.starts_with("true "), "{v}");
    for want in [
        "\"Subnet\":\"10.214.6.0/24\"",
        "\"Gateway\":\"10.214.6.1\"",
        "\"Subnet\":\"fd00:214:6::/64\"",
        "\"Gateway\":\"fd00:214:6::1\"",
    ] {
        assert!(v.contains(want), "{want}: {v}");
    }
    assert!(w
        .ok(&["network", "ls", "--format", "{{.Name}} {{.IPv6}}"])
        .lines()
        .any(|l| l == "app6 true"));

    let port = free_port();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "app6",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("hello6"),
    ]);
    let id = full_id(&w, "web6");
    let bridge = format!("wh-{}", &net.id[..12]);
    assert!(
        addresses_of(&bridge).contains("inet6 fd00:214:6::1/64"),
        "{}",
        addresses_of(&bridge)
    );
    let six = w.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app6.GlobalIPv6Address}} {{.NetworkSettings.Networks.app6.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.app6.IPv6Gateway}}",
        "web6",
    ]);
    assert_eq!(six.trim(), "fd00:214:6::2 64 fd00:214:6::1");
    let eps = w.ok(&["network", "inspect", "-f", "{{json .Containers}}", "app6"]);
    assert!(
        eps.contains("\"IPv4Address\":\"10.214.6.2/24\"")
            && eps.contains("\"IPv6Address\":\"fd00:214:6::2/64\""),
        "{eps}"
    );
    // published on both families, as docker lists them
    let ports = w.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(
        ports.contains(&format!("0.0.0.0:{port}->80/tcp"))
            && ports.contains(&format!("[::]:{port}->80/tcp")),
        "{ports}"
    );
    // the host reaches it over IPv6: its own address and ::1; IPv4 still works
    assert_eq!(
        http_get_eventually(host6, port, "/i", 10).as_deref(),
        Some("hello6\n"),
        "via [{host6}]:{port}"
    );
    // not on ::1: refused (the kernel drops replies to ::1 from a bridge; docs/networking.md)
    assert_eq!(http_get("::1".parse().unwrap(), port, "/i"), None);
    assert_eq!(
        http_get(host_address(), port, "/i").as_deref(),
        Some("hello6\n")
    );
    // hairpin over IPv6
    let out = w.ok(&[
        "exec",
        "web6",
        "sh",
        "-c",
        // (busybox's static wget crashes on IPv6 literals: nc)
        &format!(
            "printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host6} {port}; grep fd00 /etc/hosts"
        ),
    ]);
    assert!(out.contains("hello6"), "hairpin: {out}");
    let hostname = w.ok(&["inspect", "-f", "{{.Config.Hostname}}", "web6"]);
    assert!(
        out.contains(&format!("fd00:214:6::2\t{}", hostname.trim())),
        "/etc/hosts: {out}"
    );
    // another container: the name answers AAAA, ICMPv6 by name, TCP over IPv6
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "app6",
        "busybox",
        "sh",
        "-c",
        "nslookup -type=AAAA web6; echo =====; ping -6 -c1 -W3 web6; echo =====; printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 3 fd00:214:6::2 80",
    ]);
    let parts: Vec<&str> = out.split("=====\n").collect();
    assert!(parts[0].contains("Address: fd00:214:6::2"), "AAAA: {out}");
    assert!(
        parts[1].contains("from fd00:214:6::2") && parts[1].contains("1 packets received"),
        "ping -6 web6: {out}"
    );
    assert!(
        parts[2].ends_with("\r\n\r\nhello6\n"),
        "TCP over IPv6: {out}"
    );

    w.ok(&["rm", "-f", "web6"]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    assert_eq!(http_get(host6, port, "/i"), None, "unpublished");
    assert!(
        net.rules() > 0,
        "the network keeps its rules while it exists"
    );
    w.ok(&["network", "rm", "app6"]);
    assert_eq!(net.rules(), 0, "network rm leaves no rule of either family");
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists(),
        "bridge {bridge} removed"
    );
}

#[test]
fn ip6_and_ipv6_refusals() {
    let Some(host6) = host6() else { return };
    let w = Wharf::new().with_busybox();
    let _n6 = CliNetwork::create(&w, "v6net", &["--ipv6", "--subnet", "fd00:214:7::/64"], &[]);
    let _n4 = CliNetwork::create(&w, "v4net", &["--subnet", "10.214.8.0/24"], &[]);
    let _c = Cleanup(&w);
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00:214:7::99",
        "busybox",
        "sh",
        "-c",
        "ip -6 addr show dev eth0; ip -6 route",
    ]);
    assert!(out.contains("inet6 fd00:214:7::99/64"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("fd00:214:7::99/64") && !l.contains("tentative")),
        "usable at once (nodad): {out}"
    );
    assert!(out.contains("default via fd00:214:7::1"), "{out}");
    w.ok(&[
        "create",
        "--name",
        "fixed",
        "--network",
        "v6net",
        "--ip6",
        "fd00:214:7::98",
        "busybox",
        "true",
    ]);
    assert_eq!(
        w.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.v6net.IPAMConfig}}",
            "fixed"
        ])
        .trim(),
        "{\"IPv6Address\":\"fd00:214:7::98\"}"
    );
    for (args, want) in [
        (
            vec!["--network", "v4net", "--ip6", "fd00:214:8::5"],
            "invalid --ip6 fd00:214:8::5: network v4net has no IPv6 subnet",
        ),
        (
            vec!["--network", "v6net", "--ip6", "fd00:999::5"],
            "no configured subnet or ip-range contain the IP address fd00:999::5",
        ),
        (
            vec!["--ip6", "fd00:214:7::5"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["--network", "v6net", "-p", "[::1]:8080:80"],
            "publishing on the IPv6 loopback address ::1 is not supported",
        ),
        (
            vec!["--network", "v4net", "-p", "[::]:8080:80"],
            "publishing on the IPv6 address :: needs a network with IPv6: network v4net has none",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    w.ok(&["rm", "fixed"]);
    // published on one IPv6 host address only: not on the IPv4 ones
    let port = free_port();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--network",
            "v6net",
            "-p",
            &format!("[{host6}]:{port}:80"),
            "busybox",
            "sh",
            "-c",
            &httpd("only6"),
        ])
        .trim()
        .to_string();
    assert_eq!(
        http_get_eventually(host6, port, "/i", 10).as_deref(),
        Some("only6\n")
    );
    assert_eq!(http_get(host_address(), port, "/i"), None);
    assert_eq!(
        w.ok(&["port", &id]).trim(),
        format!("80/tcp -> [{host6}]:{port}")
    );
    w.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
}

/// daemon.json's `ipv6` + `fixed-cidr-v6`: the default network is dual-stack like docker's.
#[test]
fn default_bridge_with_daemon_ipv6() {
    if host6().is_none() {
        return;
    }
    let w = Wharf::new().with_busybox();
    let cfg = w.dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"ipv6": true, "fixed-cidr-v6": "fd00:214:9::/64", "bip": "10.214.9.1/24"}"#,
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = w.command(args).env("WHARF_CONFIG", &cfg).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let _c = Cleanup(&w);
    let id = run(&["run", "-d", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let six = run(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}",
        &id,
    ]);
    assert_eq!(six.trim(), "fd00:214:9::2 fd00:214:9::1");
    assert!(addresses_of("wharf0").contains("inet6 fd00:214:9::1/64"));
    let out = run(&["exec", &id, "sh", "-c", "ping -6 -c1 -W3 fd00:214:9::1"]);
    assert!(out.contains("1 packets received"), "{out}");
    assert_eq!(
        run(&["network", "inspect", "-f", "{{.EnableIPv6}}", "bridge"]).trim(),
        "true"
    );
    run(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    drop(_c);
    // the test store's default network leaves wharf0 with its IPv6 gateway
    let root = w.root();
    let run_root = w.run_root();
    forget_default_network(&root, &run_root);
    assert!(!addresses_of("wharf0").contains("fd00:214:9::1"));
}

#[test]
fn legacy_ip6tables_end_to_end() {
    use wharf_engine::network::iptables::Iptables;
    let Some(host6) = host6() else { return };
    if Iptables::find().is_none() || Iptables::find6().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no iptables-legacy/ip6tables-legacy"
        );
        eprintln!("SKIP: no legacy ip6tables (apt-get install iptables)");
        return;
    }
    let w = Wharf::new().with_busybox();
    let legacy = [("WHARF_DISABLE", "nftables")];
    let net = CliNetwork::create(
        &w,
        "legacy6",
        &[
            "--ipv6",
            "--subnet",
            "10.214.10.0/24",
            "--subnet",
            "fd00:214:10::/64",
        ],
        &legacy,
    );
    let _c = Cleanup(&w);
    let run = |args: &[&str]| {
        let o = w.command(args).envs(legacy).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let port = free_port();
    let id = run(&[
        "run",
        "-d",
        "--network",
        "legacy6",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("legacy6"),
    ])
    .trim()
    .to_string();
    assert_eq!(
        http_get_eventually(host6, port, "/i", 10).as_deref(),
        Some("legacy6\n")
    );
    let rules = stdout(&sh("ip6tables-legacy -w -t nat -S WHARF-PORTS"));
    assert!(rules.contains(&format!("wharf:ctr:{id}")), "{rules}");
    run(&["rm", "-f", &id]);
    assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    let rules = stdout(&sh("ip6tables-legacy -w -t nat -S WHARF-PORTS"));
    assert!(!rules.contains(&id), "{rules}");
    run(&["network", "rm", "legacy6"]);
    let all = stdout(&sh(
        "ip6tables-legacy -w -t nat -S; ip6tables-legacy -w -t filter -S",
    ));
    assert!(!all.contains(&net.id), "{all}");
}

/// A killed monitor and a foreground `run` killed mid-start on a dual-stack network: the
/// reconcile (`ps`, `system boot`) frees the IPv6 allocation and the `ip6 wharf` rules too.
#[test]
fn killed_monitor_and_killed_start_leave_no_ipv6_state() {
    let Some(host6) = host6() else { return };
    let w = Wharf::new().with_busybox();
    let _net = CliNetwork::create(
        &w,
        "kill6",
        &[
            "--ipv6",
            "--subnet",
            "10.214.11.0/24",
            "--subnet",
            "fd00:214:11::/64",
        ],
        &[],
    );
    let _c = Cleanup(&w);
    let port = free_port();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--network",
            "kill6",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            &httpd("k6"),
        ])
        .trim()
        .to_string();
    assert!(http_get_eventually(host6, port, "/i", 10).is_some());
    assert!(
        owned_rules(&Owner::Container(id.clone())) >= 4,
        "both families"
    );
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
            w.ok(&["system", "boot"]);
            leftovers(&w, &id).is_empty()
        }),
        "{:?}",
        leftovers(&w, &id)
    );
    assert_eq!(http_get(host6, port, "/i"), None);
    w.ok(&["rm", "-f", &id]);

    for delay_ms in [20u64, 80, 300] {
        let name = format!("fg6-{delay_ms}");
        let p = free_port();
        let mut child = w
            .command(&[
                "run",
                "--name",
                &name,
                "--network",
                "kill6",
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
        let o = w.run(&["inspect", "-f", "{{.Id}}", &name]);
        if !o.status.success() {
            continue; // killed before the record was written
        }
        let id = stdout(&o).trim().to_string();
        assert!(
            eventually(10, || {
                w.ok(&["ps", "-a"]);
                leftovers(&w, &id).is_empty()
            }),
            "killed after {delay_ms} ms: {:?}",
            leftovers(&w, &id)
        );
        w.ok(&["rm", "-f", &id]);
        assert_eq!(leftovers(&w, &id), Vec::<String>::new());
    }
}
