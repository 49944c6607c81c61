//! `wharf check` (`wharf system check`): what this host's kernel gives wharf, and what degrades where it
//! lacks something (the RHEL 7 / RHEL 8 paths). Every line is what the runtime will actually
//! do — the same probes `start` uses, including `WHARF_DISABLE` — not a guess from the
//! kernel version.

use std::path::Path;
use wharf_runtime::cgroup::{self, Layout};
use wharf_sys::process::ExeKind;

/// How a feature stands on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Used as is.
    Ok,
    /// Missing, and wharf uses a fallback (slower or less precise, equally safe).
    Degraded,
    /// Missing, and what needs it is refused (a limit, a profile, the store).
    Missing,
}

/// One line of the check.
#[derive(Debug, Clone)]
pub struct Check {
    pub feature: &'static str,
    pub status: Status,
    pub detail: String,
}

fn line(feature: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        feature,
        status,
        detail: detail.into(),
    }
}

/// Probe the host for a store at `root` (its nearest existing ancestor is checked for d_type
/// when the store does not exist yet).
pub fn check(root: &Path) -> Vec<Check> {
    use Status::*;
    let mut out = Vec::new();
    let (maj, min) = wharf_sys::features::kernel_version();
    out.push(line("kernel", Ok, format!("Linux {maj}.{min}")));
    out.extend(crate::hostcheck::isolation(
        Path::new("/proc"),
        Path::new("/lib/modules"),
    ));

    out.push(match wharf_runtime::exe::exe_kind() {
        Some(ExeKind::ReadOnlyBind) => line(
            "binary protection",
            Ok,
            "read-only bind view of the wharf binary (no copy per start)",
        ),
        Some(ExeKind::SealedMemfd) => line(
            "binary protection",
            Degraded,
            "sealed memfd copy of the binary (mount_setattr needs 5.12): a few ms per start",
        ),
        Some(k) => line(
            "binary protection",
            Degraded,
            format!("private read-only copy of the binary per start ({k:?}: no memfd sealing)"),
        ),
        None => line(
            "binary protection",
            Missing,
            "no way to protect the binary: containers cannot start",
        ),
    });
    out.push(if wharf_sys::openat2::available() {
        line(
            "openat2",
            Ok,
            "paths in a rootfs resolved by the kernel (RESOLVE_IN_ROOT)",
        )
    } else {
        line(
            "openat2",
            Degraded,
            "component-by-component walk (5.6 has openat2)",
        )
    });
    out.push(if wharf_sys::mount::mount_api_available() {
        line("mount API", Ok, "fsopen/open_tree/move_mount")
    } else {
        line(
            "mount API",
            Degraded,
            "legacy mount(2) (5.2 has the new API)",
        )
    });
    out.push(if wharf_sys::process::clone3_available() {
        line("clone3", Ok, "clone3 with CLONE_PIDFD")
    } else {
        line("clone3", Degraded, "clone(2) (5.3 has clone3)")
    });
    out.push(
        match wharf_sys::process::pidfd_open(std::process::id() as i32) {
            Some(_) => line("pidfd", Ok, "signals and waits without pid reuse races"),
            None => line(
                "pidfd",
                Degraded,
                "pids checked with their start time (5.3 has pidfds)",
            ),
        },
    );

    let layout = cgroup::layout();
    out.push(line(
        "cgroups",
        Ok,
        match layout {
            Layout::V1 { .. } => "v1",
            Layout::V2 { .. } => "v2 (unified)",
            Layout::Hybrid { .. } => "hybrid (v1 controllers, empty v2)",
        },
    ));
    for (c, missing) in [
        ("memory", "--memory refused; no OOM detection"),
        (
            "pids",
            "default pids limit not applied; --pids-limit refused",
        ),
        ("cpu", "--cpus refused"),
        (
            "devices",
            "device allow-list unavailable: unprivileged containers refused",
        ),
        ("freezer", "pause/unpause refused"),
    ] {
        if matches!(layout, Layout::V2 { .. }) && c == "devices" {
            continue; // v2 has no devices controller; MKNOD is withheld instead
        }
        let feature: &'static str = match c {
            "memory" => "cgroup memory",
            "pids" => "cgroup pids",
            "cpu" => "cgroup cpu",
            "devices" => "cgroup devices",
            _ => "cgroup freezer",
        };
        // Only the device allow-list is a protection every container needs; without the
        // others just what asks for them is refused.
        let absent = if c == "devices" { Missing } else { Degraded };
        out.push(if cgroup::controller_available(c) {
            line(feature, Ok, "")
        } else {
            line(feature, absent, missing)
        });
    }
    if !matches!(layout, Layout::V2 { .. }) && cgroup::controller_available("memory") {
        out.push(if cgroup::oom_kill_counter() {
            line("OOM kill counter", Ok, "memory.oom_control counts kills")
        } else {
            line(
                "OOM kill counter",
                Degraded,
                "OOMKilled inferred from the memory limit being hit (4.13 counts kills)",
            )
        });
    }
    out.push(if wharf_runtime::seccomp::kernel_has_action("log") {
        line("seccomp actions", Ok, "")
    } else {
        line(
            "seccomp actions",
            Degraded,
            "profiles using SCMP_ACT_LOG are refused (4.14 has it)",
        )
    });

    let mut dir = root;
    while !dir.exists() {
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
    out.push(match wharf_sys::fs::reports_dtype(dir) {
        Result::Ok(true) => line("overlay d_type", Ok, format!("{}", dir.display())),
        Result::Ok(false) => line(
            "overlay d_type",
            Missing,
            format!(
                "{} has no d_type (XFS ftype=0?): the store is refused; reformat with ftype=1",
                dir.display()
            ),
        ),
        Err(e) => line("overlay d_type", Missing, format!("{}: {e}", dir.display())),
    });
    out.extend(network_checks());
    out
}

/// The firewall and forwarding lines: which backend wharf's rules go to (the same choice
/// `Firewall::open` makes, `WHARF_DISABLE=nftables` included), br_netfilter, ip_forward,
/// and other firewalls' forward policies wharf opens for its bridges.
fn network_checks() -> Vec<Check> {
    use crate::network::{coexist, iptables::Iptables};
    use Status::*;
    let mut out = Vec::new();
    let nft = wharf_sys::netlink::nft::available();
    let forced = wharf_sys::features::force_disabled(wharf_sys::features::Feature::Nftables);
    out.push(if nft {
        line("nf_tables", Ok, "rules in table ip wharf, through netlink")
    } else if forced {
        line("nf_tables", Degraded, "disabled by WHARF_DISABLE=nftables")
    } else {
        line(
            "nf_tables",
            Degraded,
            "not in this kernel (3.13 has it): legacy iptables is used",
        )
    });
    let legacy = Iptables::find();
    out.push(match (&legacy, nft) {
        (Some(i), _) => line("iptables (legacy)", Ok, i.binary().display().to_string()),
        (None, true) => line(
            "iptables (legacy)",
            Ok,
            "not installed (not needed: nf_tables is used)",
        ),
        (None, false) => line(
            "iptables (legacy)",
            Missing,
            "not installed and no nf_tables: bridge networks and published ports are refused",
        ),
    });
    out.push(match (nft, &legacy) {
        (true, _) => line("firewall backend", Ok, "nftables (table ip wharf)"),
        (false, Some(i)) => line(
            "firewall backend",
            Degraded,
            format!(
                "legacy iptables ({}): chains WHARF-PORTS, WHARF-POSTROUTING, WHARF-FORWARD",
                i.binary().display()
            ),
        ),
        (false, None) => line(
            "firewall backend",
            Missing,
            "none: bridge networks and published ports are refused; --network host|none work",
        ),
    });
    out.push(
        if Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
            line(
                "br_netfilter",
                Ok,
                "loaded: traffic between containers of a bridge passes the forward hooks (wharf accepts it)",
            )
        } else {
            line(
                "br_netfilter",
                Degraded,
                "not loaded: a container reaching another container's published port on the same bridge through a host address gets no reply (modprobe br_netfilter)",
            )
        },
    );
    let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    out.push(if fwd.trim() == "1" {
        line("ip_forward", Ok, "on")
    } else {
        line(
            "ip_forward",
            Ok,
            "off: wharf turns it on when it makes a bridge (as docker does)",
        )
    });
    let mut drops: Vec<String> = coexist::drop_chains()
        .iter()
        .map(|c| c.to_string())
        .collect();
    if nft && coexist::legacy_forward_drops() {
        drops.push("legacy iptables FORWARD".into());
    }
    out.push(if drops.is_empty() {
        line(
            "forward policy",
            Ok,
            "no other firewall drops forwarded traffic",
        )
    } else {
        line(
            "forward policy",
            Ok,
            format!(
                "drop in {} (docker?): wharf puts accept rules for its bridges first there",
                drops.join(", ")
            ),
        )
    });
    if coexist::firewalld_present() {
        out.push(line(
            "firewalld",
            Ok,
            "running (nftables): each start on a network opens its filter_FORWARD (and the resolver's port in filter_INPUT) for the bridge; a firewall-cmd --reload closes them until the next start there",
        ));
    }
    out
}

/// The host facts docker's `/version` and `/info` report: kernel release, total memory
/// (bytes), CPUs, host name, cgroup version. Small bounded reads of /proc.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub kernel_version: String,
    pub mem_total: u64,
    pub ncpu: usize,
    pub hostname: String,
    /// "1" or "2".
    pub cgroup_version: &'static str,
    pub operating_system: String,
}

fn small(path: &str) -> String {
    wharf_sys::fs::read_small_file(None, Path::new(path), 64 * 1024)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// [`HostFacts`] of this host.
pub fn host_facts() -> HostFacts {
    let mem_total = small("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let os = small("/etc/os-release");
    let operating_system = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    HostFacts {
        kernel_version: small("/proc/sys/kernel/osrelease").trim().to_string(),
        mem_total,
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        hostname: small("/proc/sys/kernel/hostname").trim().to_string(),
        cgroup_version: if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "2"
        } else {
            "1"
        },
        operating_system,
    }
}
