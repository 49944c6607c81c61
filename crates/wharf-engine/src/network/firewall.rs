//! wharf's firewall: one nftables table, `ip wharf`, that coexists with docker's, firewalld's
//! and the host's own (every base chain accepts by default and only ever matches wharf's
//! bridges), and its twin `ip6 wharf` with the same chains for dual-stack networks (made when
//! the first one needs it: the network's IPv6 subnet, DNAT to the container's IPv6 address;
//! `::1` is never DNATed — IPv6 has no `route_localnet`, the replies would be dropped). Rules carry a comment naming their owner — `wharf:net:<network-id>` or
//! `wharf:ctr:<container-id>` — so they are found again and removed by owner, also after a
//! crash (`owners` lists them for reconciliation). Each change is one nf_tables transaction.
//!
//! ```text
//! table ip wharf
//!   chain prerouting  (nat, prerouting -100)   fib daddr type local jump ports
//!   chain output      (nat, output -100)       fib daddr type local jump ports
//!   chain ports                                [ip daddr H] l4proto P th dport HP dnat to C:CP   (per published port)
//!   chain postrouting (nat, postrouting 100)   ip saddr SUBNET oifname != BR masquerade          (per network, not internal)
//!                                              ip saddr 127.0.0.0/8 oifname BR masquerade        (localhost publishing)
//!                                              ip saddr C ip daddr C l4proto P th dport CP masquerade (hairpin, per port)
//!   chain forward     (filter, forward 0)      iifname BR oifname BR accept
//!                                              iifname BR accept; oifname BR ct state established,related accept;
//!                                              oifname BR ct status dnat accept        (not internal)
//!                                              oifname BR drop; iifname BR drop
//! ```

use std::net::IpAddr;
use wharf_store::network::NetworkRecord;
use wharf_sys::netlink::nft::{
    self, matches, BaseChain, Batch, ChainType, CmpOp, CtKey, Expr, Hook, TableFamily, Verdict,
};
use wharf_sys::netlink::{Family, NetlinkError, Socket};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::ports::Proto;

use super::iptables::Iptables;

pub const TABLE: &str = "wharf";
/// wharf's two tables: `ip wharf` and, once a dual-stack network needs it, `ip6 wharf`.
const FAMILIES: [TableFamily; 2] = [TableFamily::Ip, TableFamily::Ip6];

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("this kernel has no nf_tables and the host has no legacy iptables (bridge networking needs one of them for outbound NAT and published ports)")]
    Unavailable,
    #[error("{command}: {message}")]
    Iptables { command: String, message: String },
    /// A dual-stack network on the legacy path of a host without `ip6tables-legacy`.
    #[error("network {network} has IPv6, and the legacy firewall path (no nf_tables, or WHARF_DISABLE=nftables) needs ip6tables-legacy for it: the host has none (install iptables, or use an IPv4-only network)")]
    NoIp6tables { network: String },
}

impl HasKind for FirewallError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// One published port as the firewall needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// `None`: every local address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_port: u16,
}

fn net_comment(id: &str) -> String {
    format!("wharf:net:{id}")
}

fn ctr_comment(id: &str) -> String {
    format!("wharf:ctr:{id}")
}

/// Who owns a rule: a network or a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Network(String),
    Container(String),
}

fn owner_of(comment: &str) -> Option<Owner> {
    if let Some(id) = comment.strip_prefix("wharf:net:") {
        return Some(Owner::Network(id.to_string()));
    }
    comment
        .strip_prefix("wharf:ctr:")
        .map(|id| Owner::Container(id.to_string()))
}

/// The firewall: nf_tables through netlink, or legacy iptables where the kernel has no
/// nf_tables (`iptables`).
pub struct Firewall {
    backend: Backend,
}

enum Backend {
    Nft(Nft),
    /// `iptables` and, when the host has it, `ip6tables`.
    Legacy(Iptables, Option<Iptables>),
}

impl Firewall {
    pub fn open() -> Result<Firewall, FirewallError> {
        if nft::available() {
            return Ok(Firewall {
                backend: Backend::Nft(Nft {
                    sock: Socket::open(Family::Netfilter)?,
                }),
            });
        }
        Self::open_legacy()
    }

    /// The legacy iptables backend whatever the kernel has (what `WHARF_DISABLE=nftables`
    /// selects; tests use it directly).
    pub fn open_legacy() -> Result<Firewall, FirewallError> {
        Iptables::find()
            .map(|i| Firewall {
                backend: Backend::Legacy(i, Iptables::find6()),
            })
            .ok_or(FirewallError::Unavailable)
    }

    /// `nftables` or `iptables`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Nft(_) => "nftables",
            Backend::Legacy(..) => "iptables",
        }
    }

    /// The table, its chains and the jumps into them; idempotent.
    pub fn ensure_base(&mut self) -> Result<(), FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.ensure_base(TableFamily::Ip),
            Backend::Legacy(i, _) => i.ensure_base(),
        }
    }

    /// A network's NAT and forwarding rules, and its accept rules in other firewalls'
    /// forward chains whose policy is drop (`coexist`); idempotent.
    pub fn ensure_network(&mut self, net: &NetworkRecord) -> Result<(), FirewallError> {
        // (whether the backend made them or found them: the foreign chains are checked
        // every time, so a docker started after wharf is caught up with)
        match &mut self.backend {
            Backend::Nft(n) => n.ensure_network(net)?,
            Backend::Legacy(i, i6) => {
                let made = i.ensure_network(net)?;
                match (net.ipv6, i6) {
                    (None, _) => made,
                    (Some(_), Some(i6)) => i6.ensure_network(net)? | made,
                    (Some(_), None) => {
                        return Err(FirewallError::NoIp6tables {
                            network: net.name.clone(),
                        })
                    }
                }
            }
        };
        super::coexist::ensure(net, matches!(self.backend, Backend::Nft(_)))
    }

    /// Removes a network's rules, in wharf's table or chains and in other firewalls'
    /// forward chains; returns how many there were.
    pub fn remove_network(&mut self, network_id: &str) -> Result<usize, FirewallError> {
        let own = match &mut self.backend {
            Backend::Nft(n) => n.remove_network(network_id)?,
            Backend::Legacy(i, i6) => {
                i.remove_network(network_id)?
                    + match i6 {
                        Some(i6) if i6.in_use() => i6.remove_network(network_id)?,
                        _ => 0,
                    }
            }
        };
        Ok(own + super::coexist::remove(network_id)?)
    }

    /// DNAT (and hairpin masquerade) for a container's published ports to `container_ip`:
    /// the ports of its family (published on every address, or on an address of that
    /// family). A dual-stack container is published once per address.
    pub fn publish(
        &mut self,
        container_id: &str,
        container_ip: IpAddr,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.publish(container_id, container_ip, ports),
            Backend::Legacy(i, _) if container_ip.is_ipv4() => {
                i.publish(container_id, container_ip, ports)
            }
            Backend::Legacy(_, Some(i6)) => i6.publish(container_id, container_ip, ports),
            Backend::Legacy(_, None) => Err(FirewallError::NoIp6tables {
                network: format!("of container {container_id}"),
            }),
        }
    }

    /// Removes a container's rules; returns how many there were.
    pub fn unpublish(&mut self, container_id: &str) -> Result<usize, FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.unpublish(container_id),
            Backend::Legacy(i, i6) => Ok(i.unpublish(container_id)?
                + match i6 {
                    Some(i6) if i6.in_use() => i6.unpublish(container_id)?,
                    _ => 0,
                }),
        }
    }

    /// Every owner that has rules in wharf's own table or chains, with its rule count
    /// (reconciliation, leak tests); `coexist::owners` lists those in other firewalls' chains.
    pub fn owners(&mut self) -> Result<Vec<(Owner, usize)>, FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.owners(),
            Backend::Legacy(i, i6) => {
                let mut out = i.owners()?;
                if let Some(i6) = i6.as_ref().filter(|i| i.in_use()) {
                    for (o, n) in i6.owners()? {
                        match out.iter_mut().find(|(x, _)| *x == o) {
                            Some((_, m)) => *m += n,
                            None => out.push((o, n)),
                        }
                    }
                    out.sort();
                }
                Ok(out)
            }
        }
    }
}

struct Nft {
    sock: Socket,
}

const LOOPBACK6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);

/// The table family of an address's rules.
fn family_of(ip: IpAddr) -> TableFamily {
    if ip.is_ipv4() {
        TableFamily::Ip
    } else {
        TableFamily::Ip6
    }
}

/// A host address published on, as a match on the packet's destination (one address).
fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

impl Nft {
    fn base_batch(b: &mut Batch, fam: TableFamily) {
        let nat = |hook, priority| {
            Some(BaseChain {
                kind: ChainType::Nat,
                hook,
                priority,
            })
        };
        b.add_table(fam, TABLE)
            .add_chain(fam, TABLE, "ports", None)
            .add_chain(fam, TABLE, "prerouting", nat(Hook::Prerouting, -100))
            .add_chain(fam, TABLE, "output", nat(Hook::Output, -100))
            .add_chain(fam, TABLE, "postrouting", nat(Hook::Postrouting, 100))
            .add_chain(
                fam,
                TABLE,
                "forward",
                Some(BaseChain {
                    kind: ChainType::Filter,
                    hook: Hook::Forward,
                    priority: 0,
                }),
            );
    }

    fn ensure_base(&mut self, fam: TableFamily) -> Result<(), FirewallError> {
        let have = nft::rules(&mut self.sock, fam, TABLE)?;
        self.ensure_base_from(fam, &have)
    }

    /// [`Nft::ensure_base`] given the table's rules as just dumped: nothing is sent when both
    /// jumps are there (their chains then exist), so a start pays no nf_tables transaction.
    fn ensure_base_from(
        &mut self,
        fam: TableFamily,
        have: &[nft::Rule],
    ) -> Result<(), FirewallError> {
        let based = |chain: &str| {
            have.iter()
                .any(|r| r.chain == chain && r.comment.as_deref() == Some("wharf:base"))
        };
        if based("prerouting") && based("output") {
            return Ok(());
        }
        let mut b = Batch::new();
        Self::base_batch(&mut b, fam);
        for chain in ["prerouting", "output"] {
            if !based(chain) {
                let mut e = matches::daddr_local();
                e.push(Expr::Verdict(Verdict::Jump("ports".into())));
                b.add_rule(fam, TABLE, chain, &e, Some("wharf:base"));
            }
        }
        b.commit(&mut self.sock)?;
        Ok(())
    }

    /// A network's NAT and forwarding rules; idempotent (nothing added when its rules exist):
    /// table `ip wharf` for its IPv4 subnet and, on a dual-stack network, `ip6 wharf` for
    /// the IPv6 one. Whether it made any.
    fn ensure_network(&mut self, net: &NetworkRecord) -> Result<bool, FirewallError> {
        // 127.0.0.0/8 for localhost publishing; IPv6 has no route_localnet, ::1 is not published
        let mut made = self.ensure_family(
            net,
            TableFamily::Ip,
            net.subnet,
            Some((IpAddr::from([127, 0, 0, 0]), 8)),
        )?;
        if let Some(v6) = net.ipv6 {
            made |= self.ensure_family(net, TableFamily::Ip6, v6.subnet, None)?;
        }
        Ok(made)
    }

    fn ensure_family(
        &mut self,
        net: &NetworkRecord,
        fam: TableFamily,
        subnet: wharf_types::net::Subnet,
        loopback: Option<(IpAddr, u8)>,
    ) -> Result<bool, FirewallError> {
        let c = net_comment(&net.id);
        let have = nft::rules(&mut self.sock, fam, TABLE)?;
        self.ensure_base_from(fam, &have)?;
        if have
            .iter()
            .any(|r| r.comment.as_deref() == Some(c.as_str()))
        {
            return Ok(false);
        }
        let br = net.bridge.as_str();
        let mut b = Batch::new();
        let cat = |parts: Vec<Vec<Expr>>| parts.into_iter().flatten().collect::<Vec<Expr>>();
        if !net.internal {
            let e = cat(vec![
                matches::addr_in(false, CmpOp::Eq, subnet.addr(), subnet.prefix()),
                matches::oifname(CmpOp::Neq, br),
                vec![Expr::Masquerade],
            ]);
            b.add_rule(fam, TABLE, "postrouting", &e, Some(&c));
            if let Some((lo, prefix)) = loopback {
                let e = cat(vec![
                    matches::addr_in(false, CmpOp::Eq, lo, prefix),
                    matches::oifname(CmpOp::Eq, br),
                    vec![Expr::Masquerade],
                ]);
                b.add_rule(fam, TABLE, "postrouting", &e, Some(&c));
            }
        }
        let accept = || vec![Expr::Verdict(Verdict::Accept)];
        let drop = || vec![Expr::Verdict(Verdict::Drop)];
        let e = cat(vec![
            matches::iifname(CmpOp::Eq, br),
            matches::oifname(CmpOp::Eq, br),
            accept(),
        ]);
        b.add_rule(fam, TABLE, "forward", &e, Some(&c));
        if !net.internal {
            let e = cat(vec![matches::iifname(CmpOp::Eq, br), accept()]);
            b.add_rule(fam, TABLE, "forward", &e, Some(&c));
            let e = cat(vec![
                matches::oifname(CmpOp::Eq, br),
                matches::ct_any(CtKey::State, 2 | 4),
                accept(),
            ]);
            b.add_rule(fam, TABLE, "forward", &e, Some(&c));
            let e = cat(vec![
                matches::oifname(CmpOp::Eq, br),
                matches::ct_any(CtKey::Status, 0x20),
                accept(),
            ]);
            b.add_rule(fam, TABLE, "forward", &e, Some(&c));
        }
        let e = cat(vec![matches::oifname(CmpOp::Eq, br), drop()]);
        b.add_rule(fam, TABLE, "forward", &e, Some(&c));
        let e = cat(vec![matches::iifname(CmpOp::Eq, br), drop()]);
        b.add_rule(fam, TABLE, "forward", &e, Some(&c));
        b.commit(&mut self.sock)?;
        Ok(true)
    }

    /// Removes the rules with `comment` from both tables, in one transaction.
    fn remove_comment(&mut self, comment: &str) -> Result<usize, FirewallError> {
        let mut b = Batch::new();
        let mut n = 0;
        for fam in FAMILIES {
            let have = nft::rules(&mut self.sock, fam, TABLE)?;
            for r in have
                .iter()
                .filter(|r| r.comment.as_deref() == Some(comment))
            {
                b.del_rule(fam, TABLE, &r.chain, r.handle);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        match b.commit(&mut self.sock) {
            Ok(()) => Ok(n),
            // removed meanwhile by another wharf (teardown is idempotent)
            Err(e) if e.errno() == Some(nix::libc::ENOENT) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a network's rules; returns how many there were.
    fn remove_network(&mut self, network_id: &str) -> Result<usize, FirewallError> {
        self.remove_comment(&net_comment(network_id))
    }

    /// DNAT (and hairpin masquerade) for a container's published ports of the address's
    /// family (table `ip wharf` or `ip6 wharf`), in one transaction: every port published on
    /// all addresses (`host_ip` `None`), on the family's unspecified address, or on one of
    /// its addresses.
    fn publish(
        &mut self,
        container_id: &str,
        container_ip: IpAddr,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        let fam = family_of(container_ip);
        let mine: Vec<&Published> = ports
            .iter()
            .filter(|p| {
                p.host_ip
                    .is_none_or(|ip| ip.is_ipv4() == container_ip.is_ipv4())
            })
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        self.ensure_base(fam)?;
        let c = ctr_comment(container_id);
        let whole = host_prefix(container_ip);
        let mut b = Batch::new();
        for p in mine {
            let mut e = Vec::new();
            if let Some(ip) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
                e.extend(matches::addr_in(true, CmpOp::Eq, ip, whole));
            } else if fam == TableFamily::Ip6 {
                // not ::1: IPv6 has no route_localnet, the kernel drops the container's
                // replies to ::1 after the masquerade is undone — refused at once instead
                e.extend(matches::addr_in(true, CmpOp::Neq, LOOPBACK6, 128));
            }
            e.extend(matches::l4proto(p.proto.number()));
            e.extend(matches::dport(p.host_port));
            e.push(Expr::Counter);
            e.extend(matches::dnat(container_ip, p.container_port));
            b.add_rule(fam, TABLE, "ports", &e, Some(&c));
            // hairpin: the container reaching its own published port
            let mut h = matches::addr_in(false, CmpOp::Eq, container_ip, whole);
            h.extend(matches::addr_in(true, CmpOp::Eq, container_ip, whole));
            h.extend(matches::l4proto(p.proto.number()));
            h.extend(matches::dport(p.container_port));
            h.push(Expr::Masquerade);
            b.add_rule(fam, TABLE, "postrouting", &h, Some(&c));
        }
        b.commit(&mut self.sock)?;
        Ok(())
    }

    /// Removes a container's rules; returns how many there were.
    fn unpublish(&mut self, container_id: &str) -> Result<usize, FirewallError> {
        self.remove_comment(&ctr_comment(container_id))
    }

    /// Every owner that has rules (both tables), with its rule count (for reconciliation and
    /// leak tests).
    fn owners(&mut self) -> Result<Vec<(Owner, usize)>, FirewallError> {
        let mut out: Vec<(Owner, usize)> = Vec::new();
        for fam in FAMILIES {
            for r in nft::rules(&mut self.sock, fam, TABLE)? {
                let Some(o) = r.comment.as_deref().and_then(owner_of) else {
                    continue;
                };
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

/// `net.ipv4.ip_forward=1` (docker sets it too) and `route_localnet` on a bridge, so
/// `curl 127.0.0.1:<published>` is routed to the container after DNAT; with `ipv6`,
/// `net.ipv6.conf.all.forwarding=1` too (docker's, for `ip6tables`: an interface that
/// forwards ignores router advertisements unless its `accept_ra` is 2) and IPv6 on the bridge
/// (`disable_ipv6=0`).
pub fn enable_forwarding(bridge: &str, ipv6: bool) -> std::io::Result<()> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )?;
    if ipv6 {
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
            "0",
        )?;
        write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

fn write_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_name_their_owner() {
        assert_eq!(
            owner_of(&net_comment("ab")),
            Some(Owner::Network("ab".into()))
        );
        assert_eq!(
            owner_of(&ctr_comment("cd")),
            Some(Owner::Container("cd".into()))
        );
        assert_eq!(owner_of("wharf:base"), None);
        assert_eq!(owner_of("docker"), None);
    }
}
