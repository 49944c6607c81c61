//! The firewall on kernels without nf_tables (RHEL 7's 3.10): the same rules as `firewall`'s
//! nftables table, written with the host's `iptables-legacy` (or a legacy `iptables`) into
//! wharf's own chains — `WHARF-PORTS`, `WHARF-POSTROUTING` (nat) and `WHARF-FORWARD` (filter) —
//! jumped to from the built-in chains. Rules carry `-m comment --comment wharf:…` with their
//! owner, so they are listed (`-S`) and deleted by owner like the nftables ones. `-w` waits for
//! the xtables lock that docker or firewalld may hold. Forced with `WHARF_DISABLE=nftables`.
//! Dual-stack networks get the same chains and rules from `ip6tables-legacy` (`find6`); a
//! host without it cannot have IPv6 networks on this path (`FirewallError::NoIp6tables`).

use super::firewall::{FirewallError, Owner, Published};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use wharf_store::network::NetworkRecord;

const PORTS: &str = "WHARF-PORTS";
const POST: &str = "WHARF-POSTROUTING";
const FWD: &str = "WHARF-FORWARD";

pub struct Iptables {
    bin: PathBuf,
    /// `ip6tables`: the IPv6 rules of dual-stack networks.
    v6: bool,
}

fn proto(p: wharf_types::ports::Proto) -> &'static str {
    p.as_str()
}

impl Iptables {
    /// The legacy iptables binary of the host, if there is one.
    pub fn find() -> Option<Iptables> {
        Self::find_named("iptables").map(|bin| Iptables { bin, v6: false })
    }

    /// The legacy ip6tables binary of the host, if there is one (dual-stack networks).
    pub fn find6() -> Option<Iptables> {
        Self::find_named("ip6tables").map(|bin| Iptables { bin, v6: true })
    }

    fn find_named(name: &str) -> Option<PathBuf> {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let legacy = PathBuf::from(dir).join(format!("{name}-legacy"));
            if legacy.exists() {
                return Some(legacy);
            }
        }
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let plain = PathBuf::from(dir).join(name);
            if plain.exists() {
                let v = Command::new(&plain).arg("--version").output().ok()?;
                let v = String::from_utf8_lossy(&v.stdout).to_string();
                // "iptables v1.4.21" (RHEL 7) or "… (legacy)"; not "(nf_tables)"
                if !v.contains("nf_tables") {
                    return Some(plain);
                }
            }
        }
        None
    }

    /// Whether the kernel's legacy tables of this family are loaded (no rule of ours can
    /// exist otherwise, and listing them would load them): teardown and listing skip
    /// `ip6tables` on hosts that never had a dual-stack network on this path.
    pub fn in_use(&self) -> bool {
        let names = if self.v6 {
            "ip6_tables_names"
        } else {
            "ip_tables_names"
        };
        // the calling thread's namespace (`thread-self`; kernels before 3.17: the process's)
        let read = |dir: &str| {
            wharf_sys::fs::read_small_file(None, &std::path::Path::new(dir).join(names), 4096)
                .ok()
                .flatten()
        };
        read("/proc/thread-self/net")
            .or_else(|| read("/proc/net"))
            .is_some_and(|b| !b.is_empty())
    }

    fn name(&self) -> &'static str {
        if self.v6 {
            "ip6tables"
        } else {
            "iptables"
        }
    }

    /// The subnet of this backend's family on `net` and the loopback range published from
    /// (`None`: the network has no IPv6; IPv6 has no route_localnet, `::1` is not published).
    fn family_of(&self, net: &NetworkRecord) -> Option<(String, Option<&'static str>)> {
        if self.v6 {
            net.ipv6.map(|v| (v.subnet.to_string(), None))
        } else {
            Some((net.subnet.to_string(), Some("127.0.0.0/8")))
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, FirewallError> {
        let out = Command::new(&self.bin)
            .arg("-w")
            .args(args)
            .output()
            .map_err(|e| FirewallError::Iptables {
                command: format!("{} {}", self.bin.display(), args.join(" ")),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(FirewallError::Iptables {
                command: format!("{} {}", self.name(), args.join(" ")),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether a rule exists (`-C`).
    fn has(&self, table: &str, chain: &str, rule: &[&str]) -> bool {
        let mut a = vec!["-t", table, "-C", chain];
        a.extend_from_slice(rule);
        self.run(&a).is_ok()
    }

    fn ensure_chain(&self, table: &str, chain: &str) -> Result<(), FirewallError> {
        if self.run(&["-t", table, "-S", chain]).is_err() {
            if let Err(e) = self.run(&["-t", table, "-N", chain]) {
                // made meanwhile by another wharf
                if self.run(&["-t", table, "-S", chain]).is_err() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn ensure_rule(
        &self,
        table: &str,
        chain: &str,
        rule: &[&str],
        insert: bool,
    ) -> Result<(), FirewallError> {
        if self.has(table, chain, rule) {
            return Ok(());
        }
        let mut a = vec!["-t", table, if insert { "-I" } else { "-A" }, chain];
        a.extend_from_slice(rule);
        self.run(&a).map(drop)
    }

    pub fn ensure_base(&self) -> Result<(), FirewallError> {
        self.ensure_chain("nat", PORTS)?;
        self.ensure_chain("nat", POST)?;
        self.ensure_chain("filter", FWD)?;
        let c = ["-m", "comment", "--comment", "wharf:base"];
        let local = ["-m", "addrtype", "--dst-type", "LOCAL"];
        for chain in ["PREROUTING", "OUTPUT"] {
            let mut r: Vec<&str> = local.to_vec();
            r.extend_from_slice(&c);
            r.extend_from_slice(&["-j", PORTS]);
            self.ensure_rule("nat", chain, &r, false)?;
        }
        let mut r: Vec<&str> = c.to_vec();
        r.extend_from_slice(&["-j", POST]);
        self.ensure_rule("nat", "POSTROUTING", &r, false)?;
        let mut r: Vec<&str> = c.to_vec();
        r.extend_from_slice(&["-j", FWD]);
        // first in FORWARD: a DROP policy or rule of docker's comes after it
        self.ensure_rule("filter", "FORWARD", &r, true)
    }

    fn owned_rules(&self, table: &str, chain: &str) -> Result<Vec<(Owner, String)>, FirewallError> {
        let out = self.run(&["-t", table, "-S", chain])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let i = words.iter().position(|w| *w == "--comment")?;
                let c = words.get(i + 1)?.trim_matches('"');
                let o = if let Some(id) = c.strip_prefix("wharf:net:") {
                    Owner::Network(id.to_string())
                } else {
                    Owner::Container(c.strip_prefix("wharf:ctr:")?.to_string())
                };
                Some((o, l.to_string()))
            })
            .collect())
    }

    /// A network's rules; whether it made them (false: they were there).
    pub fn ensure_network(&self, net: &NetworkRecord) -> Result<bool, FirewallError> {
        let Some((subnet, loopback)) = self.family_of(net) else {
            return Ok(false);
        };
        self.ensure_base()?;
        let owner = Owner::Network(net.id.clone());
        if self
            .owned_rules("filter", FWD)?
            .iter()
            .any(|(o, _)| *o == owner)
        {
            return Ok(false);
        }
        let comment = format!("wharf:net:{}", net.id);
        let c = ["-m", "comment", "--comment", comment.as_str()];
        let br = net.bridge.as_str();
        let with = |r: &[&str]| -> Vec<String> {
            r.iter().chain(c.iter()).map(|s| s.to_string()).collect()
        };
        let mut rules: Vec<(&str, &str, Vec<String>)> = Vec::new();
        if !net.internal {
            rules.push((
                "nat",
                POST,
                with(&["-s", &subnet, "!", "-o", br, "-j", "MASQUERADE"]),
            ));
            if let Some(lo) = loopback {
                rules.push(("nat", POST, with(&["-s", lo, "-o", br, "-j", "MASQUERADE"])));
            }
        }
        rules.push(("filter", FWD, with(&["-i", br, "-o", br, "-j", "ACCEPT"])));
        if !net.internal {
            rules.push(("filter", FWD, with(&["-i", br, "-j", "ACCEPT"])));
            rules.push((
                "filter",
                FWD,
                with(&[
                    "-o",
                    br,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-j",
                    "ACCEPT",
                ]),
            ));
            rules.push((
                "filter",
                FWD,
                with(&[
                    "-o",
                    br,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "DNAT",
                    "-j",
                    "ACCEPT",
                ]),
            ));
        }
        rules.push(("filter", FWD, with(&["-o", br, "-j", "DROP"])));
        rules.push(("filter", FWD, with(&["-i", br, "-j", "DROP"])));
        for (table, chain, r) in rules {
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            let mut a = vec!["-t", table, "-A", chain];
            a.extend_from_slice(&r);
            if let Err(e) = self.run(&a) {
                let _ = self.remove(&owner);
                return Err(e);
            }
        }
        Ok(true)
    }

    fn remove(&self, owner: &Owner) -> Result<usize, FirewallError> {
        let mut n = 0;
        for (table, chain) in [("nat", PORTS), ("nat", POST), ("filter", FWD)] {
            n += self.delete_owned(table, chain, owner);
        }
        Ok(n)
    }

    /// Deletes `owner`'s rules from one chain; returns how many went.
    fn delete_owned(&self, table: &str, chain: &str, owner: &Owner) -> usize {
        let Ok(rules) = self.owned_rules(table, chain) else {
            return 0;
        };
        let mut n = 0;
        for (o, line) in rules {
            if o != *owner {
                continue;
            }
            // "-A CHAIN rule…" → "-D CHAIN rule…"
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| if w == "-A" { "-D" } else { w })
                .map(|w| w.trim_matches('"'))
                .collect();
            let mut a = vec!["-t", table];
            a.extend_from_slice(&words);
            if self.run(&a).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Whether the built-in `FORWARD` chain's policy is DROP (docker sets it).
    pub fn forward_policy_drop(&self) -> bool {
        self.run(&["-t", "filter", "-S", "FORWARD"])
            .is_ok_and(|out| out.lines().any(|l| l.trim() == "-P FORWARD DROP"))
    }

    /// Accept rules for `net`'s bridge at the head of `FORWARD` (see `coexist`: only when
    /// wharf's own rules live in nftables); idempotent.
    pub fn ensure_forward_accept(&self, net: &NetworkRecord) -> Result<(), FirewallError> {
        let comment = format!("wharf:net:{}", net.id);
        let c = ["-m", "comment", "--comment", comment.as_str()];
        let br = net.bridge.as_str();
        let rules: Vec<Vec<&str>> = if net.internal {
            vec![vec!["-i", br, "-o", br]]
        } else {
            vec![vec!["-i", br], vec!["-o", br]]
        };
        for mut r in rules {
            r.extend_from_slice(&c);
            r.extend_from_slice(&["-j", "ACCEPT"]);
            self.ensure_rule("filter", "FORWARD", &r, true)?;
        }
        Ok(())
    }

    /// Removes a network's rules from `FORWARD`; returns how many there were.
    pub fn remove_forward(&self, network_id: &str) -> Result<usize, FirewallError> {
        Ok(self.delete_owned("filter", "FORWARD", &Owner::Network(network_id.to_string())))
    }

    /// Ids of the networks that have rules in `FORWARD`, once per rule.
    pub fn forward_owners(&self) -> Vec<String> {
        self.owned_rules("filter", "FORWARD")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(o, _)| match o {
                Owner::Network(id) => Some(id),
                Owner::Container(_) => None,
            })
            .collect()
    }

    /// The binary this backend runs.
    pub fn binary(&self) -> &std::path::Path {
        &self.bin
    }

    pub fn remove_network(&self, network_id: &str) -> Result<usize, FirewallError> {
        self.remove(&Owner::Network(network_id.to_string()))
    }

    pub fn publish(
        &self,
        container_id: &str,
        container_ip: IpAddr,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        if container_ip.is_ipv6() != self.v6 {
            return Ok(());
        }
        let mine: Vec<&Published> = ports
            .iter()
            .filter(|p| p.host_ip.is_none_or(|ip| ip.is_ipv6() == self.v6))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        self.ensure_base()?;
        let comment = format!("wharf:ctr:{container_id}");
        let cip = container_ip.to_string();
        for p in mine {
            let (hp, cp) = (p.host_port.to_string(), p.container_port.to_string());
            let to = if self.v6 {
                format!("[{cip}]:{cp}")
            } else {
                format!("{cip}:{cp}")
            };
            let hip = p
                .host_ip
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| ip.to_string());
            let mut dnat: Vec<&str> = vec!["-t", "nat", "-A", PORTS];
            if let Some(h) = &hip {
                dnat.extend_from_slice(&["-d", h]);
            } else if self.v6 {
                // not ::1 (see firewall: no route_localnet for IPv6)
                dnat.extend_from_slice(&["!", "-d", "::1/128"]);
            }
            dnat.extend_from_slice(&[
                "-p",
                proto(p.proto),
                "--dport",
                &hp,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "DNAT",
                "--to-destination",
                &to,
            ]);
            let hairpin = [
                "-t",
                "nat",
                "-A",
                POST,
                "-s",
                &cip,
                "-d",
                &cip,
                "-p",
                proto(p.proto),
                "--dport",
                &cp,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "MASQUERADE",
            ];
            for a in [&dnat[..], &hairpin[..]] {
                if let Err(e) = self.run(a) {
                    let _ = self.remove(&Owner::Container(container_id.to_string()));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn unpublish(&self, container_id: &str) -> Result<usize, FirewallError> {
        self.remove(&Owner::Container(container_id.to_string()))
    }

    pub fn owners(&self) -> Result<Vec<(Owner, usize)>, FirewallError> {
        let mut out: Vec<(Owner, usize)> = Vec::new();
        for (table, chain) in [("nat", PORTS), ("nat", POST), ("filter", FWD)] {
            let Ok(rules) = self.owned_rules(table, chain) else {
                continue;
            };
            for (o, _) in rules {
                match out.iter_mut().find(|(x, _)| *x == o) {
                    Some((_, n)) => *n += 1,
                    None => out.push((o, 1)),
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
