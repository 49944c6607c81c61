//! `push`: upload the blobs the registry lacks (HEAD first, cross-repository mount from a
//! repository the image was pulled from on the same registry, else POST + monolithic PUT),
//! then PUT the stored manifest byte for byte (so its digest is kept) — unless some layers
//! are uncompressed tars (from `load` of uncompressed archives, `import`): those are pushed as
//! their gzip twins ([`Store::gzip_layer`], made once and remembered), under a manifest that
//! differs from the stored one only in those layer descriptors. That manifest is stored as a
//! blob and its digest becomes the repo digest.

use super::config::RegistryConfig;
use super::pull::parse_ref;
use super::transport::{read_capped, Body, Endpoint};
use super::{ClientError, CONFIG_CAP, MANIFEST_CAP};
use wharf_store::compress::gzip_media_type;
use wharf_store::Store;
use wharf_types::oci::{self, Descriptor, ImageConfig, Manifest};
use wharf_types::Digest;

/// Blobs above this size are uploaded in PATCH chunks of this size (`WHARF_PUSH_CHUNK`
/// overrides it, in bytes).
pub const CHUNK: u64 = 32 << 20;

fn chunk_size() -> u64 {
    std::env::var("WHARF_PUSH_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CHUNK)
}

fn upload_url(ep: &Endpoint, r: &ureq::Response, what: &str) -> Result<String, ClientError> {
    let loc = r
        .header("location")
        .ok_or_else(|| ClientError::BadResponse {
            what: what.to_string(),
            msg: "upload without Location".to_string(),
        })?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            ep.url(loc)
        },
    )
}

fn push_blob(
    ep: &Endpoint,
    store: &Store,
    repo: &str,
    mount_from: &[String],
    d: &Descriptor,
    out: &(dyn Fn(&str) + Sync),
) -> Result<(), ClientError> {
    let short = &d.digest.hex()[..12];
    let what = format!("blob {}", d.digest);
    match ep.send(
        "HEAD",
        &format!("/v2/{repo}/blobs/{}", d.digest),
        &[],
        Body::Empty,
        &what,
    ) {
        Ok(_) => {
            out(&format!("{short}: Layer already exists"));
            return Ok(());
        }
        Err(ClientError::Registry { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    for from in mount_from.iter().filter(|f| *f != repo) {
        let r = ep.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?mount={}&from={from}", d.digest),
            &[],
            Body::Empty,
            &what,
        )?;
        if r.status() == 201 {
            out(&format!("{short}: Mounted from {from}"));
            return Ok(());
        }
    }
    let (_, len) = store.open_blob(&d.digest)?;
    let path = store.root().join("blobs/sha256").join(d.digest.hex());
    let r = ep.send(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Body::Empty,
        &what,
    )?;
    let url = upload_url(ep, &r, &what)?;
    let chunk = chunk_size();
    if len <= chunk {
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}digest={}", d.digest);
        ep.send(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Body::File(&path, 0, len),
            &what,
        )?;
    } else {
        // Chunked: PATCH pieces in order (following each Location), then PUT with the digest.
        let mut url = url;
        let mut off = 0u64;
        while off < len {
            let n = chunk.min(len - off);
            let range = format!("{off}-{}", off + n - 1);
            let r = ep.send(
                "PATCH",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::File(&path, off, n),
                &what,
            )?;
            url = upload_url(ep, &r, &what)?;
            off += n;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}digest={}", d.digest);
        ep.send("PUT", &url, &[], Body::Bytes(&[]), &what)?;
    }
    out(&format!("{short}: Pushed"));
    Ok(())
}

/// The layers to push for manifest `m` (`man_bytes`, digest `man_digest`) and the manifest
/// bytes to PUT: uncompressed layers are replaced by their gzip twins (compressed now if this
/// store never did), and then the manifest is rewritten — only those layers' `mediaType`,
/// `digest` and `size` change; every other field stays as stored.
fn compressed_manifest(
    store: &Store,
    man_digest: &Digest,
    man_bytes: Vec<u8>,
    m: &Manifest,
) -> Result<(Vec<Descriptor>, Vec<u8>), ClientError> {
    if !m
        .layers
        .iter()
        .any(|l| gzip_media_type(&l.media_type).is_some())
    {
        return Ok((m.layers.clone(), man_bytes));
    }
    let bad = |what: String, msg: String| ClientError::BadResponse { what, msg };
    let cfg_bytes = store
        .read_small_blob(&m.config.digest, CONFIG_CAP)?
        .ok_or_else(|| {
            bad(
                format!("local manifest {man_digest}"),
                format!("config blob {} missing", m.config.digest),
            )
        })?;
    let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| bad(format!("local config {}", m.config.digest), e.to_string()))?;
    if cfg.rootfs.diff_ids.len() != m.layers.len() {
        return Err(bad(
            format!("local manifest {man_digest}"),
            format!(
                "{} layers but {} diff_ids in its config",
                m.layers.len(),
                cfg.rootfs.diff_ids.len()
            ),
        ));
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&man_bytes)
        .map_err(|e| bad(format!("local manifest {man_digest}"), e.to_string()))?;
    let mut layers = Vec::with_capacity(m.layers.len());
    for (i, (l, diff_id)) in m.layers.iter().zip(&cfg.rootfs.diff_ids).enumerate() {
        let gz = store.gzip_layer(diff_id, l)?;
        if gz != *l {
            let slot = doc
                .get_mut("layers")
                .and_then(|v| v.get_mut(i))
                .and_then(|v| v.as_object_mut())
                .ok_or_else(|| {
                    bad(
                        format!("local manifest {man_digest}"),
                        format!("layer {i} is not an object"),
                    )
                })?;
            slot.insert("mediaType".into(), gz.media_type.clone().into());
            slot.insert("digest".into(), gz.digest.to_string().into());
            slot.insert("size".into(), gz.size.into());
        }
        layers.push(gz);
    }
    if layers == m.layers {
        return Ok((layers, man_bytes));
    }
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| bad(format!("manifest for {man_digest}"), e.to_string()))?;
    store.write_manifest_blob(&bytes)?;
    Ok((layers, bytes))
}

/// How [`push_with`] authenticates.
#[derive(Clone, Default)]
pub struct PushOptions {
    /// Credentials (user, password) given with this push (an Engine API client's
    /// `X-Registry-Auth`), used instead of the stored ones.
    pub credentials: Option<(String, String)>,
    /// Without `credentials`: anonymous, never the stored ones.
    pub no_stored_credentials: bool,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<hidden>")),
            )
            .field("no_stored_credentials", &self.no_stored_credentials)
            .finish()
    }
}

/// Pushes `reference` (an image in `store`, `NAME[:TAG]`) with the stored credentials.
/// Returns the manifest digest.
pub fn push(
    store: &Store,
    cfg: &RegistryConfig,
    reference: &str,
    out: &(dyn Fn(&str) + Sync),
) -> Result<Digest, ClientError> {
    push_with(store, cfg, reference, &PushOptions::default(), out)
}

/// [`push`] authenticated as `opts` says.
pub fn push_with(
    store: &Store,
    cfg: &RegistryConfig,
    reference: &str,
    opts: &PushOptions,
    out: &(dyn Fn(&str) + Sync),
) -> Result<Digest, ClientError> {
    let r = parse_ref(reference)?;
    if r.digest().is_some() {
        return Err(ClientError::PushDigest {
            reference: reference.to_string(),
        });
    }
    let img = store.resolve_image(&r.familiar())?;
    let ep = Endpoint::new(cfg, r.domain(), None)?
        .with_auth(opts.credentials.as_ref(), !opts.no_stored_credentials);
    let repo = r.path();
    let tag = r.tag().unwrap_or("latest");
    let (man_digest, _) = store.image_manifest(&img.id)?;
    let man_bytes = store
        .read_small_blob(&man_digest, MANIFEST_CAP)?
        .ok_or_else(|| ClientError::BadResponse {
            what: format!("local image {reference}"),
            msg: format!("manifest blob {man_digest} missing"),
        })?;
    let m: Manifest = serde_json::from_slice(&man_bytes).map_err(|e| ClientError::BadResponse {
        what: format!("local manifest {man_digest}"),
        msg: e.to_string(),
    })?;
    out(&format!(
        "The push refers to repository [{}]",
        r.repository().trim_start_matches("docker.io/")
    ));
    let prefix = format!("{}/", r.domain());
    let mount_from: Vec<String> = img
        .repo_digests
        .iter()
        .filter_map(|rd| rd.split('@').next())
        .filter_map(|rp| rp.strip_prefix(&prefix))
        .map(str::to_string)
        .collect();
    let (layers, man_bytes) = compressed_manifest(store, &man_digest, man_bytes, &m)?;
    let man_digest = Digest::of(&man_bytes);
    for l in &layers {
        push_blob(&ep, store, repo, &mount_from, l, out)?;
    }
    push_blob(&ep, store, repo, &mount_from, &m.config, &|_| {})?;
    let mt = m
        .media_type
        .clone()
        .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
    let resp = ep.send(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", &mt)],
        Body::Bytes(&man_bytes),
        &format!("manifest {}", r.familiar()),
    )?;
    let _ = read_capped(resp.into_reader(), MANIFEST_CAP, "manifest response");
    store.add_repo_digest(
        &img.id,
        &format!("{}@{man_digest}", r.familiar_repository()),
    )?;
    out(&format!(
        "{tag}: digest: {man_digest} size: {}",
        man_bytes.len()
    ));
    Ok(man_digest)
}
