//! A container's file system over HTTP: `/containers/{id}/archive` (GET a path as a tar,
//! HEAD its stat, PUT a tar into a directory: `docker cp` both ways), `/changes` (`docker
//! diff`), `/export`. The engine resolves every path inside the container's root and caps
//! the archive it reads (`wharf_engine::archive`); this module maps query, headers and
//! bodies only.
//!
//! Must not: touch a container path itself, or buffer an archive in memory.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use crate::transfer::{body_reader, ChannelWriter};
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::json;
use std::sync::Arc;
use wharf_engine::archive::{ExtractRequest, PathStat};
use wharf_engine::{Caller, ChangeKind};

/// The most bytes a `PUT …/archive` body may hold (the staging copy is on the store's disk).
pub const MAX_ARCHIVE: u64 = 8 << 30;

fn path_param(q: &Query) -> Result<String, ApiError> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::Query {
            name: "path",
            value: String::new(),
        }),
    }
}

/// docker's `X-Docker-Container-Path-Stat`: standard base64 of the stat's JSON.
fn stat_header(s: &PathStat) -> http::HeaderValue {
    use base64::Engine as _;
    let v = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": s.mtime,
        "linkTarget": s.link_target,
    });
    let b = base64::engine::general_purpose::STANDARD.encode(v.to_string());
    http::HeaderValue::from_str(&b).unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

async fn stat(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<(String, PathStat), ApiError> {
    let path = path_param(q)?;
    let (id, p) = (id.to_string(), path.clone());
    let st = blocking(ctx, caller, move |e| Ok(e.container_path_stat(&id, &p)?)).await?;
    Ok((path, st))
}

/// `HEAD /containers/{id}/archive?path=`: the stat header only.
pub async fn archive_head(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let (_, st) = stat(id, q, ctx, caller).await?;
    let mut r = Response::new(body::empty());
    r.headers_mut()
        .insert("x-docker-container-path-stat", stat_header(&st));
    Ok(r)
}

/// `GET /containers/{id}/archive?path=`: the stat header and the path as a tar (a failure
/// after the headers cuts the stream short, as dockerd does).
pub async fn archive_get(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let (path, st) = stat(id, q, ctx, caller).await?;
    let (tx, out) = body::channel();
    let c = ctx.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = c.engine(caller) else { return };
        let mut w = ChannelWriter { tx };
        let _ = engine.archive_container_path(&id, &path, &mut w);
    });
    let mut r = body::streamed(200, "application/x-tar", out);
    r.headers_mut()
        .insert("x-docker-container-path-stat", stat_header(&st));
    Ok(r)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: the body, a tar,
/// unpacked into the directory `path` (each chunk within the body deadline, at most
/// [`MAX_ARCHIVE`] bytes).
pub async fn archive_put(
    req: Request<Incoming>,
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let er = ExtractRequest {
        container: id.to_string(),
        path: path_param(q)?,
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
        copy_uid_gid: q.bool("copyUIDGID"),
        max_bytes: MAX_ARCHIVE,
    };
    let mut r = body_reader(req, ctx.opts.body_timeout);
    blocking(ctx, caller, move |e| {
        Ok(e.extract_to_container(&er, &mut r)?)
    })
    .await?;
    Ok(body::json(200, &json!({})))
}

/// `GET /containers/{id}/changes`: docker's `[{"Path", "Kind"}]` (0 modified, 1 added,
/// 2 deleted).
pub async fn changes(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let v = blocking(ctx, caller, move |e| {
        let list = e.container_changes(&id)?;
        Ok(list
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeKind::Modified => 0,
                    ChangeKind::Added => 1,
                    ChangeKind::Deleted => 2,
                };
                json!({"Path": c.path, "Kind": kind})
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `GET /containers/{id}/export`: the container's file system as a tar (the name checked
/// first: 404 before the stream).
pub async fn export(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let name = id.to_string();
    blocking(ctx, caller, move |e| {
        e.container(&name)?;
        Ok(())
    })
    .await?;
    let (tx, out) = body::channel();
    let c = ctx.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = c.engine(caller) else { return };
        let mut w = ChannelWriter { tx };
        let _ = engine.export_container(&id, &mut w);
    });
    Ok(body::streamed(200, "application/x-tar", out))
}
