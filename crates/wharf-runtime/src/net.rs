//! Bridge networking: the two halves of each of a container's veths.
//!
//! At start the parent (multi-threaded CLI or monitor) creates one pair per network from the
//! host's namespace with the container end born inside the container's network namespace (by
//! pid), already called `eth0`, `eth1`, …, and plugs the host end into its bridge — it never
//! enters the container's namespace (invariant 1). The single-threaded init then configures
//! them from inside: MAC, addresses, up, default route (the first network's), and `lo`.
//!
//! `network connect` of a running container ([`attach_running`]) does the same for one more
//! network: the pair with its container end born in the container's namespace (by a namespace
//! fd opened once), and the configuration done by `wharf __exec netconf`, a short
//! single-threaded child re-executed from the protected binary that joins only that network
//! namespace. Addresses, the bridges and firewall rules are chosen and made by the engine; a
//! failure here fails the start (or the connect, with the pair deleted again), and the
//! namespace's death takes the veths with it.

use crate::init::{fail, Ctx, InitError};
use crate::spec::BridgeNet;
use crate::start::StartError;
use std::io::Read;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use wharf_sys::netlink::link::{self, Netns};
use wharf_sys::netlink::{Family, NetlinkError, Socket};
use wharf_sys::process;

/// Name of the container's first interface.
pub const CONTAINER_IF: &str = "eth0";

/// Parent side of one network: the veth pair, container end in `ns`, host end on the
/// bridge and up — created so in one request (`link::create_veth_on_bridge`); hairpin mode is
/// a bridge-port option, a second one. Nothing is left when it fails.
fn attach_one(s: &mut Socket, net: &BridgeNet, ns: Netns) -> Result<(), NetlinkError> {
    let bridge = link::index(s, &net.bridge)?;
    let create = |s: &mut Socket| {
        link::create_veth_on_bridge(s, &net.host_veth, &net.ifname, Some(ns), net.mtu, bridge)
    };
    let res = match create(s) {
        // A leftover host end of a container that died unreaped by us: the name is ours.
        Err(e) if e.errno() == Some(nix::libc::EEXIST) => {
            let _ = link::delete(s, &net.host_veth);
            create(s)
        }
        r => r,
    }
    .and_then(|host| {
        if net.hairpin {
            link::set_hairpin(s, host.index, true)?;
        }
        Ok(())
    });
    if res.is_err() {
        let _ = link::delete(s, &net.host_veth);
    }
    res
}

/// Parent side at start: every network's veth pair, container ends in `pid`'s network
/// namespace. On failure the pairs made before are deleted too.
pub fn attach_host_all(nets: &[BridgeNet], pid: i32) -> Result<(), NetlinkError> {
    if nets.is_empty() {
        return Ok(());
    }
    let mut s = Socket::open(Family::Route)?;
    for (i, net) in nets.iter().enumerate() {
        if let Err(e) = attach_one(&mut s, net, Netns::Pid(pid)) {
            for done in &nets[..i] {
                let _ = link::delete(&mut s, &done.host_veth);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Inside the container's network namespace: one interface's MAC, addresses, up, and its
/// gateway as the default route when it has one.
fn configure_iface(s: &mut Socket, net: &BridgeNet) -> Result<(), NetlinkError> {
    let eth = link::index(s, &net.ifname)?;
    if let Some(mac) = net.mac {
        link::set_mac(s, eth, mac)?;
    }
    for (ip, prefix) in &net.addresses {
        link::add_address(s, eth, *ip, *prefix)?;
    }
    link::set_up(s, eth)?;
    for gw in [net.gateway, net.gateway6].into_iter().flatten() {
        link::add_route(s, None, Some(gw), Some(eth))?;
    }
    Ok(())
}

/// Init side, inside the container's network namespace: `lo` up, then every interface.
pub fn configure_inside(nets: &[BridgeNet]) -> Result<(), NetlinkError> {
    let mut s = Socket::open(Family::Route)?;
    let lo = link::index(&mut s, "lo")?;
    link::set_up(&mut s, lo)?;
    for net in nets {
        configure_iface(&mut s, net)?;
    }
    Ok(())
}

const NC_SPEC: i32 = 3;
const NC_ERR: i32 = 4;
const NC_NS: i32 = 5;

/// `network connect` of a running container: one more veth pair with its container end
/// (`net.ifname`) born in the network namespace of `pid`, configured from inside by `wharf
/// __exec netconf`. When anything fails the pair is deleted again (deleting the host end
/// takes the container end with it).
pub fn attach_running(net: &BridgeNet, pid: i32) -> Result<(), StartError> {
    let id = net.host_veth.clone();
    let io = |op: &'static str| {
        let id = id.clone();
        move |source: std::io::Error| StartError::Io { id, op, source }
    };
    let ns: OwnedFd = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(io("open the container's network namespace"))?
        .into();
    let mut s = Socket::open(Family::Route).map_err(|source| StartError::Network {
        id: id.clone(),
        source,
    })?;
    attach_one(&mut s, net, Netns::Fd(ns.as_raw_fd())).map_err(|source| StartError::Network {
        id: id.clone(),
        source,
    })?;
    let r = configure_in(net, &ns);
    if r.is_err() {
        let _ = link::delete(&mut s, &net.host_veth);
    }
    r
}

/// Runs `wharf __exec netconf` in `ns` for `net` and waits for it.
fn configure_in(net: &BridgeNet, ns: &OwnedFd) -> Result<(), StartError> {
    let id = net.host_veth.clone();
    let io = |op: &'static str| {
        let id = id.clone();
        move |source: std::io::Error| StartError::Io { id, op, source }
    };
    let json = serde_json::to_vec(net).map_err(|source| StartError::Encode {
        id: id.clone(),
        source,
    })?;
    let exe = crate::exe::container_exe(false)?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (spec_r, spec_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(|e| io("create pipe")(e.into()))?;
    let child = process::spawn_reexec(
        exe.fd(),
        &["wharf", "__exec", "netconf"],
        &[],
        &[
            (spec_r.as_fd(), NC_SPEC),
            (err_w.as_fd(), NC_ERR),
            (ns.as_fd(), NC_NS),
        ],
        0,
        Some(NC_ERR),
        &Default::default(),
    )
    .map_err(io("spawn the network helper"))?;
    drop((spec_r, err_w));
    let sent = std::io::Write::write_all(&mut std::fs::File::from(spec_w), &json);
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_r)
        .take(64 * 1024)
        .read_to_end(&mut report);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
    if !report.is_empty() {
        let r: crate::start::InitReport =
            serde_json::from_slice(&report).unwrap_or(crate::start::InitReport {
                code: 125,
                message: String::from_utf8_lossy(&report).into_owned(),
            });
        return Err(StartError::Exec {
            code: r.code,
            message: r.message,
        });
    }
    sent.map_err(io("send the network spec"))?;
    match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
        other => Err(io("configure the interface")(std::io::Error::other(
            format!("network helper ended with {other:?}"),
        ))),
    }
}

/// `wharf __exec netconf`: joins the network namespace handed in (and nothing else) and
/// configures the one interface the spec names.
pub(crate) fn netconf_main() -> ! {
    let err = process::adopt_inherited_fd(NC_ERR);
    let spec = process::adopt_inherited_fd(NC_SPEC);
    let ns = process::adopt_inherited_fd(NC_NS);
    let _ = process::close_fds_from(NC_NS + 1);
    let e = match netconf(spec, ns) {
        Ok(()) => process::exit_now(0),
        Err(e) => e,
    };
    if let (Some(fd), Ok(b)) = (
        &err,
        serde_json::to_vec(&crate::start::InitReport {
            code: e.code,
            message: e.message.clone(),
        }),
    ) {
        let _ = nix::unistd::write(fd, &b);
    }
    process::exit_now(e.code)
}

fn netconf(spec: Option<OwnedFd>, ns: Option<OwnedFd>) -> Result<(), InitError> {
    let (spec, ns) = match (spec, ns) {
        (Some(s), Some(n)) => (s, n),
        _ => return Err(fail("wharf __exec netconf is internal")),
    };
    let mut buf = Vec::new();
    std::fs::File::from(spec)
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .ctx(|| "read network spec".into())?;
    let net: BridgeNet =
        serde_json::from_slice(&buf).map_err(|_| fail("malformed network spec from parent"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .ctx(|| "join the container's network namespace".into())?;
    let mut s = Socket::open(Family::Route).ctx(|| "open netlink".into())?;
    configure_iface(&mut s, &net).ctx(|| format!("configure {}", net.ifname))
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
