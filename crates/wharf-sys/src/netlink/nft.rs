//! nf_tables over netlink: tables, chains and rules sent as one batch, which the kernel applies
//! as a transaction (all or nothing). Rules carry a comment in nft's own user-data format
//! (`nft list ruleset` shows it), so wharf finds a container's rules again by that comment —
//! after a crash too — and deletes them by handle.
//!
//! Only the handful of expressions bridge networking needs are encoded (meta, payload, cmp,
//! bitwise, immediate/verdict, fib, nat, masquerade, counter). Encoding is pure and
//! unit-tested; `Batch::commit` is the only I/O.

use super::{
    attr_string, Msg, NetlinkError, Socket, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP,
};
use std::net::IpAddr;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// nft's user-data TLV type for a rule comment (libnftnl `NFTNL_UDATA_RULE_COMMENT`).
const UDATA_RULE_COMMENT: u8 = 0;

/// Data registers (16 bytes each); register 0 is the verdict.
pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;

/// Address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFamily {
    Ip,
    Ip6,
    /// IPv4 and IPv6 in one table (`table inet …`).
    Inet,
}

impl TableFamily {
    fn nfproto(self) -> u8 {
        match self {
            TableFamily::Inet => 1, // NFPROTO_INET
            TableFamily::Ip => 2,   // NFPROTO_IPV4
            TableFamily::Ip6 => 10, // NFPROTO_IPV6
        }
    }

    fn from_nfproto(p: u8) -> Option<TableFamily> {
        match p {
            1 => Some(TableFamily::Inet),
            2 => Some(TableFamily::Ip),
            10 => Some(TableFamily::Ip6),
            _ => None,
        }
    }

    /// nft's name of the family (`ip`, `ip6`, `inet`).
    pub fn as_str(self) -> &'static str {
        match self {
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
            TableFamily::Inet => "inet",
        }
    }
}

/// Netfilter hooks a base chain attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    fn num(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }

    fn from_num(n: u32) -> Option<Hook> {
        Some(match n {
            0 => Hook::Prerouting,
            1 => Hook::Input,
            2 => Hook::Forward,
            3 => Hook::Output,
            4 => Hook::Postrouting,
            _ => return None,
        })
    }
}

/// What a base chain is: `filter` or `nat`, its hook and priority.
#[derive(Debug, Clone, Copy)]
pub struct BaseChain {
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
}

/// A rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

/// Comparison operators of `cmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
}

/// Header a payload expression reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Network,
    Transport,
}

/// `meta` keys wharf uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    IifName,
    OifName,
    L4Proto,
}

/// One nf_tables expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Meta {
        key: MetaKey,
        dreg: u32,
    },
    Payload {
        base: Base,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: Vec<u8>,
    },
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
    },
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    /// `fib daddr type` into `dreg` (a u32 RTN_* value; RTN_LOCAL is 2).
    FibDaddrType {
        dreg: u32,
    },
    /// DNAT to the address in `addr_reg` and, if given, the port in `port_reg`.
    Dnat {
        family: TableFamily,
        addr_reg: u32,
        port_reg: Option<u32>,
    },
    Masquerade,
    Counter,
    /// Conntrack `key` of the packet's connection into `dreg` (a u32).
    Ct {
        key: CtKey,
        dreg: u32,
    },
}

/// Conntrack keys wharf uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// `ct state` bits: invalid 1, established 2, related 4, new 8.
    State,
    /// `ct status` bits: dnat is 0x20.
    Status,
}

/// Interface names compare as 16 NUL-padded bytes (IFNAMSIZ), as nft does for `iifname`.
pub fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.truncate(15);
    v.resize(16, 0);
    v
}

/// Expressions of common matches, built from the primitives above.
pub mod matches {
    use super::*;

    pub fn iifname(op: CmpOp, name: &str) -> Vec<Expr> {
        vec![
            Expr::Meta {
                key: MetaKey::IifName,
                dreg: REG_1,
            },
            Expr::Cmp {
                sreg: REG_1,
                op,
                data: ifname_bytes(name),
            },
        ]
    }

    pub fn oifname(op: CmpOp, name: &str) -> Vec<Expr> {
        vec![
            Expr::Meta {
                key: MetaKey::OifName,
                dreg: REG_1,
            },
            Expr::Cmp {
                sreg: REG_1,
                op,
                data: ifname_bytes(name),
            },
        ]
    }

    /// Source (or destination, `dst`) address within `net/prefix`.
    pub fn addr_in(dst: bool, op: CmpOp, net: IpAddr, prefix: u8) -> Vec<Expr> {
        let (offset, bytes): (u32, Vec<u8>) = match net {
            IpAddr::V4(a) => (if dst { 16 } else { 12 }, a.octets().to_vec()),
            IpAddr::V6(a) => (if dst { 24 } else { 8 }, a.octets().to_vec()),
        };
        let len = bytes.len() as u32;
        let mut out = vec![Expr::Payload {
            base: Base::Network,
            offset,
            len,
            dreg: REG_1,
        }];
        let bits = usize::from(prefix).min(bytes.len() * 8);
        if bits < bytes.len() * 8 {
            let mask = prefix_mask(bytes.len(), bits);
            out.push(Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: mask.clone(),
            });
            let masked: Vec<u8> = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
            out.push(Expr::Cmp {
                sreg: REG_1,
                op,
                data: masked,
            });
        } else {
            out.push(Expr::Cmp {
                sreg: REG_1,
                op,
                data: bytes,
            });
        }
        out
    }

    fn prefix_mask(len: usize, bits: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                let have = bits.saturating_sub(i * 8).min(8);
                if have == 0 {
                    0
                } else {
                    0xffu8 << (8 - have)
                }
            })
            .collect()
    }

    /// Layer-4 protocol number (6 tcp, 17 udp, 132 sctp).
    pub fn l4proto(proto: u8) -> Vec<Expr> {
        vec![
            Expr::Meta {
                key: MetaKey::L4Proto,
                dreg: REG_1,
            },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: vec![proto],
            },
        ]
    }

    /// Destination port (tcp/udp/sctp all keep it at offset 2 of the transport header).
    pub fn dport(port: u16) -> Vec<Expr> {
        vec![
            Expr::Payload {
                base: Base::Transport,
                offset: 2,
                len: 2,
                dreg: REG_1,
            },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: port.to_be_bytes().to_vec(),
            },
        ]
    }

    /// The destination is an address of this host (`fib daddr type local`).
    pub fn daddr_local() -> Vec<Expr> {
        vec![
            Expr::FibDaddrType { dreg: REG_1 },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: 2u32.to_ne_bytes().to_vec(), // RTN_LOCAL
            },
        ]
    }

    /// Any of the conntrack `bits` set under `key` (`ct state established,related`,
    /// `ct status dnat`).
    pub fn ct_any(key: CtKey, bits: u32) -> Vec<Expr> {
        vec![
            Expr::Ct { key, dreg: REG_1 },
            Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: bits.to_ne_bytes().to_vec(),
            },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Neq,
                data: vec![0; 4],
            },
        ]
    }

    /// `dnat to ip:port`.
    pub fn dnat(ip: IpAddr, port: u16) -> Vec<Expr> {
        let (family, addr) = match ip {
            IpAddr::V4(a) => (TableFamily::Ip, a.octets().to_vec()),
            IpAddr::V6(a) => (TableFamily::Ip6, a.octets().to_vec()),
        };
        vec![
            Expr::Immediate {
                dreg: REG_1,
                data: addr,
            },
            Expr::Immediate {
                dreg: REG_2,
                data: port.to_be_bytes().to_vec(),
            },
            Expr::Dnat {
                family,
                addr_reg: REG_1,
                port_reg: Some(REG_2),
            },
        ]
    }
}

fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let r = res_id.to_be_bytes();
    [family, 0, r[0], r[1]]
}

fn msg_type(op: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | op
}

fn verdict_code(v: &Verdict) -> i32 {
    match v {
        Verdict::Drop => 0,
        Verdict::Accept => 1,
        Verdict::Jump(_) => -3,
        Verdict::Goto(_) => -4,
        Verdict::Return => -5,
    }
}

fn put_data_value(m: &mut Msg, kind: u16, data: &[u8]) {
    m.nest(kind).attr(NFTA_DATA_VALUE, data).end();
}

fn put_expr(m: &mut Msg, e: &Expr) {
    let name = match e {
        Expr::Meta { .. } => "meta",
        Expr::Payload { .. } => "payload",
        Expr::Cmp { .. } => "cmp",
        Expr::Bitwise { .. } => "bitwise",
        Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
        Expr::FibDaddrType { .. } => "fib",
        Expr::Dnat { .. } => "nat",
        Expr::Masquerade => "masq",
        Expr::Counter => "counter",
        Expr::Ct { .. } => "ct",
    };
    m.nest(NFTA_LIST_ELEM).attr_str(NFTA_EXPR_NAME, name);
    match e {
        Expr::Meta { key, dreg } => {
            let k = match key {
                MetaKey::IifName => 6,
                MetaKey::OifName => 7,
                MetaKey::L4Proto => 16,
            };
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, *dreg) // NFTA_META_DREG
                .attr_be32(2, k) // NFTA_META_KEY
                .end();
        }
        Expr::Payload {
            base,
            offset,
            len,
            dreg,
        } => {
            let b = match base {
                Base::Network => 1,
                Base::Transport => 2,
            };
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, *dreg)
                .attr_be32(2, b)
                .attr_be32(3, *offset)
                .attr_be32(4, *len)
                .end();
        }
        Expr::Cmp { sreg, op, data } => {
            let o = match op {
                CmpOp::Eq => 0,
                CmpOp::Neq => 1,
            };
            m.nest(NFTA_EXPR_DATA).attr_be32(1, *sreg).attr_be32(2, o);
            put_data_value(m, 3, data);
            m.end();
        }
        Expr::Bitwise { sreg, dreg, mask } => {
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, *sreg)
                .attr_be32(2, *dreg)
                .attr_be32(3, mask.len() as u32);
            put_data_value(m, 4, mask);
            put_data_value(m, 5, &vec![0u8; mask.len()]);
            m.end();
        }
        Expr::Immediate { dreg, data } => {
            m.nest(NFTA_EXPR_DATA).attr_be32(1, *dreg);
            put_data_value(m, 2, data);
            m.end();
        }
        Expr::Verdict(v) => {
            m.nest(NFTA_EXPR_DATA).attr_be32(1, REG_VERDICT);
            m.nest(2).nest(NFTA_DATA_VERDICT);
            m.attr_be32(NFTA_VERDICT_CODE, verdict_code(v) as u32);
            if let Verdict::Jump(c) | Verdict::Goto(c) = v {
                m.attr_str(NFTA_VERDICT_CHAIN, c);
            }
            m.end().end().end();
        }
        Expr::FibDaddrType { dreg } => {
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, *dreg) // NFTA_FIB_DREG
                .attr_be32(2, 3) // NFTA_FIB_RESULT: NFT_FIB_RESULT_ADDRTYPE
                .attr_be32(3, 2) // NFTA_FIB_FLAGS: NFTA_FIB_F_DADDR
                .end();
        }
        Expr::Dnat {
            family,
            addr_reg,
            port_reg,
        } => {
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, 1) // NFTA_NAT_TYPE: NFT_NAT_DNAT
                .attr_be32(2, u32::from(family.nfproto()))
                .attr_be32(3, *addr_reg);
            if let Some(p) = port_reg {
                m.attr_be32(5, *p); // NFTA_NAT_REG_PROTO_MIN
            }
            m.end();
        }
        Expr::Ct { key, dreg } => {
            let k = match key {
                CtKey::State => 0,
                CtKey::Status => 2,
            };
            m.nest(NFTA_EXPR_DATA)
                .attr_be32(1, *dreg) // NFTA_CT_DREG
                .attr_be32(2, k) // NFTA_CT_KEY
                .end();
        }
        Expr::Masquerade | Expr::Counter => {}
    }
    m.end();
}

/// nft's comment user data: type, length, NUL-terminated text.
fn comment_udata(comment: &str) -> Vec<u8> {
    let text: Vec<u8> = comment
        .bytes()
        .take(254)
        .chain(std::iter::once(0))
        .collect();
    let mut v = vec![UDATA_RULE_COMMENT, text.len() as u8];
    v.extend_from_slice(&text);
    v
}

fn comment_of(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (t, l) = (rest[0], usize::from(rest[1]));
        let v = rest.get(2..2 + l)?;
        if t == UDATA_RULE_COMMENT {
            return Some(attr_string(v));
        }
        rest = &rest[2 + l..];
    }
    None
}

/// A rule as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
}

/// A transaction: every message or none is applied.
pub struct Batch {
    msgs: Vec<(Msg, String)>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch { msgs: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn push(&mut self, op: u16, flags: u16, family: TableFamily, what: String) -> &mut Msg {
        let mut m = Msg::new(msg_type(op), flags | NLM_F_ACK);
        m.header(&nfgenmsg(family.nfproto(), 0));
        self.msgs.push((m, what));
        let last = self.msgs.len() - 1;
        &mut self.msgs[last].0
    }

    /// Create the table if it does not exist (an existing one is kept, with its contents).
    pub fn add_table(&mut self, family: TableFamily, name: &str) -> &mut Self {
        self.push(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            family,
            format!("create nftables table {name}"),
        )
        .attr_str(NFTA_TABLE_NAME, name);
        self
    }

    /// Delete a table with everything in it.
    pub fn del_table(&mut self, family: TableFamily, name: &str) -> &mut Self {
        self.push(
            NFT_MSG_DELTABLE,
            0,
            family,
            format!("delete nftables table {name}"),
        )
        .attr_str(NFTA_TABLE_NAME, name);
        self
    }

    /// Create a chain if it does not exist; a base chain when `base` is given (policy accept).
    pub fn add_chain(
        &mut self,
        family: TableFamily,
        table: &str,
        chain: &str,
        base: Option<BaseChain>,
    ) -> &mut Self {
        let m = self.push(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            family,
            format!("create nftables chain {table}/{chain}"),
        );
        m.attr_str(NFTA_CHAIN_TABLE, table)
            .attr_str(NFTA_CHAIN_NAME, chain);
        if let Some(b) = base {
            m.nest(NFTA_CHAIN_HOOK)
                .attr_be32(NFTA_HOOK_HOOKNUM, b.hook.num())
                .attr_be32(NFTA_HOOK_PRIORITY, b.priority as u32)
                .end();
            m.attr_be32(NFTA_CHAIN_POLICY, 1); // NF_ACCEPT
            m.attr_str(
                NFTA_CHAIN_TYPE,
                match b.kind {
                    ChainType::Filter => "filter",
                    ChainType::Nat => "nat",
                },
            );
        }
        self
    }

    /// Append a rule to a chain, with an optional comment (how wharf finds it again).
    pub fn add_rule(
        &mut self,
        family: TableFamily,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: Option<&str>,
    ) -> &mut Self {
        let what = format!("add nftables rule to {table}/{chain}");
        self.new_rule(NLM_F_APPEND, what, family, table, chain, exprs, comment)
    }

    /// Insert a rule at the head of a chain (first to match), with an optional comment: for
    /// a chain that is not wharf's, whose later rules or policy would otherwise decide first.
    pub fn insert_rule(
        &mut self,
        family: TableFamily,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: Option<&str>,
    ) -> &mut Self {
        // without NLM_F_APPEND (and no position) the kernel links the rule first
        let what = format!(
            "insert nftables rule into {} {table}/{chain}",
            family.as_str()
        );
        self.new_rule(0, what, family, table, chain, exprs, comment)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_rule(
        &mut self,
        flags: u16,
        what: String,
        family: TableFamily,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: Option<&str>,
    ) -> &mut Self {
        let m = self.push(NFT_MSG_NEWRULE, NLM_F_CREATE | flags, family, what);
        m.attr_str(NFTA_RULE_TABLE, table)
            .attr_str(NFTA_RULE_CHAIN, chain);
        m.nest(NFTA_RULE_EXPRESSIONS);
        for e in exprs {
            put_expr(m, e);
        }
        m.end();
        if let Some(c) = comment {
            m.attr(NFTA_RULE_USERDATA, &comment_udata(c));
        }
        self
    }

    /// Delete a rule by handle.
    pub fn del_rule(
        &mut self,
        family: TableFamily,
        table: &str,
        chain: &str,
        handle: u64,
    ) -> &mut Self {
        self.push(
            NFT_MSG_DELRULE,
            0,
            family,
            format!("delete nftables rule {handle} from {table}/{chain}"),
        )
        .attr_str(NFTA_RULE_TABLE, table)
        .attr_str(NFTA_RULE_CHAIN, chain)
        .attr_be64(NFTA_RULE_HANDLE, handle);
        self
    }

    /// The framed batch and the sequence numbers whose acknowledgements to wait for.
    fn frame(self) -> (Vec<u8>, Vec<u32>, Vec<(u32, String)>) {
        let mut bytes = Vec::new();
        let res = NFNL_SUBSYS_NFTABLES;
        let mut begin = Msg::new(NFNL_MSG_BATCH_BEGIN, 0);
        begin.header(&nfgenmsg(0, res));
        bytes.extend(begin.finish());
        let mut seqs = Vec::new();
        let mut names = Vec::new();
        for (m, what) in self.msgs {
            seqs.push(m.seq());
            names.push((m.seq(), what));
            bytes.extend(m.finish());
        }
        let mut end = Msg::new(NFNL_MSG_BATCH_END, 0);
        end.header(&nfgenmsg(0, res));
        bytes.extend(end.finish());
        (bytes, seqs, names)
    }

    /// Send the batch; the kernel applies all of it or none. The error names the first
    /// message the kernel refused.
    pub fn commit(self, sock: &mut Socket) -> Result<(), NetlinkError> {
        if self.msgs.is_empty() {
            return Ok(());
        }
        let (bytes, seqs, names) = self.frame();
        sock.transact(&bytes, &seqs, &|seq| {
            names
                .iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, w)| w.clone())
                .unwrap_or_else(|| "nftables batch".to_string())
        })?;
        Ok(())
    }
}

/// The rules of `table` (all chains), with their handles and comments. A missing table is an
/// empty list.
pub fn rules(
    sock: &mut Socket,
    family: TableFamily,
    table: &str,
) -> Result<Vec<Rule>, NetlinkError> {
    let mut m = Msg::new(msg_type(NFT_MSG_GETRULE), NLM_F_DUMP);
    m.header(&nfgenmsg(family.nfproto(), 0));
    m.attr_str(NFTA_RULE_TABLE, table);
    let msgs = match sock.dump(m, &format!("list nftables rules of {table}")) {
        Ok(m) => m,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for msg in msgs.iter().filter(|m| m.kind == msg_type(NFT_MSG_NEWRULE)) {
        let mut t = String::new();
        let mut r = Rule {
            chain: String::new(),
            handle: 0,
            comment: None,
        };
        for (k, d) in msg.attrs(4) {
            match k {
                NFTA_RULE_TABLE => t = attr_string(d),
                NFTA_RULE_CHAIN => r.chain = attr_string(d),
                NFTA_RULE_HANDLE => {
                    if let Some(b) = d.get(0..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                        r.handle = u64::from_be_bytes(b);
                    }
                }
                NFTA_RULE_USERDATA => r.comment = comment_of(d),
                _ => {}
            }
        }
        // Old kernels ignore the table filter of a dump: filter here as well.
        if t == table && r.handle != 0 {
            out.push(r);
        }
    }
    Ok(out)
}

/// A base chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

/// A chain as a dump reports it (any table, any owner: docker's iptables-nft, firewalld,
/// netavark, the host's own ruleset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub family: TableFamily,
    pub table: String,
    pub name: String,
    /// A base chain's hook and priority; `None` for a regular chain (only jumped to).
    pub hook: Option<(Hook, i32)>,
    /// A base chain's policy.
    pub policy: Option<Policy>,
}

/// Every chain of the `ip`, `ip6` and `inet` tables (other families are skipped).
pub fn chains(sock: &mut Socket) -> Result<Vec<Chain>, NetlinkError> {
    let mut m = Msg::new(msg_type(NFT_MSG_GETCHAIN), NLM_F_DUMP);
    m.header(&nfgenmsg(0, 0)); // NFPROTO_UNSPEC: every family
    let msgs = sock.dump(m, "list nftables chains")?;
    let mut out = Vec::new();
    for msg in msgs.iter().filter(|m| m.kind == msg_type(NFT_MSG_NEWCHAIN)) {
        let Some(family) = msg
            .payload
            .first()
            .and_then(|p| TableFamily::from_nfproto(*p))
        else {
            continue;
        };
        let mut c = Chain {
            family,
            table: String::new(),
            name: String::new(),
            hook: None,
            policy: None,
        };
        let be32 = |d: &[u8]| {
            d.get(0..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        for (k, d) in msg.attrs(4) {
            match k {
                NFTA_CHAIN_TABLE => c.table = attr_string(d),
                NFTA_CHAIN_NAME => c.name = attr_string(d),
                NFTA_CHAIN_HOOK => {
                    let mut num = None;
                    let mut prio = 0i32;
                    for (hk, hd) in super::Attrs::of(d) {
                        match hk {
                            NFTA_HOOK_HOOKNUM => num = be32(hd),
                            NFTA_HOOK_PRIORITY => prio = be32(hd).unwrap_or(0) as i32,
                            _ => {}
                        }
                    }
                    c.hook = num.and_then(Hook::from_num).map(|h| (h, prio));
                }
                NFTA_CHAIN_POLICY => {
                    c.policy = be32(d).map(|p| {
                        if p == 0 {
                            Policy::Drop // NF_DROP
                        } else {
                            Policy::Accept
                        }
                    })
                }
                _ => {}
            }
        }
        if c.hook.is_none() {
            c.policy = None;
        }
        if !c.table.is_empty() && !c.name.is_empty() {
            out.push(c);
        }
    }
    Ok(out)
}

/// Whether the kernel speaks nf_tables at all (module loaded or loadable), and
/// `WHARF_DISABLE=nftables` does not hide it.
pub fn available() -> bool {
    if crate::features::force_disabled(crate::features::Feature::Nftables) {
        return false;
    }
    let Ok(mut s) = Socket::open(super::Family::Netfilter) else {
        return false;
    };
    // A dump of a table that surely does not exist: ENOENT means nf_tables answered.
    let mut m = Msg::new(msg_type(NFT_MSG_GETRULE), NLM_F_DUMP);
    m.header(&nfgenmsg(TableFamily::Ip.nfproto(), 0));
    m.attr_str(NFTA_RULE_TABLE, "wharf-probe-none");
    match s.dump(m, "probe nf_tables") {
        Ok(_) => true,
        Err(e) => e.errno() == Some(libc::ENOENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn comments_round_trip() {
        let u = comment_udata("wharf:abc");
        assert_eq!(comment_of(&u).as_deref(), Some("wharf:abc"));
        assert_eq!(comment_of(&[0, 200, 1]), None);
        assert_eq!(comment_of(&[]), None);
    }

    #[test]
    fn prefix_matches_mask_the_address() {
        let e = matches::addr_in(
            false,
            CmpOp::Eq,
            IpAddr::V4(Ipv4Addr::new(172, 17, 3, 9)),
            16,
        );
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: vec![255, 255, 0, 0]
            }
        );
        assert_eq!(
            e[2],
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: vec![172, 17, 0, 0]
            }
        );
        let e = matches::addr_in(true, CmpOp::Eq, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 32);
        assert_eq!(e.len(), 2);
        let e = matches::addr_in(true, CmpOp::Eq, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 20);
        match &e[1] {
            Expr::Bitwise { mask, .. } => assert_eq!(mask, &vec![255, 255, 240, 0]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_is_framed_with_begin_and_end() {
        let mut b = Batch::new();
        b.add_table(TableFamily::Ip, "wharf");
        b.add_rule(
            TableFamily::Ip,
            "wharf",
            "x",
            &[Expr::Counter, Expr::Verdict(Verdict::Accept)],
            Some("c"),
        );
        let (bytes, seqs, _) = b.frame();
        assert_eq!(seqs.len(), 2);
        let msgs = super::super::parse_messages(&bytes).expect("parse");
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].kind, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs[3].kind, NFNL_MSG_BATCH_END);
        assert_eq!(msgs[2].kind, msg_type(NFT_MSG_NEWRULE));
    }
}
