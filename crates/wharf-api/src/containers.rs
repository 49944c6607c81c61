//! Container routes that are one engine call each: list, inspect, start, stop, restart,
//! kill, wait, remove, resize.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, no_content, Ctx};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wharf_engine::lifecycle::WaitCondition;
use wharf_engine::run::ContainerInfo;
use wharf_engine::state::Status;
use wharf_engine::{Caller, Engine};

fn active(s: Status) -> bool {
    matches!(s, Status::Running | Status::Paused | Status::Restarting)
}

/// One entry of `GET /containers/json` (docker's `ContainerSummary`).
fn summary(e: &Engine, info: &ContainerInfo) -> Value {
    let rec = &info.record;
    let c = &rec.config;
    let command = wharf_engine::containers::list_command(c);
    let ports: Vec<Value> = e
        .container_ports(info)
        .iter()
        .map(|p| match &p.public {
            Some((ip, port)) => json!({"IP": ip, "PrivatePort": p.private_port, "PublicPort": port, "Type": p.proto}),
            None => json!({"PrivatePort": p.private_port, "Type": p.proto}),
        })
        .collect();
    let mounts: Vec<Value> = rec
        .host_config
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Type": m.kind,
                "Source": m.source,
                "Destination": m.target,
                "RW": !m.read_only,
            })
        })
        .collect();
    let status = wharf_engine::state::status_text(&info.state, &|ts| {
        wharf_engine::timefmt::human_duration(wharf_engine::timefmt::seconds_since(ts))
    });
    json!({
        "Id": rec.id.as_str(),
        "Names": [format!("/{}", rec.name)],
        "Image": c.image,
        "ImageID": rec.image.to_string(),
        "Command": command,
        "Created": wharf_engine::timefmt::unix_seconds(&rec.created),
        "Ports": ports,
        "Labels": c.labels,
        "State": info.state.status().as_str(),
        "Status": status,
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.as_docker()},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts,
    })
}

/// `GET /containers/json?all=&limit=&filters=`.
pub async fn list(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let all = q.bool("all");
    let limit = q.int("limit")?.filter(|n| *n > 0);
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let filter = wharf_engine::containers::ContainerFilter::parse(&filters)?;
        let mut list = e.list_containers(all || limit.is_some(), &filter)?;
        if let Some(n) = limit {
            list.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Ok(list.iter().map(|c| summary(e, c)).collect::<Vec<_>>())
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `GET /containers/{id}/json`: the object `wharf inspect` prints.
pub async fn inspect(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let v = blocking(ctx, caller, move |e| {
        let info = e.container(&id)?;
        Ok(wharf_engine::run::inspect_json(e, &info))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `POST /containers/{id}/start`: 304 when it runs already. A hijacked attach waiting for
/// this container is connected to the monitor before the container starts.
pub async fn start(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let c = ctx.clone();
    let started = blocking(ctx, caller, move |e| {
        let info = e.container(&id)?;
        if matches!(info.state.status(), Status::Running | Status::Restarting) {
            return Ok(false);
        }
        let waiting = c
            .pending_attach
            .lock()
            .map(|mut m| m.remove(info.record.id.as_str()))
            .unwrap_or(None)
            .unwrap_or_default();
        let mut waiting = waiting.into_iter().filter(|w| !w.is_closed());
        match (waiting.next(), info.state.status()) {
            (Some(first), Status::Created | Status::Exited | Status::Dead) => {
                let stream = e.start_attached(&info.record)?;
                let _ = first.send(stream);
            }
            _ => {
                e.start_container(info.record.id.as_str())?;
            }
        }
        Ok(true)
    })
    .await?;
    Ok(if started {
        body::no_content()
    } else {
        not_modified()
    })
}

fn not_modified() -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = http::StatusCode::NOT_MODIFIED;
    r
}

/// `POST /containers/{id}/stop?t=&signal=`: 304 when it does not run.
pub async fn stop(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let t = q.int("t")?;
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let stopped = blocking(ctx, caller, move |e| {
        let info = e.container(&id)?;
        if !active(info.state.status()) {
            return Ok(false);
        }
        e.stop_container(&id, t, signal.as_deref())?;
        Ok(true)
    })
    .await?;
    Ok(if stopped {
        body::no_content()
    } else {
        not_modified()
    })
}

/// `POST /containers/{id}/restart?t=&signal=`.
pub async fn restart(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let t = q.int("t")?;
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    no_content(ctx, caller, move |e| {
        Ok(e.restart_container(&id, t, signal.as_deref())?)
    })
    .await
}

/// `POST /containers/{id}/kill?signal=` (SIGKILL by default).
pub async fn kill(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL")
        .to_string();
    no_content(ctx, caller, move |e| Ok(e.kill_container(&id, &signal)?)).await
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let (force, volumes) = (q.bool("force"), q.bool("v"));
    no_content(ctx, caller, move |e| {
        Ok(e.remove_container(&id, force, volumes)?)
    })
    .await
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let (rows, cols) = size(q)?;
    let id = id.to_string();
    blocking(ctx, caller, move |e| {
        e.resize_container(&id, rows, cols)?;
        Ok(())
    })
    .await?;
    Ok(body::json(200, &json!({})))
}

/// `h` and `w` of a resize.
pub fn size(q: &Query) -> Result<(u16, u16), ApiError> {
    let dim = |k: &'static str| -> Result<u16, ApiError> {
        let v = q.int(k)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::Query {
            name: k,
            value: v.to_string(),
        })
    };
    Ok((dim("h")?, dim("w")?))
}

/// `POST /containers/{id}/wait?condition=`: the headers go out once the wait is set up
/// (so a start that follows cannot be missed), the `{"StatusCode": N}` body when the
/// condition holds. A client that goes away ends the wait.
pub async fn wait(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let cond = q.get("condition").unwrap_or("").to_string();
    let waiter = blocking(ctx, caller, move |e| {
        let c = WaitCondition::parse(&cond)?;
        Ok(e.begin_wait(&id, c)?)
    })
    .await?;
    let (tx, body) = body::channel();
    let c = ctx.clone();
    // polled from the reactor: each check is a short call on the blocking pool, and no
    // thread is held between checks (200 waits must not take 200 threads)
    tokio::spawn(async move {
        let mut waiter = waiter;
        let mut pause = Duration::from_millis(20);
        let result = loop {
            let (w, r) = match blocking(&c, caller, move |e| {
                let r = e.poll_wait(&mut waiter);
                Ok((waiter, r))
            })
            .await
            {
                Ok(v) => v,
                Err(e) => break Err(e),
            };
            waiter = w;
            match r {
                Ok(Some(code)) => break Ok(code),
                Ok(None) => {}
                Err(e) => break Err(e.into()),
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        };
        let v = match result {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(err) => json!({"StatusCode": -1, "Error": {"Message": err.message()}}),
        };
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(b.into()).await;
    });
    Ok(body::streamed(200, "application/json", body))
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub async fn pause(
    id: &str,
    on: bool,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    no_content(ctx, caller, move |e| Ok(e.pause_container(&id, on)?)).await
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let name = q.get("name").unwrap_or("").to_string();
    no_content(ctx, caller, move |e| Ok(e.rename_container(&id, &name)?)).await
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let args: Vec<String> = q
        .get("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let v = blocking(ctx, caller, move |e| {
        let t = e.top(&id, &args)?;
        Ok(json!({"Titles": t.titles, "Processes": t.processes}))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `POST /containers/prune?filters=` (`until`, `label`, `label!`, as the CLI's).
pub async fn prune(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let rep =
            e.prune_containers_filtered(&wharf_engine::prune::ContainerPruneRequest { filters })?;
        Ok(json!({
            "ContainersDeleted": rep.deleted.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "SpaceReclaimed": rep.reclaimed,
        }))
    })
    .await?;
    Ok(body::json(200, &v))
}
