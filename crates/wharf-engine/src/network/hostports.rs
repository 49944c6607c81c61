//! Host ports are one namespace per *host*, not per store: the DNAT rules of every store are
//! in the same nftables table, so a port two stores both hand out would go to whichever rule
//! came first. Next to a store's own claim (`<run-root>/ports/<proto>-<port>`, see `alloc`),
//! a published port is claimed host-wide as `/run/wharf-ports/<proto>-<port>`, holding the
//! owner (a container id) and the store's canonical run root.
//!
//! - Taking: the claim is written to a temporary file and hard-linked to its name, so it
//!   appears complete or not at all, and of two takers exactly one link succeeds (no lock on
//!   this fast path).
//! - Live or stale: a claim is live while its run root still holds the port for its owner
//!   (the store's own file names the owner). The store's file is made *before* the host-wide
//!   claim and removed *after* it, so a crash at any point, a reconciled container or a
//!   deleted store (its run root gone) leaves at most a stale claim, never a live-looking one.
//! - Taking over a stale claim, finding a claim already ours, and releasing happen under one
//!   host-wide lock (`/run/wharf-ports/.lock`), with the claim read again under it: two takers
//!   never both win, and a release never removes a claim that became someone else's.
//! - Without a writable `/run` (a read-only or missing `/run`, a user without rights to it)
//!   ports are claimed per store only, as before: stores with different run roots may then
//!   hand out the same port.
//!
//! `/run` is per boot, like the rules the claims stand for. Must not: remove a live claim,
//! or a claim that is not the caller's.

use super::alloc::AllocError;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where host-wide claims live.
pub const DIR: &str = "/run/wharf-ports";

/// Name of the lock file inside the claims directory (names starting with `.` are never
/// claims).
const LOCK: &str = ".lock";
/// Prefix of the temporary files a claim is written to before it is linked in place.
const TMP: &str = ".tmp-";
/// A claim is an owner (64 hex) and a path; anything larger is not one of ours.
const MAX_CLAIM: u64 = 128 + 4096;

/// What a host-wide claim attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The port is ours host-wide (new, taken over from a stale claim, or already ours).
    Claimed,
    /// Another live owner holds it.
    Held,
    /// No host-wide claims on this host (`/run` not writable): per-store only.
    Unavailable,
}

/// One claim's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub owner: String,
    pub run_root: PathBuf,
}

impl Claim {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.owner.len() + 1 + 64);
        b.extend_from_slice(self.owner.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(self.run_root.as_os_str().as_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Claim> {
        let nl = b.iter().position(|c| *c == b'\n')?;
        let (owner, rest) = b.split_at(nl);
        let owner = std::str::from_utf8(owner).ok()?;
        let run_root = PathBuf::from(OsStr::from_bytes(rest.get(1..)?));
        (!owner.is_empty() && run_root.is_absolute()).then(|| Claim {
            owner: owner.to_string(),
            run_root,
        })
    }
}

/// Whether `name` is a port claim's name: `<tcp|udp|sctp>-<port>`.
fn is_port_name(name: &str) -> bool {
    name.split_once('-').is_some_and(|(proto, port)| {
        matches!(proto, "tcp" | "udp" | "sctp") && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// The host-wide claims directory.
#[derive(Debug, Clone)]
pub(crate) struct HostPorts {
    dir: PathBuf,
}

/// Whether an error means "this host has no writable `/run`": the documented fallback.
fn unwritable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
    )
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AllocError + use<> {
    let path = path.to_path_buf();
    move |source| AllocError::Io { op, path, source }
}

impl HostPorts {
    pub(crate) fn new(dir: &Path) -> HostPorts {
        HostPorts {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The claim of `name`, if any and well-formed.
    pub(crate) fn read(&self, name: &str) -> Option<Claim> {
        let b = wharf_sys::fs::read_small_file(None, &self.path(name), MAX_CLAIM).ok()??;
        Claim::decode(&b)
    }

    /// Whether `c` still stands for a port its store holds: the store's own file of `name`
    /// names the claim's owner.
    fn live(name: &str, c: &Claim) -> bool {
        let own = c.run_root.join("ports").join(name);
        wharf_sys::fs::read_small_file(None, &own, 128)
            .ok()
            .flatten()
            .is_some_and(|b| b == c.owner.as_bytes())
    }

    /// The host-wide lock (held while a claim is judged and replaced or removed).
    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, AllocError> {
        let p = self.path(LOCK);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err("open", &p))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("lock", &p)(e.into()))
    }

    /// Claims port file `name` (`<proto>-<port>`) host-wide for `owner` of the store whose
    /// canonical run root is `run_root`. The caller already holds the store's own file.
    pub(crate) fn claim(
        &self,
        name: &str,
        run_root: &Path,
        owner: &str,
    ) -> Result<Outcome, AllocError> {
        match std::fs::create_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if unwritable(&e) => return Ok(Outcome::Unavailable),
            Err(e) => return Err(io_err("create", &self.dir)(e)),
        }
        let mine = Claim {
            owner: owner.to_string(),
            run_root: run_root.to_path_buf(),
        };
        // unique per process and call: `<pid>-<n>`, so a sweep knows whose it is
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.path(&format!("{TMP}{}-{n}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&mine.encode()));
        match written {
            Ok(()) => {}
            Err(e) if unwritable(&e) => {
                let _ = std::fs::remove_file(&tmp);
                return Ok(Outcome::Unavailable);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_err("write host port claim", &tmp)(e));
            }
        }
        let r = self.link_or_take_over(&tmp, name, &mine);
        let _ = std::fs::remove_file(&tmp);
        r
    }

    fn link_or_take_over(
        &self,
        tmp: &Path,
        name: &str,
        mine: &Claim,
    ) -> Result<Outcome, AllocError> {
        let target = self.path(name);
        let link = || match std::fs::hard_link(tmp, &target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err("link host port claim", &target)(e)),
        };
        // the fast path: nobody has it
        if link()? {
            return Ok(Outcome::Claimed);
        }
        let _lock = self.lock()?;
        // under the lock only lock-free *new* claims can appear, each of them live: a few
        // rounds settle it
        for _ in 0..3 {
            match self.read(name) {
                Some(c) if c == *mine => return Ok(Outcome::Claimed),
                Some(c) if Self::live(name, &c) => return Ok(Outcome::Held),
                // stale (its store no longer holds the port), or not a claim at all
                _ => match std::fs::remove_file(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove stale host port claim", &target)(e)),
                },
            }
            if link()? {
                return Ok(Outcome::Claimed);
            }
        }
        Ok(Outcome::Held)
    }

    /// Removes `name`'s claim if it is `owner`'s of `run_root` (under the lock: a claim read
    /// as ours is still ours when it goes).
    pub(crate) fn release(&self, name: &str, run_root: &Path, owner: &str) {
        if !self.path(name).exists() {
            return;
        }
        let Ok(_lock) = self.lock() else {
            return;
        };
        if self
            .read(name)
            .is_some_and(|c| c.owner == owner && c.run_root == run_root)
        {
            let _ = std::fs::remove_file(self.path(name));
        }
    }

    /// Removes stale claims (their store no longer holds the port: a crash, a deleted store)
    /// and the temporary files of processes that are gone; how many claims went.
    pub(crate) fn sweep(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        if names.is_empty() {
            return 0;
        }
        let Ok(_lock) = self.lock() else {
            return 0;
        };
        let mut n = 0;
        for name in names {
            if let Some(rest) = name.strip_prefix(TMP) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_file(self.path(&name));
                }
                continue;
            }
            if !is_port_name(&name) {
                continue;
            }
            let stale = match self.read(&name) {
                Some(c) => !Self::live(&name, &c),
                None => true,
            };
            if stale && std::fs::remove_file(self.path(&name)).is_ok() {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_and_refuse_garbage() {
        let c = Claim {
            owner: "ab".repeat(32),
            run_root: PathBuf::from("/run/some root\nwith newline"),
        };
        assert_eq!(Claim::decode(&c.encode()), Some(c));
        for bad in [&b""[..], b"abc", b"\n/run", b"abc\nrelative", b"\xff\n/run"] {
            assert_eq!(Claim::decode(bad), None, "{bad:?}");
        }
        for (name, ok) in [
            ("tcp-80", true),
            ("sctp-65535", true),
            ("udp-0", false),
            ("tcp-65536", false),
            ("icmp-1", false),
            (".lock", false),
            ("tcp-", false),
        ] {
            assert_eq!(is_port_name(name), ok, "{name}");
        }
    }
}
