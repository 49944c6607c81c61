//! Legacy iptables chain policies read in-process (`wharf_sys::xtables`), checked against what
//! `iptables-legacy` itself sets, in a network namespace of the test's own (unshared by a
//! fresh thread: the host's tables are not touched). Tables of several sizes (rules and user
//! chains before the policy entry move its offset).
#![allow(clippy::unwrap_used)]

use nix::sched::{unshare, CloneFlags};
use std::path::Path;
use std::process::Command;
use wharf_sys::xtables::{ipv4_policy, Hook, Policy};

fn legacy() -> Option<&'static str> {
    ["/usr/sbin/iptables-legacy", "/sbin/iptables-legacy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn ipt(bin: &str, args: &[&str]) {
    let o = Command::new(bin).arg("-w").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn builtin_chain_policies_as_iptables_legacy_sets_them() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(bin) = legacy() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "iptables-legacy is missing"
        );
        eprintln!("skipped: no iptables-legacy");
        return;
    };
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        // the tables of a new namespace are made on first use
        ipt(bin, &["-t", "filter", "-S"]);
        ipt(bin, &["-t", "nat", "-S"]);
        assert_eq!(
            ipv4_policy("filter", Hook::Forward).unwrap(),
            Some(Policy::Accept)
        );
        let t = std::time::Instant::now();
        for _ in 0..100 {
            ipv4_policy("filter", Hook::Forward).unwrap();
        }
        eprintln!("FORWARD policy, empty table: {:?}", t.elapsed() / 100);
        ipt(bin, &["-P", "FORWARD", "DROP"]);
        assert_eq!(
            ipv4_policy("filter", Hook::Forward).unwrap(),
            Some(Policy::Drop)
        );
        // more entries before and after the policy entry: offsets move, policies stay
        ipt(bin, &["-N", "DOCKER-USER"]);
        ipt(bin, &["-A", "DOCKER-USER", "-j", "RETURN"]);
        for i in 0..150 {
            let port = (1000 + i).to_string();
            ipt(
                bin,
                &["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "ACCEPT"],
            );
            ipt(
                bin,
                &[
                    "-I",
                    "FORWARD",
                    "-m",
                    "comment",
                    "--comment",
                    &port,
                    "-j",
                    "DOCKER-USER",
                ],
            );
        }
        ipt(bin, &["-P", "OUTPUT", "DROP"]);
        assert_eq!(
            ipv4_policy("filter", Hook::Forward).unwrap(),
            Some(Policy::Drop)
        );
        assert_eq!(
            ipv4_policy("filter", Hook::LocalIn).unwrap(),
            Some(Policy::Accept)
        );
        assert_eq!(
            ipv4_policy("filter", Hook::LocalOut).unwrap(),
            Some(Policy::Drop)
        );
        // what it is for: cheaper than the `iptables-legacy -S FORWARD` (~1.2 ms) it replaces
        let t = std::time::Instant::now();
        for _ in 0..100 {
            ipv4_policy("filter", Hook::Forward).unwrap();
        }
        let each = t.elapsed() / 100;
        let t = std::time::Instant::now();
        for _ in 0..20 {
            ipt(bin, &["-S", "FORWARD"]);
        }
        eprintln!(
            "FORWARD policy, table of 300 rules: {each:?} in-process, {:?} iptables-legacy -S",
            t.elapsed() / 20
        );
        assert!(each < std::time::Duration::from_millis(1), "{each:?}");
        ipt(bin, &["-P", "FORWARD", "ACCEPT"]);
        assert_eq!(
            ipv4_policy("filter", Hook::Forward).unwrap(),
            Some(Policy::Accept)
        );
        // nat has PREROUTING, filter has not
        assert_eq!(
            ipv4_policy("nat", Hook::PreRouting).unwrap(),
            Some(Policy::Accept)
        );
        assert_eq!(ipv4_policy("filter", Hook::PreRouting).unwrap(), None);
        // bad names are refused before the kernel is asked
        assert!(ipv4_policy("", Hook::Forward).is_err());
        assert!(ipv4_policy(&"x".repeat(40), Hook::Forward).is_err());
    })
    .join()
    .unwrap();
}
