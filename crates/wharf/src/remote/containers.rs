//! Remote `ps`, `inspect`, `rm`, `stop`/`restart`, `kill`, `wait`, `pause`/`unpause`,
//! `rename`, `top`, `logs`.

use super::client::{enc, Client};
use super::http::Request;
use crate::cli::{
    ContainersArgs, InspectArgs, KillArgs, LogsArgs, PsArgs, RenameArgs, RmArgs, StopArgs, TopArgs,
};
use crate::cmd::containers::{displayable_ports, pretty_json, quote_command, render_ps, size_text};
use crate::format::Template;
use anyhow::anyhow;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use wharf_engine::network::report::PortEntry;
use wharf_engine::timefmt::human_duration;
use wharf_types::error::COMMAND_FAILED;
use wharf_types::ErrorKind;

use super::RemoteError;

/// docker's `--filter k=v` list as the API's `filters` JSON (`{"k": {"v": true}}`).
pub fn filters_json(filters: &[String]) -> anyhow::Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: Map<String, Value> = Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        let e = m
            .entry(k.trim().to_ascii_lowercase())
            .or_insert_with(|| json!({}));
        if let Value::Object(o) = e {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Some(Value::Object(m).to_string()))
}

/// `N units ago` from a unix time, as local mode writes it.
pub fn ago(created: i64) -> String {
    format!(
        "{} ago",
        // the precise now less whole seconds, as docker's CLI (and local mode) subtract
        human_duration(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(
                    |now| now.checked_sub(std::time::Duration::from_secs(created.max(0) as u64))
                )
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )
    )
}

pub fn rfc3339(created: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(created)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An entry of `GET /containers/json` → the object `ps` renders (the same fields as local).
fn ps_object(v: &Value, trunc: bool, size: bool) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or_default();
    let id = s("Id");
    let created = v["Created"].as_i64().unwrap_or(0);
    let ports: Vec<PortEntry> = v["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| PortEntry {
            private_port: p["PrivatePort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
            proto: p["Type"].as_str().unwrap_or("tcp").to_string(),
            public: p["PublicPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(|port| (p["IP"].as_str().unwrap_or_default().to_string(), port)),
        })
        .collect();
    let names = v["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/'))
        .collect::<Vec<_>>()
        .join(",");
    let labels = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    let mounts = v["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(",");
    let networks = v["NetworkSettings"]["Networks"]
        .as_object()
        .map(|n| n.keys().cloned().collect::<Vec<_>>().join(","))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            v["HostConfig"]["NetworkMode"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
    let size = size.then(|| {
        (
            v["SizeRw"].as_u64().unwrap_or(0),
            v["SizeRootFs"].as_u64().unwrap_or(0),
        )
    });
    json!({
        "ID": if trunc { id.get(..12).unwrap_or(id) } else { id },
        "Image": s("Image"),
        "Command": quote_command(s("Command"), trunc),
        "CreatedAt": rfc3339(created),
        "RunningFor": ago(created),
        "Ports": displayable_ports(&ports),
        "State": s("State"),
        "Status": s("Status"),
        "Names": names,
        "Labels": labels,
        "Mounts": mounts,
        "Networks": networks,
        "Size": size_text(size),
    })
}

pub fn ps(c: &Client, a: &PsArgs) -> anyhow::Result<i32> {
    let last = if a.latest && a.last == -1 { 1 } else { a.last };
    let mut q = format!("/containers/json?all={}", u8::from(a.all || last > 0));
    if last > 0 {
        q.push_str(&format!("&limit={last}"));
    }
    if a.size {
        q.push_str("&size=1");
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push_str(&format!("&filters={}", enc(&f)));
    }
    let list = c.get(q)?;
    let objs: Vec<Value> = list
        .as_array()
        .ok_or(RemoteError::Shape {
            what: "a container list that is not an array",
        })?
        .iter()
        .map(|v| ps_object(v, !a.no_trunc, a.size))
        .collect();
    render_ps(a, &objs)
}

fn not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<RemoteError>(),
            Some(RemoteError::Daemon { status: 404, .. })
        )
    })
}

/// One object by kind (`None`: container, then image, then volume, then network, as docker).
fn inspect_one(c: &Client, kind: Option<&str>, name: &str) -> anyhow::Result<Option<Value>> {
    let n = enc(name);
    let paths: Vec<String> = match kind {
        Some("container") => vec![format!("/containers/{n}/json")],
        Some("image") => vec![format!("/images/{n}/json")],
        Some("volume") => vec![format!("/volumes/{n}")],
        Some("network") => vec![format!("/networks/{n}")],
        _ => vec![
            format!("/containers/{n}/json"),
            format!("/images/{n}/json"),
            format!("/volumes/{n}"),
            format!("/networks/{n}"),
        ],
    };
    for p in paths {
        match c.get(p) {
            Ok(v) => return Ok(Some(v)),
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Prints inspected objects as local mode does: `--format` per object, else docker's JSON.
pub fn print_inspected(format: Option<&str>, out: Vec<Value>) -> anyhow::Result<()> {
    match format {
        Some(f) => {
            let t = Template::parse(f).map_err(|e| anyhow!(e))?;
            for v in &out {
                println!("{}", t.render(v).map_err(|e| anyhow!(e))?);
            }
        }
        None => println!("{}", pretty_json(&Value::Array(out))),
    }
    Ok(())
}

pub fn inspect(c: &Client, a: &InspectArgs, forced: Option<&str>) -> anyhow::Result<i32> {
    let kind = forced.or(a.kind.as_deref());
    if let Some(k) = kind {
        if !matches!(k, "container" | "image" | "volume" | "network") {
            anyhow::bail!("{k:?} is not a valid value for --type");
        }
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match inspect_one(c, kind, name)? {
            Some(v) => out.push(v),
            None => missing.push(name.clone()),
        }
    }
    print_inspected(a.format.as_deref(), out)?;
    for m in &missing {
        eprintln!("Error: No such object: {m}");
    }
    Ok(if missing.is_empty() {
        0
    } else {
        COMMAND_FAILED
    })
}

/// Runs `f` for every name, docker's way: errors printed, 1 if any failed.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<Option<String>>,
) -> Vec<String> {
    let mut failed = Vec::new();
    for n in names {
        match f(n) {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => {}
            Err(e) => {
                super::report(&e, wharf_types::error::CommandClass::Other);
                failed.push(n.clone());
            }
        }
    }
    failed
}

fn code(failed: &[String]) -> anyhow::Result<i32> {
    Ok(if failed.is_empty() { 0 } else { COMMAND_FAILED })
}

pub fn rm(c: &Client, a: &RmArgs) -> anyhow::Result<i32> {
    let mut failed = Vec::new();
    for n in &a.containers {
        let r = c.json(Request::new(
            "DELETE",
            format!(
                "/containers/{}?force={}&v={}",
                enc(n),
                u8::from(a.force),
                u8::from(a.volumes)
            ),
        ));
        match r {
            Ok(_) => println!("{n}"),
            Err(e) => {
                super::report(&e, wharf_types::error::CommandClass::Other);
                let missing = e.chain().any(|x| {
                    x.downcast_ref::<RemoteError>().is_some_and(|r| {
                        r.kind(wharf_types::error::CommandClass::Other) == ErrorKind::NotFound
                    })
                });
                if !(a.force && missing) {
                    failed.push(n.clone());
                }
            }
        }
    }
    code(&failed)
}

pub fn stop(c: &Client, a: &StopArgs, verb: &str) -> anyhow::Result<i32> {
    let failed = each(&a.containers, |n| {
        let mut q = format!("/containers/{}/{verb}?", enc(n));
        if let Some(t) = a.time {
            q.push_str(&format!("t={t}&"));
        }
        if let Some(s) = &a.signal {
            q.push_str(&format!("signal={}&", enc(s)));
        }
        let mut req = Request::new("POST", q.trim_end_matches(['?', '&']).to_string());
        // a stop waits for the container's own grace period
        req.timeout = None;
        c.json(req)?;
        Ok(Some(n.to_string()))
    });
    code(&failed)
}

pub fn kill(c: &Client, a: &KillArgs) -> anyhow::Result<i32> {
    let failed = each(&a.containers, |n| {
        c.post(format!(
            "/containers/{}/kill?signal={}",
            enc(n),
            enc(&a.signal)
        ))?;
        Ok(Some(n.to_string()))
    });
    code(&failed)
}

pub fn simple(c: &Client, a: &ContainersArgs, verb: &str) -> anyhow::Result<i32> {
    let failed = each(&a.containers, |n| {
        c.post(format!("/containers/{}/{verb}", enc(n)))?;
        Ok(Some(n.to_string()))
    });
    code(&failed)
}

/// `POST /containers/{id}/wait?condition=`: the exit code (the response's headers come
/// once the wait is set up).
pub fn wait_code(c: &Client, id: &str, condition: &str) -> anyhow::Result<i64> {
    let v = c.json(
        Request::new(
            "POST",
            format!("/containers/{}/wait?condition={condition}", enc(id)),
        )
        .stream(),
    )?;
    wait_result(&v)
}

pub fn wait_result(v: &Value) -> anyhow::Result<i64> {
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(RemoteError::Daemon {
            status: 500,
            message: m.to_string(),
        }
        .into());
    }
    v["StatusCode"].as_i64().ok_or_else(|| {
        RemoteError::Shape {
            what: "a wait result without StatusCode",
        }
        .into()
    })
}

pub fn wait(c: &Client, a: &ContainersArgs) -> anyhow::Result<i32> {
    let failed = each(&a.containers, |n| {
        Ok(Some(wait_code(c, n, "not-running")?.to_string()))
    });
    code(&failed)
}

pub fn rename(c: &Client, a: &RenameArgs) -> anyhow::Result<i32> {
    c.post(format!(
        "/containers/{}/rename?name={}",
        enc(&a.container),
        enc(&a.new_name)
    ))?;
    Ok(0)
}

pub fn top(c: &Client, a: &TopArgs) -> anyhow::Result<i32> {
    let mut q = format!("/containers/{}/top", enc(&a.container));
    if !a.ps_args.is_empty() {
        q.push_str(&format!("?ps_args={}", enc(&a.ps_args.join(" "))));
    }
    let v = c.get(q)?;
    let mut rows: Vec<Vec<String>> = vec![v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect()];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(
            p.as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    crate::format::print_table(&rows);
    Ok(0)
}

/// Copies a multiplexed stream (`[stream, 0, 0, 0, len u32 BE]` frames) to stdout/stderr.
pub fn demux(mut r: impl Read, flush: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut head = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut left = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        while left > 0 {
            let n = left.min(buf.len());
            r.read_exact(&mut buf[..n])?;
            if head[0] == 2 {
                err.write_all(&buf[..n])?;
            } else {
                out.write_all(&buf[..n])?;
            }
            left -= n;
        }
        if flush {
            out.flush()?;
        }
    }
}

pub fn logs(c: &Client, a: &LogsArgs) -> anyhow::Result<i32> {
    let info = c.get(format!("/containers/{}/json", enc(&a.container)))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&details={}&tail={}",
        enc(&a.container),
        u8::from(a.follow),
        u8::from(a.timestamps),
        u8::from(a.details),
        enc(&a.tail)
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", enc(s)));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", enc(u)));
    }
    let mut req = Request::new("GET", q);
    if a.follow {
        req = req.stream();
    }
    let mut r = c.send(req)?;
    let res = if tty {
        let mut out = std::io::stdout();
        std::io::copy(&mut r, &mut out).map(|_| ())
    } else {
        demux(r, a.follow)
    };
    let _ = std::io::stdout().flush();
    match res {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}
