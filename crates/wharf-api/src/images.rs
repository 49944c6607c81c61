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
                    "VirtualSize": i.size,
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

/// `GET /images/{name}/history`: newest first; an entry whose image is not in the store is
/// docker's `<missing>`.
pub async fn history(
    name: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let name = name.to_string();
    let v = blocking(ctx, caller, move |e| {
        let items = e.image_history(&name)?;
        Ok(items
            .iter()
            .map(|h| {
                json!({
                    "Id": h.image.as_ref().map_or("<missing>".to_string(), |d| d.to_string()),
                    "Created": h.created.as_deref().map_or(0, wharf_engine::timefmt::unix_seconds),
                    "CreatedBy": h.created_by,
                    "Tags": if h.tags.is_empty() { Value::Null } else { json!(h.tags) },
                    "Size": h.size,
                    "Comment": h.comment,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `POST /images/prune?filters=`: `dangling=false` is `-a`; `until`, `label` as the CLI's.
pub async fn prune(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let req = wharf_engine::prune::ImagePruneRequest::from_api_filters(filters)?;
        let rep = e.prune_images(&req)?;
        let deleted: Vec<Value> = rep
            .events
            .iter()
            .map(|r| match r {
                RemoveEvent::Untagged(n) => json!({"Untagged": n}),
                RemoveEvent::Deleted(d) => json!({"Deleted": d.to_string()}),
            })
            .collect();
        Ok(json!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": rep.reclaimed,
        }))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `GET /images/search`: wharf has no registry index to search (docker's error shape, 501).
pub fn search() -> Result<Response<Body>, ApiError> {
    Err(ApiError::Unsupported {
        what: "image search (there is no registry index to search)",
    })
}

/// A commit's `Config` body: absent, `null`, or an object holding only zero values (what
/// clients send by default); anything else is refused by name (use `changes=`).
fn empty_config(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(empty_config),
    }
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: 201 `{"Id"}`.
pub async fn commit(
    req: http::Request<hyper::body::Incoming>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let config = crate::router::json_body(req, ctx).await?;
    if !empty_config(&config) {
        return Err(ApiError::Unsupported {
            what: "a Config body on POST /commit (send the changes as changes=)",
        });
    }
    let text = |k: &str| q.get(k).filter(|s| !s.is_empty()).map(str::to_string);
    let reference = text("repo").map(|r| match text("tag") {
        Some(t) => format!("{r}:{t}"),
        None => r,
    });
    let creq = wharf_engine::CommitRequest {
        container: q.get("container").unwrap_or("").to_string(),
        reference,
        author: text("author"),
        message: text("comment"),
        changes: q.all("changes"),
        pause: !matches!(q.get("pause"), Some("0" | "false" | "False")),
    };
    let id = blocking(ctx, caller, move |e| Ok(e.commit_container(&creq)?)).await?;
    Ok(body::json(201, &json!({"Id": id.to_string()})))
}
