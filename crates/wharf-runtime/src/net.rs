//! Bridge networking at start: the two halves of a container's veth.
//!
//! The parent (multi-threaded CLI or monitor) creates the pair from the host's namespace with
//! the container end born inside the container's network namespace (by pid), already called
//! `eth0`, and plugs the host end into the bridge — it never enters the container's namespace
//! (invariant 1). The single-threaded init then configures `eth0` from inside: MAC, addresses,
//! up, default route, and `lo`. Addresses, the bridge and firewall rules are chosen and made
//! by the engine; a failure here fails the start, and the namespace's death takes the veth
//! with it.

use crate::spec::BridgeNet;
use std::net::IpAddr;
use wharf_sys::netlink::link::{self, Netns};
use wharf_sys::netlink::{Family, NetlinkError, Socket};

/// Name of the container's interface.
pub const CONTAINER_IF: &str = "eth0";

/// Parent side: the veth pair, container end in `pid`'s network namespace, host end on the
/// bridge and up — created so in one request (`link::create_veth_on_bridge`); hairpin mode
/// is a bridge-port option, a second one.
pub fn attach_host(net: &BridgeNet, pid: i32) -> Result<(), NetlinkError> {
    let mut s = Socket::open(Family::Route)?;
    let bridge = link::index(&mut s, &net.bridge)?;
    let create = |s: &mut Socket| {
        link::create_veth_on_bridge(
            s,
            &net.host_veth,
            CONTAINER_IF,
            Some(Netns::Pid(pid)),
            net.mtu,
            bridge,
        )
    };
    let res = match create(&mut s) {
        // A leftover host end of a container that died unreaped by us: the name is ours.
        Err(e) if e.errno() == Some(nix::libc::EEXIST) => {
            let _ = link::delete(&mut s, &net.host_veth);
            create(&mut s)
        }
        r => r,
    }
    .and_then(|host| {
        if net.hairpin {
            link::set_hairpin(&mut s, host.index, true)?;
        }
        Ok(())
    });
    if res.is_err() {
        let _ = link::delete(&mut s, &net.host_veth);
    }
    res
}

/// Init side, inside the container's network namespace: `eth0` gets its MAC and addresses,
/// comes up with `lo`, and routes through the gateways.
pub fn configure_inside(net: &BridgeNet) -> Result<(), NetlinkError> {
    let mut s = Socket::open(Family::Route)?;
    let lo = link::index(&mut s, "lo")?;
    link::set_up(&mut s, lo)?;
    let eth = link::index(&mut s, CONTAINER_IF)?;
    if let Some(mac) = net.mac {
        link::set_mac(&mut s, eth, mac)?;
    }
    for (ip, prefix) in &net.addresses {
        link::add_address(&mut s, eth, *ip, *prefix)?;
    }
    link::set_up(&mut s, eth)?;
    for gw in [net.gateway, net.gateway6].into_iter().flatten() {
        link::add_route(&mut s, None, Some(gw), Some(eth))?;
    }
    Ok(())
}

/// docker's MAC for an IPv4 address: 02:42 followed by the address.
pub fn mac_for(ip: IpAddr) -> Option<[u8; 6]> {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some([0x02, 0x42, o[0], o[1], o[2], o[3]])
        }
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac() {
        assert_eq!(
            mac_for("172.17.0.2".parse().expect("ip")),
            Some([0x02, 0x42, 172, 17, 0, 2])
        );
        assert_eq!(mac_for("::1".parse().expect("ip")), None);
    }
}
