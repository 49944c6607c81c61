//! Tar-split: keep an uncompressed layer as its snapshot plus a small record of the tar
//! stream's non-content bytes, so the exact layer tar (same sha256 = diff_id) can be
//! reassembled later for `save`, `push` and bundles without storing the layer twice.
//!
//! Recording: a [`Recorder`] sits between the layer stream and `apply_layer`; every byte
//! the tar parser consumes passes through it. `apply_layer` tells the [`SplitObserver`] when
//! it is about to copy a regular file's content to `<snapshot>/<path>`: those `size` bytes
//! are recorded as a reference (`File(path, size)`), everything else (headers, PAX/GNU
//! records, padding, the end-of-archive blocks, trailing bytes) verbatim (`Raw`).
//!
//! A layer that replaces or deletes, within itself, something it created earlier (the same
//! path twice, a whiteout of its own file, a file over its own directory) would make the
//! snapshot lose content the tar still carries. The observer is told before anything is
//! removed; it then switches to raw mode: the stream so far is reassembled from the record and
//! the still-intact snapshot into a plain tar file, and every further byte is appended to it.
//! Such a layer is stored as an ordinary uncompressed blob instead.
//!
//! Record format (gzip-compressed): `WHARFTS1`, then segments `0x01 u32le len bytes` (raw) or
//! `0x02 u32le len path u64le size` (file content), then `0x00`.
//!
//! Reading back ([`Reassembler`]) opens each referenced file beneath the snapshot without
//! following symlinks, requires its length to be exactly the recorded size, and checks the
//! sha256 and length of the whole stream at EOF: a mismatch is a read error, never a silently
//! different layer.
//!
//! Must not: buffer file contents (only headers are kept in memory, flushed every 256 KiB),
//! or resolve a recorded path by string outside the snapshot.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use wharf_sys::fs as sfs;
use wharf_types::Digest;

const MAGIC: &[u8; 8] = b"WHARFTS1";
const TAG_END: u8 = 0;
const TAG_RAW: u8 = 1;
const TAG_FILE: u8 = 2;
const FLUSH_AT: usize = 256 << 10;
/// Longest path a record may name (PATH_MAX).
const PATH_CAP: u32 = 4096;

/// What recording produced (temp files in the ingest dir, fsynced).
#[derive(Debug)]
pub(crate) enum SplitOutcome {
    /// A tar-split record; the layer lives in the snapshot.
    Record(PathBuf),
    /// The whole layer tar, verbatim (the layer rewrote its own entries).
    Raw(PathBuf),
}

enum Mode {
    Split(Box<GzEncoder<BufWriter<File>>>),
    Raw(BufWriter<File>),
    Done,
}

struct State {
    snapshot: PathBuf,
    ingest: PathBuf,
    /// Bytes consumed so far.
    pos: u64,
    /// Bytes before this offset belong to a referenced file's content.
    skip_to: u64,
    pending: Vec<u8>,
    mode: Mode,
    record_path: PathBuf,
    raw_path: Option<PathBuf>,
    /// `finish` succeeded: the temp files are the caller's now.
    finished: bool,
}

impl Drop for State {
    fn drop(&mut self) {
        // not `mode`: it is Done while switching to raw too, and that can fail
        if !self.finished {
            let _ = std::fs::remove_file(&self.record_path);
            if let Some(p) = &self.raw_path {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn temp_name(dir: &Path, prefix: &str) -> io::Result<PathBuf> {
    let s = crate::util::random_suffix().map_err(io::Error::other)?;
    Ok(dir.join(format!("{prefix}-{s}")))
}

fn create(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

impl State {
    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match &mut self.mode {
            Mode::Split(w) => {
                for chunk in self.pending.chunks(u32::MAX as usize) {
                    w.write_all(&[TAG_RAW])?;
                    w.write_all(&(chunk.len() as u32).to_le_bytes())?;
                    w.write_all(chunk)?;
                }
            }
            Mode::Raw(w) => w.write_all(&self.pending)?,
            Mode::Done => return Err(io::Error::other("tar-split already finished")),
        }
        self.pending.clear();
        Ok(())
    }

    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        let start = self.skip_to.saturating_sub(self.pos).min(data.len() as u64) as usize;
        self.pos += data.len() as u64;
        match &mut self.mode {
            Mode::Raw(w) => w.write_all(&data[start..]),
            Mode::Split(_) => {
                self.pending.extend_from_slice(&data[start..]);
                if self.pending.len() >= FLUSH_AT {
                    self.flush_pending()?;
                }
                Ok(())
            }
            Mode::Done => Err(io::Error::other("tar-split already finished")),
        }
    }

    fn file(&mut self, path: &[u8], size: u64, file_pos: u64) -> io::Result<()> {
        if !matches!(self.mode, Mode::Split(_)) {
            return Ok(());
        }
        if file_pos != self.pos || path.len() > PATH_CAP as usize {
            // Not where the content must start (never seen; be safe): keep bytes verbatim.
            return self.switch_to_raw();
        }
        self.flush_pending()?;
        if let Mode::Split(w) = &mut self.mode {
            w.write_all(&[TAG_FILE])?;
            w.write_all(&(path.len() as u32).to_le_bytes())?;
            w.write_all(path)?;
            w.write_all(&size.to_le_bytes())?;
        }
        self.skip_to = file_pos + size;
        Ok(())
    }

    /// Reassembles what was recorded so far into a raw tar file and continues in raw mode.
    fn switch_to_raw(&mut self) -> io::Result<()> {
        if !matches!(self.mode, Mode::Split(_)) {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let Mode::Split(enc) = std::mem::replace(&mut self.mode, Mode::Done) else {
            return Ok(());
        };
        let mut enc = enc;
        enc.write_all(&[TAG_END])?;
        enc.finish()?.flush()?;
        let raw_path = temp_name(&self.ingest, "layer")?;
        self.raw_path = Some(raw_path.clone());
        let mut out = BufWriter::with_capacity(256 << 10, create(&raw_path)?);
        let mut r = Reassembler::open(&self.record_path, &self.snapshot, None)?;
        io::copy(&mut r, &mut out)?;
        out.write_all(&pending)?;
        let _ = std::fs::remove_file(&self.record_path);
        self.skip_to = 0;
        self.mode = Mode::Raw(out);
        Ok(())
    }
}

/// Records a layer stream while `apply_layer` unpacks it into `snapshot`.
pub(crate) struct TarSplit {
    st: Rc<RefCell<State>>,
}

/// The `Read` side: wrap the (uncompressed) layer stream in it and hand it to `apply_layer`.
pub(crate) struct Recorder<R> {
    inner: R,
    st: Rc<RefCell<State>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.st.borrow_mut().record(&buf[..n])?;
        Ok(n)
    }
}

/// Told by `apply_layer` about file contents and destructive replacements.
pub trait ApplyObserver {
    /// `size` content bytes of the regular file `path` (relative to the snapshot, `/`-joined)
    /// start at stream offset `file_pos` and will be written to that file in full.
    fn file_content(&mut self, path: &[u8], size: u64, file_pos: u64) -> io::Result<()>;
    /// Something this layer created is about to be removed or replaced.
    fn destroying(&mut self) -> io::Result<()>;
}

/// Observer that ignores everything (plain unpacking).
pub(crate) struct NoObserver;

impl ApplyObserver for NoObserver {
    fn file_content(&mut self, _: &[u8], _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn destroying(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) struct SplitObserver {
    st: Rc<RefCell<State>>,
}

impl ApplyObserver for SplitObserver {
    fn file_content(&mut self, path: &[u8], size: u64, file_pos: u64) -> io::Result<()> {
        self.st.borrow_mut().file(path, size, file_pos)
    }
    fn destroying(&mut self) -> io::Result<()> {
        self.st.borrow_mut().switch_to_raw()
    }
}

impl TarSplit {
    /// Starts a record for a layer being unpacked into `snapshot`; temp files go to `ingest`.
    pub(crate) fn new(snapshot: &Path, ingest: &Path) -> io::Result<TarSplit> {
        let record_path = temp_name(ingest, "tarsplit")?;
        let f = create(&record_path)?;
        let mut enc = GzEncoder::new(
            BufWriter::with_capacity(64 << 10, f),
            flate2::Compression::fast(),
        );
        enc.write_all(MAGIC)?;
        Ok(TarSplit {
            st: Rc::new(RefCell::new(State {
                snapshot: snapshot.to_path_buf(),
                ingest: ingest.to_path_buf(),
                pos: 0,
                skip_to: 0,
                pending: Vec::new(),
                mode: Mode::Split(Box::new(enc)),
                record_path,
                raw_path: None,
                finished: false,
            })),
        })
    }

    pub(crate) fn reader<R: Read>(&self, inner: R) -> Recorder<R> {
        Recorder {
            inner,
            st: self.st.clone(),
        }
    }

    pub(crate) fn observer(&self) -> SplitObserver {
        SplitObserver {
            st: self.st.clone(),
        }
    }

    /// Ends the record after the whole stream (including trailing bytes) was read through
    /// the recorder. The returned temp file is fsynced; the caller renames it into place.
    pub(crate) fn finish(self) -> io::Result<SplitOutcome> {
        let mut st = self.st.borrow_mut();
        st.flush_pending()?;
        match std::mem::replace(&mut st.mode, Mode::Done) {
            Mode::Split(mut enc) => {
                enc.write_all(&[TAG_END])?;
                let w = enc.finish()?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                st.finished = true;
                Ok(SplitOutcome::Record(st.record_path.clone()))
            }
            Mode::Raw(w) => {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                let p = st.raw_path.clone().unwrap_or_default();
                st.finished = true;
                Ok(SplitOutcome::Raw(p))
            }
            Mode::Done => Err(io::Error::other("tar-split already finished")),
        }
    }
}

enum Cur {
    None,
    Raw(Vec<u8>, usize),
    File(io::Take<File>, u64),
}

/// Reassembles a layer tar from a record and its snapshot.
pub(crate) struct Reassembler {
    rec: GzDecoder<BufReader<File>>,
    root: File,
    cur: Cur,
    hasher: Sha256,
    total: u64,
    expected: Option<(Digest, u64)>,
    ended: bool,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Reassembler {
    /// `expected`: digest and length the whole stream must have (checked at EOF).
    pub(crate) fn open(
        record: &Path,
        snapshot: &Path,
        expected: Option<(Digest, u64)>,
    ) -> io::Result<Reassembler> {
        let mut rec = GzDecoder::new(BufReader::with_capacity(64 << 10, File::open(record)?));
        let mut magic = [0u8; 8];
        rec.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad(format!(
                "{} is not a tar-split record",
                record.display()
            )));
        }
        let root = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(snapshot)?;
        Ok(Reassembler {
            rec,
            root,
            cur: Cur::None,
            hasher: Sha256::new(),
            total: 0,
            expected,
            ended: false,
        })
    }

    fn next_segment(&mut self) -> io::Result<bool> {
        let mut tag = [0u8; 1];
        self.rec.read_exact(&mut tag)?;
        match tag[0] {
            TAG_END => Ok(false),
            TAG_RAW => {
                let mut len = [0u8; 4];
                self.rec.read_exact(&mut len)?;
                let len = u32::from_le_bytes(len) as usize;
                if len > 64 << 20 {
                    return Err(bad("tar-split record: oversized raw segment".into()));
                }
                let mut buf = vec![0u8; len];
                self.rec.read_exact(&mut buf)?;
                self.cur = Cur::Raw(buf, 0);
                Ok(true)
            }
            TAG_FILE => {
                let mut len = [0u8; 4];
                self.rec.read_exact(&mut len)?;
                let len = u32::from_le_bytes(len);
                if len > PATH_CAP {
                    return Err(bad("tar-split record: oversized path".into()));
                }
                let mut path = vec![0u8; len as usize];
                self.rec.read_exact(&mut path)?;
                let mut size = [0u8; 8];
                self.rec.read_exact(&mut size)?;
                let size = u64::from_le_bytes(size);
                let rel = Path::new(OsStr::from_bytes(&path));
                let fd = sfs::open_beneath_nofollow(self.root.as_fd(), rel, libc::O_RDONLY)
                    .map_err(|e| bad(format!("layer file {}: {e}", rel.display())))?;
                let f = File::from(fd);
                let len = f.metadata()?.len();
                if len != size {
                    return Err(bad(format!(
                        "layer file {} changed: {len} bytes, the layer has {size}",
                        rel.display()
                    )));
                }
                self.cur = Cur::File(f.take(size), size);
                Ok(true)
            }
            t => Err(bad(format!("tar-split record: unknown segment {t}"))),
        }
    }

    fn check_end(&self) -> io::Result<()> {
        if let Some((d, n)) = &self.expected {
            let got = Digest::from_hasher(self.hasher.clone());
            if &got != d || self.total != *n {
                return Err(bad(format!(
                    "layer {d} reassembled from its snapshot does not match: got {got}, {} of {n} bytes",
                    self.total
                )));
            }
        }
        Ok(())
    }
}

impl Read for Reassembler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ended {
                return Ok(0);
            }
            let n = match &mut self.cur {
                Cur::None => 0,
                Cur::Raw(v, off) => {
                    let n = (v.len() - *off).min(buf.len());
                    buf[..n].copy_from_slice(&v[*off..*off + n]);
                    *off += n;
                    n
                }
                Cur::File(f, left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = if want == 0 {
                        0
                    } else {
                        f.read(&mut buf[..want])?
                    };
                    if n == 0 && *left > 0 {
                        return Err(bad("layer file shrank while being read".into()));
                    }
                    *left -= n as u64;
                    n
                }
            };
            if n > 0 {
                self.hasher.update(&buf[..n]);
                self.total += n as u64;
                return Ok(n);
            }
            if !self.next_segment()? {
                self.ended = true;
                self.check_end()?;
            }
        }
    }
}
