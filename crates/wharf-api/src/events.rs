//! `GET /events?since=&until=&filters=`: docker's event objects, one JSON document per
//! line; without `until` the stream follows (from now, or from `since`) until the client
//! goes away, with `until` it ends once that time has passed.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use http::Response;
use std::sync::Arc;
use std::time::Duration;
use wharf_engine::events::EventQuery;
use wharf_engine::Caller;

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// docker's event with the fields it still fills for container and image events
/// (`status` = Action, `id` = Actor.ID, `from` = the container's image), which older
/// clients read (docker-compose 1.29 follows its containers by `id` and `status`).
fn with_legacy_fields(e: &wharf_engine::events::Event) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        if e.kind == "container" || e.kind == "image" {
            o.insert("status".into(), e.action.clone().into());
            o.insert("id".into(), e.actor.id.clone().into());
        }
        if e.kind == "container" {
            if let Some(image) = e.actor.attributes.get("image") {
                o.insert("from".into(), image.clone().into());
            }
        }
    }
    v
}

pub async fn events(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let query = EventQuery {
        since: q.get("since").filter(|s| !s.is_empty()).map(str::to_string),
        until: q.get("until").filter(|s| !s.is_empty()).map(str::to_string),
        filters: q.filters()?,
    };
    // parsed before the headers go out: a bad time or filter is a 400
    let mut f = blocking(ctx, caller, move |_| Ok(query.parse()?)).await?;
    if f.since.is_none() {
        f.since = Some(now_nanos());
    }
    let (tx, out) = body::channel();
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = c.engine(caller) else { return };
        loop {
            let Ok(batch) = engine.query_events(&f) else {
                return;
            };
            for e in &batch {
                let mut line = serde_json::to_vec(&with_legacy_fields(e)).unwrap_or_default();
                line.push(b'\n');
                if tx.blocking_send(line.into()).is_err() {
                    return;
                }
            }
            if let Some(last) = batch.last() {
                f.since = Some(last.time_nano.saturating_add(1));
            }
            if f.until.is_some_and(|u| now_nanos() > u) || tx.is_closed() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Ok(body::streamed(200, "application/json", out))
}
