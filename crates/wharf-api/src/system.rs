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
