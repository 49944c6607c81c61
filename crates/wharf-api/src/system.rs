//! `/_ping`, `/version`, `/info`: the negotiation headers and docker's JSON shapes.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::server::{blocking, Ctx};
use crate::version::{API_VERSION, MIN_API_VERSION};
use http::Response;
use std::sync::Arc;
use wharf_engine::Caller;

/// `GET|HEAD /_ping`: "OK" (the version headers are on every response).
pub fn ping() -> Response<Body> {
    let mut r = body::text(200, "OK");
    let h = r.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// `GET /version`: the engine's data (`wharf_engine::info::version`).
pub async fn version() -> Result<Response<Body>, ApiError> {
    let v =
        tokio::task::spawn_blocking(|| wharf_engine::info::version(API_VERSION, MIN_API_VERSION))
            .await
            .map_err(ApiError::Task)?;
    Ok(body::json(200, &v))
}

/// `GET /info`: the engine's data (`wharf_engine::info::info`), as the CLI's `info` renders it.
pub async fn info(ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let v = blocking(ctx, caller, |e| Ok(wharf_engine::info::info(e)?)).await?;
    Ok(body::json(200, &v))
}

/// `GET /system/df`: images (shared layers once), containers' writable layers, volumes
/// (`wharf_engine::prune::DiskUsage`, what `wharf system df` renders); no build cache.
pub async fn df(ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    use serde_json::json;
    let v = blocking(ctx, caller, |e| {
        let du = e.disk_usage()?;
        let images: Vec<_> = du
            .images
            .iter()
            .map(|i| {
                json!({
                    "Id": i.id.to_string(),
                    "ParentId": "",
                    "RepoTags": i.repo_tags,
                    "RepoDigests": [],
                    "Created": wharf_engine::timefmt::unix_seconds(&i.created),
                    "Size": i.size,
                    "SharedSize": i.shared_size,
                    "Labels": {},
                    "Containers": i.containers,
                })
            })
            .collect();
        let containers: Vec<_> = du
            .containers
            .iter()
            .map(|c| {
                json!({
                    "Id": c.id.as_str(),
                    "Names": [format!("/{}", c.name)],
                    "Image": c.image,
                    "Command": c.command,
                    "Created": wharf_engine::timefmt::unix_seconds(&c.created),
                    "SizeRw": c.size_rw,
                    "SizeRootFs": c.size_rw,
                    "State": c.status.as_str(),
                    "Status": c.status.as_str(),
                    "Ports": [],
                    "Labels": {},
                    "Mounts": [],
                })
            })
            .collect();
        let volumes: Vec<_> = du
            .volumes
            .iter()
            .map(|v| {
                json!({
                    "Name": v.name,
                    "Driver": "local",
                    "Scope": "local",
                    "Labels": {},
                    "Options": {},
                    "UsageData": {"Size": v.size, "RefCount": v.links},
                })
            })
            .collect();
        Ok(json!({
            "LayersSize": du.images_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `POST /build/prune`: the API serves no build cache (501, docker's error shape).
pub fn build_prune() -> Result<Response<Body>, ApiError> {
    Err(ApiError::Unsupported {
        what: "build cache prune through the Engine API",
    })
}

/// `POST /auth` (`docker login` through the socket): the credentials checked against the
/// registry as `wharf login` checks them, and not stored by the server — the client keeps
/// them and sends them as `X-Registry-Auth`. Identity tokens are 501.
pub async fn auth(
    req: http::Request<hyper::body::Incoming>,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let v = crate::router::json_body(req, ctx).await?;
    let o = v.as_object().ok_or(ApiError::JsonShape {
        what: "an object with username, password and serveraddress",
    })?;
    let field = |k: &str| {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if !field("identitytoken").is_empty() || !field("registrytoken").is_empty() {
        return Err(ApiError::Unsupported {
            what: "token authentication in POST /auth",
        });
    }
    let server = field("serveraddress");
    let login = wharf_engine::distribution::LoginRequest {
        server: (!server.is_empty()).then_some(server),
        username: field("username"),
        password: field("password"),
    };
    blocking(ctx, caller, move |e| Ok(e.check_login(&login)?)).await?;
    Ok(body::json(
        200,
        &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
