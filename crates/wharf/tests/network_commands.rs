//! The network commands through the binary, against the real host: `network create` makes
//! a bridge and its firewall rules at once (and `rm` removes them), `ls` (columns, `-q`,
//! `--no-trunc`, `--filter`, `--format`), `inspect` (docker's object, the predefined
//! networks), refusals naming their flag, `rm` of a network with active endpoints, `prune`,
//! `connect`/`disconnect` refusals; reconciliation of fabricated leftovers by `system boot`
//! and `network ls` (allocations, endpoints, firewall rules, veths of a dead container; the
//! bridge and rules of a network whose record is gone), leaving what is alive or belongs to
//! another store; and `system check`'s firewall lines.
//!
//! Each test uses its own subnets (10.231.N.0/24) and counts only its own objects: other
//! wharf stores (tests running in parallel) share the host's links and firewall.

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use wharf_sys::netlink::nft::{self, Batch, Expr, TableFamily};
use wharf_sys::netlink::{link, Family, Socket};

/// Removes the test's networks (and containers) when dropped, also when it panics.
struct NetCleanup<'a>(&'a Wharf);

impl Drop for NetCleanup<'_> {
    fn drop(&mut self) {
        let ids = stdout(&self.0.run(&["ps", "-aq", "--no-trunc"]));
        let mut args = vec!["rm", "-f"];
        args.extend(ids.lines().filter(|l| !l.is_empty()));
        if args.len() > 2 {
            let _ = self.0.run(&args);
        }
        let _ = self.0.run(&["network", "prune", "-f"]);
    }
}

fn link_exists(name: &str) -> bool {
    let mut s = Socket::open(Family::Route).unwrap();
    link::get(&mut s, name).unwrap().is_some()
}

/// wharf's rules (own table and docker's `ip filter`) carrying `comment`.
fn rules_with(comment: &str) -> usize {
    let mut s = Socket::open(Family::Netfilter).unwrap();
    let mut n = 0;
    for (fam, table) in [(TableFamily::Ip, "wharf"), (TableFamily::Ip, "filter")] {
        n += nft::rules(&mut s, fam, table)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.comment.as_deref() == Some(comment))
            .count();
    }
    n
}

fn inspect(w: &Wharf, name: &str) -> Value {
    let out = w.ok(&["network", "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn fail(w: &Wharf, args: &[&str]) -> String {
    let o = w.run(args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    stderr(&o)
}

#[test]
fn create_ls_inspect_rm() {
    let w = Wharf::new();
    let _c = NetCleanup(&w);
    let id = w
        .ok(&[
            "network",
            "create",
            "--subnet",
            "10.231.1.0/24",
            "--ip-range",
            "10.231.1.128/25",
            "--gateway",
            "10.231.1.254",
            "--label",
            "tier=front",
            "--internal",
            "--attachable",
            "app",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // the bridge and its rules exist right away, as docker's do
    let bridge = format!("wh-{}", &id[..12]);
    assert!(link_exists(&bridge), "{bridge}");
    let comment = format!("wharf:net:{id}");
    assert!(rules_with(&comment) >= 3, "rules of {comment}");

    // ls: docker's columns, predefined networks included, sorted by name
    let ls = w.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert!(
        lines[0].starts_with("NETWORK ID")
            && lines[0].contains("DRIVER")
            && lines[0].ends_with("SCOPE"),
        "{ls}"
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["app", "bridge", "host", "none"], "{ls}");
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].contains("bridge    local"),
        "{ls}"
    );
    assert!(ls.contains("none      null"), "{ls}");
    let q = w.ok(&[
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "type=custom",
    ]);
    assert_eq!(q.trim(), id);
    let q = w.ok(&["network", "ls", "-q", "--filter", "label=tier=front"]);
    assert_eq!(q.trim(), &id[..12]);
    let q = w.ok(&["network", "ls", "-q", "--filter", "type=builtin"]);
    assert_eq!(q.lines().count(), 3, "{q}");
    let f = w.ok(&[
        "network",
        "ls",
        "--filter",
        "name=ap",
        "--format",
        "{{.Name}} {{.Driver}} {{.Internal}} {{.Labels}}",
    ]);
    assert_eq!(f, "app bridge true tier=front\n");
    let e = fail(&w, &["network", "ls", "--filter", "type=weird"]);
    assert!(e.contains("invalid filter 'type=weird'"), "{e}");

    // inspect: docker's object
    let v = inspect(&w, "app");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Internal"], true);
    assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.231.1.0/24");
    assert_eq!(v["IPAM"]["Config"][0]["IPRange"], "10.231.1.128/25");
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.231.1.254");
    assert_eq!(v["Labels"]["tier"], "front");
    assert_eq!(v["Containers"], serde_json::json!({}));
    assert_eq!(inspect(&w, &id[..10])["Name"], "app", "by id prefix");
    assert_eq!(inspect(&w, "host")["Driver"], "host");
    assert_eq!(inspect(&w, "none")["Driver"], "null");
    let b = inspect(&w, "bridge");
    assert_eq!(b["Options"]["com.docker.network.bridge.name"], "wharf0");
    let t = w.ok(&["network", "inspect", "-f", "{{.Name}} {{.Internal}}", "app"]);
    assert_eq!(t, "app true\n");

    // refusals, each naming its flag or network; nothing half-created
    for (args, want) in [
        (
            vec!["--subnet", "10.231.1.0/25", "x"],
            "invalid --subnet: invalid pool request: Pool overlaps",
        ),
        (
            vec!["--subnet", "10.231.2.0/24", "--gateway", "10.231.3.1", "x"],
            "invalid --gateway: no matching subnet for gateway 10.231.3.1",
        ),
        (
            vec![
                "--subnet",
                "10.231.2.0/24",
                "--gateway",
                "10.231.2.300",
                "x",
            ],
            "invalid --gateway \"10.231.2.300\": not an IP address",
        ),
        (
            vec!["--subnet", "10.231.2.0/33", "x"],
            "invalid --subnet \"10.231.2.0/33\"",
        ),
        (
            vec![
                "--subnet",
                "10.231.2.0/24",
                "--ip-range",
                "10.231.9.0/25",
                "x",
            ],
            "invalid --ip-range: no matching subnet for range",
        ),
        (
            vec!["--gateway", "10.231.2.1", "x"],
            "must have a corresponding subnet (--subnet)",
        ),
        (
            vec!["-d", "overlay", "x"],
            "network driver \"overlay\" is not supported",
        ),
        (
            vec!["--ipv6", "x"],
            "non-overlapping IPv6 address pool to assign to the network",
        ),
        (
            vec!["--subnet", "fd00:231::/64", "x"],
            "invalid --subnet fd00:231::/64: an IPv6 subnet needs --ipv6",
        ),
        (
            vec!["--ipv6", "--subnet", "fd00::/64", "x"],
            "a subnet of the host's own interfaces",
        ),
        (
            vec![
                "--ipv6",
                "--subnet",
                "fd00:231::/64",
                "--ip-range",
                "fd00:231::/80",
                "x",
            ],
            "an IPv6 --ip-range (fd00:231::/80) is not supported yet",
        ),
        (
            vec![
                "--ipv6",
                "--subnet",
                "10.231.8.0/24",
                "--gateway",
                "fd00:231::1",
                "x",
            ],
            "invalid --gateway fd00:231::1: it is in no --subnet of the network",
        ),
        (
            vec!["-o", "com.docker.network.bridge.enable_icc=false", "x"],
            "--opt com.docker.network.bridge.enable_icc=false is not supported yet",
        ),
        (
            vec!["-o", "com.docker.network.bridge.name=lo", "x"],
            "an interface of that name exists on the host",
        ),
        (
            vec!["--subnet", "10.231.2.0/24", "app"],
            "network with name app already exists",
        ),
        (
            vec!["--subnet", "10.231.2.0/24", "bridge"],
            "network with name bridge already exists",
        ),
    ] {
        let mut a = vec!["network", "create"];
        a.extend(args.iter().copied());
        let e = fail(&w, &a);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = fail(&w, &["network", "inspect", "nope"]);
    assert!(e.contains("network nope not found"), "{e}");
    // what is found is printed, what is not is named
    let o = w.run(&[
        "network",
        "inspect",
        "-f",
        "{{.Name}}",
        "app",
        "nope",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "app\nnone\n");
    assert!(
        stderr(&o).contains("network nope not found"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        w.ok(&["network", "ls", "-q", "--filter", "type=custom"])
            .lines()
            .count(),
        1
    );

    // rm: predefined refused, unknown named, the network removed with its bridge and rules
    let o = w.run(&["network", "rm", "bridge", "host", "nope", "app"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("bridge is a pre-defined network and cannot be removed"),
        "{e}"
    );
    assert!(
        e.contains("host is a pre-defined network and cannot be removed"),
        "{e}"
    );
    assert!(e.contains("network nope not found"), "{e}");
    assert_eq!(stdout(&o), "app\n");
    assert!(!link_exists(&bridge));
    assert_eq!(rules_with(&comment), 0);
    assert!(w
        .ok(&["network", "ls", "-q", "--filter", "type=custom"])
        .is_empty());
    assert!(w.run(&["network", "rm", "-f", "app"]).status.success());
    assert!(!w.run_root().join("networks").join(&id).exists());
    let ev = w.ok(&[
        "events",
        "--until",
        "0s",
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(ev, "create app\ndestroy app\n");
    for f in ["network=app".to_string(), format!("network={}", &id[..12])] {
        let ev = w.ok(&[
            "events",
            "--until",
            "0s",
            "--filter",
            &f,
            "--format",
            "{{.Action}}",
        ]);
        assert_eq!(ev, "create\ndestroy\n", "{f}");
    }
    let ev = w.ok(&["events", "--until", "0s", "--filter", "network=other"]);
    assert!(ev.is_empty(), "{ev}");
}

/// An endpoint of a running container (fabricated: this build does not start containers on
/// bridge networks yet) keeps its network: `rm` and `prune` refuse it, `inspect` lists it;
/// once the container is gone the stale endpoint no longer counts.
#[test]
fn rm_and_prune_keep_a_network_with_active_endpoints() {
    let w = Wharf::new().with_busybox();
    let _c = NetCleanup(&w);
    let id = w
        .ok(&["network", "create", "--subnet", "10.231.4.0/24", "busy"])
        .trim()
        .to_string();
    w.ok(&[
        "network",
        "create",
        "--subnet",
        "10.231.5.0/24",
        "--label",
        "x=1",
        "idle",
    ]);
    w.ok(&["network", "create", "--subnet", "10.231.6.0/24", "other"]);
    let cid = w
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "web",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let ep_dir = w.run_root().join("networks").join(&id).join("endpoints");
    std::fs::create_dir_all(&ep_dir).unwrap();
    std::fs::write(
        ep_dir.join(format!("{cid}.json")),
        serde_json::json!({
            "container_id": cid, "name": "web", "network_id": id,
            "ip": "10.231.4.2", "prefix": 24, "gateway": "10.231.4.1",
            "mac": "02:42:0a:e7:04:02",
        })
        .to_string(),
    )
    .unwrap();

    let e = fail(&w, &["network", "rm", "busy"]);
    assert!(
        e.contains(&format!(
            "error while removing network: network busy id {id} has active endpoints"
        )),
        "{e}"
    );
    let v = inspect(&w, "busy");
    assert_eq!(v["Containers"][&cid]["Name"], "web");
    assert_eq!(v["Containers"][&cid]["IPv4Address"], "10.231.4.2/24");
    assert_eq!(v["Containers"][&cid]["MacAddress"], "02:42:0a:e7:04:02");
    let used = w.ok(&[
        "network",
        "ls",
        "--filter",
        "dangling=true",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(used, "idle\nother\n");

    // prune: only what passes the filter, never a network in use
    let out = w.ok(&["network", "prune", "-f", "--filter", "label=x"]);
    assert_eq!(out, "Deleted Networks:\nidle\n\n");
    let out = w.ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\nother\n\n");
    let left = w.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(left, "bridge\nbusy\nhost\nnone\n");
    assert!(w.ok(&["network", "prune", "-f"]).is_empty());

    // connect/disconnect: docker's refusals (a `none` container joins no network)
    let e = fail(&w, &["network", "connect", "busy", "web"]);
    assert!(
        e.contains("container cannot be connected to multiple networks with one of the networks in private (none) mode"),
        "{e}"
    );
    let e = fail(&w, &["network", "connect", "host", "web"]);
    assert!(
        e.contains("container cannot be disconnected from host network"),
        "{e}"
    );
    let e = fail(&w, &["network", "disconnect", "nope", "web"]);
    assert!(e.contains("network nope not found"), "{e}");

    w.ok(&["rm", "-f", "web"]);
    // the leftover endpoint file of a container that is gone does not hold the network
    w.ok(&["network", "rm", "busy"]);
    assert!(!ep_dir.exists());
}

/// A wharf root's leftovers as a crash leaves them, for one container that is not running
/// (`dead`), one that runs (`live`) and one of another store (`foreign`): allocations,
/// endpoint, firewall rule, host veth; plus a network whose record is gone (its bridge,
/// rule and run-root state).
struct Leftovers {
    run_root: PathBuf,
    veths: Vec<String>,
    comments: Vec<String>,
    bridges: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut s = Socket::open(Family::Route).unwrap();
        for l in self.veths.iter().chain(&self.bridges) {
            let _ = link::delete(&mut s, l);
        }
        let mut n = Socket::open(Family::Netfilter).unwrap();
        let rules = nft::rules(&mut n, TableFamily::Ip, "wharf").unwrap_or_default();
        let mut b = Batch::new();
        for r in rules.iter().filter(|r| {
            r.comment
                .as_ref()
                .is_some_and(|c| self.comments.contains(c))
        }) {
            b.del_rule(TableFamily::Ip, "wharf", &r.chain, r.handle);
        }
        let _ = b.commit(&mut n);
    }
}

fn fabricate_container(l: &mut Leftovers, net: &str, cid: &str, ip: &str, port: u16) {
    let root = l.run_root.clone();
    let ips = root.join("networks").join(net).join("ips");
    std::fs::create_dir_all(&ips).unwrap();
    std::fs::write(ips.join(ip), cid).unwrap();
    std::fs::create_dir_all(root.join("ports")).unwrap();
    std::fs::write(root.join("ports").join(format!("tcp-{port}")), cid).unwrap();
    let eps = root.join("networks").join(net).join("endpoints");
    std::fs::create_dir_all(&eps).unwrap();
    std::fs::write(
        eps.join(format!("{cid}.json")),
        serde_json::json!({
            "container_id": cid, "name": "x", "network_id": net, "ip": ip, "prefix": 24,
            "gateway": "10.231.8.1", "mac": "02:42:00:00:00:00",
        })
        .to_string(),
    )
    .unwrap();
    let comment = format!("wharf:ctr:{cid}");
    add_rule("ports", &comment);
    l.comments.push(comment);
    // eth0's host end and eth1's (`network connect`: one letter more)
    let mut s = Socket::open(Family::Route).unwrap();
    for suffix in ["", "g"] {
        let veth = format!("wv{}{suffix}", &cid[..12]);
        let peer = format!("wq{}{suffix}", &cid[..12]);
        link::create_veth(&mut s, &veth, &peer, None, None).unwrap();
        l.veths.push(veth);
    }
}

fn add_rule(chain: &str, comment: &str) {
    let mut n = Socket::open(Family::Netfilter).unwrap();
    let mut b = Batch::new();
    b.add_rule(
        TableFamily::Ip,
        "wharf",
        chain,
        &[Expr::Counter],
        Some(comment),
    );
    b.commit(&mut n).unwrap();
}

fn files_owned_by(run_root: &Path, cid: &str) -> usize {
    let mut n = 0;
    let mut stack = vec![run_root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b == cid.as_bytes())
                || p.file_name().and_then(|f| f.to_str()) == Some(&format!("{cid}.json"))
            {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn boot_and_ls_reconcile_leftovers() {
    if !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs nf_tables"
        );
        return;
    }
    let w = Wharf::new().with_busybox();
    let _c = NetCleanup(&w);
    let net = w
        .ok(&["network", "create", "--subnet", "10.231.8.0/24", "app"])
        .trim()
        .to_string();
    let dead = w
        .ok(&["create", "--network", "none", "busybox", "true"])
        .trim()
        .to_string();
    let live = w
        .ok(&["run", "-d", "--network", "none", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let random = |what: &str| {
        use sha2::Digest;
        let seed = format!(
            "{what} {} {:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        format!("{:x}", sha2::Sha256::digest(seed.as_bytes()))
    };
    let foreign = random("foreign container");
    let gone_net = random("removed network");
    let mut l = Leftovers {
        run_root: w.run_root(),
        veths: Vec::new(),
        comments: Vec::new(),
        bridges: Vec::new(),
    };
    let port = 40000 + (std::process::id() % 5000) as u16;
    fabricate_container(&mut l, &net, &dead, "10.231.8.5", port);
    fabricate_container(&mut l, &net, &live, "10.231.8.6", port + 1);
    // another store's container: only its rule and veth are on this host
    let fc = format!("wharf:ctr:{foreign}");
    add_rule("ports", &fc);
    l.comments.push(fc.clone());
    let fv = format!("wv{}", &foreign[..12]);
    let mut s = Socket::open(Family::Route).unwrap();
    link::create_veth(&mut s, &fv, &format!("wq{}", &foreign[..12]), None, None).unwrap();
    l.veths.push(fv.clone());
    // a network of this store whose record is gone: bridge, rule, run-root state
    let gb = format!("wh-{}", &gone_net[..12]);
    link::create_bridge(&mut s, &gb, None).unwrap();
    l.bridges.push(gb.clone());
    let gc = format!("wharf:net:{gone_net}");
    add_rule("forward", &gc);
    l.comments.push(gc.clone());
    let gstate = w.run_root().join("networks").join(&gone_net);
    std::fs::create_dir_all(&gstate).unwrap();
    std::fs::write(gstate.join("bridge"), &gb).unwrap();

    w.ok(&["system", "boot"]);

    // the dead container's leftovers are gone
    assert_eq!(files_owned_by(&w.run_root(), &dead), 0);
    assert_eq!(rules_with(&format!("wharf:ctr:{dead}")), 0);
    assert!(!link_exists(&format!("wv{}", &dead[..12])));
    assert!(!link_exists(&format!("wv{}g", &dead[..12])));
    // the removed network's too
    assert!(!link_exists(&gb));
    assert_eq!(rules_with(&gc), 0);
    assert!(!gstate.exists());
    // what is alive, or not this store's, stays
    assert_eq!(files_owned_by(&w.run_root(), &live), 3);
    assert_eq!(rules_with(&format!("wharf:ctr:{live}")), 1);
    assert!(link_exists(&format!("wv{}", &live[..12])));
    assert!(link_exists(&format!("wv{}g", &live[..12])));
    assert_eq!(rules_with(&fc), 1);
    assert!(link_exists(&fv));
    // the network that has its record keeps its bridge and rules
    assert!(link_exists(&format!("wh-{}", &net[..12])));
    assert!(rules_with(&format!("wharf:net:{net}")) > 0);

    // the live one dies (its release has no network step yet): `network ls` reconciles it
    w.ok(&["rm", "-f", &live]);
    w.ok(&["network", "ls"]);
    assert_eq!(files_owned_by(&w.run_root(), &live), 0);
    assert_eq!(rules_with(&format!("wharf:ctr:{live}")), 0);
    assert!(!link_exists(&format!("wv{}", &live[..12])));
    assert!(!link_exists(&format!("wv{}g", &live[..12])));
    assert_eq!(rules_with(&fc), 1, "another store's rule stays");
}

/// A start in flight (its CLI holds the container's client lock; the state does not say
/// running yet) keeps its allocations through a reconciliation; once the lock is gone
/// without the container running (the CLI was killed), they are freed.
#[test]
fn a_start_in_flight_keeps_its_allocations() {
    let w = Wharf::new().with_busybox();
    let _c = NetCleanup(&w);
    let net = w
        .ok(&["network", "create", "--subnet", "10.231.10.0/24", "app"])
        .trim()
        .to_string();
    let cid = w
        .ok(&["create", "--network", "none", "busybox", "true"])
        .trim()
        .to_string();
    let ips = w.run_root().join("networks").join(&net).join("ips");
    std::fs::create_dir_all(&ips).unwrap();
    std::fs::write(ips.join("10.231.10.2"), &cid).unwrap();
    let dir = w.run_root().join("containers").join(&cid);
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("client.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
    w.ok(&["network", "ls"]);
    assert!(ips.join("10.231.10.2").exists(), "freed under a live start");
    let e = fail(&w, &["network", "rm", "app"]);
    assert!(e.contains("has active endpoints"), "{e}");
    drop(held);
    w.ok(&["network", "ls"]);
    assert!(
        !ips.join("10.231.10.2").exists(),
        "kept after the start died"
    );
    w.ok(&["network", "rm", "app"]);
}

#[test]
fn system_check_names_the_firewall() {
    let w = Wharf::new();
    let out = w.ok(&["system", "check"]);
    for f in [
        "nf_tables",
        "iptables (legacy)",
        "firewall backend",
        "br_netfilter",
        "ip_forward",
        "forward policy",
    ] {
        assert!(out.lines().any(|l| l.starts_with(f)), "no {f} line: {out}");
    }
    let backend = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("firewall backend"))
            .unwrap()
            .to_string()
    };
    if nft::available() {
        assert!(
            backend(&out).contains("ok") && backend(&out).contains("nftables"),
            "{out}"
        );
    }
    let o = w
        .command(&["system", "check"])
        .env("WHARF_DISABLE", "nftables")
        .output()
        .unwrap();
    let forced = stdout(&o);
    assert!(
        forced
            .lines()
            .any(|l| l.starts_with("nf_tables") && l.contains("WHARF_DISABLE=nftables")),
        "{forced}"
    );
    let b = backend(&forced);
    assert!(
        (b.contains("degraded") && b.contains("legacy iptables")) || b.contains("missing"),
        "{forced}"
    );
}
