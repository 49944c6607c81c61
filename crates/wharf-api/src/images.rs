//! Image routes: list, inspect (the object `wharf image inspect` prints), tag, remove.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use wharf_engine::images::{ListImagesRequest, RemoveEvent, TagRequest};
use wharf_engine::Caller;

/// `GET /images/json?filters=`: one entry per image with all of its tags (`reference`
/// is the one filter mapped; others are refused by name).
pub async fn list(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    // the engine parses and applies docker's filters (`wharf_engine::image_filter`)
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let list = e.list_images(&ListImagesRequest {
            reference: None,
            filters,
        })?;
        let mut out: Vec<Value> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        for i in list {
            let id = i.id.to_string();
            let slot = *index.entry(id.clone()).or_insert_with(|| {
                out.push(json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": [],
                    "RepoDigests": [],
                    "Created": wharf_engine::timefmt::unix_seconds(&i.created),
                    "Size": i.size,
                    "SharedSize": -1,
                    "Labels": {},
                    "Containers": -1,
                }));
                out.len() - 1
            });
            if i.repository != "<none>" {
                if let Some(tags) = out[slot]["RepoTags"].as_array_mut() {
                    tags.push(json!(format!("{}:{}", i.repository, i.tag)));
                }
            }
        }
        Ok(out)
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `GET /images/{name}/json`.
pub async fn inspect(
    name: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let name = name.to_string();
    let v = blocking(ctx, caller, move |e| Ok(e.inspect_image(&name)?)).await?;
    Ok(body::json(200, &v))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn tag(
    name: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let repo = q.get("repo").unwrap_or("").to_string();
    let t = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
    let req = TagRequest {
        source: name.to_string(),
        target: format!("{repo}:{t}"),
    };
    blocking(ctx, caller, move |e| Ok(e.tag_image(&req)?)).await?;
    Ok(body::json(201, &json!({})))
}

/// `DELETE /images/{name}?force=`: docker's list of what was untagged and deleted.
pub async fn remove(
    name: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let name = name.to_string();
    let force = q.bool("force");
    let v = blocking(ctx, caller, move |e| {
        let removed = e.remove_image(&name, force)?;
        Ok(removed
            .iter()
            .map(|r| match r {
                RemoveEvent::Untagged(n) => json!({"Untagged": n}),
                RemoveEvent::Deleted(d) => json!({"Deleted": d.to_string()}),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(body::json(200, &v))
}
