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
    _f: Flock<File>,
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
        Ok(Lock { _f: f })
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
