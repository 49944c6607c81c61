//! `POST /build`: docker's classic builder API. The body is the context as a tar, streamed
//! into the engine's build service (`Engine::build_from_tar`); the query maps onto a
//! `BuildRequest`; the progress goes back as docker's JSON lines (`{"stream": …}`, pull
//! lines as `{"status": …}`, the image as `{"aux":{"ID": …}}`, a failure after the first
//! line as `{"errorDetail": …}`). A BuildKit request (`version=2`) is refused with what
//! to do instead.
//!
//! Must not: decide anything about the build (the engine does: policy, pulls, cache), buffer
//! the context in memory.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::Ctx;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_engine::build::{BuildProgress, BuildRequest};
use wharf_engine::Caller;

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    b.into()
}

fn stream(s: String) -> Bytes {
    line(&json!({ "stream": s }))
}

/// A JSON object query parameter (`buildargs`, `labels`): string values; docker's `null`
/// (a build arg named without a value) is left out.
fn json_map(q: &Query, name: &'static str) -> Result<BTreeMap<String, String>, ApiError> {
    let raw = match q.get(name) {
        None | Some("") => return Ok(BTreeMap::new()),
        Some(v) => v,
    };
    let bad = || ApiError::Query {
        name,
        value: raw.to_string(),
    };
    let v: Value = serde_json::from_str(raw).map_err(|_| bad())?;
    let mut out = BTreeMap::new();
    for (k, v) in v.as_object().ok_or_else(bad)? {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            Value::Null => {}
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// `cachefrom`: a JSON array of image names.
fn json_list(q: &Query, name: &'static str) -> Result<Vec<String>, ApiError> {
    let raw = match q.get(name) {
        None | Some("") => return Ok(Vec::new()),
        Some(v) => v,
    };
    serde_json::from_str::<Vec<String>>(raw).map_err(|_| ApiError::Query {
        name,
        value: raw.to_string(),
    })
}

/// The query as a build request. Parameters the classic builder has and wharf does not
/// are refused when set to anything but their default (never silently dropped).
fn request(q: &Query) -> Result<BuildRequest, ApiError> {
    if q.get("version") == Some("2") {
        return Err(ApiError::BuildKit);
    }
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::Unsupported {
            what: "a remote build context (remote=)",
        });
    }
    for (name, what) in [
        ("memory", "build resource limits (memory=)"),
        ("memswap", "build resource limits (memswap=)"),
        ("cpushares", "build resource limits (cpushares=)"),
        ("cpuquota", "build resource limits (cpuquota=)"),
        ("cpuperiod", "build resource limits (cpuperiod=)"),
        ("shmsize", "build shm size (shmsize=)"),
    ] {
        if q.int(name)?.is_some_and(|v| v != 0) {
            return Err(ApiError::Unsupported { what });
        }
    }
    for (name, what) in [
        ("squash", "squash=1"),
        ("extrahosts", "extra hosts for RUN steps (extrahosts=)"),
        ("cpusetcpus", "build cpusets (cpusetcpus=)"),
        ("cpusetmems", "build cpusets (cpusetmems=)"),
        ("cgroupparent", "a build cgroup parent (cgroupparent=)"),
        ("outputs", "build outputs (outputs=)"),
    ] {
        let set = match name {
            "squash" => q.bool(name),
            _ => q.get(name).is_some_and(|v| !v.is_empty() && v != "[]"),
        };
        if set {
            return Err(ApiError::Unsupported { what });
        }
    }
    if let Some(n) = q.get("networkmode") {
        if !matches!(n, "" | "default" | "none") {
            return Err(ApiError::Unsupported {
                what: "a RUN network other than none (networkmode=)",
            });
        }
    }
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
        let host = format!("linux/{}", wharf_types::oci::host_architecture());
        if p != host {
            return Err(ApiError::Query {
                name: "platform",
                value: p.to_string(),
            });
        }
    }
    let dockerfile = q.get("dockerfile").filter(|d| !d.is_empty());
    Ok(BuildRequest {
        dockerfile: dockerfile.map(Into::into),
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_map(q, "buildargs")?,
        labels: json_map(q, "labels")?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        cache_from: json_list(q, "cachefrom")?,
        ..BuildRequest::default()
    })
}

/// docker's classic builder output for one progress report (`None`: nothing to show).
fn progress_line(p: BuildProgress) -> Option<Bytes> {
    Some(match p {
        BuildProgress::Step { title, .. } => stream(format!("Step {title}\n")),
        BuildProgress::Cached { .. } => stream(" ---> Using cache\n".to_string()),
        BuildProgress::Output { line, .. } => stream(format!("{line}\n")),
        BuildProgress::Done { .. } => return None,
        BuildProgress::Warning(w) => stream(format!("[WARNING]: {w}\n")),
        BuildProgress::Pull(l) => line(&json!({ "status": l })),
    })
}

enum Msg {
    Line(Bytes),
    Failed(ApiError),
}

/// `POST /build?t=&dockerfile=&buildargs=&labels=&target=&nocache=&pull=&q=&rm=&forcerm=&cachefrom=`.
/// `rm`/`forcerm` are accepted and need nothing: wharf removes every step container.
pub async fn build(
    req: Request<Incoming>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let breq = request(q)?;
    let quiet = q.bool("q");
    // the context tar as a blocking `Read` (each chunk within the body deadline)
    let mut reader = crate::transfer::body_reader(req, ctx.opts.body_timeout);
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let engine = match c.engine(caller) {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.blocking_send(Msg::Failed(e));
                return;
            }
        };
        // a client that went away is not waited for; the build goes on to its end
        let mut sink = |p: BuildProgress| {
            if quiet {
                return;
            }
            if let Some(b) = progress_line(p) {
                let _ = tx.blocking_send(Msg::Line(b));
            }
        };
        match engine.build_from_tar(&breq, &mut reader, &mut sink) {
            Ok(built) => {
                let id = built.id.to_string();
                let _ = tx.blocking_send(Msg::Line(line(&json!({"aux": {"ID": id}}))));
                if quiet {
                    let _ = tx.blocking_send(Msg::Line(stream(format!("{id}\n"))));
                } else {
                    let _ = tx.blocking_send(Msg::Line(stream(format!(
                        "Successfully built {}\n",
                        built.id.short()
                    ))));
                    for t in &built.tags {
                        let _ = tx
                            .blocking_send(Msg::Line(stream(format!("Successfully tagged {t}\n"))));
                    }
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Msg::Failed(ApiError::Build(e)));
            }
        }
    });
    // a failure before any output (a refused Dockerfile or name, a bad context) is an
    // error response with its status; a later one ends the stream
    let first = match rx.recv().await {
        None => return Ok(body::streamed(200, "application/json", body::empty())),
        Some(Msg::Failed(e)) => return Err(e),
        Some(Msg::Line(b)) => b,
    };
    let (out_tx, out) = body::channel();
    tokio::spawn(async move {
        if out_tx.send(first).await.is_err() {
            return;
        }
        while let Some(m) = rx.recv().await {
            let b = match m {
                Msg::Line(b) => b,
                Msg::Failed(e) => {
                    let msg = e.message();
                    line(&json!({"errorDetail": {"message": msg}, "error": msg}))
                }
            };
            if out_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    Ok(body::streamed(200, "application/json", out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s)).unwrap()
    }

    #[test]
    fn query_maps_onto_the_request() {
        let r = request(&q(
            "t=a%3A1&t=b&dockerfile=sub%2FDf&buildargs=%7B%22V%22%3A%222%22%2C%22N%22%3Anull%7D&labels=%7B%22l%22%3A%22x%22%7D&target=prod&nocache=1&pull=1&rm=1&forcerm=0&cachefrom=%5B%22c%3A1%22%5D&networkmode=default&memory=0&shmsize=0&platform=&version=1",
        ))
        .unwrap();
        assert_eq!(r.tags, ["a:1", "b"]);
        assert_eq!(r.dockerfile.unwrap().to_str().unwrap(), "sub/Df");
        assert_eq!(r.build_args.len(), 1);
        assert_eq!(r.build_args["V"], "2");
        assert_eq!(r.labels["l"], "x");
        assert_eq!(r.target.as_deref(), Some("prod"));
        assert!(r.no_cache && r.pull);
        assert_eq!(r.cache_from, ["c:1"]);
    }

    #[test]
    fn buildkit_and_unsupported_parameters_are_refused_by_name() {
        let e = request(&q("version=2")).unwrap_err();
        assert!(e.message().contains("DOCKER_BUILDKIT=0"), "{}", e.message());
        assert_eq!(e.status(), 501);
        for bad in [
            "remote=https%3A%2F%2Fexample.com%2Fx.git",
            "memory=1000000",
            "networkmode=host",
            "squash=1",
            "extrahosts=a%3A1.2.3.4",
        ] {
            let e = request(&q(bad)).unwrap_err();
            assert_eq!(e.status(), 501, "{bad}: {}", e.message());
        }
        for bad in [
            "buildargs=%5B%5D",
            "buildargs=%7B%22a%22%3A1%7D",
            "cachefrom=x",
            "memory=x",
        ] {
            assert_eq!(request(&q(bad)).unwrap_err().status(), 400, "{bad}");
        }
    }
}
