//! The netlink client against the real kernel, each test in a network namespace of its own
//! (unshared by a fresh thread, so nothing touches the host's interfaces or firewall).

use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use wharf_sys::netlink::link::{self, Netns};
use wharf_sys::netlink::nft::{
    self, matches, BaseChain, Batch, ChainType, CmpOp, Expr, Hook, TableFamily, Verdict,
};
use wharf_sys::netlink::{Family, Socket};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Run `f` on a new thread inside a new network namespace.
fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f()
    })
    .join()
    .expect("test thread")
}

#[test]
fn bridge_veth_address_route() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_netns(|| {
        let mut s = Socket::open(Family::Route).expect("socket");
        link::create_bridge(&mut s, "wbr0", Some(1500)).expect("bridge");
        // A second create is the kernel's EEXIST, reported with the operation.
        let e = link::create_bridge(&mut s, "wbr0", None).expect_err("exists");
        assert_eq!(e.errno(), Some(libc_eexist()));
        assert!(e.to_string().contains("create bridge wbr0"), "{e}");
        let br = link::index(&mut s, "wbr0").expect("index");
        link::add_address(&mut s, br, IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 16).expect("addr");
        link::set_up(&mut s, br).expect("up");

        link::create_veth(&mut s, "wv-host", "wv-peer", None, None).expect("veth");
        let h = link::index(&mut s, "wv-host").expect("host index");
        link::set_master(&mut s, h, br).expect("master");
        link::set_up(&mut s, h).expect("host up");
        link::set_hairpin(&mut s, h, true).expect("hairpin");
        let p = link::index(&mut s, "wv-peer").expect("peer index");
        link::rename(&mut s, p, "eth7").expect("rename");
        link::set_mac(&mut s, p, [0x02, 0x42, 0xac, 0x11, 0, 2]).expect("mac");

        let links = link::list(&mut s).expect("list");
        let host = links
            .iter()
            .find(|l| l.name == "wv-host")
            .expect("host listed");
        assert_eq!(host.kind, "veth");
        assert_eq!(host.master, Some(br));
        assert!(host.up);
        let bridge = links
            .iter()
            .find(|l| l.name == "wbr0")
            .expect("bridge listed");
        assert_eq!(bridge.kind, "bridge");
        assert!(links.iter().any(|l| l.name == "eth7"));

        let addrs = link::addresses(&mut s, Some(br)).expect("addresses");
        assert!(addrs.contains(&(br, IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 16)));
        // a second address, removed again (twice: the second is nothing to do)
        let second = IpAddr::V4(Ipv4Addr::new(10, 78, 0, 1));
        link::add_address(&mut s, br, second, 16).expect("second addr");
        assert!(link::del_address(&mut s, br, second, 16).expect("del"));
        assert!(!link::del_address(&mut s, br, second, 16).expect("del again"));
        let addrs = link::addresses(&mut s, Some(br)).expect("addresses");
        assert!(!addrs.iter().any(|(_, ip, _)| *ip == second));
        assert!(addrs.contains(&(br, IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 16)));

        // A route via the bridge's subnet gateway.
        let eth7 = link::index(&mut s, "eth7").expect("eth7");
        link::set_up(&mut s, eth7).expect("eth7 up");
        link::add_route(
            &mut s,
            Some((IpAddr::V4(Ipv4Addr::new(10, 99, 0, 0)), 16)),
            Some(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 254))),
            None,
        )
        .expect("route");

        // Deleting one end of a veth removes both; deleting again is not an error.
        assert!(link::delete(&mut s, "wv-host").expect("delete"));
        assert!(!link::delete(&mut s, "wv-host").expect("delete again"));
        assert!(link::get(&mut s, "eth7").expect("get").is_none());
        assert!(matches!(
            link::index(&mut s, "nope0"),
            Err(wharf_sys::netlink::NetlinkError::NoSuchLink(_))
        ));
        assert!(link::create_bridge(&mut s, "bad/name", None).is_err());
    });
}

/// The start path's veth: created on the bridge and up in one request, the peer in the
/// container's namespace; a second create of the same name is the kernel's EEXIST.
#[test]
fn veth_created_on_a_bridge_and_up() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_netns(|| {
        let outer = File::open("/proc/thread-self/ns/net").expect("outer ns");
        unshare(CloneFlags::CLONE_NEWNET).expect("inner ns");
        let inner = File::open("/proc/thread-self/ns/net").expect("inner ns file");
        setns(&outer, CloneFlags::CLONE_NEWNET).expect("back to outer");
        let mut s = Socket::open(Family::Route).expect("socket");
        link::create_bridge(&mut s, "wbr1", None).expect("bridge");
        let br = link::index(&mut s, "wbr1").expect("bridge index");
        use std::os::fd::AsRawFd;
        let peer_ns = || Some(Netns::Fd(inner.as_raw_fd()));
        let host = link::create_veth_on_bridge(&mut s, "wv-br", "eth0", peer_ns(), None, br)
            .expect("veth on bridge");
        assert_eq!(host.name, "wv-br");
        assert_eq!(host.master, Some(br));
        assert!(host.up);
        // as the kernel reports it now, not only as returned
        let again = link::get(&mut s, "wv-br").expect("get").expect("host end");
        assert_eq!(
            (again.index, again.master, again.up),
            (host.index, Some(br), true)
        );
        link::set_hairpin(&mut s, host.index, true).expect("hairpin");
        let e = link::create_veth_on_bridge(&mut s, "wv-br", "eth1", peer_ns(), None, br)
            .expect_err("exists");
        assert_eq!(e.errno(), Some(libc_eexist()));
        setns(&inner, CloneFlags::CLONE_NEWNET).expect("into inner");
        let mut si = Socket::open(Family::Route).expect("inner socket");
        let eth0 = link::get(&mut si, "eth0")
            .expect("get")
            .expect("eth0 inside");
        assert!(!eth0.up, "the container end stays down for init");
        assert!(link::get(&mut si, "eth1").expect("get").is_none());
    });
}

fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

#[test]
fn veth_peer_created_in_another_namespace() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_netns(|| {
        let outer = File::open("/proc/thread-self/ns/net").expect("outer ns");
        unshare(CloneFlags::CLONE_NEWNET).expect("inner ns");
        let inner = File::open("/proc/thread-self/ns/net").expect("inner ns file");
        setns(&outer, CloneFlags::CLONE_NEWNET).expect("back to outer");
        let mut s = Socket::open(Family::Route).expect("socket");
        use std::os::fd::AsRawFd;
        link::create_veth(
            &mut s,
            "wv-out",
            "eth0",
            Some(Netns::Fd(inner.as_raw_fd())),
            Some(1400),
        )
        .expect("veth across namespaces");
        assert!(link::get(&mut s, "wv-out").expect("get").is_some());
        assert!(link::get(&mut s, "eth0").expect("get").is_none());
        setns(&inner, CloneFlags::CLONE_NEWNET).expect("into inner");
        let mut si = Socket::open(Family::Route).expect("inner socket");
        let eth0 = link::get(&mut si, "eth0")
            .expect("get")
            .expect("eth0 inside");
        assert_eq!(eth0.mtu, Some(1400));
    });
}

#[test]
fn nftables_batch_rules_by_comment() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nf_tables is not available on this kernel"
        );
        eprintln!("skipped: no nf_tables");
        return;
    }
    in_netns(|| {
        let mut s = Socket::open(Family::Netfilter).expect("socket");
        let fam = TableFamily::Ip;
        let mut b = Batch::new();
        b.add_table(fam, "wharf-t")
            .add_chain(
                fam,
                "wharf-t",
                "prerouting",
                Some(BaseChain {
                    kind: ChainType::Nat,
                    hook: Hook::Prerouting,
                    priority: -100,
                }),
            )
            .add_chain(
                fam,
                "wharf-t",
                "postrouting",
                Some(BaseChain {
                    kind: ChainType::Nat,
                    hook: Hook::Postrouting,
                    priority: 100,
                }),
            )
            .add_chain(fam, "wharf-t", "ports", None);
        let mut jump = matches::daddr_local();
        jump.push(Expr::Verdict(Verdict::Jump("ports".into())));
        b.add_rule(fam, "wharf-t", "prerouting", &jump, None);
        let mut masq = matches::addr_in(
            false,
            CmpOp::Eq,
            IpAddr::V4(Ipv4Addr::new(10, 88, 0, 0)),
            16,
        );
        masq.extend(matches::oifname(CmpOp::Neq, "wbr0"));
        masq.push(Expr::Counter);
        masq.push(Expr::Masquerade);
        b.add_rule(fam, "wharf-t", "postrouting", &masq, Some("wharf:net"));
        for (port, c) in [
            (8080u16, "wharf:c1"),
            (8081, "wharf:c2"),
            (8082, "wharf:c1"),
        ] {
            let mut r = matches::l4proto(6);
            r.extend(matches::dport(port));
            r.extend(matches::dnat(IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2)), 80));
            b.add_rule(fam, "wharf-t", "ports", &r, Some(c));
        }
        b.commit(&mut s).expect("commit");

        let rules = nft::rules(&mut s, fam, "wharf-t").expect("dump");
        let mine: Vec<_> = rules
            .iter()
            .filter(|r| r.comment.as_deref() == Some("wharf:c1"))
            .collect();
        assert_eq!(mine.len(), 2, "{rules:?}");
        assert_eq!(rules.len(), 5, "{rules:?}");

        // Delete c1's rules by handle in one transaction.
        let mut d = Batch::new();
        for r in &mine {
            d.del_rule(fam, "wharf-t", &r.chain, r.handle);
        }
        d.commit(&mut s).expect("delete");
        let left = nft::rules(&mut s, fam, "wharf-t").expect("dump");
        assert_eq!(left.len(), 3);
        assert!(left
            .iter()
            .all(|r| r.comment.as_deref() != Some("wharf:c1")));

        // A batch with one bad message applies nothing.
        let mut bad = Batch::new();
        bad.add_rule(fam, "wharf-t", "ports", &[Expr::Counter], Some("wharf:c3"));
        bad.add_rule(fam, "wharf-t", "no-such-chain", &[Expr::Counter], None);
        let e = bad.commit(&mut s).expect_err("missing chain");
        assert!(e.to_string().contains("no-such-chain"), "{e}");
        let after = nft::rules(&mut s, fam, "wharf-t").expect("dump");
        assert_eq!(after.len(), 3, "the batch was not atomic: {after:?}");

        let mut del = Batch::new();
        del.del_table(fam, "wharf-t");
        del.commit(&mut s).expect("delete table");
        assert!(nft::rules(&mut s, fam, "wharf-t").expect("dump").is_empty());
    });
}

/// Chains of every family are listed with their hook and policy (how wharf finds another
/// firewall's forward chain), and `insert_rule` puts a rule before the existing ones.
#[test]
fn nftables_chains_listed_and_rules_inserted_first() {
    if !root() || !nft::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root and nf_tables"
        );
        eprintln!("skipped: needs root and nf_tables");
        return;
    }
    in_netns(|| {
        let mut s = Socket::open(Family::Netfilter).expect("socket");
        let mut b = Batch::new();
        for fam in [TableFamily::Ip, TableFamily::Inet] {
            b.add_table(fam, "other")
                .add_chain(
                    fam,
                    "other",
                    "fwd",
                    Some(BaseChain {
                        kind: ChainType::Filter,
                        hook: Hook::Forward,
                        priority: 0,
                    }),
                )
                .add_chain(fam, "other", "user", None);
        }
        b.add_rule(
            TableFamily::Ip,
            "other",
            "fwd",
            &[Expr::Counter, Expr::Verdict(Verdict::Jump("user".into()))],
            Some("theirs"),
        );
        b.commit(&mut s).expect("commit");
        let chains = nft::chains(&mut s).expect("chains");
        for fam in [TableFamily::Ip, TableFamily::Inet] {
            let fwd = chains
                .iter()
                .find(|c| c.family == fam && c.table == "other" && c.name == "fwd")
                .expect("base chain listed");
            assert_eq!(fwd.hook, Some((Hook::Forward, 0)));
            assert_eq!(fwd.policy, Some(nft::Policy::Accept));
            let user = chains
                .iter()
                .find(|c| c.family == fam && c.name == "user")
                .expect("regular chain listed");
            assert_eq!((user.hook, user.policy), (None, None));
        }
        let mut i = Batch::new();
        let mut r = matches::iifname(CmpOp::Eq, "wbr9");
        r.push(Expr::Verdict(Verdict::Accept));
        i.insert_rule(TableFamily::Ip, "other", "fwd", &r, Some("mine"));
        i.commit(&mut s).expect("insert");
        let rules = nft::rules(&mut s, TableFamily::Ip, "other").expect("dump");
        let comments: Vec<_> = rules.iter().map(|r| r.comment.as_deref()).collect();
        assert_eq!(comments, vec![Some("mine"), Some("theirs")]);
        let mut d = Batch::new();
        d.del_table(TableFamily::Ip, "other")
            .del_table(TableFamily::Inet, "other");
        d.commit(&mut s).expect("cleanup");
    });
}
