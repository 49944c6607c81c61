//! rtnetlink: links (bridges, veth pairs), addresses and routes in the calling thread's network
//! namespace. A veth's peer can be created straight inside another namespace (by pid or fd), so
//! the multi-threaded CLI never has to enter a container's namespace (invariant 1): the
//! container's init configures its end with the same calls from inside.

use super::{
    attr_string, attr_u32, Attrs, Msg, NetlinkError, Socket, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL,
};
use std::net::IpAddr;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const AF_UNSPEC: u8 = 0;
const AF_BRIDGE: u8 = 7;
const IFF_UP: u32 = 1;
const IFINFOMSG_LEN: usize = 16;

/// Where a new veth peer is created.
#[derive(Debug, Clone, Copy)]
pub enum Netns {
    /// The network namespace of this process.
    Pid(i32),
    /// A namespace file descriptor (`/proc/<pid>/ns/net`, a bind-mounted ns file).
    Fd(i32),
}

/// What a link dump reports about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`… (empty for physical devices and loopback).
    pub kind: String,
    pub master: Option<u32>,
    pub up: bool,
    pub mtu: Option<u32>,
}

/// Linux interface names: 1..=15 bytes, no `/`, `:`, whitespace or NUL (dev_valid_name).
pub fn valid_name(name: &str) -> Result<(), NetlinkError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(NetlinkError::BadName(name.to_string()))
    }
}

fn ifinfomsg(family: u8, index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[0] = family;
    h[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

fn parse_link(payload: &[u8], attrs: Attrs<'_>) -> Option<Link> {
    let index = i32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let flags = u32::from_ne_bytes(payload.get(8..12)?.try_into().ok()?);
    let mut l = Link {
        index: u32::try_from(index).ok()?,
        name: String::new(),
        kind: String::new(),
        master: None,
        up: flags & IFF_UP != 0,
        mtu: None,
    };
    for (k, d) in attrs {
        match k {
            IFLA_IFNAME => l.name = attr_string(d),
            IFLA_MASTER => l.master = attr_u32(d),
            IFLA_MTU => l.mtu = attr_u32(d),
            IFLA_LINKINFO => {
                for (ik, id) in Attrs::of(d) {
                    if ik == IFLA_INFO_KIND {
                        l.kind = attr_string(id);
                    }
                }
            }
            _ => {}
        }
    }
    Some(l)
}

/// The interface called `name`, if there is one.
pub fn get(sock: &mut Socket, name: &str) -> Result<Option<Link>, NetlinkError> {
    valid_name(name)?;
    let mut m = Msg::new(RTM_GETLINK, 0);
    m.header(&ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    let what = format!("look up interface {name}");
    match sock.request(m, &what) {
        Ok(msgs) => Ok(msgs
            .iter()
            .find(|m| m.kind == RTM_NEWLINK)
            .and_then(|m| parse_link(&m.payload, m.attrs(IFINFOMSG_LEN)))),
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The index of `name`, or `NoSuchLink`.
pub fn index(sock: &mut Socket, name: &str) -> Result<u32, NetlinkError> {
    get(sock, name)?
        .map(|l| l.index)
        .ok_or_else(|| NetlinkError::NoSuchLink(name.to_string()))
}

/// Every interface in the namespace.
pub fn list(sock: &mut Socket) -> Result<Vec<Link>, NetlinkError> {
    let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
    m.header(&ifinfomsg(AF_UNSPEC, 0, 0, 0));
    let msgs = sock.dump(m, "list interfaces")?;
    Ok(msgs
        .iter()
        .filter(|m| m.kind == RTM_NEWLINK)
        .filter_map(|m| parse_link(&m.payload, m.attrs(IFINFOMSG_LEN)))
        .collect())
}

/// Create a bridge. `EEXIST` is reported as the kernel's error (the caller decides whether an
/// existing bridge is acceptable).
pub fn create_bridge(sock: &mut Socket, name: &str, mtu: Option<u32>) -> Result<(), NetlinkError> {
    valid_name(name)?;
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.header(&ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.nest(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "bridge")
        .end();
    sock.request(m, &format!("create bridge {name}"))?;
    Ok(())
}

/// Create a veth pair: `host` here, `peer` in `peer_ns` (or here when `None`), both down.
pub fn create_veth(
    sock: &mut Socket,
    host: &str,
    peer: &str,
    peer_ns: Option<Netns>,
    mtu: Option<u32>,
) -> Result<(), NetlinkError> {
    let m = veth_msg(host, peer, peer_ns, mtu, None)?;
    sock.request(m, &format!("create veth pair {host}/{peer}"))?;
    Ok(())
}

/// Create a veth pair whose `host` end is on the bridge `master` and up from the start (one
/// request where `create_veth`, `set_master` and `set_up` are three), `peer` in `peer_ns`,
/// down. Returns the host end as the kernel then reports it; a kernel that ignored the
/// master or the flags at creation gets them set afterwards.
pub fn create_veth_on_bridge(
    sock: &mut Socket,
    host: &str,
    peer: &str,
    peer_ns: Option<Netns>,
    mtu: Option<u32>,
    master: u32,
) -> Result<Link, NetlinkError> {
    let m = veth_msg(host, peer, peer_ns, mtu, Some(master))?;
    sock.request(m, &format!("create veth pair {host}/{peer}"))?;
    let mut l = get(sock, host)?.ok_or_else(|| NetlinkError::NoSuchLink(host.to_string()))?;
    if l.master != Some(master) {
        set_master(sock, l.index, master)?;
        l.master = Some(master);
    }
    if !l.up {
        set_up(sock, l.index)?;
        l.up = true;
    }
    Ok(l)
}

/// The RTM_NEWLINK of a veth pair; with `master`, the host end is enslaved to it and up.
fn veth_msg(
    host: &str,
    peer: &str,
    peer_ns: Option<Netns>,
    mtu: Option<u32>,
    master: Option<u32>,
) -> Result<Msg, NetlinkError> {
    valid_name(host)?;
    valid_name(peer)?;
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    let up = if master.is_some() { IFF_UP } else { 0 };
    m.header(&ifinfomsg(AF_UNSPEC, 0, up, up));
    m.attr_str(IFLA_IFNAME, host);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(master) = master {
        m.attr_u32(IFLA_MASTER, master);
    }
    m.nest(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
    m.nest(IFLA_INFO_DATA).nest(VETH_INFO_PEER);
    // The peer's payload is an ifinfomsg followed by its own attributes.
    m.header(&ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, peer);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    match peer_ns {
        Some(Netns::Pid(pid)) => {
            m.attr_u32(IFLA_NET_NS_PID, pid as u32);
        }
        Some(Netns::Fd(fd)) => {
            m.attr_u32(IFLA_NET_NS_FD, fd as u32);
        }
        None => {}
    }
    m.end().end().end();
    Ok(m)
}

fn set_link(
    sock: &mut Socket,
    index: u32,
    flags: u32,
    change: u32,
    attrs: &dyn Fn(&mut Msg),
    what: &str,
) -> Result<(), NetlinkError> {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
    m.header(&ifinfomsg(AF_UNSPEC, index, flags, change));
    attrs(&mut m);
    sock.request(m, what)?;
    Ok(())
}

/// Bring an interface up.
pub fn set_up(sock: &mut Socket, index: u32) -> Result<(), NetlinkError> {
    set_link(
        sock,
        index,
        IFF_UP,
        IFF_UP,
        &|_| {},
        &format!("bring up interface #{index}"),
    )
}

/// Enslave `index` to the bridge `master`.
pub fn set_master(sock: &mut Socket, index: u32, master: u32) -> Result<(), NetlinkError> {
    set_link(
        sock,
        index,
        0,
        0,
        &|m| {
            m.attr_u32(IFLA_MASTER, master);
        },
        &format!("attach interface #{index} to bridge #{master}"),
    )
}

/// Rename an interface (it must be down).
pub fn rename(sock: &mut Socket, index: u32, name: &str) -> Result<(), NetlinkError> {
    valid_name(name)?;
    set_link(
        sock,
        index,
        0,
        0,
        &|m| {
            m.attr_str(IFLA_IFNAME, name);
        },
        &format!("rename interface #{index} to {name}"),
    )
}

/// Set the hardware address (it must be a unicast, non-zero MAC; the kernel checks).
pub fn set_mac(sock: &mut Socket, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
    set_link(
        sock,
        index,
        0,
        0,
        &|m| {
            m.attr(IFLA_ADDRESS, &mac);
        },
        &format!("set the MAC address of interface #{index}"),
    )
}

/// Hairpin mode on a bridge port: frames may leave through the port they came in on, so a
/// container reaches its own published port through the host's DNAT.
pub fn set_hairpin(sock: &mut Socket, index: u32, on: bool) -> Result<(), NetlinkError> {
    // Bridge port options are set with RTM_SETLINK in the AF_BRIDGE family.
    let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK);
    m.header(&ifinfomsg(AF_BRIDGE, index, 0, 0));
    m.nest(IFLA_PROTINFO)
        .attr_u8(IFLA_BRPORT_MODE, u8::from(on))
        .end();
    sock.request(m, &format!("set hairpin mode on interface #{index}"))?;
    Ok(())
}

/// Delete an interface (a veth takes its peer with it). A missing interface is not an error:
/// teardown is idempotent.
pub fn delete(sock: &mut Socket, name: &str) -> Result<bool, NetlinkError> {
    let Some(l) = get(sock, name)? else {
        return Ok(false);
    };
    let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK);
    m.header(&ifinfomsg(AF_UNSPEC, l.index, 0, 0));
    match sock.request(m, &format!("delete interface {name}")) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

fn family_of(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Add `ip/prefix` to an interface (IPv4 gets its broadcast address, as `ip addr add … brd +`;
/// IPv6 is added `nodad`: wharf hands each address out once, and a tentative address would
/// not be usable — as source or gateway — until duplicate detection ends a second later).
pub fn add_address(
    sock: &mut Socket,
    index: u32,
    ip: IpAddr,
    prefix: u8,
) -> Result<(), NetlinkError> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetlinkError::Malformed("prefix length"));
    }
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    let mut h = [0u8; 8];
    h[0] = family_of(&ip);
    h[1] = prefix;
    if ip.is_ipv6() {
        h[2] = IFA_F_NODAD;
    }
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.header(&h);
    let b = ip_bytes(&ip);
    m.attr(IFA_LOCAL, &b);
    m.attr(IFA_ADDRESS, &b);
    if let IpAddr::V4(a) = ip {
        if prefix < 31 {
            let host_mask = u32::MAX >> prefix;
            let brd = u32::from(a) | host_mask;
            m.attr(IFA_BROADCAST, &brd.to_be_bytes());
        }
    }
    sock.request(
        m,
        &format!("add address {ip}/{prefix} to interface #{index}"),
    )?;
    Ok(())
}

/// Remove `ip/prefix` from an interface. An address that is not there is not an error
/// (teardown is idempotent).
pub fn del_address(
    sock: &mut Socket,
    index: u32,
    ip: IpAddr,
    prefix: u8,
) -> Result<bool, NetlinkError> {
    let mut m = Msg::new(RTM_DELADDR, NLM_F_ACK);
    let mut h = [0u8; 8];
    h[0] = family_of(&ip);
    h[1] = prefix;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.header(&h);
    let b = ip_bytes(&ip);
    m.attr(IFA_LOCAL, &b);
    m.attr(IFA_ADDRESS, &b);
    match sock.request(
        m,
        &format!("remove address {ip}/{prefix} from interface #{index}"),
    ) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.errno(), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The addresses of interface `index` (or of every interface with `None`), as (index, ip, prefix).
pub fn addresses(
    sock: &mut Socket,
    index: Option<u32>,
) -> Result<Vec<(u32, IpAddr, u8)>, NetlinkError> {
    let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
    m.header(&[0u8; 8]);
    let msgs = sock.dump(m, "list addresses")?;
    let mut out = Vec::new();
    for msg in msgs.iter().filter(|m| m.kind == RTM_NEWADDR) {
        let p = &msg.payload;
        if p.len() < 8 {
            continue;
        }
        let (family, prefix) = (p[0], p[1]);
        let idx = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
        if index.is_some_and(|i| i != idx) {
            continue;
        }
        let mut local = None;
        let mut addr = None;
        for (k, d) in msg.attrs(8) {
            let ip = match (family as i32, d.len()) {
                (libc::AF_INET, 4) => Some(IpAddr::from([d[0], d[1], d[2], d[3]])),
                (libc::AF_INET6, 16) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(d);
                    Some(IpAddr::from(o))
                }
                _ => None,
            };
            match k {
                IFA_LOCAL => local = ip,
                IFA_ADDRESS => addr = ip,
                _ => {}
            }
        }
        if let Some(ip) = local.or(addr) {
            out.push((idx, ip, prefix));
        }
    }
    Ok(out)
}

/// Add a route: `dst` (None = default) via `gateway` and/or out of `oif`.
pub fn add_route(
    sock: &mut Socket,
    dst: Option<(IpAddr, u8)>,
    gateway: Option<IpAddr>,
    oif: Option<u32>,
) -> Result<(), NetlinkError> {
    let family = match (dst, gateway) {
        (Some((ip, _)), _) | (None, Some(ip)) => family_of(&ip),
        (None, None) => {
            return Err(NetlinkError::Malformed(
                "route without destination or gateway",
            ))
        }
    };
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    let scope = if gateway.is_some() { 0 } else { 253 }; // universe / link
    let h = [
        family,
        dst.map(|d| d.1).unwrap_or(0), // dst_len
        0,                             // src_len
        0,                             // tos
        254,                           // RT_TABLE_MAIN
        3,                             // RTPROT_BOOT
        scope,
        1, // RTN_UNICAST
        0,
        0,
        0,
        0, // flags
    ];
    m.header(&h);
    if let Some((ip, _)) = dst {
        m.attr(RTA_DST, &ip_bytes(&ip));
    }
    if let Some(gw) = gateway {
        m.attr(RTA_GATEWAY, &ip_bytes(&gw));
    }
    if let Some(oif) = oif {
        m.attr_u32(RTA_OIF, oif);
    }
    let what = match (dst, gateway) {
        (None, Some(gw)) => format!("add default route via {gw}"),
        (Some((ip, p)), _) => format!("add route to {ip}/{p}"),
        (None, None) => String::new(),
    };
    sock.request(m, &what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["eth0", "wharf0", "veth1a2b3c4d5e6", "a"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "veth1a2b3c4d5e6f", "a/b", "a:b", "a b", ".", ".."] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }
}
