//! Inter-process (and inter-thread) locking with flock(2) on two files in the store root.
//!
//! - `lock` (the *meta* lock): exclusive around every read-modify-write of metadata
//!   (`meta/images.json`, container records and names, volumes). Held for milliseconds.
//! - `gc.lock`: an import (and a re-unpack in `image_layers`) holds it SHARED for its whole
//!   duration, from the first ingest byte until its image is in the index; GC holds it
//!   EXCLUSIVE, so GC never sees blobs/snapshots an in-flight import has written but not yet
//!   indexed. Ordering: `gc.lock` before `lock`, never the other way round. Taking both
//!   exclusive without waiting is how `reap` knows no operation is live.
//!
//! flock locks belong to the open file description, so every `Lock` opens its own fd and
//! threads of one process exclude each other like processes do. Unlocked on drop.

use crate::error::StoreError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::Path;

pub(crate) struct Lock {
    f: Flock<File>,
}

/// An exclusive lock on a file of its own that is removed when the lock is released: for
/// per-object locks (one per blob being downloaded) that must not pile up. Whoever takes it
/// checks that the path still names the file it locked (a releaser may have unlinked it in
/// between) and tries again if not, so two holders can never lock different files of the
/// same name.
pub(crate) struct EphemeralLock {
    path: std::path::PathBuf,
    _lock: Lock,
}

impl EphemeralLock {
    pub(crate) fn exclusive(path: &Path) -> Result<EphemeralLock, StoreError> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let lock = Lock::exclusive(path)?;
            let held = lock
                .f
                .metadata()
                .map_err(StoreError::io("stat lock file", path))?;
            match std::fs::metadata(path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => {
                    return Ok(EphemeralLock {
                        path: path.to_path_buf(),
                        _lock: lock,
                    })
                }
                // unlinked (or replaced) by the holder we waited for: take the new one
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("stat lock file", path)(e)),
            }
        }
    }
}

impl Drop for EphemeralLock {
    fn drop(&mut self) {
        // still held: nobody else can have locked this file, so unlinking cannot split holders
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Lock {
    fn take(path: &Path, arg: FlockArg) -> Result<Lock, StoreError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("opening lock file", path))?;
        let f = Flock::lock(f, arg).map_err(|(_, e)| StoreError::io("locking", path)(e.into()))?;
        Ok(Lock { f })
    }

    pub(crate) fn exclusive(path: &Path) -> Result<Lock, StoreError> {
        Lock::take(path, FlockArg::LockExclusive)
    }

    pub(crate) fn shared(path: &Path) -> Result<Lock, StoreError> {
        Lock::take(path, FlockArg::LockShared)
    }

    /// The exclusive lock if nobody holds the file locked now; `None` if someone does.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<Lock>, StoreError> {
        match Lock::take(path, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Unlink-on-release never lets two holders in: threads (separate fds, like processes)
    /// hammer one name; at most one is ever inside, and no file is left.
    #[test]
    fn ephemeral_lock_excludes_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("pull-x.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, max) = (path.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let l = EphemeralLock::exclusive(&path).unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(l);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1, "two holders at once");
        assert!(!path.exists(), "lock file left behind");
    }
}
