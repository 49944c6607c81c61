//! The one atomic, durable file writer: a temporary file next to the target (created
//! exclusively, with the final mode), written, fsynced, renamed over the target, then the
//! directory fsynced, so a reader sees the old content or the new, never a mix, and a power
//! cut after `write_file` returns cannot lose the new content. Every small writer of wharf's
//! state (store records, registry metadata, client config, seccomp cache) uses it.
//!
//! Must not: write through a path component it creates itself (the parent must exist), or
//! leave its temporary file behind on an error.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// fsyncs a directory (its entries: a rename or a create in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `data` atomically and durably (temp → fsync → rename → fsync dir);
/// a new file gets `mode` (before the umask).
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut attempts = 0;
    let (tmp, mut f) = loop {
        attempts += 1;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}-{nanos}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => continue,
            Err(e) => return Err(e),
        }
    };
    let res = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write_file(&p, b"one", 0o600).expect("first write");
        assert_eq!(std::fs::read(&p).expect("read"), b"one");
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        write_file(&p, b"two", 0o644).expect("second write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        // a missing parent is an error, and nothing is created
        let e = write_file(&dir.path().join("no/such/file"), b"x", 0o644).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // renaming over a directory fails and removes the temporary
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/x"), b"").expect("w");
        assert!(write_file(&dir.path().join("d"), b"x", 0o644).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    }
}
