//! The client of a container: the CLI that runs it without a monitor (`run` without `-d`),
//! or that creates it and spawns its monitor (`run -d`, until the monitor has its lock). Its
//! pid 1 dies with a foreground CLI (PR_SET_PDEATHSIG), so a killed CLI means a killed
//! container; `client.lock` in the container's run directory tells the other commands which
//! of the two happened.
//!
//! The CLI takes an exclusive `flock` on the file before the container's record exists and
//! holds it for its whole life; when it finishes it records the exit, unlinks the file, then
//! lets go. A file that exists while nobody holds it therefore means the CLI was killed:
//! the reader reconciles the container as killed with it (`state::Client::Gone`).
//! Must not: take the lock anywhere but in the client, or block on it.

use crate::state::Client;
use crate::{Engine, EngineError};
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use wharf_types::ContainerId;

pub(crate) const CLIENT_LOCK: &str = "client.lock";
use crate::monitor::MONITOR_LOCK;

/// Held by the foreground CLI for as long as it runs its container.
pub(crate) struct ClientLock {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl ClientLock {
    /// The CLI finished with its container (exit recorded, or the container removed):
    /// unlink first, so whoever gets the lock afterwards sees a finished client, not a dead one.
    pub(crate) fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            // empty once the client is done (a monitor may have files there later)
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Engine {
    /// Takes the client lock of a container about to be created by this process.
    pub(crate) fn lock_client(&self, id: &ContainerId) -> Result<ClientLock, EngineError> {
        let dir = self.run_dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("create", &dir, e))?;
        let path = dir.join(CLIENT_LOCK);
        // std opens with O_CLOEXEC: neither the container nor a monitor inherits the lock
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io("open", &path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| EngineError::io("lock", &path, std::io::Error::from(e)))?;
        Ok(ClientLock { path, _lock: lock })
    }

    /// Whether a foreground client owns the container, and whether it is still alive.
    pub(crate) fn client(&self, id: &ContainerId) -> Client {
        let path = self.run_dir(id).join(CLIENT_LOCK);
        let Ok(file) = std::fs::File::open(&path) else {
            return Client::Unknown;
        };
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            // nobody holds it: dead unless it unlinked the file first (finished), or unless
            // it was a `run -d` whose monitor got as far as its lock file (the monitor owns
            // the container now: its own liveness decides)
            Ok(f) => match f.metadata() {
                Ok(m) if m.nlink() == 0 => Client::Finished,
                Ok(_) if self.run_dir(id).join(MONITOR_LOCK).exists() => Client::Unknown,
                Ok(_) => Client::Gone,
                Err(_) => Client::Finished,
            },
            Err(_) => Client::Alive,
        }
    }
}
