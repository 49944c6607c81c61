//! Image archives: `save` (docker-archive or OCI image layout, as a tar stream) and `load`
//! (docker 20.10 / ≥25 / podman / skopeo docker-archives and OCI layouts in a tar; plain,
//! gzip or zstd, detected by magic bytes).
//!
//! Save streams every blob from the store as stored (compressed layers stay compressed;
//! uncompressed ones are reassembled from snapshot + tar-split), each re-hashed while written.
//! Load reads the tar once: uncompressed layer members are unpacked as they stream by, other
//! members go to a private temp directory under `ingest/` (stored by index, never by their
//! archive name, so no member name ever reaches the file system); then `manifest.json` /
//! `index.json` are resolved, every config, manifest and layer verified (sha256 of the blob and
//! of the uncompressed tar against `rootfs.diff_ids`), compressed layers unpacked on all cores.
//! Only when every image of the archive verified are blobs, snapshots and index entries
//! committed, so a refused archive leaves the store as it was.
//!
//! Owns: archive formats and their verification. Must not: trust an archive name, digest or
//! size before checking it, or buffer a layer in memory.

mod load;
mod save;

pub use load::{LoadOptions, LoadedImage};
pub use save::SaveOptions;

use crate::error::StoreError;
use crate::layer::LayerError;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::Platform;
use wharf_types::reference::RefError;
use wharf_types::Digest;

/// Cap for JSON metadata members (manifest.json, index.json, configs, manifests).
pub(crate) const ARCHIVE_META_CAP: u64 = 8 << 20;

/// Format written by [`crate::Store::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save`: manifest.json + an OCI layout (docker ≥25 shape, which docker 20.10,
    /// podman and skopeo load too), layers as stored.
    Docker,
    /// OCI image layout in a tar, blobs as stored (compressed), manifests byte-for-byte.
    Oci,
}

impl std::str::FromStr for ArchiveFormat {
    type Err = ArchiveError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" | "docker-archive" => Ok(ArchiveFormat::Docker),
            "oci" | "oci-archive" => Ok(ArchiveFormat::Oci),
            other => Err(ArchiveError::BadFormat(other.to_string())),
        }
    }
}

/// `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform, ArchiveError> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        }),
        _ => Err(ArchiveError::BadPlatform(s.to_string())),
    }
}

fn platform_matches(want: &Platform, os: &str, arch: &str, variant: Option<&str>) -> bool {
    want.os == os
        && want.architecture == arch
        && (want.variant.is_none() || want.variant.as_deref() == variant)
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid archive format {0:?}: expected docker or oci")]
    BadFormat(String),
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
    #[error("image {image} does not match platform {platform}")]
    PlatformMismatch { image: String, platform: String },
    #[error("archive contains no image matching platform {0}")]
    NoPlatform(String),
    #[error("reading archive")]
    Read(#[source] io::Error),
    /// A layer member's content could not be read as a layer (a corrupt tar inside it, a
    /// stream that broke inside it): named by its member, which names its digest.
    #[error("reading layer {layer}")]
    LayerRead {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("writing archive")]
    Write(#[source] io::Error),
    #[error("unsupported compression of {0}")]
    Compression(String, #[source] io::Error),
    #[error("archive member {name:?} rejected: {reason}")]
    UnsafeMember { name: String, reason: &'static str },
    #[error("{from} references {name:?}, which is outside the archive")]
    Outside { from: String, name: String },
    #[error("{from} references {name:?}, which is not in the archive")]
    Missing { from: String, name: String },
    #[error("archive is truncated: it ends inside member {name:?} ({got} of {size} bytes)")]
    Truncated { name: String, got: u64, size: u64 },
    #[error("archive member {name:?} is larger than the {limit} bytes allowed")]
    TooLarge { name: String, limit: u64 },
    #[error("decompressed data exceeds {limit} bytes (free space of the store); refusing a possible decompression bomb")]
    Bomb { limit: u64 },
    #[error("no space left on the store {}{}", .store.display(), .free.map(|f| format!(": the data is larger than the {f} bytes free")).unwrap_or_default())]
    NoSpace { store: PathBuf, free: Option<u64> },
    #[error("invalid {what} in archive")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("content of {what} does not match {expected}: got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size of {what} does not match: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("image config {config} lists {diff_ids} diff_ids but {layers} layers")]
    LayerCount {
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("refusing {what} in archive")]
    Document {
        what: String,
        #[source]
        source: wharf_types::oci::DocumentError,
    },
    #[error("invalid tag {tag:?} in archive")]
    BadTag {
        tag: String,
        #[source]
        source: RefError,
    },
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    #[error("archive has neither manifest.json nor index.json: not a docker or OCI image archive")]
    NotAnArchive,
    #[error("layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: LayerError,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> ArchiveError {
        let path = path.into();
        move |source| ArchiveError::Io { op, path, source }
    }
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Store(e) => e.kind(),
            ArchiveError::Layer { source, .. } => source.kind(),
            ArchiveError::Write(_) | ArchiveError::Io { .. } => ErrorKind::Internal,
            ArchiveError::NoPlatform(_) => ErrorKind::NotFound,
            ArchiveError::NoSpace { .. } => ErrorKind::FailedPrecondition,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Compression of a stream, by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// By the magic bytes `head` starts with.
    pub(crate) fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

pub(crate) fn sniff<R: BufRead>(r: &mut R) -> io::Result<Compression> {
    Ok(Compression::of(r.fill_buf()?))
}

/// Wraps `r` in the decoder its magic bytes call for.
pub(crate) fn decompress<R: BufRead>(mut r: R, what: &str) -> Result<Decoder<R>, ArchiveError> {
    Ok(match sniff(&mut r).map_err(ArchiveError::Read)? {
        Compression::None => Decoder::Plain(r),
        Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(r))),
        Compression::Zstd => Decoder::Zstd(Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| ArchiveError::Compression(what.to_string(), io::Error::other(e)))?,
        )),
    })
}

/// A plain, gzip or zstd stream (`Send` when its source is, unlike a boxed reader).
pub(crate) enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(Box<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// A reader failing once more than `limit` bytes were read: never unpack more than the store
/// can hold. Over compressed input that may be a decompression bomb; over plain input it is
/// data larger than the free space.
pub(crate) struct Capped<R> {
    pub inner: R,
    pub limit: u64,
    pub read: u64,
    /// The bytes come out of a decompressor.
    pub compressed: bool,
}

impl<R: BufRead> Capped<Decoder<R>> {
    /// Caps a decoder's output.
    pub(crate) fn decoded(inner: Decoder<R>, limit: u64) -> Capped<Decoder<R>> {
        let compressed = !matches!(inner, Decoder::Plain(_));
        Capped {
            inner,
            limit,
            read: 0,
            compressed,
        }
    }
}

/// Marker carried in the io::Error of a [`Capped`] reader.
#[derive(Debug)]
pub(crate) struct CapExceeded {
    pub limit: u64,
    pub compressed: bool,
}

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.limit)
    }
}
impl std::error::Error for CapExceeded {}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            // InvalidData: an error of the data read, so layer apply reports it as a read
            // error (LayerError::Read) whichever side of a copy it surfaced on
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                CapExceeded {
                    limit: self.limit,
                    compressed: self.compressed,
                },
            ));
        }
        Ok(n)
    }
}

/// Maps a read error to `Bomb` (compressed input) or `NoSpace` (plain input) when it came from
/// a [`Capped`] reader.
pub(crate) fn read_err(e: io::Error) -> ArchiveError {
    if let Some(c) = e.get_ref().and_then(|i| i.downcast_ref::<CapExceeded>()) {
        return c.error();
    }
    ArchiveError::Read(e)
}

impl CapExceeded {
    pub(crate) fn error(&self) -> ArchiveError {
        if self.compressed {
            ArchiveError::Bomb { limit: self.limit }
        } else {
            ArchiveError::NoSpace {
                store: PathBuf::new(),
                free: Some(self.limit),
            }
        }
    }
}

/// Whether `e` or one of its sources is ENOSPC or EDQUOT.
pub(crate) fn is_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            let code = io.raw_os_error();
            if code == Some(nix::errno::Errno::ENOSPC as i32)
                || code == Some(nix::errno::Errno::EDQUOT as i32)
            {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if is_no_space(inner) {
                    return true;
                }
            }
        }
        cur = c.source();
    }
    false
}

impl ArchiveError {
    /// A full file system, however it surfaced (a write's ENOSPC, or more data than the free
    /// space `Capped` allowed), as one `NoSpace` naming the store.
    pub(crate) fn on_store(self, root: &Path) -> ArchiveError {
        match self {
            ArchiveError::NoSpace { free, .. } => ArchiveError::NoSpace {
                store: root.to_path_buf(),
                free,
            },
            e if is_no_space(&e) => ArchiveError::NoSpace {
                store: root.to_path_buf(),
                free: None,
            },
            e => e,
        }
    }
}
