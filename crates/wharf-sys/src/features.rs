//! Run-time kernel feature detection, with a test override.
//!
//! `WHARF_DISABLE` (comma separated: `openat2`, `clone3`, `mountapi`, `exebind`, `memfd`,
//! `sealing`, `tmpfile`, `oomkill`, `seccomplog`, `filecapsv3`, `cloneintocgroup`, `selfjoin`,
//! `nftables`, `cgroup.<controller>`) makes wharf behave as if
//! the kernel lacked a feature, so the code paths used on RHEL 7 (3.10) and RHEL 8 (4.18) run
//! in CI on a new kernel. Detection results are cached per process.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// openat2(2), Linux 5.6.
    Openat2,
    /// clone3(2), Linux 5.3.
    Clone3,
    /// fsopen/fsconfig/fsmount/move_mount/open_tree, Linux 5.2.
    MountApi,
    /// The read-only detached bind mount of our binary (open_tree 5.2 + mount_setattr 5.12)
    /// that containers are started from.
    ExeBind,
    /// memfd_create(2), Linux 3.17 (missing on RHEL 7).
    Memfd,
    /// File sealing of memfds (MFD_ALLOW_SEALING / F_ADD_SEALS; EINVAL on RHEL 7.2).
    Sealing,
    /// O_TMPFILE, Linux 3.11 (per file system).
    Tmpfile,
    /// The `oom_kill` counter in v1 `memory.oom_control`, Linux 4.13.
    OomKillCounter,
    /// Seccomp's SCMP_ACT_LOG and KILL_PROCESS actions and `actions_avail`, Linux 4.14.
    SeccompLog,
    /// Namespaced (v3) file capabilities in `security.capability`, Linux 4.14.
    FileCapsV3,
    /// clone3's CLONE_INTO_CGROUP, Linux 5.7.
    CloneIntoCgroup,
    /// A v1 cgroup joined by the new process itself (`tasks` ← "0"), not by pid from outside.
    SelfJoin,
    /// nf_tables (Linux 3.13; RHEL 7 firewalls with legacy iptables).
    Nftables,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Openat2 => "openat2",
            Feature::Clone3 => "clone3",
            Feature::MountApi => "mountapi",
            Feature::ExeBind => "exebind",
            Feature::Memfd => "memfd",
            Feature::Sealing => "sealing",
            Feature::Tmpfile => "tmpfile",
            Feature::OomKillCounter => "oomkill",
            Feature::SeccompLog => "seccomplog",
            Feature::FileCapsV3 => "filecapsv3",
            Feature::CloneIntoCgroup => "cloneintocgroup",
            Feature::SelfJoin => "selfjoin",
            Feature::Nftables => "nftables",
        }
    }
}

fn disabled_list() -> &'static [String] {
    static DISABLED: OnceLock<Vec<String>> = OnceLock::new();
    DISABLED.get_or_init(|| {
        std::env::var("WHARF_DISABLE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// True when `WHARF_DISABLE` names the feature.
pub fn force_disabled(f: Feature) -> bool {
    disabled_list().iter().any(|d| d == f.name())
}

/// True when `WHARF_DISABLE` names `cgroup.<controller>`: the cgroup layout is read as if the
/// host had no such controller (RHEL 7 before 7.3 has no pids controller, say).
pub fn cgroup_controller_hidden(controller: &str) -> bool {
    disabled_list()
        .iter()
        .any(|d| d.strip_prefix("cgroup.") == Some(controller))
}

/// Kernel release as (major, minor), from uname(2).
pub fn kernel_version() -> (u32, u32) {
    let uts = nix::sys::utsname::uname();
    let rel = match &uts {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(_) => return (0, 0),
    };
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_parses() {
        let (maj, _) = kernel_version();
        assert!(maj >= 3);
    }
}
