//! Parallel gzip (pigz-style) and the store's compressed twins of uncompressed layers.
//!
//! [`ParGzEncoder`] splits its input into fixed blocks ([`GzOptions::block_size`]), deflates
//! them on a small worker pool, and writes them out in order as ONE gzip member: each block
//! but the last ends with a sync flush (an empty stored block, so the next block starts on a
//! byte boundary), the last with a final block; the CRC-32 of each block is computed by its
//! worker and combined in order. Block boundaries depend only on the byte offset, so the
//! output is a function of (input, level, block size) alone — not of the thread count or of
//! how the caller chunks its writes. At most `2 × threads` blocks are in flight.
//!
//! With flate2's default (miniz_oxide) backend blocks are independent (miniz cannot prime a
//! compressor with a dictionary); with the crate feature `zlib-rs` each block is primed with
//! the last 32 KiB of the block before it, as pigz does, which recovers the ratio of a serial
//! gzip.
//!
//! [`Store::gzip_layer`] turns an uncompressed layer into a gzip blob once (verifying its
//! diff_id on the way) and remembers it in the index (`compressed`), so re-pushing an image
//! whose layers came in uncompressed does not compress them again.
//!
//! Must not: change a blob that is already compressed, or record a twin before its bytes were
//! verified against the diff_id.

use crate::content::{blob_path, write_blob, IngestWriter};
use crate::error::StoreError;
use crate::index::{Index, LayerEntry};
use crate::lock::Lock;
use crate::Store;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use wharf_types::oci::{self, Descriptor};
use wharf_types::Digest;

/// Default block size: 1 MiB (pigz uses 128 KiB; larger blocks cost less ratio when blocks
/// are independent).
pub const BLOCK_SIZE: usize = 1 << 20;

/// Size of the deflate window, and of the dictionary a block is primed with.
#[cfg(feature = "zlib-rs")]
const DICT_SIZE: usize = 32 << 10;

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzOptions {
    /// 0 (store) ..= 9 (best).
    pub level: u32,
    /// Input bytes per block (at least 1).
    pub block_size: usize,
    /// Worker threads; 1 compresses on the calling thread.
    pub threads: usize,
}

impl Default for GzOptions {
    /// Level 6 (gzip's and Go's default), 1 MiB blocks, one thread per core.
    fn default() -> GzOptions {
        GzOptions {
            level: 6,
            block_size: BLOCK_SIZE,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Byte counts of a finished stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GzStats {
    pub input_bytes: u64,
    pub output_bytes: u64,
}

/// One block's compressed bytes and the CRC of its input.
struct Done {
    deflated: Vec<u8>,
    crc: Crc,
}

struct Job {
    data: Vec<u8>,
    #[cfg(feature = "zlib-rs")]
    dict: Option<Vec<u8>>,
    last: bool,
    level: u32,
}

impl Job {
    fn run(self) -> io::Result<Done> {
        let mut crc = Crc::new();
        crc.update(&self.data);
        let mut c = Compress::new(Compression::new(self.level), false);
        #[cfg(feature = "zlib-rs")]
        if let Some(d) = &self.dict {
            c.set_dictionary(d).map_err(io::Error::other)?;
        }
        let flush = if self.last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        let mut out = Vec::with_capacity(self.data.len() / 2 + 1024);
        loop {
            let consumed = usize::try_from(c.total_in()).map_err(io::Error::other)?;
            let rest = self.data.get(consumed..).unwrap_or_default();
            let before = (c.total_in(), c.total_out());
            let status = c
                .compress_vec(rest, &mut out, flush)
                .map_err(io::Error::other)?;
            let progressed = (c.total_in(), c.total_out()) != before;
            let all_in =
                usize::try_from(c.total_in()).map_err(io::Error::other)? == self.data.len();
            let room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd => break,
                // A flush is complete once the compressor stopped with output space unused.
                _ if !self.last && all_in && room_left => break,
                // Stuck with room to spare: never loop forever on a compressor bug.
                _ if room_left && !progressed => {
                    return Err(io::Error::other("deflate made no progress"))
                }
                _ => out.reserve(out.capacity().max(64 << 10)),
            }
        }
        Ok(Done { deflated: out, crc })
    }
}

type Reply = Receiver<io::Result<Done>>;

/// Worker threads sharing one job queue; each job carries its own reply channel.
struct Pool {
    jobs: Option<Sender<(Job, SyncSender<io::Result<Done>>)>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize) -> io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<(Job, SyncSender<io::Result<Done>>)>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let h = std::thread::Builder::new()
                .name(format!("wharf-gzip-{i}"))
                .spawn(move || loop {
                    let next = match rx.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok((job, reply)) = next else { return };
                    // The encoder may have been dropped; then nobody wants the result.
                    let _ = reply.send(job.run());
                })?;
            workers.push(h);
        }
        Ok(Pool {
            jobs: Some(tx),
            workers,
        })
    }

    fn submit(&self, job: Job) -> io::Result<Reply> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .as_ref()
            .and_then(|j| j.send((job, tx)).ok())
            .ok_or_else(|| io::Error::other("gzip worker pool has stopped"))?;
        Ok(rx)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A streaming parallel gzip encoder; call [`ParGzEncoder::finish`] to write the trailer
/// (dropping it unfinished leaves a truncated stream).
pub struct ParGzEncoder<W: Write> {
    out: W,
    opts: GzOptions,
    buf: Vec<u8>,
    #[cfg(feature = "zlib-rs")]
    dict: Option<Vec<u8>>,
    pending: VecDeque<Reply>,
    pool: Option<Pool>,
    crc: Crc,
    stats: GzStats,
    header_done: bool,
}

impl<W: Write> ParGzEncoder<W> {
    pub fn new(out: W, opts: GzOptions) -> io::Result<ParGzEncoder<W>> {
        let opts = GzOptions {
            level: opts.level.min(9),
            block_size: opts.block_size.max(1),
            threads: opts.threads.max(1),
        };
        let pool = if opts.threads > 1 {
            Some(Pool::new(opts.threads)?)
        } else {
            None
        };
        Ok(ParGzEncoder {
            out,
            opts,
            buf: Vec::with_capacity(opts.block_size),
            #[cfg(feature = "zlib-rs")]
            dict: None,
            pending: VecDeque::new(),
            pool,
            crc: Crc::new(),
            stats: GzStats::default(),
            header_done: false,
        })
    }

    fn emit(&mut self, done: Done) -> io::Result<()> {
        if !self.header_done {
            let xfl = match self.opts.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            // magic, deflate, no flags, mtime 0 (reproducible), xfl, OS unknown
            let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255];
            self.out.write_all(&header)?;
            self.stats.output_bytes += header.len() as u64;
            self.header_done = true;
        }
        self.out.write_all(&done.deflated)?;
        self.stats.output_bytes += done.deflated.len() as u64;
        self.crc.combine(&done.crc);
        Ok(())
    }

    fn wait_front(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let done = rx
                .recv()
                .map_err(|_| io::Error::other("gzip worker exited"))??;
            self.emit(done)?;
        }
        Ok(())
    }

    /// Hands the current block to a worker (or compresses it here with one thread).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.opts.block_size));
        #[cfg(feature = "zlib-rs")]
        let dict = {
            let next = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
            self.dict.replace(next)
        };
        let job = Job {
            data,
            #[cfg(feature = "zlib-rs")]
            dict,
            last,
            level: self.opts.level,
        };
        match &self.pool {
            None => {
                let done = job.run()?;
                self.emit(done)
            }
            Some(pool) => {
                let rx = pool.submit(job)?;
                self.pending.push_back(rx);
                while self.pending.len() >= 2 * self.opts.threads {
                    self.wait_front()?;
                }
                Ok(())
            }
        }
    }

    /// Compresses what is buffered, writes the trailer, flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<(W, GzStats)> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.wait_front()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()?;
        self.stats.output_bytes += 8;
        self.pool = None;
        Ok((self.out, self.stats))
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full block is only submitted once more input arrives: the final block (even a
        // full one) must be compressed with `finish`.
        if self.buf.len() == self.opts.block_size {
            self.submit(false)?;
        }
        let n = data.len().min(self.opts.block_size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.stats.input_bytes += n as u64;
        Ok(n)
    }

    /// Writes out the blocks already compressed; does not end the current block (that
    /// would make the output depend on flush timing).
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Gzips all of `input` into `out` as one member with [`ParGzEncoder`].
pub fn gzip_parallel(
    mut input: impl Read,
    out: impl Write,
    opts: GzOptions,
) -> io::Result<GzStats> {
    let mut enc = ParGzEncoder::new(out, opts)?;
    io::copy(&mut input, &mut enc)?;
    Ok(enc.finish()?.1)
}

/// The gzip media type for an uncompressed layer media type; None if `media_type` is not an
/// uncompressed layer (already compressed, foreign, or unknown: left alone).
pub fn gzip_media_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        oci::MEDIA_OCI_LAYER => Some(oci::MEDIA_OCI_LAYER_GZIP),
        oci::MEDIA_DOCKER_LAYER => Some(oci::MEDIA_DOCKER_LAYER_GZIP),
        _ => None,
    }
}

/// Copies everything `r` yields into `w`, hashing it; returns (sha256, length).
fn hash_copy(r: &mut dyn Read, w: &mut impl Write) -> Result<(Digest, u64), CopyError> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        h.update(&buf[..k]);
        n += k as u64;
        w.write_all(&buf[..k]).map_err(CopyError::Write)?;
    }
    Ok((Digest::from_hasher(h), n))
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl Store {
    /// The gzip twin of layer `blob` (whose uncompressed tar has digest `diff_id`), made at
    /// most once: `blob` itself if it is not an uncompressed layer, the twin recorded in the
    /// index if its blob exists, else the layer compressed now on all cores, verified against
    /// `diff_id` (and `blob`'s digest and size) while it streams, committed and recorded.
    /// The media type follows `blob`'s flavour (OCI → OCI gzip, docker → docker gzip).
    pub fn gzip_layer(
        &self,
        diff_id: &Digest,
        blob: &Descriptor,
    ) -> Result<Descriptor, StoreError> {
        let Some(media_type) = gzip_media_type(&blob.media_type) else {
            return Ok(blob.clone());
        };
        let twin = |e: &LayerEntry| Descriptor {
            media_type: media_type.to_string(),
            digest: e.blob.clone(),
            size: e.blob_size,
            annotations: blob.annotations.clone(),
            platform: None,
        };
        if let Some(e) = Index::load(&self.images_json)?
            .compressed
            .get(diff_id.hex())
        {
            if blob_path(&self.blobs, &e.blob).is_file() {
                return Ok(twin(e));
            }
        }
        // Ingest files are GC's to delete unless gc.lock is held shared (see `lock`).
        let _gc = Lock::shared(&self.gc_lock)?;
        let (mut r, _) = self.open_layer(&blob.digest)?;
        let mut w = IngestWriter::new(&self.ingest)?;
        let mut enc = ParGzEncoder::new(&mut w, GzOptions::default())
            .map_err(StoreError::io("starting gzip workers", &self.ingest))?;
        let src = blob_path(&self.blobs, &blob.digest);
        let (got, size) = hash_copy(&mut r, &mut enc).map_err(|e| match e {
            CopyError::Read(e) => StoreError::io("reading layer", &src)(e),
            CopyError::Write(e) => StoreError::io("writing compressed layer", &self.ingest)(e),
        })?;
        drop(r);
        enc.finish()
            .map_err(StoreError::io("writing compressed layer", &self.ingest))?;
        if got != *diff_id || got != blob.digest || size != blob.size {
            return Err(StoreError::DigestMismatch {
                what: format!(
                    "layer {} ({size} bytes, expected {}) as diff_id",
                    blob.digest, blob.size
                ),
                expected: diff_id.clone(),
                actual: got,
            });
        }
        let (gz, gz_size) = w.commit(&self.blobs, None)?;
        let entry = LayerEntry {
            blob: gz,
            blob_size: gz_size,
            media_type: media_type.to_string(),
            diff_id: diff_id.clone(),
            size,
        };
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let mut idx = Index::load(&self.images_json)?;
        idx.compressed
            .insert(diff_id.hex().to_string(), entry.clone());
        idx.save(&self.images_json)?;
        Ok(twin(&entry))
    }

    /// Stores a manifest (or any small metadata blob) built for a push; returns its digest
    /// and size. Not referenced by any image, so GC may remove it later (a push rebuilds it
    /// identically).
    pub fn write_manifest_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        // its ingest temp is GC's (and `reap`'s) to delete unless gc.lock is held shared
        let _gc = Lock::shared(&self.gc_lock)?;
        write_blob(&self.blobs, &self.ingest, bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "compress_tests.rs"]
mod tests;
