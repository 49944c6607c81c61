//! `POST /containers/{id}/update`: docker's `UpdateConfig` body mapped onto the engine's
//! `UpdateRequest` (a zero value is "unchanged", as docker's daemon reads it; `PidsLimit`
//! null is unchanged, 0 or -1 unlimited). A non-zero field wharf does not update is
//! refused by name, never ignored. Answers docker's `{"Warnings": [...]}`.

use crate::body;
use crate::error::ApiError;
use crate::server::{blocking, Ctx};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use wharf_engine::refusal::ValidationError;
use wharf_engine::update::UpdateRequest;
use wharf_engine::{Caller, EngineError};
use wharf_types::container::RestartPolicy;

fn shape(what: &'static str) -> ApiError {
    ApiError::JsonShape { what }
}

fn int(v: &Value, what: &'static str) -> Result<Option<i64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| shape(what)),
        _ => Err(shape(what)),
    }
}

fn nonzero(v: &Value, what: &'static str) -> Result<Option<i64>, ApiError> {
    Ok(int(v, what)?.filter(|n| *n != 0))
}

fn text(v: &Value, what: &'static str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        _ => Err(shape(what)),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// docker's update body → the engine's request; `Err` names the first field wharf does not
/// update.
pub fn request(v: &Value) -> Result<UpdateRequest, ApiError> {
    let o = v.as_object().ok_or_else(|| shape("a JSON object"))?;
    let mut r = UpdateRequest::default();
    for (k, v) in o {
        match k.as_str() {
            "Memory" => r.memory = nonzero(v, "Memory: an integer")?,
            "MemorySwap" => r.memory_swap = nonzero(v, "MemorySwap: an integer")?,
            "MemoryReservation" => {
                r.memory_reservation = nonzero(v, "MemoryReservation: an integer")?
            }
            "NanoCpus" => r.nano_cpus = nonzero(v, "NanoCpus: an integer")?,
            "CpuShares" => r.cpu_shares = nonzero(v, "CpuShares: an integer")?,
            "CpuPeriod" => r.cpu_period = nonzero(v, "CpuPeriod: an integer")?,
            "CpuQuota" => r.cpu_quota = nonzero(v, "CpuQuota: an integer")?,
            "CpusetCpus" => r.cpuset_cpus = text(v, "CpusetCpus: a string")?,
            "CpusetMems" => r.cpuset_mems = text(v, "CpusetMems: a string")?,
            "PidsLimit" => r.pids_limit = int(v, "PidsLimit: an integer")?,
            "BlkioWeight" => {
                r.blkio_weight = nonzero(v, "BlkioWeight: an integer")?
                    .map(|w| u16::try_from(w).map_err(|_| shape("BlkioWeight: 10 to 1000")))
                    .transpose()?
            }
            "RestartPolicy" => {
                if !v.is_null() {
                    let p: RestartPolicy = serde_json::from_value(v.clone())
                        .map_err(|_| shape("RestartPolicy: {Name, MaximumRetryCount}"))?;
                    if !p.name.is_empty() {
                        r.restart_policy = Some(p);
                    }
                }
            }
            // docker's "not set" for swappiness
            "MemorySwappiness" if v.as_i64() == Some(-1) => {}
            _ if is_zero(v) => {}
            k => {
                return Err(EngineError::Invalid(ValidationError::UnsupportedField {
                    field: format!("update {k}"),
                })
                .into())
            }
        }
    }
    Ok(r)
}

/// `POST /containers/{id}/update`.
pub async fn update(
    req: http::Request<hyper::body::Incoming>,
    id: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<body::Body>, ApiError> {
    let v = crate::router::json_body(req, ctx).await?;
    let ureq = request(&v)?;
    let id = id.to_string();
    let updated = blocking(ctx, caller, move |e| Ok(e.update_container(&id, &ureq)?)).await?;
    Ok(body::json(200, &json!({"Warnings": updated.warnings})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What docker CLI 28 sends for `docker update -m 64m --restart always c`.
    #[test]
    fn docker_cli_body_maps() {
        let v: Value = serde_json::from_str(r#"{"BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"NanoCpus":0,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"CgroupParent":"","CpuShares":0,"Memory":67108864,"RestartPolicy":{"Name":"always","MaximumRetryCount":0}}"#).unwrap();
        let r = request(&v).unwrap();
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.restart_policy.map(|p| p.name), Some("always".into()));
        assert_eq!(r.cpu_shares, None);
        let bad = json!({"CpuRealtimeRuntime": 100});
        let e = request(&bad).unwrap_err().to_string();
        assert!(e.contains("CpuRealtimeRuntime"), "{e}");
        assert!(request(&json!({"Memory": "x"})).is_err());
    }
}
