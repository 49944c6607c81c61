//! Volume routes: list (docker's filters), create, inspect, remove, prune.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::json_body;
use crate::server::{blocking, no_content, Ctx};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use wharf_engine::volumes::{
    inspect_json, VolumeCreateRequest, VolumeListRequest, VolumePruneRequest,
};
use wharf_engine::Caller;

/// `GET /volumes?filters=`.
pub async fn list(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let list = e.list_volumes(&VolumeListRequest { filters })?;
        Ok(json!({"Volumes": list.iter().map(inspect_json).collect::<Vec<_>>(), "Warnings": []}))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `POST /volumes/create` with `{"Name", "Driver", "Labels", "DriverOpts"}`.
pub async fn create(
    req: http::Request<hyper::body::Incoming>,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let v = json_body(req, ctx).await?;
    let get = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut labels = std::collections::BTreeMap::new();
    if let Some(o) = v.get("Labels").and_then(Value::as_object) {
        for (k, x) in o {
            let x = x.as_str().ok_or(ApiError::JsonShape {
                what: "Labels: an object of strings",
            })?;
            labels.insert(k.clone(), x.to_string());
        }
    }
    if v.get("DriverOpts")
        .and_then(Value::as_object)
        .is_some_and(|o| !o.is_empty())
    {
        return Err(wharf_engine::EngineError::from(
            wharf_engine::refusal::ValidationError::UnsupportedField {
                field: "DriverOpts".into(),
            },
        )
        .into());
    }
    let creq = VolumeCreateRequest {
        name: get("Name"),
        driver: get("Driver"),
        labels,
    };
    let v = blocking(ctx, caller, move |e| {
        Ok(inspect_json(&e.create_volume(&creq)?))
    })
    .await?;
    Ok(body::json(201, &v))
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    name: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let name = name.to_string();
    let v = blocking(ctx, caller, move |e| Ok(inspect_json(&e.volume(&name)?))).await?;
    Ok(body::json(200, &v))
}

/// `DELETE /volumes/{name}?force=`.
pub async fn remove(
    name: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let name = name.to_string();
    let force = q.bool("force");
    no_content(ctx, caller, move |e| Ok(e.remove_volume(&name, force)?)).await
}

/// `POST /volumes/prune?filters=` (`all=true`: named volumes too, as the CLI's `-a`).
pub async fn prune(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let mut all = false;
    let mut filters = Vec::new();
    for f in q.filters()? {
        match f.as_str() {
            "all=true" | "all=1" => all = true,
            "all=false" | "all=0" => {}
            _ => filters.push(f),
        }
    }
    let v = blocking(ctx, caller, move |e| {
        let r = e.prune_volumes(&VolumePruneRequest { all, filters })?;
        Ok(json!({"VolumesDeleted": r.deleted, "SpaceReclaimed": r.reclaimed}))
    })
    .await?;
    Ok(body::json(200, &v))
}
