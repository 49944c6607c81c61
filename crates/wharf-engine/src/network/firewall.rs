//! wharf's firewall: one nftables table, `ip wharf`, that coexists with docker's, firewalld's
//! and the host's own (every base chain accepts by default and only ever matches wharf's
//! bridges). Rules carry a comment naming their owner — `wharf:net:<network-id>` or
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

pub const TABLE: &str = "wharf";
const FAM: TableFamily = TableFamily::Ip;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("this kernel has no nf_tables and the host has no legacy iptables (bridge networking needs one of them for outbound NAT and published ports)")]
    Unavailable,
    #[error("{command}: {message}")]
    Iptables { command: String, message: String },
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
    Legacy(super::iptables::Iptables),
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
        match super::iptables::Iptables::find() {
            Some(i) => Ok(Firewall {
                backend: Backend::Legacy(i),
            }),
            None => Err(FirewallError::Unavailable),
        }
    }

    /// The legacy iptables backend whatever the kernel has (what `WHARF_DISABLE=nftables`
    /// selects; tests use it directly).
    pub fn open_legacy() -> Result<Firewall, FirewallError> {
        super::iptables::Iptables::find()
            .map(|i| Firewall {
                backend: Backend::Legacy(i),
            })
            .ok_or(FirewallError::Unavailable)
    }

    /// `nftables` or `iptables`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Nft(_) => "nftables",
            Backend::Legacy(_) => "iptables",
        }
    }

    /// The table, its chains and the jumps into them; idempotent.
    pub fn ensure_base(&mut self) -> Result<(), FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.ensure_base(),
            Backend::Legacy(i) => i.ensure_base(),
        }
    }

    /// A network's NAT and forwarding rules, and its accept rules in other firewalls'
    /// forward chains whose policy is drop (`coexist`); idempotent.
    pub fn ensure_network(&mut self, net: &NetworkRecord) -> Result<(), FirewallError> {
        // (whether the backend made them or found them: the foreign chains are checked
        // every time, so a docker started after wharf is caught up with)
        match &mut self.backend {
            Backend::Nft(n) => n.ensure_network(net)?,
            Backend::Legacy(i) => i.ensure_network(net)?,
        };
        super::coexist::ensure(net, matches!(self.backend, Backend::Nft(_)))
    }

    /// Removes a network's rules, in wharf's table or chains and in other firewalls'
    /// forward chains; returns how many there were.
    pub fn remove_network(&mut self, network_id: &str) -> Result<usize, FirewallError> {
        let own = match &mut self.backend {
            Backend::Nft(n) => n.remove_network(network_id)?,
            Backend::Legacy(i) => i.remove_network(network_id)?,
        };
        Ok(own + super::coexist::remove(network_id)?)
    }

    /// DNAT (and hairpin masquerade) for a container's published ports.
    pub fn publish(
        &mut self,
        container_id: &str,
        container_ip: IpAddr,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.publish(container_id, container_ip, ports),
            Backend::Legacy(i) => i.publish(container_id, container_ip, ports),
        }
    }

    /// Removes a container's rules; returns how many there were.
    pub fn unpublish(&mut self, container_id: &str) -> Result<usize, FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.unpublish(container_id),
            Backend::Legacy(i) => i.unpublish(container_id),
        }
    }

    /// Every owner that has rules in wharf's own table or chains, with its rule count
    /// (reconciliation, leak tests); `coexist::owners` lists those in other firewalls' chains.
    pub fn owners(&mut self) -> Result<Vec<(Owner, usize)>, FirewallError> {
        match &mut self.backend {
            Backend::Nft(n) => n.owners(),
            Backend::Legacy(i) => i.owners(),
        }
    }
}

struct Nft {
    sock: Socket,
}

impl Nft {
    fn base_batch(b: &mut Batch) {
        let nat = |hook, priority| {
            Some(BaseChain {
                kind: ChainType::Nat,
                hook,
                priority,
            })
        };
        b.add_table(FAM, TABLE)
            .add_chain(FAM, TABLE, "ports", None)
            .add_chain(FAM, TABLE, "prerouting", nat(Hook::Prerouting, -100))
            .add_chain(FAM, TABLE, "output", nat(Hook::Output, -100))
            .add_chain(FAM, TABLE, "postrouting", nat(Hook::Postrouting, 100))
            .add_chain(
                FAM,
                TABLE,
                "forward",
                Some(BaseChain {
                    kind: ChainType::Filter,
                    hook: Hook::Forward,
                    priority: 0,
                }),
            );
    }

    fn ensure_base(&mut self) -> Result<(), FirewallError> {
        let have = nft::rules(&mut self.sock, FAM, TABLE)?;
        self.ensure_base_from(&have)
    }

    /// [`Nft::ensure_base`] given the table's rules as just dumped: nothing is sent when both
    /// jumps are there (their chains then exist), so a start pays no nf_tables transaction.
    fn ensure_base_from(&mut self, have: &[nft::Rule]) -> Result<(), FirewallError> {
        let based = |chain: &str| {
            have.iter()
                .any(|r| r.chain == chain && r.comment.as_deref() == Some("wharf:base"))
        };
        if based("prerouting") && based("output") {
            return Ok(());
        }
        let mut b = Batch::new();
        Self::base_batch(&mut b);
        for chain in ["prerouting", "output"] {
            if !have
                .iter()
                .any(|r| r.chain == chain && r.comment.as_deref() == Some("wharf:base"))
            {
                let mut e = matches::daddr_local();
                e.push(Expr::Verdict(Verdict::Jump("ports".into())));
                b.add_rule(FAM, TABLE, chain, &e, Some("wharf:base"));
            }
        }
        b.commit(&mut self.sock)?;
        Ok(())
    }

    /// A network's NAT and forwarding rules; idempotent (nothing added when its rules exist).
    /// Whether it made them.
    fn ensure_network(&mut self, net: &NetworkRecord) -> Result<bool, FirewallError> {
        let c = net_comment(&net.id);
        let have = nft::rules(&mut self.sock, FAM, TABLE)?;
        self.ensure_base_from(&have)?;
        if have
            .iter()
            .any(|r| r.comment.as_deref() == Some(c.as_str()))
        {
            return Ok(false);
        }
        let br = net.bridge.as_str();
        let mut b = Batch::new();
        let cat = |parts: Vec<Vec<Expr>>| parts.into_iter().flatten().collect::<Vec<Expr>>();
        if !net.internal && net.subnet.is_ipv4() {
            let e = cat(vec![
                matches::addr_in(false, CmpOp::Eq, net.subnet.addr(), net.subnet.prefix()),
                matches::oifname(CmpOp::Neq, br),
                vec![Expr::Masquerade],
            ]);
            b.add_rule(FAM, TABLE, "postrouting", &e, Some(&c));
            let e = cat(vec![
                matches::addr_in(false, CmpOp::Eq, IpAddr::from([127, 0, 0, 0]), 8),
                matches::oifname(CmpOp::Eq, br),
                vec![Expr::Masquerade],
            ]);
            b.add_rule(FAM, TABLE, "postrouting", &e, Some(&c));
        }
        let accept = || vec![Expr::Verdict(Verdict::Accept)];
        let drop = || vec![Expr::Verdict(Verdict::Drop)];
        let e = cat(vec![
            matches::iifname(CmpOp::Eq, br),
            matches::oifname(CmpOp::Eq, br),
            accept(),
        ]);
        b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
        if !net.internal {
            let e = cat(vec![matches::iifname(CmpOp::Eq, br), accept()]);
            b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
            let e = cat(vec![
                matches::oifname(CmpOp::Eq, br),
                matches::ct_any(CtKey::State, 2 | 4),
                accept(),
            ]);
            b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
            let e = cat(vec![
                matches::oifname(CmpOp::Eq, br),
                matches::ct_any(CtKey::Status, 0x20),
                accept(),
            ]);
            b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
        }
        let e = cat(vec![matches::oifname(CmpOp::Eq, br), drop()]);
        b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
        let e = cat(vec![matches::iifname(CmpOp::Eq, br), drop()]);
        b.add_rule(FAM, TABLE, "forward", &e, Some(&c));
        b.commit(&mut self.sock)?;
        Ok(true)
    }

    fn remove_comment(&mut self, comment: &str) -> Result<usize, FirewallError> {
        let have = nft::rules(&mut self.sock, FAM, TABLE)?;
        let mut b = Batch::new();
        let mut n = 0;
        for r in have
            .iter()
            .filter(|r| r.comment.as_deref() == Some(comment))
        {
            b.del_rule(FAM, TABLE, &r.chain, r.handle);
            n += 1;
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

    /// DNAT (and hairpin masquerade) for a container's published ports, in one transaction.
    fn publish(
        &mut self,
        container_id: &str,
        container_ip: IpAddr,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        let IpAddr::V4(_) = container_ip else {
            return Ok(());
        };
        self.ensure_base()?;
        let c = ctr_comment(container_id);
        let mut b = Batch::new();
        for p in ports {
            if p.host_ip.is_some_and(|ip| !ip.is_ipv4()) {
                continue;
            }
            let mut e = Vec::new();
            if let Some(ip) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
                e.extend(matches::addr_in(true, CmpOp::Eq, ip, 32));
            }
            e.extend(matches::l4proto(p.proto.number()));
            e.extend(matches::dport(p.host_port));
            e.push(Expr::Counter);
            e.extend(matches::dnat(container_ip, p.container_port));
            b.add_rule(FAM, TABLE, "ports", &e, Some(&c));
            // hairpin: the container reaching its own published port
            let mut h = matches::addr_in(false, CmpOp::Eq, container_ip, 32);
            h.extend(matches::addr_in(true, CmpOp::Eq, container_ip, 32));
            h.extend(matches::l4proto(p.proto.number()));
            h.extend(matches::dport(p.container_port));
            h.push(Expr::Masquerade);
            b.add_rule(FAM, TABLE, "postrouting", &h, Some(&c));
        }
        b.commit(&mut self.sock)?;
        Ok(())
    }

    /// Removes a container's rules; returns how many there were.
    fn unpublish(&mut self, container_id: &str) -> Result<usize, FirewallError> {
        self.remove_comment(&ctr_comment(container_id))
    }

    /// Every owner that has rules, with its rule count (for reconciliation and leak tests).
    fn owners(&mut self) -> Result<Vec<(Owner, usize)>, FirewallError> {
        let mut out: Vec<(Owner, usize)> = Vec::new();
        for r in nft::rules(&mut self.sock, FAM, TABLE)? {
            let Some(o) = r.comment.as_deref().and_then(owner_of) else {
                continue;
            };
            match out.iter_mut().find(|(x, _)| *x == o) {
                Some((_, n)) => *n += 1,
                None => out.push((o, 1)),
            }
        }
        out.sort();
        Ok(out)
    }
}

/// `net.ipv4.ip_forward=1` (docker sets it too) and `route_localnet` on a bridge, so
/// `curl 127.0.0.1:<published>` is routed to the container after DNAT.
pub fn enable_forwarding(bridge: &str) -> std::io::Result<()> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
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
