//! The isolation lines of `wharf check` (namespaces, overlayfs, seccomp, user namespaces) and
//! the verdict over every line: whether wharf can run a container on this host. Probes are
//! small bounded reads of /proc and /lib/modules, never a mount or a clone, so the check is
//! safe in a package's postinst, a chroot or a container.
//!
//! Must not: print (the CLI renders [`Check`]s), change the host, or guess from the kernel
//! version what a probe can see.

use crate::system::{Check, Status};
use std::path::Path;

/// The namespaces every container gets (wharf-runtime's `spawn_reexec` flags), as
/// (`/proc/self/ns/` name, feature name, what happens without it). wharf uses neither user
/// nor cgroup namespaces.
const NAMESPACES: [(&str, &str, Status, &str); 5] = [
    (
        "mnt",
        "namespace mnt",
        Status::Missing,
        "no mount namespace: containers cannot start",
    ),
    (
        "pid",
        "namespace pid",
        Status::Missing,
        "no pid namespace: containers cannot start",
    ),
    (
        "uts",
        "namespace uts",
        Status::Missing,
        "no uts namespace: containers cannot start",
    ),
    (
        "ipc",
        "namespace ipc",
        Status::Missing,
        "no ipc namespace: containers cannot start",
    ),
    (
        "net",
        "namespace net",
        Status::Degraded,
        "no network namespace: only --network host works",
    ),
];

fn small(path: &Path) -> Option<String> {
    wharf_sys::fs::read_small_file(None, path, 64 * 1024)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn line(feature: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        feature,
        status,
        detail: detail.into(),
    }
}

/// Namespaces, overlayfs, seccomp and user namespaces of this host, read under `proc` (the
/// procfs mount, `/proc`) and `modules` (`/lib/modules`).
pub fn isolation(proc: &Path, modules: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    if !proc.join("self").exists() {
        out.push(line(
            "procfs",
            Status::Missing,
            format!(
                "{} is not mounted: nothing can be probed and containers cannot start",
                proc.display()
            ),
        ));
        return out;
    }
    for (ns, feature, absent, why) in NAMESPACES {
        out.push(if proc.join("self/ns").join(ns).exists() {
            line(feature, Status::Ok, "")
        } else {
            line(feature, absent, why)
        });
    }
    out.push(overlay(proc, modules));
    out.push(seccomp(proc));
    out.push(userns(proc));
    out
}

/// overlayfs: registered (`/proc/filesystems`), or a module the kernel loads at the first
/// overlay mount (`fs-overlay` alias) — both work; neither refuses every image.
fn overlay(proc: &Path, modules: &Path) -> Check {
    let registered = small(&proc.join("filesystems")).is_some_and(|f| {
        f.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    });
    if registered {
        return line("overlayfs", Status::Ok, "registered in /proc/filesystems");
    }
    let release = small(&proc.join("sys/kernel/osrelease")).unwrap_or_default();
    let dir = modules.join(release.trim()).join("kernel/fs/overlayfs");
    let module = std::fs::read_dir(&dir).ok().is_some_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("overlay.ko")))
    });
    if module {
        line(
            "overlayfs",
            Status::Ok,
            format!(
                "module in {} (the kernel loads it at the first mount)",
                dir.display()
            ),
        )
    } else {
        line(
            "overlayfs",
            Status::Missing,
            "not in /proc/filesystems and no overlay module: images cannot be mounted (CONFIG_OVERLAY_FS)",
        )
    }
}

/// seccomp: the `Seccomp:` line of `/proc/self/status` exists when the kernel has
/// CONFIG_SECCOMP; without it the default profile cannot load and a start is refused (a
/// missing protection fails the start).
fn seccomp(proc: &Path) -> Check {
    let status = small(&proc.join("self/status")).unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        let filter = proc.join("sys/kernel/seccomp/actions_avail").exists();
        line(
            "seccomp",
            Status::Ok,
            if filter {
                "filters (the default profile is loaded into every container)"
            } else {
                "filters assumed (no actions_avail before 4.14: a kernel without filter mode refuses the start)"
            },
        )
    } else {
        line(
            "seccomp",
            Status::Missing,
            "no seccomp in this kernel: starts are refused unless --security-opt seccomp=unconfined",
        )
    }
}

/// User namespaces: reported, not needed (wharf does not remap users; a container's root is
/// the host's root confined by capabilities, seccomp and the other namespaces).
fn userns(proc: &Path) -> Check {
    let have = proc.join("self/ns/user").exists();
    let max = small(&proc.join("sys/user/max_user_namespaces"))
        .and_then(|s| s.trim().parse::<u64>().ok());
    let detail = match (have, max) {
        (false, _) => "not in this kernel (not used by wharf: no user remapping)",
        (true, Some(0)) => "disabled (user.max_user_namespaces=0; not used by wharf)",
        (true, _) => "available (not used by wharf: no user remapping)",
    };
    line("user namespaces", Status::Ok, detail)
}

/// The verdict over a whole check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// No line is [`Status::Missing`]: `wharf run --rm IMAGE` works here.
    pub can_run: bool,
    /// The features that degrade.
    pub degraded: Vec<&'static str>,
    /// The features that are missing.
    pub missing: Vec<&'static str>,
}

/// Whether wharf can run containers, from the lines of [`crate::system::check`].
pub fn verdict(checks: &[Check]) -> Verdict {
    let pick = |s: Status| {
        checks
            .iter()
            .filter(|c| c.status == s)
            .map(|c| c.feature)
            .collect::<Vec<_>>()
    };
    let missing = pick(Status::Missing);
    Verdict {
        can_run: missing.is_empty(),
        degraded: pick(Status::Degraded),
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_the_namespaces_and_seccomp() {
        let lines = isolation(Path::new("/proc"), Path::new("/lib/modules"));
        for c in &lines {
            if c.feature.starts_with("namespace") || c.feature == "seccomp" {
                assert_eq!(c.status, Status::Ok, "{c:?}");
            }
        }
        assert!(lines.iter().any(|c| c.feature == "overlayfs"));
        assert!(lines.iter().any(|c| c.feature == "user namespaces"));
    }

    #[test]
    fn a_fake_proc_without_namespaces_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let proc = d.path().join("proc");
        std::fs::create_dir_all(proc.join("self/ns"))?;
        std::fs::write(proc.join("self/ns/net"), "")?;
        std::fs::write(proc.join("self/status"), "Name:\tx\n")?;
        std::fs::write(proc.join("filesystems"), "nodev\tproc\n")?;
        let lines = isolation(&proc, &d.path().join("modules"));
        let v = verdict(&lines);
        assert!(!v.can_run);
        for f in ["namespace mnt", "namespace pid", "overlayfs", "seccomp"] {
            assert!(v.missing.contains(&f), "{f} not missing: {v:?}");
        }
        assert!(!v.missing.contains(&"namespace net"));
        // an overlay module on disk counts
        std::fs::create_dir_all(proc.join("sys/kernel"))?;
        std::fs::write(proc.join("sys/kernel/osrelease"), "9.9.9-test\n")?;
        let m = d.path().join("modules/9.9.9-test/kernel/fs/overlayfs");
        std::fs::create_dir_all(&m)?;
        std::fs::write(m.join("overlay.ko.xz"), "")?;
        let lines = isolation(&proc, &d.path().join("modules"));
        assert!(lines
            .iter()
            .any(|c| c.feature == "overlayfs" && c.status == Status::Ok));
        Ok(())
    }

    #[test]
    fn no_procfs_is_one_missing_line() {
        let lines = isolation(Path::new("/nonexistent-proc"), Path::new("/lib/modules"));
        assert_eq!(lines.len(), 1);
        assert!(!verdict(&lines).can_run);
    }
}
