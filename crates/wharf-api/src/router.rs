//! Versioned and unversioned paths → handlers. Path segments are percent-decoded; an image
//! name may span several (`/images/registry:5000/app/json`).

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::{decode, Query};
use crate::server::Ctx;
use crate::{
    build, containers, create, events, exec, files, images, networks, stats, streams, system,
    transfer, version, volumes,
};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;
use wharf_engine::Caller;

/// Whether a request may stay open indefinitely (counted per caller uid).
fn long_lived(m: &Method, s: &[&str], q: &Query) -> bool {
    let streaming = !matches!(q.get("stream"), Some("0" | "false" | "False"));
    match s {
        ["events"] => q.get("until").is_none_or(str::is_empty),
        ["containers", _, "wait" | "attach"] => *m == Method::POST,
        ["containers", _, "attach", "ws"] => true,
        ["containers", _, "logs"] => q.bool("follow"),
        ["containers", _, "stats"] => streaming && !q.bool("one-shot"),
        ["exec", _, "start"] => true,
        _ => false,
    }
}

pub async fn route(
    mut req: Request<Incoming>,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let (api_version, rest) = version::split(&path)?;
    let q = Query::parse(req.uri().query())?;
    let segs: Vec<String> = rest
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method().clone();
    let slot = if long_lived(&m, &s, &q) {
        let slot = crate::server::long_slot(ctx, caller.uid)?;
        // a hijacking handler takes it from here into its connection's task
        req.extensions_mut().insert(slot.clone());
        Some(slot)
    } else {
        None
    };
    let resp = dispatch(req, ctx, caller, &m, &s, &q, api_version).await?;
    Ok(match slot {
        Some(slot) => resp.map(|b| body::holding(b, slot)),
        None => resp,
    })
}

async fn dispatch(
    req: Request<Incoming>,
    ctx: &Arc<Ctx>,
    caller: Caller,
    m: &Method,
    s: &[&str],
    q: &Query,
    api_version: version::Version,
) -> Result<Response<Body>, ApiError> {
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    let delete = *m == Method::DELETE;
    let (q, m) = (q.clone(), m.clone());
    match s {
        ["_ping"] if get || m == Method::HEAD => Ok(system::ping()),
        ["version"] if get => system::version().await,
        ["info"] if get => system::info(ctx, caller).await,
        ["events"] if get => events::events(&q, ctx, caller).await,
        ["containers", "create"] if post => create::create(req, &q, ctx, caller).await,
        ["containers", "json"] if get => containers::list(&q, ctx, caller).await,
        ["containers", "prune"] if post => containers::prune(&q, ctx, caller).await,
        ["containers", id, "json"] if get => containers::inspect(id, ctx, caller).await,
        ["containers", id, "start"] if post => containers::start(id, ctx, caller).await,
        ["containers", id, "stop"] if post => containers::stop(id, &q, ctx, caller).await,
        ["containers", id, "restart"] if post => containers::restart(id, &q, ctx, caller).await,
        ["containers", id, "kill"] if post => containers::kill(id, &q, ctx, caller).await,
        ["containers", id, "wait"] if post => containers::wait(id, &q, ctx, caller).await,
        ["containers", id, "resize"] if post => containers::resize(id, &q, ctx, caller).await,
        ["containers", id, "pause"] if post => containers::pause(id, true, ctx, caller).await,
        ["containers", id, "unpause"] if post => containers::pause(id, false, ctx, caller).await,
        ["containers", id, "rename"] if post => containers::rename(id, &q, ctx, caller).await,
        ["containers", id, "update"] if post => crate::update::update(req, id, ctx, caller).await,
        ["containers", id, "top"] if get => containers::top(id, &q, ctx, caller).await,
        ["containers", id, "stats"] if get => stats::stats(id, &q, ctx, caller).await,
        ["containers", id, "changes"] if get => files::changes(id, ctx, caller).await,
        ["containers", id, "export"] if get => files::export(id, ctx, caller).await,
        ["containers", id, "archive"] if get => files::archive_get(id, &q, ctx, caller).await,
        ["containers", id, "archive"] if m == Method::HEAD => {
            files::archive_head(id, &q, ctx, caller).await
        }
        ["containers", id, "archive"] if m == Method::PUT => {
            files::archive_put(req, id, &q, ctx, caller).await
        }
        ["containers", id] if delete => containers::remove(id, &q, ctx, caller).await,
        ["containers", id, "logs"] if get => streams::logs(id, &q, ctx, caller).await,
        ["containers", id, "attach"] if post => streams::attach(req, id, &q, ctx, caller).await,
        ["containers", id, "attach", "ws"] if get => {
            // docker's: binary messages from 1.42 on, text ones before
            let binary = api_version >= version::Version(1, 42);
            streams::attach_ws(req, id, &q, ctx, caller, binary).await
        }
        ["containers", id, "exec"] if post => exec::create(req, id, ctx, caller).await,
        ["exec", id, "start"] if post => exec::start(req, id, ctx, caller).await,
        ["exec", id, "resize"] if post => exec::resize(id, &q, ctx).await,
        ["exec", id, "json"] if get => exec::inspect(id, ctx).await,
        ["build"] if post => build::build(req, &q, ctx, caller).await,
        ["images", "json"] if get => images::list(&q, ctx, caller).await,
        ["images", "create"] if post => transfer::pull(req, &q, ctx, caller).await,
        ["images", "get"] if get => transfer::save(q.all("names"), &q, ctx, caller).await,
        ["images", "load"] if post => transfer::load(req, &q, ctx, caller).await,
        ["images", "prune"] if post => images::prune(&q, ctx, caller).await,
        ["images", "search"] if get => images::search(),
        ["commit"] if post => images::commit(req, &q, ctx, caller).await,
        ["system", "df"] if get => system::df(ctx, caller).await,
        ["auth"] if post => system::auth(req, ctx, caller).await,
        ["build", "prune"] if post => system::build_prune(),
        ["images", name @ .., "get"] if get && !name.is_empty() => {
            transfer::save(vec![name.join("/")], &q, ctx, caller).await
        }
        ["images", name @ .., "json"] if get && !name.is_empty() => {
            images::inspect(&name.join("/"), ctx, caller).await
        }
        ["images", name @ .., "history"] if get && !name.is_empty() => {
            images::history(&name.join("/"), ctx, caller).await
        }
        ["images", name @ .., "push"] if post && !name.is_empty() => {
            transfer::push(req, &name.join("/"), &q, ctx, caller).await
        }
        ["images", name @ .., "tag"] if post && !name.is_empty() => {
            images::tag(&name.join("/"), &q, ctx, caller).await
        }
        ["images", name @ ..] if delete && !name.is_empty() => {
            images::remove(&name.join("/"), &q, ctx, caller).await
        }
        ["networks"] if get => networks::list(&q, ctx, caller).await,
        ["networks", "create"] if post => networks::create(req, ctx, caller).await,
        ["networks", "prune"] if post => networks::prune(&q, ctx, caller).await,
        ["networks", id] if get => networks::inspect(id, ctx, caller).await,
        ["networks", id] if delete => networks::remove(id, ctx, caller).await,
        ["networks", id, "connect"] if post => {
            networks::membership(req, id, true, ctx, caller).await
        }
        ["networks", id, "disconnect"] if post => {
            networks::membership(req, id, false, ctx, caller).await
        }
        ["volumes"] if get => volumes::list(&q, ctx, caller).await,
        ["volumes", "create"] if post => volumes::create(req, ctx, caller).await,
        ["volumes", "prune"] if post => volumes::prune(&q, ctx, caller).await,
        ["volumes", name] if get => volumes::inspect(name, ctx, caller).await,
        ["volumes", name] if delete => volumes::remove(name, &q, ctx, caller).await,
        _ => Err(ApiError::NoRoute),
    }
}

/// The request body as JSON, read under the server's limits.
pub async fn json_body(
    req: Request<Incoming>,
    ctx: &Arc<Ctx>,
) -> Result<serde_json::Value, ApiError> {
    let b = body::read(req, ctx.opts.max_body, ctx.opts.body_timeout).await?;
    body::parse_json(&b)
}
