//! Living next to docker and firewalld: they drop forwarded traffic in iptables' `filter`
//! table (`FORWARD` policy DROP; with `br_netfilter` even traffic between two containers on
//! one bridge passes that hook). A packet must be accepted by every base chain on a hook, so
//! wharf's own `forward` chain cannot let it through alone: each network's bridge also gets
//! two ACCEPT rules at the top of that `FORWARD` chain — in the iptables-nft table and in the
//! legacy one, whichever exists and is not wharf's own backend — carrying the network's
//! owner comment. wharf's own chain stays the filter (internal networks, DNAT-only inbound).
//! Added when the network's rules are made, removed with them; best effort (a host without
//! such a table or binary needs nothing).

use std::path::PathBuf;
use std::process::Command;
use wharf_sys::netlink::nft::{self, TableFamily};
use wharf_sys::netlink::{Family, Socket};

const SBIN: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

fn find(name: &str) -> Option<PathBuf> {
    SBIN.iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}

/// `iptables` itself when its `--version` says it is (or is not) the nf_tables variant.
fn plain_iptables(nf_tables: bool) -> Option<PathBuf> {
    let p = find("iptables")?;
    let v = Command::new(&p).arg("--version").output().ok()?;
    (String::from_utf8_lossy(&v.stdout).contains("nf_tables") == nf_tables).then_some(p)
}

/// The iptables binaries whose `filter` table exists on this host (the one behind wharf's
/// legacy backend left out when `legacy_is_ours`).
fn tables(legacy_is_ours: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let nft_filter = Socket::open(Family::Netfilter)
        .ok()
        .and_then(|mut s| nft::rules(&mut s, TableFamily::Ip, "filter").ok())
        .is_some_and(|r| !r.is_empty());
    if nft_filter {
        out.extend(find("iptables-nft").or_else(|| plain_iptables(true)));
    }
    let legacy_filter = std::fs::read_to_string("/proc/net/ip_tables_names")
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "filter"));
    if legacy_filter && !legacy_is_ours {
        out.extend(find("iptables-legacy").or_else(|| plain_iptables(false)));
    }
    out
}

fn run(bin: &PathBuf, args: &[&str]) -> bool {
    Command::new(bin)
        .arg("-w")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// ACCEPT for traffic into and out of `bridge` at the top of every foreign `FORWARD` chain.
pub fn allow(bridge: &str, network_id: &str, legacy_is_ours: bool) {
    let comment = format!("wharf:net:{network_id}");
    for bin in tables(legacy_is_ours) {
        for dir in ["-i", "-o"] {
            let rule = [
                "FORWARD",
                dir,
                bridge,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "ACCEPT",
            ];
            let mut check = vec!["-t", "filter", "-C"];
            check.extend_from_slice(&rule);
            if !run(&bin, &check) {
                let mut insert = vec!["-t", "filter", "-I"];
                insert.extend_from_slice(&rule);
                run(&bin, &insert);
            }
        }
    }
}

/// Removes a network's ACCEPT rules from every foreign `FORWARD` chain; how many.
pub fn remove(network_id: &str, legacy_is_ours: bool) -> usize {
    let comment = format!("wharf:net:{network_id}");
    let mut n = 0;
    for bin in tables(legacy_is_ours) {
        let Ok(out) = Command::new(&bin)
            .args(["-w", "-t", "filter", "-S", "FORWARD"])
            .output()
        else {
            continue;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            if !words.contains(&comment.as_str()) || words.first() != Some(&"-A") {
                continue;
            }
            let mut args = vec!["-t", "filter", "-D"];
            args.extend_from_slice(&words[1..]);
            if run(&bin, &args) {
                n += 1;
            }
        }
    }
    n
}
