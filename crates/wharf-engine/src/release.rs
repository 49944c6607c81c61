//! The one teardown path of a container: what its process held on the host (its network —
//! address, host ports, firewall rules, endpoint, veth —, its cgroup in every hierarchy, anything still mounted below its
//! directory), then its volatile run directory (monitor/attach socket, locks, markers) and, for
//! `--rm` or `rm`, its record and anonymous volumes. Every place that ends a container calls
//! it: a foreground `run` after the exit or a failed start, the monitor after each exit of pid 1
//! ([`Engine::release_runtime`]) and when it ends ([`Engine::release`]), the reconcile of a
//! container whose monitor or client was killed (also at `system boot`), and `rm`.
//!
//! Idempotent: each step checks what is there, so it is safe twice, concurrently from two
//! commands, and after a crash halfway through.
//! Must not: signal the container's processes other than through its cgroup (removal kills
//! what is left), or fail before every step was tried.

use crate::run::cgroup_path;
use crate::{Engine, EngineError};
use std::path::{Path, PathBuf};
use wharf_runtime::cgroup::Cgroup;
use wharf_types::container::ContainerRecord;

/// What becomes of the record once the container is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// The container stays (exited, or created with a failed start).
    Keep,
    /// The record goes (`--rm`, `rm`), announced with a `destroy` event; with `volumes` its
    /// anonymous volumes too (a volume another container still mounts stays).
    Remove { volumes: bool },
}

impl Then {
    /// `--rm` removes the container and its anonymous volumes once it is done.
    pub(crate) fn after_exit(rec: &ContainerRecord) -> Then {
        if rec.host_config.auto_remove {
            Then::Remove { volumes: true }
        } else {
            Then::Keep
        }
    }
}

/// mountinfo is small; a hostile or broken one is cut here rather than read unbounded.
const MOUNTINFO_MAX: u64 = 16 << 20;

impl Engine {
    /// Releases everything a container holds and, per `then`, removes it. Every step is
    /// tried; the first error is returned (a cgroup that cannot be removed keeps the record:
    /// `rm` fails and can be retried).
    pub(crate) fn release(&self, rec: &ContainerRecord, then: Then) -> Result<(), EngineError> {
        let runtime = self.release_runtime(rec);
        let dir = self.run_dir(&rec.id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                runtime?;
                return Err(EngineError::io("remove run directory", &dir, e));
            }
        }
        runtime?;
        match then {
            Then::Keep => Ok(()),
            Then::Remove { volumes } => {
                self.store.remove_container(&rec.id)?;
                self.emit_container(rec, "destroy", &[]);
                if volumes {
                    self.remove_anonymous_volumes(rec);
                }
                Ok(())
            }
        }
    }

    /// What one run of the container's process held: its network (address, host ports,
    /// firewall rules, endpoint, veth: `crate::network::attach`), its cgroup (removal kills
    /// anything left in it) and mounts below its directory. The monitor calls this between
    /// restarts; the run directory stays. Every step is tried; the first error is returned.
    pub(crate) fn release_runtime(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let id = &rec.id;
        let cgroup = Cgroup::open(&cgroup_path(id)).remove();
        // after the cgroup: nothing of the container runs any more (and so nothing binds a
        // port or address that is handed out again)
        let network = self.release_network(rec);
        let mounts = self.unmount_below(&self.store.container_paths(id).dir);
        cgroup?;
        network?;
        mounts
    }

    /// Lazily unmounts whatever this mount namespace has mounted at or below `dir` (the
    /// rootfs is mounted inside the container's own namespace, so normally nothing: this
    /// catches what a crash or a future host-side mount left), deepest first.
    fn unmount_below(&self, dir: &Path) -> Result<(), EngineError> {
        use std::io::Read;
        let mut text = String::new();
        let read = std::fs::File::open("/proc/self/mountinfo")
            .and_then(|f| f.take(MOUNTINFO_MAX).read_to_string(&mut text));
        if let Err(e) = read {
            return Err(EngineError::io("read", "/proc/self/mountinfo", e));
        }
        let mut first = Ok(());
        for m in mounts_below(&text, dir) {
            match wharf_sys::mount::umount_detach(&m) {
                Ok(()) => {}
                // gone meanwhile (another command released it too)
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::EINVAL | nix::libc::ENOENT)
                    ) => {}
                Err(e) => {
                    if first.is_ok() {
                        first = Err(EngineError::io("unmount", &m, e));
                    }
                }
            }
        }
        first
    }
}

/// Mount points of `mountinfo` at or below `dir`, deepest first (octal escapes decoded).
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| {
            d.iter()
                .all(|c| (b'0'..=b'7').contains(c))
                .then(|| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
        });
        match (b[i], oct) {
            (b'\\', Some(v)) if v <= 0xff => {
                out.push(v as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_below_a_dir_deepest_first() {
        let mi = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 0:50 / /var/lib/wharf/containers/abc/merged rw - overlay overlay rw
41 40 0:51 / /var/lib/wharf/containers/abc/merged/dev rw - tmpfs tmpfs rw
42 22 0:52 / /var/lib/wharf/containers/abcd/merged rw - overlay overlay rw
43 22 0:53 / /var/lib/wharf/containers/abc/with\\040space rw - tmpfs tmpfs rw
";
        let got = mounts_below(mi, Path::new("/var/lib/wharf/containers/abc"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/var/lib/wharf/containers/abc/merged/dev"),
                PathBuf::from("/var/lib/wharf/containers/abc/merged"),
                PathBuf::from("/var/lib/wharf/containers/abc/with space"),
            ]
        );
        assert!(mounts_below(mi, Path::new("/nowhere")).is_empty());
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }
}
