//! The distribution API: routing of `/v2/…` requests, auth and read-only checks, and the
//! handlers for blobs, uploads, manifests, tags and the catalog. Errors use the spec's JSON
//! shape. It owns no storage details (see `storage` for the registry's own root and
//! `engine_view` for the engine's store) and no HTTP framing (see `message` and wharf-http).

use crate::auth::Htpasswd;
use crate::engine_view::{BlobData, EngineView, Reference};
use crate::message::{Body, Head, RespBody, Response};
use crate::names::{valid_name, valid_tag};
use crate::storage::{Commit, Storage};
use std::io::Read;
use wharf_store::StoreError;
use wharf_types::Digest;

/// Where the registry's content comes from.
pub enum Backend {
    /// Its own root (`storage`): reads and writes.
    Own(Storage),
    /// The engine's content store, read-only (`--engine-store`).
    Engine(Box<EngineView>),
}

/// A response whose body, if any, is a stream the connection loop copies after the head
/// (the head carries `Content-Length`).
pub struct Reply {
    pub resp: Response,
    pub stream: Option<Stream>,
}

/// `len` bytes from offset `skip` of a reader producing `total` bytes.
pub struct Stream {
    pub reader: Box<dyn Read + Send>,
    pub skip: u64,
    pub len: u64,
    pub total: u64,
}

impl From<Response> for Reply {
    fn from(resp: Response) -> Reply {
        Reply { resp, stream: None }
    }
}

/// Shared state of a running registry.
pub struct Registry {
    pub backend: Backend,
    pub htpasswd: Option<Htpasswd>,
    pub read_only: bool,
    pub max_manifest_size: u64,
}

/// An API error in the spec's shape.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    detail: serde_json::Value,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
        detail: serde_json::Value::Null,
    }
}

impl ApiError {
    fn detail(mut self, d: serde_json::Value) -> ApiError {
        self.detail = d;
        self
    }

    fn into_response(self) -> Response {
        let body = serde_json::json!({"errors": [{
            "code": self.code, "message": self.message, "detail": self.detail,
        }]});
        Response::new(self.status)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Docker-Distribution-API-Version", "registry/2.0")
            .body(RespBody::Bytes(body.to_string().into_bytes()))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => err(
                400,
                "SIZE_INVALID",
                format!("request body shorter than declared: {e}"),
            ),
            std::io::ErrorKind::InvalidData => {
                err(400, "BLOB_UPLOAD_INVALID", format!("request body: {e}"))
            }
            // a stalled upload (wharf-http's idle deadline per read)
            std::io::ErrorKind::TimedOut => err(408, "BLOB_UPLOAD_INVALID", format!("{e}")),
            _ => err(500, "UNKNOWN", format!("storage: {e}")),
        }
    }
}

type Result<T> = std::result::Result<T, ApiError>;

fn store_err(e: StoreError) -> ApiError {
    err(500, "UNKNOWN", format!("engine store: {e}"))
}

const ENGINE_READ_ONLY: &str = "this registry serves the engine's image store read-only; \
     push with a registry that has its own root (`wharf registry serve --root DIR`)";

enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Upload(&'a str, Option<&'a str>),
    Referrers(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Route::Upload(name, None));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let id = &rest[i + "/blobs/uploads/".len()..];
        if !id.contains('/') {
            return Some(Route::Upload(&rest[..i], (!id.is_empty()).then_some(id)));
        }
    }
    if let Some(i) = rest.rfind("/manifests/") {
        let r = &rest[i + "/manifests/".len()..];
        if !r.contains('/') {
            return Some(Route::Manifest(&rest[..i], r));
        }
    }
    if let Some(i) = rest.rfind("/blobs/") {
        let r = &rest[i + "/blobs/".len()..];
        if !r.contains('/') {
            return Some(Route::Blob(&rest[..i], r));
        }
    }
    if let Some(i) = rest.rfind("/referrers/") {
        let r = &rest[i + "/referrers/".len()..];
        if !r.contains('/') {
            return Some(Route::Referrers(&rest[..i], r));
        }
    }
    None
}

fn check_name(n: &str) -> Result<()> {
    if valid_name(n) {
        Ok(())
    } else {
        Err(err(400, "NAME_INVALID", "invalid repository name")
            .detail(serde_json::json!({"name": n})))
    }
}

fn parse_digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|e| err(400, "DIGEST_INVALID", format!("{e}")))
}

/// A request the HTTP layer could not read (a path that does not decode): 400 in the spec's
/// error shape.
pub fn bad_request(message: &str) -> Reply {
    err(400, "UNSUPPORTED", message).into_response().into()
}

fn ok_base(status: u16) -> Response {
    Response::new(status).header("Docker-Distribution-API-Version", "registry/2.0")
}

impl Registry {
    /// Handles one request. The body may be left partly unread (the caller drains or closes).
    pub fn handle(&self, head: &Head, body: &mut Body) -> Reply {
        match self.dispatch(head, body) {
            Ok(r) => r,
            Err(e) => e.into_response().into(),
        }
    }

    /// The registry's own storage, for writes; engine mode refuses them.
    fn own(&self) -> Result<&Storage> {
        match &self.backend {
            Backend::Own(s) => Ok(s),
            Backend::Engine(_) => Err(err(405, "UNSUPPORTED", ENGINE_READ_ONLY)),
        }
    }

    fn dispatch(&self, head: &Head, body: &mut Body) -> Result<Reply> {
        if let Some(h) = &self.htpasswd {
            if h.check(head.header("authorization")).is_none() {
                return Ok(err(401, "UNAUTHORIZED", "authentication required")
                    .into_response()
                    .header("WWW-Authenticate", "Basic realm=\"wharf\"")
                    .into());
            }
        }
        let m = head.method.as_str();
        let write = matches!(m, "POST" | "PUT" | "PATCH" | "DELETE");
        let Some(r) = route(&head.path) else {
            return Err(err(404, "UNSUPPORTED", "no such endpoint"));
        };
        if write && self.read_only {
            return Err(err(405, "UNSUPPORTED", "the registry is read-only"));
        }
        if write {
            self.own()?;
        }
        if let (Route::Blob(n, d), "GET" | "HEAD") = (&r, m) {
            check_name(n)?;
            return self.get_blob(head, n, &parse_digest(d)?);
        }
        self.dispatch_other(head, body, r, m).map(Reply::from)
    }

    fn dispatch_other(
        &self,
        head: &Head,
        body: &mut Body,
        r: Route<'_>,
        m: &str,
    ) -> Result<Response> {
        match (r, m) {
            (Route::Base, "GET" | "HEAD") => Ok(ok_base(200)
                .header("Content-Type", "application/json")
                .body(RespBody::Bytes(b"{}".to_vec()))),
            (Route::Catalog, "GET") => self.catalog(head),
            (Route::Tags(n), "GET") => {
                check_name(n)?;
                self.tags(head, n)
            }
            (Route::Manifest(n, r), "GET" | "HEAD") => {
                check_name(n)?;
                self.get_manifest(n, r)
            }
            (Route::Manifest(n, r), "PUT") => {
                check_name(n)?;
                self.put_manifest(head, body, n, r)
            }
            (Route::Manifest(n, r), "DELETE") => {
                check_name(n)?;
                self.delete_manifest(n, r)
            }
            (Route::Blob(n, d), "DELETE") => {
                check_name(n)?;
                let d = parse_digest(d)?;
                if self.own()?.unlink_blob(n, &d)? {
                    Ok(ok_base(202).header("Docker-Content-Digest", d.to_string()))
                } else {
                    Err(err(404, "BLOB_UNKNOWN", "blob unknown to registry"))
                }
            }
            (Route::Referrers(n, d), "GET") => {
                check_name(n)?;
                self.referrers(head, n, &parse_digest(d)?)
            }
            (Route::Upload(n, None), "POST") => {
                check_name(n)?;
                self.start_upload(head, body, n)
            }
            (Route::Upload(n, Some(u)), m) => {
                check_name(n)?;
                self.upload(head, body, n, u, m)
            }
            _ => Err(err(405, "UNSUPPORTED", "method not allowed here")),
        }
    }

    // ---- catalog and tags ----

    fn paginate(
        head: &Head,
        all: Vec<String>,
        base: &str,
    ) -> Result<(Vec<String>, Option<String>)> {
        let n = match head.query_param("n") {
            Some(v) => Some(
                v.parse::<usize>()
                    .map_err(|_| err(400, "PAGINATION_NUMBER_INVALID", "invalid n"))?,
            ),
            None => None,
        };
        let last = head.query_param("last");
        let mut items: Vec<String> = match &last {
            Some(l) => all
                .into_iter()
                .filter(|x| x.as_str() > l.as_str())
                .collect(),
            None => all,
        };
        let mut link = None;
        if let Some(n) = n {
            if items.len() > n {
                items.truncate(n);
                if let Some(l) = items.last() {
                    link = Some(format!("<{base}?last={l}&n={n}>; rel=\"next\""));
                }
            }
        }
        Ok((items, link))
    }

    fn catalog(&self, head: &Head) -> Result<Response> {
        let all = match &self.backend {
            Backend::Own(s) => s.catalog()?,
            Backend::Engine(e) => e.catalog().map_err(store_err)?,
        };
        let (items, link) = Self::paginate(head, all, "/v2/_catalog")?;
        let body = serde_json::json!({ "repositories": items });
        let mut r = ok_base(200).header("Content-Type", "application/json");
        if let Some(l) = link {
            r = r.header("Link", l);
        }
        Ok(r.body(RespBody::Bytes(body.to_string().into_bytes())))
    }

    fn tags(&self, head: &Head, name: &str) -> Result<Response> {
        let tags = match &self.backend {
            Backend::Own(s) if s.repo_exists(name) => Some(s.tags(name)?),
            Backend::Own(_) => None,
            Backend::Engine(e) => e.tags(name).map_err(store_err)?,
        };
        let Some(tags) = tags else {
            return Err(
                err(404, "NAME_UNKNOWN", "repository name not known to registry")
                    .detail(serde_json::json!({"name": name})),
            );
        };
        let base = format!("/v2/{name}/tags/list");
        let (items, link) = Self::paginate(head, tags, &base)?;
        let body = serde_json::json!({ "name": name, "tags": items });
        let mut r = ok_base(200).header("Content-Type", "application/json");
        if let Some(l) = link {
            r = r.header("Link", l);
        }
        Ok(r.body(RespBody::Bytes(body.to_string().into_bytes())))
    }

    // ---- blobs ----

    fn get_blob(&self, head: &Head, name: &str, d: &Digest) -> Result<Reply> {
        let unknown = || {
            err(404, "BLOB_UNKNOWN", "blob unknown to registry")
                .detail(serde_json::json!({"digest": d.to_string()}))
        };
        let (data, size) = match &self.backend {
            Backend::Own(s) => {
                if !s.repo_has_blob(name, d) {
                    return Err(unknown());
                }
                let Some((file, size)) = s.open_blob(d)? else {
                    return Err(unknown());
                };
                (BlobData::File(file), size)
            }
            Backend::Engine(e) => match e.blob(name, d).map_err(store_err)? {
                Some(x) => x,
                None => return Err(unknown()),
            },
        };
        let base = ok_base(200)
            .header("Content-Type", "application/octet-stream")
            .header("Docker-Content-Digest", d.to_string())
            .header("Accept-Ranges", "bytes")
            .header("ETag", format!("\"{d}\""));
        let range = match head.header("range") {
            Some(r) => Some(
                parse_range(r, size)
                    .ok_or_else(|| err(416, "BLOB_UNKNOWN", "requested range not satisfiable"))?,
            ),
            None => None,
        };
        let (status, offset, len) = match range {
            Some((s, e)) => (206, s, e - s + 1),
            None => (200, 0, size),
        };
        let mut r = base;
        r.status = status;
        if status == 206 {
            r = r.header(
                "Content-Range",
                format!("bytes {}-{}/{size}", offset, offset + len - 1),
            );
        }
        r = r.header("Content-Length", len.to_string());
        Ok(match data {
            BlobData::File(file) => r.body(RespBody::File { file, offset, len }).into(),
            BlobData::Stream(reader) => Reply {
                resp: r,
                stream: Some(Stream {
                    reader,
                    skip: offset,
                    len,
                    total: size,
                }),
            },
        })
    }

    fn upload_response(status: u16, name: &str, uuid: &str, size: u64) -> Response {
        ok_base(status)
            .header("Location", format!("/v2/{name}/blobs/uploads/{uuid}"))
            .header("Docker-Upload-UUID", uuid)
            .header("Range", format!("0-{}", size.saturating_sub(1)))
    }

    fn created_blob(name: &str, d: &Digest) -> Response {
        ok_base(201)
            .header("Location", format!("/v2/{name}/blobs/{d}"))
            .header("Docker-Content-Digest", d.to_string())
    }

    fn start_upload(&self, head: &Head, body: &mut Body, name: &str) -> Result<Response> {
        let st = self.own()?;
        if let Some(m) = head.query_param("mount") {
            let d = parse_digest(&m)?;
            if let Some(from) = head.query_param("from") {
                if valid_name(&from) && st.repo_has_blob(&from, &d) {
                    st.link_blob(name, &d)?;
                    return Ok(Self::created_blob(name, &d));
                }
            }
        }
        let uuid = st.start_upload(name)?;
        if let Some(dg) = head.query_param("digest") {
            let d = match parse_digest(&dg) {
                Ok(d) => d,
                Err(e) => {
                    let _ = st.cancel_upload(&uuid);
                    return Err(e);
                }
            };
            return self.finish(body, name, &uuid, &d);
        }
        Ok(Self::upload_response(202, name, &uuid, 0))
    }

    fn finish(&self, body: &mut Body, name: &str, uuid: &str, d: &Digest) -> Result<Response> {
        let st = self.own()?;
        if let Err(e) = st.append_upload(uuid, body) {
            let _ = st.cancel_upload(uuid);
            return Err(e.into());
        }
        match st.commit_upload(name, uuid, d)? {
            Commit::Ok => Ok(Self::created_blob(name, d)),
            Commit::Mismatch { actual } => Err(err(
                400,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            )
            .detail(serde_json::json!({"expected": d.to_string(), "actual": actual.to_string()}))),
        }
    }

    fn upload(
        &self,
        head: &Head,
        body: &mut Body,
        name: &str,
        uuid: &str,
        m: &str,
    ) -> Result<Response> {
        let st = self.own()?;
        let Some(size) = st.upload_size(name, uuid)? else {
            return Err(err(
                404,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
            ));
        };
        match m {
            "GET" => Ok(Self::upload_response(204, name, uuid, size)),
            "DELETE" => {
                st.cancel_upload(uuid)?;
                Ok(ok_base(204))
            }
            "PATCH" => {
                if let Some(cr) = head.header("content-range") {
                    let cr = cr
                        .trim()
                        .trim_start_matches("bytes")
                        .trim_start_matches([' ', '=']);
                    let (s, e) = cr.split_once('-').ok_or_else(|| {
                        err(416, "BLOB_UPLOAD_INVALID", "malformed Content-Range")
                    })?;
                    let s: u64 = s
                        .trim()
                        .parse()
                        .map_err(|_| err(416, "BLOB_UPLOAD_INVALID", "malformed Content-Range"))?;
                    let e: u64 = e
                        .trim()
                        .parse()
                        .map_err(|_| err(416, "BLOB_UPLOAD_INVALID", "malformed Content-Range"))?;
                    let len_ok = body
                        .declared_len
                        .is_none_or(|l| e + 1 >= s && l == e + 1 - s);
                    if s != size || e < s || !len_ok {
                        return Err(err(
                            416,
                            "BLOB_UPLOAD_INVALID",
                            format!("Content-Range {s}-{e} does not continue the upload at {size}"),
                        ));
                    }
                }
                let new = st.append_upload(uuid, body)?;
                Ok(Self::upload_response(202, name, uuid, new))
            }
            "PUT" => {
                let Some(dg) = head.query_param("digest") else {
                    return Err(err(400, "DIGEST_INVALID", "digest parameter missing"));
                };
                let d = parse_digest(&dg)?;
                self.finish(body, name, uuid, &d)
            }
            _ => Err(err(405, "UNSUPPORTED", "method not allowed here")),
        }
    }

    // ---- manifests ----

    fn engine_manifest(&self, e: &EngineView, name: &str, reference: &str) -> Result<Response> {
        let digest;
        let r = if reference.contains(':') {
            digest = parse_digest(reference)?;
            Reference::Digest(&digest)
        } else if valid_tag(reference) {
            Reference::Tag(reference)
        } else {
            return Err(err(400, "TAG_INVALID", "manifest tag did not match URI"));
        };
        let Some(m) = e
            .manifest(name, r, self.max_manifest_size)
            .map_err(store_err)?
        else {
            return Err(manifest_unknown(name, reference));
        };
        Ok(ok_base(200)
            .header("Content-Type", m.media_type)
            .header("Docker-Content-Digest", m.digest.to_string())
            .header("ETag", format!("\"{}\"", m.digest))
            .header("Content-Length", m.bytes.len().to_string())
            .body(RespBody::Bytes(m.bytes)))
    }

    fn resolve(&self, s: &Storage, name: &str, reference: &str) -> Result<Digest> {
        let d = if reference.contains(':') {
            parse_digest(reference)?
        } else if valid_tag(reference) {
            match s.resolve_tag(name, reference)? {
                Some(d) => d,
                None => return Err(manifest_unknown(name, reference)),
            }
        } else {
            return Err(err(400, "TAG_INVALID", "manifest tag did not match URI"));
        };
        Ok(d)
    }

    fn get_manifest(&self, name: &str, reference: &str) -> Result<Response> {
        let s = match &self.backend {
            Backend::Own(s) => s,
            Backend::Engine(e) => return self.engine_manifest(e, name, reference),
        };
        let d = self.resolve(s, name, reference)?;
        let Some(mt) = s.manifest_media_type(name, &d)? else {
            return Err(manifest_unknown(name, reference));
        };
        let Some((file, len)) = s.open_blob(&d)? else {
            return Err(manifest_unknown(name, reference));
        };
        Ok(ok_base(200)
            .header("Content-Type", mt)
            .header("Docker-Content-Digest", d.to_string())
            .header("ETag", format!("\"{d}\""))
            .header("Content-Length", len.to_string())
            .body(RespBody::File {
                file,
                offset: 0,
                len,
            }))
    }

    fn put_manifest(
        &self,
        head: &Head,
        body: &mut Body,
        name: &str,
        reference: &str,
    ) -> Result<Response> {
        let st = self.own()?;
        let max = self.max_manifest_size;
        let too_big = || {
            let mut r = err(
                413,
                "MANIFEST_INVALID",
                format!("manifest exceeds {max} bytes"),
            )
            .into_response();
            r.close = true;
            r
        };
        if body.declared_len.is_some_and(|l| l > max) {
            return Ok(too_big());
        }
        let mut bytes = Vec::new();
        body.take(max + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Ok(too_big());
        }
        let (tag, by_digest) = if reference.contains(':') {
            (None, Some(parse_digest(reference)?))
        } else if valid_tag(reference) {
            (Some(reference), None)
        } else {
            return Err(err(400, "TAG_INVALID", "invalid tag"));
        };
        let d = Digest::of(&bytes);
        if let Some(want) = &by_digest {
            if want != &d {
                return Err(err(
                    400,
                    "DIGEST_INVALID",
                    "manifest digest did not match the reference",
                )
                .detail(
                    serde_json::json!({"expected": want.to_string(), "actual": d.to_string()}),
                ));
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            err(
                400,
                "MANIFEST_INVALID",
                format!("manifest is not JSON: {e}"),
            )
        })?;
        let media_type = self.check_manifest(head, name, &v)?;
        st.put_blob_bytes(&bytes)?;
        st.put_manifest(name, &d, &media_type, tag)?;
        let mut r = ok_base(201)
            .header("Location", format!("/v2/{name}/manifests/{d}"))
            .header("Docker-Content-Digest", d.to_string());
        if let Some(s) = v
            .get("subject")
            .and_then(|s| s.get("digest"))
            .and_then(|s| s.as_str())
        {
            r = r.header("OCI-Subject", s);
        }
        Ok(r)
    }

    /// Validates a manifest's structure and that everything it references is in the
    /// repository; returns its media type.
    fn check_manifest(&self, head: &Head, name: &str, v: &serde_json::Value) -> Result<String> {
        let st = self.own()?;
        let invalid = |m: &str| err(400, "MANIFEST_INVALID", m.to_string());
        if v.get("schemaVersion").and_then(|s| s.as_u64()) != Some(2) {
            return Err(invalid("only schemaVersion 2 manifests are supported"));
        }
        let body_mt = v.get("mediaType").and_then(|m| m.as_str());
        let header_mt = head
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim())
            .filter(|c| !c.is_empty());
        let desc_digest = |desc: &serde_json::Value| -> Result<Digest> {
            let s = desc
                .get("digest")
                .and_then(|d| d.as_str())
                .ok_or_else(|| invalid("descriptor without digest"))?;
            s.parse()
                .map_err(|_| invalid("descriptor with invalid digest"))
        };
        let unknown = |d: &Digest| {
            err(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
                .detail(serde_json::json!({"digest": d.to_string()}))
        };
        let is_index = v.get("manifests").is_some();
        if is_index {
            let list = v
                .get("manifests")
                .and_then(|m| m.as_array())
                .ok_or_else(|| invalid("manifests is not an array"))?;
            for m in list {
                let d = desc_digest(m)?;
                if st.manifest_media_type(name, &d)?.is_none() {
                    return Err(unknown(&d));
                }
            }
        } else {
            let config = v
                .get("config")
                .ok_or_else(|| invalid("manifest without config"))?;
            let d = desc_digest(config)?;
            if !st.repo_has_blob(name, &d) {
                return Err(unknown(&d));
            }
            let layers = v
                .get("layers")
                .and_then(|l| l.as_array())
                .ok_or_else(|| invalid("manifest without layers"))?;
            for l in layers {
                let d = desc_digest(l)?;
                let foreign = l
                    .get("urls")
                    .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()));
                if !foreign && !st.repo_has_blob(name, &d) {
                    return Err(unknown(&d));
                }
            }
        }
        let default = if is_index {
            wharf_types::oci::MEDIA_OCI_INDEX
        } else {
            wharf_types::oci::MEDIA_OCI_MANIFEST
        };
        Ok(body_mt.or(header_mt).unwrap_or(default).to_string())
    }

    /// The OCI 1.1 referrers API: an index of the manifests whose `subject` is `d`.
    fn referrers(&self, head: &Head, name: &str, d: &Digest) -> Result<Response> {
        let filter = head.query_param("artifactType");
        let want = d.to_string();
        let mut list = Vec::new();
        // the engine's images never carry a `subject`: its referrers lists are empty
        let (own, manifests) = match &self.backend {
            Backend::Own(s) => (Some(s), s.manifests(name)?),
            Backend::Engine(_) => (None, Vec::new()),
        };
        for (md, mt) in manifests {
            let Some(s) = own else { break };
            let Some((f, len)) = s.open_blob(&md)? else {
                continue;
            };
            if len > self.max_manifest_size {
                continue;
            }
            let Ok(v) = serde_json::from_reader::<_, serde_json::Value>(std::io::BufReader::new(f))
            else {
                continue;
            };
            if v.get("subject")
                .and_then(|s| s.get("digest"))
                .and_then(|s| s.as_str())
                != Some(want.as_str())
            {
                continue;
            }
            let artifact_type = v
                .get("artifactType")
                .or_else(|| v.get("config").and_then(|c| c.get("mediaType")))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            if let Some(f) = &filter {
                if artifact_type.as_str() != Some(f.as_str()) {
                    continue;
                }
            }
            let mut desc = serde_json::json!({
                "mediaType": mt, "digest": md.to_string(), "size": len,
            });
            if !artifact_type.is_null() {
                desc["artifactType"] = artifact_type;
            }
            if let Some(a) = v.get("annotations") {
                desc["annotations"] = a.clone();
            }
            list.push(desc);
        }
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": wharf_types::oci::MEDIA_OCI_INDEX,
            "manifests": list,
        });
        let mut r = ok_base(200).header("Content-Type", wharf_types::oci::MEDIA_OCI_INDEX);
        if filter.is_some() {
            r = r.header("OCI-Filters-Applied", "artifactType");
        }
        Ok(r.body(RespBody::Bytes(body.to_string().into_bytes())))
    }

    fn delete_manifest(&self, name: &str, reference: &str) -> Result<Response> {
        let st = self.own()?;
        if reference.contains(':') {
            let d = parse_digest(reference)?;
            if st.delete_manifest(name, &d)? {
                return Ok(ok_base(202));
            }
        } else if valid_tag(reference) && st.delete_tag(name, reference)? {
            return Ok(ok_base(202));
        }
        Err(manifest_unknown(name, reference))
    }
}

fn manifest_unknown(name: &str, reference: &str) -> ApiError {
    err(404, "MANIFEST_UNKNOWN", "manifest unknown")
        .detail(serde_json::json!({"name": name, "reference": reference}))
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` for a blob of `size`; inclusive (start, end).
fn parse_range(r: &str, size: u64) -> Option<(u64, u64)> {
    let spec = r.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (s, e) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (s <= e && s < size).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/v2/"), Some(Route::Base)));
        assert!(matches!(route("/v2/_catalog"), Some(Route::Catalog)));
        assert!(matches!(
            route("/v2/a/b/tags/list"),
            Some(Route::Tags("a/b"))
        ));
        assert!(matches!(
            route("/v2/a/blobs/uploads/"),
            Some(Route::Upload("a", None))
        ));
        assert!(matches!(
            route("/v2/a/blobs/uploads/x1"),
            Some(Route::Upload("a", Some("x1")))
        ));
        assert!(matches!(
            route("/v2/a/blobs/sha256:00"),
            Some(Route::Blob("a", "sha256:00"))
        ));
        assert!(matches!(
            route("/v2/x/blobs/blobs/d"),
            Some(Route::Blob("x/blobs", "d"))
        ));
        assert!(matches!(
            route("/v2/a/manifests/latest"),
            Some(Route::Manifest("a", "latest"))
        ));
        assert!(matches!(
            route("/v2/a/referrers/sha256:00"),
            Some(Route::Referrers("a", "sha256:00"))
        ));
        assert!(route("/v1/foo").is_none());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
