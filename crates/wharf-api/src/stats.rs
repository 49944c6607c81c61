//! `GET /containers/{id}/stats?stream=&one-shot=`: the engine's counters
//! (`wharf_engine::stats::StatsSample`, read from the container's cgroup and /proc) in
//! docker's JSON shape, one object per second while streaming. Each reading is a short call
//! on the blocking pool; between readings the request holds no thread.
//!
//! Must not: compute anything but the shape (docker's CLI derives CPU % from
//! `cpu_stats`/`precpu_stats` itself).

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use bytes::Bytes;
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wharf_engine::stats::StatsSample;
use wharf_engine::Caller;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn cpu(s: Option<&StatsSample>) -> Value {
    let (usage, system, cpus) =
        s.map_or((0, 0, 0), |s| (s.cpu_usage_ns, s.system_ns, s.online_cpus));
    json!({
        "cpu_usage": {"total_usage": usage, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": system,
        "online_cpus": cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// docker's `StatsJSON` for `cur` (with `prev` as `precpu_stats`).
fn stats_json(cur: &StatsSample, read: &str, prev: Option<(&StatsSample, &str)>) -> Value {
    let blk = |op: &str, v: u64| json!({"major": 0, "minor": 0, "op": op, "value": v});
    let mut v = json!({
        "id": cur.id,
        "name": format!("/{}", cur.name),
        "read": read,
        "preread": prev.map_or(ZERO_TIME, |(_, t)| t),
        "num_procs": 0,
        "pids_stats": {"current": cur.pids},
        "blkio_stats": {
            "io_service_bytes_recursive": [blk("read", cur.blk_read), blk("write", cur.blk_write)],
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "storage_stats": {},
        "cpu_stats": cpu(Some(cur)),
        "precpu_stats": cpu(prev.map(|(p, _)| p)),
        // `usage` is already without the inactive file cache (docker's CLI subtracts
        // `stats.inactive_file`, absent here)
        "memory_stats": {"usage": cur.mem_usage, "limit": cur.mem_limit, "stats": {}},
    });
    if cur.running && (cur.net_rx > 0 || cur.net_tx > 0) {
        v["networks"] = json!({"eth0": {
            "rx_bytes": cur.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
            "tx_bytes": cur.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
        }});
    }
    v
}

async fn sample(
    id: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<(StatsSample, String), ApiError> {
    let id = id.to_string();
    blocking(ctx, caller, move |e| {
        let info = e.container(&id)?;
        let read = wharf_engine::timefmt::format_rfc3339_nano_fixed(std::time::SystemTime::now());
        Ok((e.stats_sample(&info), read))
    })
    .await
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    b.into()
}

/// `GET /containers/{id}/stats`: `stream=false` answers one object with `precpu_stats` a
/// second older (docker's), `one-shot=true` without waiting (zero `precpu_stats`); else one
/// object per second until the client goes away. A missing container is a 404 first.
pub async fn stats(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let stream = !matches!(q.get("stream"), Some("0" | "false" | "False"));
    let (first, t0) = sample(id, ctx, caller).await?;
    if !stream {
        if q.bool("one-shot") {
            return Ok(body::json(200, &stats_json(&first, &t0, None)));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cur, t1) = sample(id, ctx, caller).await?;
        return Ok(body::json(200, &stats_json(&cur, &t1, Some((&first, &t0)))));
    }
    let (tx, out) = body::channel();
    let (c, id) = (ctx.clone(), id.to_string());
    tokio::spawn(async move {
        if tx.send(line(&stats_json(&first, &t0, None))).await.is_err() {
            return;
        }
        let mut prev = (first, t0);
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let Ok(cur) = sample(&id, &c, caller).await else {
                // removed meanwhile: the stream ends
                return;
            };
            let v = stats_json(&cur.0, &cur.1, Some((&prev.0, &prev.1)));
            if tx.send(line(&v)).await.is_err() {
                return;
            }
            prev = cur;
        }
    });
    Ok(body::streamed(200, "application/json", out))
}
