//! `pull`: resolve the manifest (index/list → platform), fetch the config, stream layers in
//! parallel (each one downloaded, decompressed and unpacked in one pass by
//! `wharf_store::distribution`), then commit the image with its tag and repo digest.

use super::config::RegistryConfig;
use super::transport::{read_capped, Body, Endpoint};
use super::{ClientError, CONFIG_CAP, MANIFEST_CAP};
use std::sync::Mutex;
use wharf_store::archive::ArchiveError;
use wharf_store::distribution::{DistError, PreparedLayer};
use wharf_store::Store;
use wharf_types::oci::{self, Descriptor, Manifest, Platform};
use wharf_types::{Digest, ImageRef};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const PARALLEL: usize = 4;

/// What a pull reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A whole line (`Digest: …`, `Status: …`).
    Line(&'a str),
    /// A layer's state: `Pulling fs layer`, `Already exists`, `Downloading` (with bytes),
    /// `Pull complete`. `id` is the 12-hex short blob digest.
    Layer {
        id: &'a str,
        status: &'a str,
        current: u64,
        total: u64,
    },
}

/// Options of [`pull`].
#[derive(Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    /// Credentials for the named registry (user, password) given with this pull (an Engine
    /// API client's `X-Registry-Auth`), used instead of the stored ones; not sent to mirrors.
    pub credentials: Option<(String, String)>,
    /// Without `credentials`: anonymous, never the stored ones (an Engine API caller other
    /// than root may not use the server's login).
    pub no_stored_credentials: bool,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<hidden>")),
            )
            .field("no_stored_credentials", &self.no_stored_credentials)
            .finish()
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub id: Digest,
    /// Top-level manifest digest (the index's when there was one).
    pub digest: Digest,
    pub up_to_date: bool,
    /// The reference as docker prints it last.
    pub reference: String,
    pub bytes_downloaded: u64,
}

#[derive(serde::Deserialize)]
struct IndexDoc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Parses a user reference, adding `latest` when neither tag nor digest is given.
pub(crate) fn parse_ref(s: &str) -> Result<ImageRef, ClientError> {
    let r = ImageRef::parse(s)?;
    if r.tag().is_none() && r.digest().is_none() {
        return r
            .with_tag(wharf_types::reference::DEFAULT_TAG)
            .map_err(ClientError::Reference);
    }
    Ok(r)
}

fn fetch_manifest(
    ep: &Endpoint,
    repo: &str,
    reference: &str,
    shown: &str,
    want: Option<&Digest>,
) -> Result<(Vec<u8>, Digest, String), ClientError> {
    let r = ep.send(
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT)],
        Body::Empty,
        shown,
    )?;
    let ct = r.header("content-type").unwrap_or("").to_string();
    let header_digest = r.header("docker-content-digest").map(str::to_string);
    let body = read_capped(r.into_reader(), MANIFEST_CAP, &format!("manifest {shown}"))?;
    let d = Digest::of(&body);
    let expected = want
        .map(|w| w.to_string())
        .or(header_digest.filter(|h| h.starts_with("sha256:")));
    if let Some(e) = expected {
        if e != d.to_string() {
            return Err(ClientError::DigestMismatch {
                what: format!("manifest {shown}"),
                expected: e,
                actual: d.to_string(),
            });
        }
    }
    let doc: IndexDoc = serde_json::from_slice(&body).map_err(|e| ClientError::BadResponse {
        what: format!("manifest {shown}"),
        msg: e.to_string(),
    })?;
    let c = ct.split(';').next().unwrap_or("").trim();
    oci::document_kind(&body, Some(c)).map_err(|source| ClientError::Document {
        what: format!("manifest {shown} ({d})"),
        source,
    })?;
    let mt = doc.media_type.clone().unwrap_or_else(|| {
        let c = c.to_string();
        if !c.is_empty() && c != "application/json" {
            c
        } else if doc.manifests.is_some() {
            oci::MEDIA_OCI_INDEX.to_string()
        } else if doc.layers.is_some() {
            oci::MEDIA_OCI_MANIFEST.to_string()
        } else {
            c
        }
    });
    Ok((body, d, mt))
}

fn select_platform(body: &[u8], want: &Platform, shown: &str) -> Result<Descriptor, ClientError> {
    let doc: IndexDoc = serde_json::from_slice(body).map_err(|e| ClientError::BadResponse {
        what: format!("manifest list {shown}"),
        msg: e.to_string(),
    })?;
    let list = doc.manifests.unwrap_or_default();
    let m = |d: &&Descriptor, strict: bool| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (!strict || want.variant.is_none() || p.variant == want.variant)
        })
    };
    list.iter()
        .find(|d| m(d, true))
        .or_else(|| {
            if want.variant.is_none() {
                list.iter().find(|d| m(d, false))
            } else {
                None
            }
        })
        .cloned()
        .ok_or_else(|| {
            let v = want
                .variant
                .as_deref()
                .map(|v| format!("/{v}"))
                .unwrap_or_default();
            ClientError::NoPlatform(format!("{}/{}{v}", want.os, want.architecture))
        })
}

fn layer_supported(mt: &str) -> bool {
    matches!(
        mt,
        oci::MEDIA_OCI_LAYER
            | oci::MEDIA_OCI_LAYER_GZIP
            | oci::MEDIA_OCI_LAYER_ZSTD
            | oci::MEDIA_DOCKER_LAYER_GZIP
            | "application/vnd.docker.image.rootfs.diff.tar"
    )
}

/// Pulls `reference` into `store`, with the registry settings `cfg` (mirrors, insecure
/// registries, certs.d, idle timeout). `progress` receives docker-style progress.
pub fn pull(
    store: &Store,
    cfg: &RegistryConfig,
    reference: &str,
    opts: &PullOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<PullOutcome, ClientError> {
    let out = |line: &str| progress(Progress::Line(line));
    let r = parse_ref(reference)?;
    let repo = r.path().to_string();
    let refstr = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let shown = r.familiar();
    // Mirrors first for Docker Hub names.
    let mut endpoints = Vec::new();
    if r.domain() == wharf_types::reference::DEFAULT_DOMAIN {
        for m in &cfg.registry_mirrors {
            endpoints.push(Some(m.clone()));
        }
    }
    endpoints.push(None);
    let mut last = None;
    let mut found = None;
    for base in endpoints {
        let ep = match Endpoint::new(cfg, r.domain(), base.as_deref()) {
            // given credentials go to the named registry only, not its mirrors
            Ok(ep) => match base {
                None => ep.with_auth(opts.credentials.as_ref(), !opts.no_stored_credentials),
                Some(_) => ep.with_auth(None, !opts.no_stored_credentials),
            },
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        match fetch_manifest(&ep, &repo, &refstr, &shown, r.digest()) {
            Ok(m) => {
                found = Some((ep, m));
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some((ep, (body, top_digest, mt))) = found else {
        return Err(last.unwrap_or_else(|| ClientError::ManifestUnknown(shown.clone())));
    };
    // docker names the repository's path, without the registry (`library/busybox`,
    // `app/web` of `registry.local:5000/app/web`)
    out(&format!(
        "{}: Pulling from {}",
        r.tag().unwrap_or(&refstr),
        r.path()
    ));
    // The platform the index claims for the manifest it selected (checked against the config).
    let mut declared = None;
    let (man_bytes, mt) = match mt.as_str() {
        oci::MEDIA_OCI_INDEX | oci::MEDIA_DOCKER_LIST => {
            let want = opts.platform.clone().unwrap_or(Platform {
                architecture: oci::host_architecture().to_string(),
                os: "linux".to_string(),
                variant: None,
            });
            let d = select_platform(&body, &want, &shown)?;
            let (b, _, mt2) =
                fetch_manifest(&ep, &repo, &d.digest.to_string(), &shown, Some(&d.digest))?;
            oci::document_kind(&b, Some(&d.media_type)).map_err(|source| {
                ClientError::Document {
                    what: format!("manifest {shown} ({})", d.digest),
                    source,
                }
            })?;
            declared = d.platform.clone().map(|p| (d.digest.clone(), p));
            (b, mt2)
        }
        _ => (body, mt),
    };
    if mt != oci::MEDIA_OCI_MANIFEST && mt != oci::MEDIA_DOCKER_MANIFEST {
        return Err(ClientError::UnsupportedMediaType {
            what: format!("manifest {shown}"),
            media_type: mt,
        });
    }
    let m: Manifest = serde_json::from_slice(&man_bytes).map_err(|e| ClientError::BadResponse {
        what: format!("manifest {shown}"),
        msg: e.to_string(),
    })?;
    for l in &m.layers {
        if !layer_supported(&l.media_type) {
            return Err(ClientError::UnsupportedMediaType {
                what: format!("layer {}", l.digest),
                media_type: l.media_type.clone(),
            });
        }
    }
    // Config (small, verified).
    let txn = store.begin_pull()?;
    let cfg_bytes = match store.read_small_blob(&m.config.digest, CONFIG_CAP)? {
        Some(b) => b,
        None => {
            if m.config.size > CONFIG_CAP {
                return Err(ClientError::TooLarge {
                    what: format!("image config {}", m.config.digest),
                    limit: CONFIG_CAP,
                });
            }
            let resp = ep.send(
                "GET",
                &format!("/v2/{repo}/blobs/{}", m.config.digest),
                &[],
                Body::Empty,
                &shown,
            )?;
            let b = read_capped(resp.into_reader(), CONFIG_CAP, "image config")?;
            let d = Digest::of(&b);
            if d != m.config.digest || b.len() as u64 != m.config.size {
                return Err(ClientError::DigestMismatch {
                    what: "image config".to_string(),
                    expected: m.config.digest.to_string(),
                    actual: d.to_string(),
                });
            }
            b
        }
    };
    let config: oci::ImageConfig =
        serde_json::from_slice(&cfg_bytes).map_err(|e| ClientError::BadResponse {
            what: "image config".to_string(),
            msg: e.to_string(),
        })?;
    if let Some((md, p)) = &declared {
        oci::check_config_platform(p, &config).map_err(|source| ClientError::Document {
            what: format!("manifest {shown} ({md})"),
            source,
        })?;
    }
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(ClientError::BadResponse {
            what: "image config".to_string(),
            msg: "number of diff_ids does not match the manifest's layers".to_string(),
        });
    }
    let repo_digest = format!("{}@{}", r.familiar_repository(), top_digest);
    let tag = r.digest().is_none().then(|| r.familiar());
    let quiet_layers = txn.is_up_to_date(&m.config.digest, tag.as_deref(), &repo_digest);
    let layer = |id: &str, status: &str, current: u64, total: u64| {
        if !quiet_layers {
            progress(Progress::Layer {
                id,
                status,
                current,
                total,
            })
        }
    };
    for d in &m.layers {
        if !txn.has_blob(&d.digest) {
            layer(&d.digest.hex()[..12], "Pulling fs layer", 0, d.size);
        }
    }
    // Layers: a small pool of threads, each streaming whole layers.
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<PreparedLayer, ClientError>>>> =
        Mutex::new((0..m.layers.len()).map(|_| None).collect());
    let downloaded = Mutex::new(0u64);
    let ctx = Ctx {
        ep: &ep,
        txn: &txn,
        repo: &repo,
        shown: &shown,
        downloaded: &downloaded,
    };
    std::thread::scope(|sc| {
        for _ in 0..PARALLEL.min(m.layers.len().max(1)) {
            sc.spawn(|| loop {
                let i = {
                    let Ok(mut n) = next.lock() else { return };
                    let i = *n;
                    *n += 1;
                    i
                };
                let (Some(desc), Some(diff)) = (m.layers.get(i), config.rootfs.diff_ids.get(i))
                else {
                    return;
                };
                let short = &desc.digest.hex()[..12];
                let res = if let Some(p) = txn.existing_layer(&desc.digest, diff) {
                    layer(short, "Already exists", 0, desc.size);
                    Ok(p)
                } else {
                    let tick = |cur: u64| layer(short, "Downloading", cur, desc.size);
                    fetch_layer(&ctx, desc, diff, &tick)
                        .inspect(|_| layer(short, "Pull complete", desc.size, desc.size))
                };
                let failed = res.is_err();
                if let Ok(mut r) = results.lock() {
                    if let Some(slot) = r.get_mut(i) {
                        *slot = Some(res);
                    }
                }
                if failed {
                    // Stop handing out work.
                    if let Ok(mut n) = next.lock() {
                        *n = usize::MAX / 2;
                    }
                    return;
                }
            });
        }
    });
    let mut layers = Vec::new();
    let results: Vec<_> = results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let full = results.iter().any(|r| {
        matches!(
            r,
            Err(ClientError::Dist(DistError::Archive(
                ArchiveError::NoSpace { .. }
            )))
        )
    });
    if full {
        // a full store: keep no downloads around to make the next operation fail sooner
        let mut first = None;
        for r in results {
            match r {
                Ok(p) => p.discard(),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
    } else {
        for r in results {
            layers.push(r?);
        }
    }
    if layers.len() != m.layers.len() {
        return Err(ClientError::BadResponse {
            what: format!("pull of {shown}"),
            msg: "not every layer was fetched".to_string(),
        });
    }
    let c = txn.commit(&man_bytes, &cfg_bytes, layers, tag.as_deref(), &repo_digest)?;
    out(&format!("Digest: {top_digest}"));
    if c.up_to_date {
        out(&format!("Status: Image is up to date for {shown}"));
    } else {
        out(&format!("Status: Downloaded newer image for {shown}"));
    }
    Ok(PullOutcome {
        id: c.id,
        digest: top_digest,
        up_to_date: c.up_to_date,
        reference: if r.domain() == wharf_types::reference::DEFAULT_DOMAIN {
            format!("docker.io/{}", r.path()) + &shown[r.familiar_repository().len()..]
        } else {
            shown
        },
        bytes_downloaded: downloaded.into_inner().unwrap_or(0),
    })
}

/// What every layer download shares.
struct Ctx<'a> {
    ep: &'a Endpoint,
    txn: &'a wharf_store::distribution::PullTxn<'a>,
    repo: &'a str,
    shown: &'a str,
    downloaded: &'a Mutex<u64>,
}

fn fetch_layer(
    ctx: &Ctx<'_>,
    desc: &Descriptor,
    diff: &Digest,
    tick: &dyn Fn(u64),
) -> Result<PreparedLayer, ClientError> {
    let Ctx {
        ep,
        txn,
        repo,
        shown,
        downloaded,
    } = *ctx;
    let lock = txn.lock_blob(&desc.digest)?;
    if txn.has_blob(&desc.digest) {
        let mut empty = std::io::empty();
        return Ok(txn.ingest_layer(desc, diff, &mut empty, 0, lock)?);
    }
    let have = txn.partial_len(&desc.digest);
    if have > 0 && have >= desc.size {
        let mut empty = std::io::empty();
        return Ok(txn.ingest_layer(desc, diff, &mut empty, have, lock)?);
    }
    let range = format!("bytes={have}-");
    let mut hdrs: Vec<(&str, &str)> = Vec::new();
    if have > 0 {
        hdrs.push(("Range", &range));
    }
    let resp = ep.send(
        "GET",
        &format!("/v2/{repo}/blobs/{}", desc.digest),
        &hdrs,
        Body::Empty,
        shown,
    )?;
    let from = if have > 0 && resp.status() == 206 {
        have
    } else {
        0
    };
    let mut body = Counting {
        inner: Resuming {
            ep,
            path: format!("/v2/{repo}/blobs/{}", desc.digest),
            shown,
            inner: Box::new(resp.into_reader()),
            offset: from,
            resumes: 0,
            stalled: false,
        },
        n: 0,
        base: from,
        last: 0,
        tick,
    };
    let res = txn.ingest_layer(desc, diff, &mut body, from, lock);
    if let Ok(mut d) = downloaded.lock() {
        *d += body.n;
    }
    if res.is_err() && body.inner.stalled {
        return Err(ClientError::Stalled {
            blob: desc.digest.clone(),
            registry: ep.host.clone(),
            idle_secs: ep.idle.as_secs_f64(),
            resumes: body.inner.resumes,
        });
    }
    Ok(res?)
}

/// How often a blob download that went idle is resumed with `Range` before the pull fails.
const MAX_RESUMES: u32 = 3;

/// A blob body that survives idle connections: when a read times out (no data for the
/// endpoint's idle timeout) it asks again from the current offset with `Range: bytes=N-` and
/// continues with the answer, so the consumer sees one uninterrupted stream. A registry that
/// ignores the range (200) sends the whole blob again, of which the bytes already read are
/// skipped; any other answer fails the read (the partial file stays for the next pull).
struct Resuming<'a> {
    ep: &'a Endpoint,
    path: String,
    shown: &'a str,
    inner: Box<dyn std::io::Read + Send + Sync + 'static>,
    /// Blob offset of the next byte `inner` yields.
    offset: u64,
    resumes: u32,
    /// Gave up after idle timeouts.
    stalled: bool,
}

impl Resuming<'_> {
    fn resume(&mut self) -> std::io::Result<()> {
        let range = format!("bytes={}-", self.offset);
        let resp = self
            .ep
            .send(
                "GET",
                &self.path,
                &[("Range", &range)],
                Body::Empty,
                self.shown,
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let want = format!("bytes {}-", self.offset);
        match resp.status() {
            206 if resp
                .header("content-range")
                .is_some_and(|c| c.trim().starts_with(&want)) =>
            {
                self.inner = Box::new(resp.into_reader());
                Ok(())
            }
            // The whole blob again: skip what was already read (the consumer verifies it all).
            200 => {
                let mut r = resp.into_reader();
                let skipped = std::io::copy(
                    &mut std::io::Read::take(&mut r, self.offset),
                    &mut std::io::sink(),
                )?;
                if skipped != self.offset {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the registry's answer ended before byte {}", self.offset),
                    ));
                }
                self.inner = r;
                Ok(())
            }
            status => Err(std::io::Error::other(format!(
                "the registry did not resume at byte {} (status {status})",
                self.offset
            ))),
        }
    }
}

impl std::io::Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    if self.resumes >= MAX_RESUMES {
                        self.stalled = true;
                        return Err(e);
                    }
                    self.resumes += 1;
                    if let Err(re) = self.resume() {
                        // Another idle answer counts as the stall it is.
                        self.stalled = re.kind() == std::io::ErrorKind::TimedOut
                            || re.to_string().contains("timed out");
                        return Err(re);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

struct Counting<'t, R> {
    inner: R,
    n: u64,
    base: u64,
    last: u64,
    tick: &'t dyn Fn(u64),
}
impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if self.n - self.last >= 1 << 20 {
            self.last = self.n;
            (self.tick)(self.base + self.n);
        }
        Ok(n)
    }
}
