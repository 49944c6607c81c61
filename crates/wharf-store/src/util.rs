//! Small file-system helpers for the store's OWN (trusted) layout: atomic writes
//! (temp → fsync → rename → fsync dir), capped reads, random names, timestamps.
//! Must not be used inside untrusted trees (layers, rootfs): that is `wharf_sys::fs`.

use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

/// Cap on any metadata file read into memory (invariant 3).
pub(crate) const META_CAP: u64 = 64 << 20;

/// 32 random bytes as 64 hex digits.
pub(crate) fn random_hex() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(StoreError::io("reading", "/dev/urandom"))?;
    Ok(hex::encode(b))
}

/// A short random suffix for temp names.
pub(crate) fn random_suffix() -> Result<String, StoreError> {
    Ok(random_hex()?[..16].to_string())
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    wharf_sys::atomic::sync_dir(dir).map_err(StoreError::io("syncing directory", dir))
}

/// Writes `data` to `path` atomically and durably (`wharf_sys::atomic`).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    wharf_sys::atomic::write_file(path, data, 0o644)
        .map_err(StoreError::io("writing atomically", path))
}

pub(crate) fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    what: &'static str,
    v: &T,
) -> Result<(), StoreError> {
    let data = serde_json::to_vec(v).map_err(|source| StoreError::Encode { what, source })?;
    write_atomic(path, &data)
}

/// Reads at most `cap` bytes; `Ok(None)` if the file does not exist.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("opening", path)(e)),
    };
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(StoreError::io("reading", path))?;
    if buf.len() as u64 > cap {
        return Err(StoreError::TooLarge {
            path: path.to_path_buf(),
            limit: cap,
        });
    }
    Ok(Some(buf))
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match read_capped(path, META_CAP)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
    }
}

pub(crate) fn mkdir_p(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(StoreError::io("creating directory", path))
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Removes a directory tree (std's implementation does not follow symlinks), treating
/// "already gone" as success.
pub(crate) fn remove_tree_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Hashes (sha256) and counts what is read through it.
pub(crate) struct HashRead<R> {
    pub inner: R,
    pub hasher: sha2::Sha256,
    pub n: u64,
}

impl<R> HashRead<R> {
    pub fn new(inner: R) -> HashRead<R> {
        HashRead {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            n: 0,
        }
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> wharf_types::Digest {
        wharf_types::Digest::from_hasher(self.hasher.clone())
    }
}

impl<R: std::io::Read> std::io::Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Worker threads for CPU-bound store work: the available cores, 1 to 8.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// How far a file that one thread is still writing has got ([`GrowingReader`] follows it).
pub(crate) struct Growing {
    state: Mutex<(u64, Growth)>,
    cv: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Growth {
    Writing,
    Done,
    Abandoned,
}

impl Growing {
    pub fn new() -> Arc<Growing> {
        Arc::new(Growing {
            state: Mutex::new((0, Growth::Writing)),
            cv: Condvar::new(),
        })
    }

    fn set(&self, f: impl FnOnce(&mut (u64, Growth))) {
        if let Ok(mut s) = self.state.lock() {
            if s.1 == Growth::Writing {
                f(&mut s);
            }
        }
        self.cv.notify_all();
    }

    /// `total` bytes are in the file now.
    pub fn wrote(&self, total: u64) {
        self.set(|s| s.0 = total);
    }

    /// The file is complete.
    pub fn done(&self) {
        self.set(|s| s.1 = Growth::Done);
    }

    /// The writer gave up: readers get an error instead of waiting (no-op once done).
    pub fn abandon(&self) {
        self.set(|s| s.1 = Growth::Abandoned);
    }
}

/// Reads a file while it is written, up to where [`Growing`] says it has got; waits for more
/// until the writer is done.
pub(crate) struct GrowingReader {
    file: File,
    pos: u64,
    growing: Arc<Growing>,
}

impl GrowingReader {
    pub fn new(file: File, growing: Arc<Growing>) -> GrowingReader {
        GrowingReader {
            file,
            pos: 0,
            growing,
        }
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (end, growth) = {
            let g = &self.growing;
            let mut s = g
                .state
                .lock()
                .map_err(|_| io::Error::other("writer panicked"))?;
            while s.0 <= self.pos && s.1 == Growth::Writing {
                s =
                    g.cv.wait(s)
                        .map_err(|_| io::Error::other("writer panicked"))?;
            }
            *s
        };
        if growth == Growth::Abandoned {
            return Err(io::Error::other(
                "the archive stopped before this member's end",
            ));
        }
        if end <= self.pos || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(end - self.pos).unwrap_or(usize::MAX));
        let n = std::os::unix::fs::FileExt::read_at(&self.file, &mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A counting semaphore: at most `max` holders of a [`Slot`] at a time.
pub(crate) struct Slots {
    used: Mutex<usize>,
    cv: Condvar,
    max: usize,
}

/// One of [`Slots`]; released on drop.
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            used: Mutex::new(0),
            cv: Condvar::new(),
            max: max.max(1),
        })
    }

    /// Waits until a slot is free and takes it.
    pub fn acquire(self: &Arc<Self>) -> Slot {
        if let Ok(mut used) = self.used.lock() {
            while *used >= self.max {
                match self.cv.wait(used) {
                    Ok(u) => used = u,
                    Err(_) => return Slot(self.clone()),
                }
            }
            *used += 1;
        }
        Slot(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut used) = self.0.used.lock() {
            *used = used.saturating_sub(1);
        }
        self.0.cv.notify_one();
    }
}

const AHEAD_CHUNK: usize = 256 << 10;

/// Runs `f` on a reader that another thread fills by reading `r` ahead: a two-stage pipeline
/// (decompression on one core; hashing and unpacking on another). Errors of `r` reach `f`
/// unchanged; when `f` returns early the other thread stops at its next chunk.
pub(crate) fn read_ahead<R: Read + Send, T>(r: R, f: impl FnOnce(&mut AheadReader) -> T) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut r = r;
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_default();
                buf.resize(AHEAD_CHUNK, 0);
                let mut filled = 0;
                let mut eof = false;
                while filled < buf.len() {
                    match r.read(&mut buf[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                buf.truncate(filled);
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                if eof {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
            }
        });
        let mut reader = AheadReader {
            rx,
            back: back_tx,
            cur: Vec::new(),
            pos: 0,
            eof: false,
        };
        let out = f(&mut reader);
        drop(reader); // before the scope joins: a producer blocked on a full channel wakes
        out
    })
}

/// The consuming end of [`read_ahead`].
pub(crate) struct AheadReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Read for AheadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.eof {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    if b.is_empty() {
                        self.eof = true;
                    }
                    let old = std::mem::replace(&mut self.cur, b);
                    self.pos = 0;
                    if old.capacity() > 0 {
                        let _ = self.back.send(old);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the read-ahead thread stopped")),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "util_tests.rs"]
mod tests;

/// Bytes of the regular files under `dir` (not following symlinks, hard links once, at most
/// `max_entries` entries looked at); unreadable parts count as empty.
pub fn tree_size(dir: &Path, max_entries: usize) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut entries = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            entries += 1;
            if entries > max_entries {
                return total;
            }
            let Ok(md) = ent.metadata() else { continue };
            if md.is_dir() {
                stack.push(ent.path());
            } else if md.is_file() && (md.nlink() <= 1 || seen.insert((md.dev(), md.ino()))) {
                total = total.saturating_add(md.len());
            }
        }
    }
    total
}
