//! Network routes: list (docker's filters), inspect, create, remove, prune; connect and
//! disconnect reach the engine, which refuses them as `network connect` does in this build.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::json_body;
use crate::server::{blocking, no_content, Ctx};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use wharf_engine::networks::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkListRequest, NetworkPruneRequest,
};
use wharf_engine::Caller;

/// `GET /networks?filters=`: each network as `inspect` shows it.
pub async fn list(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        let list = e.list_networks(&NetworkListRequest { filters })?;
        let mut out = Vec::with_capacity(list.len());
        for n in list {
            out.push(e.inspect_network(&n.id)?);
        }
        Ok(out)
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `GET /networks/{id}`.
pub async fn inspect(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    let v = blocking(ctx, caller, move |e| Ok(e.inspect_network(&id)?)).await?;
    Ok(body::json(200, &v))
}

fn strings_of(v: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    if let Some(o) = v.and_then(Value::as_object) {
        for (k, x) in o {
            let x = x.as_str().ok_or(ApiError::JsonShape {
                what: "an object of strings",
            })?;
            out.push((k.clone(), x.to_string()));
        }
    }
    Ok(out)
}

/// `POST /networks/create` with docker's body (`Name`, `Driver`, `Internal`, `Attachable`,
/// `EnableIPv6`, `IPAM.Config[]`, `Options`, `Labels`): passed on as the CLI's flags would
/// be, so the engine parses and refuses them the same way.
pub async fn create(
    req: http::Request<hyper::body::Incoming>,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let v = json_body(req, ctx).await?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut r = NetworkCreateRequest {
        name: s("Name").unwrap_or_default(),
        driver: s("Driver").filter(|d| !d.is_empty()),
        internal: b("Internal"),
        attachable: b("Attachable"),
        ipv6: b("EnableIPv6"),
        labels: strings_of(v.get("Labels"))?
            .into_iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect(),
        options: strings_of(v.get("Options"))?
            .into_iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect(),
        ..Default::default()
    };
    if b("Ingress") || b("ConfigOnly") || v.get("ConfigFrom").is_some_and(|c| !c.is_null()) {
        return Err(wharf_engine::EngineError::from(
            wharf_engine::refusal::ValidationError::UnsupportedField {
                field: "Ingress/ConfigOnly/ConfigFrom".into(),
            },
        )
        .into());
    }
    if let Some(ipam) = v.get("IPAM").and_then(Value::as_object) {
        if let Some(cfgs) = ipam.get("Config").and_then(Value::as_array) {
            for c in cfgs {
                let g = |k: &str| c.get(k).and_then(Value::as_str).filter(|x| !x.is_empty());
                if let Some(x) = g("Subnet") {
                    r.subnets.push(x.into());
                }
                if let Some(x) = g("Gateway") {
                    r.gateways.push(x.into());
                }
                if let Some(x) = g("IPRange") {
                    r.ip_ranges.push(x.into());
                }
            }
        }
    }
    let v = blocking(ctx, caller, move |e| Ok(e.create_network(&r)?.id)).await?;
    Ok(body::json(201, &json!({"Id": v, "Warning": ""})))
}

/// `DELETE /networks/{id}`.
pub async fn remove(id: &str, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let id = id.to_string();
    no_content(ctx, caller, move |e| Ok(e.remove_network(&id)?)).await
}

/// `POST /networks/prune?filters=`.
pub async fn prune(q: &Query, ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let filters = q.filters()?;
    let v = blocking(ctx, caller, move |e| {
        Ok(json!({"NetworksDeleted": e.prune_networks(&NetworkPruneRequest { filters })?}))
    })
    .await?;
    Ok(body::json(200, &v))
}

/// `EndpointConfig.IPAMConfig.<key>` when given and not empty.
fn ipam_address(ep: Option<&Value>, key: &str) -> Option<String> {
    ep.and_then(|e| e.get("IPAMConfig"))
        .and_then(|i| i.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `POST /networks/{id}/connect|disconnect` with `{"Container", "EndpointConfig"|"Force"}`.
pub async fn membership(
    req: http::Request<hyper::body::Incoming>,
    id: &str,
    connect: bool,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let v = json_body(req, ctx).await?;
    let container = v
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ep = v.get("EndpointConfig");
    let r = NetworkConnectRequest {
        network: id.to_string(),
        container,
        aliases: ep
            .and_then(|e| e.get("Aliases"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        ipv4: ipam_address(ep, "IPv4Address"),
        ipv6: ipam_address(ep, "IPv6Address"),
    };
    let force = v.get("Force").and_then(Value::as_bool).unwrap_or(false);
    blocking(ctx, caller, move |e| {
        if connect {
            e.connect_network(&r)?;
        } else {
            e.disconnect_network(&r.network, &r.container, force)?;
        }
        Ok(())
    })
    .await?;
    Ok(body::json(200, &json!({})))
}
