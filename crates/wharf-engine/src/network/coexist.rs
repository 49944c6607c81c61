//! Living next to other firewalls whose forward policy is drop. docker sets `FORWARD` to DROP
//! (iptables-nft: table `ip filter`; or legacy iptables), so do hardened hosts' own rulesets,
//! and netavark adds its rules there too. A packet that wharf's `ip wharf` table accepts is
//! still dropped by such a chain: in nf_tables every base chain on the hook must accept, and
//! legacy iptables is one more hook. A dual-stack network's bridge gets them in `ip6` tables'
//! forward chains too (docker's `ip6 filter FORWARD` with its `ip6tables`); the legacy
//! `ip6tables` `FORWARD` is not opened (see docs/networking.md). So for each of its bridges wharf puts accept rules at the
//! head of every foreign forward chain whose policy is drop:
//!
//! ```text
//! <family> <table> <chain>   iifname BR accept     (not for --internal networks)
//!   (policy drop)            oifname BR accept     (not for --internal networks)
//!                            iifname BR oifname BR accept   (--internal: container to container)
//! ```
//!
//! with the network's owner comment (`wharf:net:<id>`), so they go with the network and are
//! listed for reconciliation. They only open that chain: wharf's own `forward` chain (or
//! `WHARF-FORWARD`) still decides what may enter a bridge (replies and published ports).
//! The legacy `FORWARD` gets them only when wharf's rules are nftables: with legacy iptables
//! wharf's own `WHARF-FORWARD` is already jumped to first there, and an accept placed before
//! it would skip its drops.
//!
//! firewalld (nftables backend, its table `inet firewalld`) keeps policy accept but ends its
//! `filter_FORWARD` and `filter_INPUT` chains with `reject`: its `filter_FORWARD` gets the
//! same rules, and for a user network its `filter_INPUT` lets the bridge reach the embedded
//! resolver (`iifname BR meta l4proto udp|tcp th dport 53 accept`). A `firewall-cmd --reload`
//! recreates that table without them: the next start on the network puts them back
//! (docs/networking.md says why wharf does not use firewalld's zones).
//!
//! Checked each time a network's rules are ensured (a container start), so a docker or
//! firewalld started after wharf is caught up with by the next start. Must not: touch a chain
//! whose policy is accept (but firewalld's two), remove a rule that is not wharf's, or fail a
//! start because another firewall's table cannot be read (a chain that vanished meanwhile is
//! skipped).

use super::firewall::{FirewallError, Owner};
use super::iptables::Iptables;
use std::collections::BTreeMap;
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::nft::{self, matches, Batch, CmpOp, Expr, Hook, Policy, TableFamily};
use wharf_sys::netlink::{Family, Socket};

/// wharf's own table (never a foreign chain).
const OWN_TABLE: &str = super::firewall::TABLE;

fn comment(network_id: &str) -> String {
    format!("wharf:net:{network_id}")
}

/// The accept rules a foreign forward chain gets for `net`'s bridge (nft expressions).
fn nft_rules(net: &NetworkRecord) -> Vec<Vec<Expr>> {
    let br = net.bridge.as_str();
    let accept = Expr::Verdict(nft::Verdict::Accept);
    if net.internal {
        let mut r = matches::iifname(CmpOp::Eq, br);
        r.extend(matches::oifname(CmpOp::Eq, br));
        r.push(accept);
        return vec![r];
    }
    let mut i = matches::iifname(CmpOp::Eq, br);
    i.push(accept.clone());
    let mut o = matches::oifname(CmpOp::Eq, br);
    o.push(accept);
    vec![i, o]
}

/// firewalld's table (nftables backend) and the chains of it that end with `reject`.
pub const FIREWALLD_TABLE: &str = "firewalld";
const FIREWALLD_FORWARD: &str = "filter_FORWARD";
const FIREWALLD_INPUT: &str = "filter_INPUT";

/// The resolver's port on the gateway, opened in firewalld's `filter_INPUT` for a user
/// network's bridge (the default network has no embedded DNS).
fn dns_rules(net: &NetworkRecord) -> Vec<Vec<Expr>> {
    if net.name == super::DEFAULT_NETWORK {
        return Vec::new();
    }
    [17u8, 6]
        .into_iter()
        .map(|proto| {
            let mut r = matches::iifname(CmpOp::Eq, &net.bridge);
            r.extend(matches::l4proto(proto));
            r.extend(matches::dport(53));
            r.push(Expr::Verdict(nft::Verdict::Accept));
            r
        })
        .collect()
}

/// A foreign nf_tables chain that drops what it does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropChain {
    pub family: TableFamily,
    pub table: String,
    pub chain: String,
}

impl std::fmt::Display for DropChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.family.as_str(), self.table, self.chain)
    }
}

/// A table of another firewall that may filter wharf's traffic: `ip`, `ip6` (dual-stack
/// networks) and `inet`, wharf's own `ip wharf` and `ip6 wharf` excepted.
fn is_foreign(family: TableFamily, table: &str) -> bool {
    match family {
        TableFamily::Ip | TableFamily::Ip6 => table != OWN_TABLE,
        TableFamily::Inet => true,
    }
}

/// The forward base chains with policy drop of `ip`, `ip6` and `inet` tables that are not
/// wharf's.
/// `None` when nf_tables cannot be asked (no nf_tables: nothing there to coexist with).
fn nft_drop_chains(sock: &mut Socket) -> Option<Vec<DropChain>> {
    nft::chains(sock).ok().map(|c| drop_chains_of(&c))
}

fn drop_chains_of(chains: &[nft::Chain]) -> Vec<DropChain> {
    chains
        .iter()
        .filter(|c| is_foreign(c.family, &c.table))
        .filter(|c| matches!(c.hook, Some((Hook::Forward, _))) && c.policy == Some(Policy::Drop))
        .map(|c| DropChain {
            family: c.family,
            table: c.table.clone(),
            chain: c.name.clone(),
        })
        .collect()
}

/// Whether firewalld's chain `name` is among `chains`.
fn firewalld_chain(chains: &[nft::Chain], name: &str) -> Option<DropChain> {
    chains
        .iter()
        .find(|c| c.family == TableFamily::Inet && c.table == FIREWALLD_TABLE && c.name == name)
        .map(|c| DropChain {
            family: c.family,
            table: c.table.clone(),
            chain: c.name.clone(),
        })
}

/// The foreign chains `net`'s bridge must be opened in, each with its rules: the forward
/// chains with policy drop and firewalld's `filter_FORWARD` (traffic of the bridge), and
/// firewalld's `filter_INPUT` (the resolver). `None` without nf_tables.
fn targets(sock: &mut Socket, net: &NetworkRecord) -> Option<Vec<(DropChain, Vec<Vec<Expr>>)>> {
    let chains = nft::chains(sock).ok()?;
    let mut out: Vec<(DropChain, Vec<Vec<Expr>>)> = drop_chains_of(&chains)
        .into_iter()
        .map(|d| (d, nft_rules(net)))
        .collect();
    if let Some(f) = firewalld_chain(&chains, FIREWALLD_FORWARD) {
        if !out.iter().any(|(d, _)| *d == f) {
            out.push((f, nft_rules(net)));
        }
    }
    if let Some(i) = firewalld_chain(&chains, FIREWALLD_INPUT) {
        let dns = dns_rules(net);
        if !dns.is_empty() {
            out.push((i, dns));
        }
    }
    Some(out)
}

/// Whether firewalld's nftables table is loaded (for `system check`).
pub fn firewalld_present() -> bool {
    Socket::open(Family::Netfilter)
        .ok()
        .and_then(|mut s| nft::chains(&mut s).ok())
        .is_some_and(|c| firewalld_chain(&c, FIREWALLD_FORWARD).is_some())
}

/// The nf_tables forward chains with policy drop (for `system check`); empty without
/// nf_tables.
pub fn drop_chains() -> Vec<DropChain> {
    Socket::open(Family::Netfilter)
        .ok()
        .and_then(|mut s| nft_drop_chains(&mut s))
        .unwrap_or_default()
}

/// Whether the legacy `filter` table is loaded at all (cheap: no process when it is not),
/// in the calling thread's network namespace (`thread-self`: `/proc/net` is the process's;
/// kernels before 3.17 have only that).
fn legacy_filter_loaded() -> bool {
    let read = |p: &str| {
        wharf_sys::fs::read_small_file(None, std::path::Path::new(p), 4096)
            .ok()
            .flatten()
    };
    read("/proc/thread-self/net/ip_tables_names")
        .or_else(|| read("/proc/net/ip_tables_names"))
        .is_some_and(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.trim() == "filter")
        })
}

/// The legacy iptables whose `FORWARD` policy is DROP, if there is one. The policy is read
/// in-process from the kernel's table (`wharf_sys::xtables`: two `getsockopt`s, no process
/// per start); only if the kernel will not say does `iptables-legacy -S FORWARD` decide.
fn legacy_dropping() -> Option<Iptables> {
    use wharf_sys::xtables::{self, Hook as XtHook, Policy as XtPolicy};
    if !legacy_filter_loaded() {
        return None;
    }
    match xtables::ipv4_policy("filter", XtHook::Forward) {
        Ok(Some(XtPolicy::Drop)) => Iptables::find(),
        Ok(_) => None,
        Err(_) => Iptables::find().filter(Iptables::forward_policy_drop),
    }
}

/// Whether legacy iptables' `FORWARD` policy is DROP (for `system check`).
pub fn legacy_forward_drops() -> bool {
    legacy_dropping().is_some()
}

/// Puts `net`'s accept rules at the head of every foreign forward chain with policy drop
/// and of firewalld's chains that lack them; the legacy `FORWARD` too when `legacy_too`
/// (wharf's rules are nftables). Idempotent.
pub fn ensure(net: &NetworkRecord, legacy_too: bool) -> Result<(), FirewallError> {
    let c = comment(&net.id);
    if let Ok(mut sock) = Socket::open(Family::Netfilter) {
        if let Some(chains) = targets(&mut sock, net) {
            let mut b = Batch::new();
            let mut have: BTreeMap<(&'static str, String), Vec<nft::Rule>> = BTreeMap::new();
            for (d, rules) in &chains {
                // an IPv6 table only filters the bridges of dual-stack networks
                if d.family == TableFamily::Ip6 && net.ipv6.is_none() {
                    continue;
                }
                let key = (d.family.as_str(), d.table.clone());
                if !have.contains_key(&key) {
                    let rules = nft::rules(&mut sock, d.family, &d.table).unwrap_or_default();
                    have.insert(key.clone(), rules);
                }
                let present = have.get(&key).is_some_and(|rs| {
                    rs.iter()
                        .any(|r| r.chain == d.chain && r.comment.as_deref() == Some(c.as_str()))
                });
                if present {
                    continue;
                }
                // inserted first one by one: the last one given ends up first
                for r in rules.iter().rev() {
                    b.insert_rule(d.family, &d.table, &d.chain, r, Some(&c));
                }
            }
            match b.commit(&mut sock) {
                Ok(()) => {}
                // the chain or table went away meanwhile (docker flushed it): nothing to open
                Err(e) if e.errno() == Some(nix::libc::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if legacy_too {
        if let Some(ipt) = legacy_dropping() {
            ipt.ensure_forward_accept(net)?;
        }
    }
    Ok(())
}

/// Removes a network's rules from every foreign chain (nf_tables and legacy); returns how
/// many there were.
pub fn remove(network_id: &str) -> Result<usize, FirewallError> {
    let c = comment(network_id);
    let mut n = 0;
    if let Ok(mut sock) = Socket::open(Family::Netfilter) {
        for (family, table, rules) in foreign_rules(&mut sock) {
            let mut b = Batch::new();
            let mut k = 0;
            for r in rules
                .iter()
                .filter(|r| r.comment.as_deref() == Some(c.as_str()))
            {
                b.del_rule(family, &table, &r.chain, r.handle);
                k += 1;
            }
            match b.commit(&mut sock) {
                Ok(()) => n += k,
                // removed meanwhile by another wharf
                Err(e) if e.errno() == Some(nix::libc::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if legacy_filter_loaded() {
        if let Some(ipt) = Iptables::find() {
            n += ipt.remove_forward(network_id)?;
        }
    }
    Ok(n)
}

/// The rules of every foreign `ip`/`ip6`/`inet` table that has a forward chain, by table.
fn foreign_rules(sock: &mut Socket) -> Vec<(TableFamily, String, Vec<nft::Rule>)> {
    let Ok(chains) = nft::chains(sock) else {
        return Vec::new();
    };
    let mut tables: Vec<(TableFamily, String)> = chains
        .into_iter()
        .filter(|c| is_foreign(c.family, &c.table))
        .filter(|c| matches!(c.hook, Some((Hook::Forward, _))))
        .map(|c| (c.family, c.table))
        .collect();
    tables.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    tables.dedup();
    tables
        .into_iter()
        .filter_map(|(f, t)| {
            let rules = nft::rules(sock, f, &t).ok()?;
            Some((f, t, rules))
        })
        .collect()
}

/// Networks that have rules in foreign chains, with their rule counts (reconciliation).
pub fn owners() -> Vec<(Owner, usize)> {
    let mut out: Vec<(Owner, usize)> = Vec::new();
    let mut count = |id: &str| {
        let o = Owner::Network(id.to_string());
        match out.iter_mut().find(|(x, _)| *x == o) {
            Some((_, n)) => *n += 1,
            None => out.push((o, 1)),
        }
    };
    if let Ok(mut sock) = Socket::open(Family::Netfilter) {
        for (_, _, rules) in foreign_rules(&mut sock) {
            for r in &rules {
                if let Some(id) = r
                    .comment
                    .as_deref()
                    .and_then(|c| c.strip_prefix("wharf:net:"))
                {
                    count(id);
                }
            }
        }
    }
    if legacy_filter_loaded() {
        if let Some(ipt) = Iptables::find() {
            for id in ipt.forward_owners() {
                count(&id);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "e".repeat(64),
            name: "t".into(),
            driver: "bridge".into(),
            created: String::new(),
            bridge: "wh-eeeeeeeeeeee".into(),
            subnet: "10.9.0.0/24".parse().expect("subnet"),
            gateway: "10.9.0.1".parse().expect("ip"),
            ip_range: None,
            internal,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipv6: None,
        }
    }

    #[test]
    fn rules_per_kind_of_network() {
        let open = nft_rules(&net(false));
        assert_eq!(open.len(), 2);
        assert!(open
            .iter()
            .all(|r| r.last() == Some(&Expr::Verdict(nft::Verdict::Accept))));
        // internal: only container to container on the bridge
        let internal = nft_rules(&net(true));
        assert_eq!(internal.len(), 1);
        assert_eq!(internal[0].len(), 5);
        assert_eq!(comment("ab"), "wharf:net:ab");
        // firewalld's INPUT: the resolver's port (udp, tcp) on user networks only
        let dns = dns_rules(&net(false));
        assert_eq!(dns.len(), 2);
        assert!(dns
            .iter()
            .all(|r| r.last() == Some(&Expr::Verdict(nft::Verdict::Accept))));
        let mut default = net(false);
        default.name = crate::network::DEFAULT_NETWORK.into();
        assert!(dns_rules(&default).is_empty());
    }
}
