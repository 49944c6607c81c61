//! Append-only JSON-lines logs of the engine (the policy audit log, the events log): each line
//! is one `write(2)` on an `O_APPEND|O_NOFOLLOW` descriptor, so concurrent wharf processes never
//! interleave a line; the file is rotated to `<path>.1` once it would grow past its size. No
//! fsync: these are written on the start path.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// Appends `line` (which ends in `\n`) to the log at `path` (its directory created if
/// missing), first rotating it when it would grow over `max_size` bytes (0: never).
pub(crate) fn append(path: &Path, max_size: u64, line: &str) -> std::io::Result<()> {
    let mut f = match open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open(path)?
        }
        Err(e) => return Err(e),
    };
    if max_size > 0 && f.metadata()?.len() + line.len() as u64 > max_size {
        f = rotate(path, f)?;
    }
    f.write_all(line.as_bytes())
}

/// Renames the full log to `<path>.1` and opens a fresh one. Under an exclusive `flock` of
/// the full file, and only if `path` still names it: of two processes that both found it
/// full, the second sees it was already rotated and does not rotate the fresh file away.
fn rotate(path: &Path, full: std::fs::File) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::MetadataExt;
    let locked =
        Flock::lock(full, FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    let (dev, ino) = {
        let m = locked.metadata()?;
        (m.dev(), m.ino())
    };
    let current = std::fs::symlink_metadata(path).ok();
    if current.is_some_and(|m| m.dev() == dev && m.ino() == ino) {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        std::fs::rename(path, &rotated)?;
    }
    drop(locked);
    open(path)
}
