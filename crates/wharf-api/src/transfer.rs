//! Images in and out over the API: `POST /images/create` (pull, docker's JSON progress
//! stream), `GET /images/get` and `GET /images/{name}/get` (save: a docker-archive tar,
//! streamed), `POST /images/load` (the request body streamed into the engine's loader).
//! HTTP mapping only: the engine's distribution service decides and verifies everything.
//!
//! Must not: buffer an archive in memory, read a server file a request names.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::Ctx;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_engine::distribution::{
    LoadRequest, Progress, PullRequest, PushRequest, SaveOutput, SaveRequest,
};
use wharf_engine::Caller;

/// docker's progress object for one of the engine's progress reports.
fn progress_json(p: Progress<'_>) -> Value {
    match p {
        // `latest: Pulling from library/busybox` → id `latest`, status `Pulling from …`
        Progress::Line(l) => match l.split_once(": ") {
            Some((id, status)) if status.starts_with("Pulling from ") => {
                json!({"status": status, "id": id})
            }
            _ => json!({ "status": l }),
        },
        Progress::Layer {
            id,
            status,
            current,
            total,
        } => {
            let detail = if status == "Downloading" || status == "Extracting" {
                json!({"current": current, "total": total})
            } else {
                json!({})
            };
            json!({"status": status, "progressDetail": detail, "id": id})
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    b.into()
}

/// The reference `fromImage` and `tag` name together (a digest tag joins with `@`).
fn pull_reference(q: &Query) -> Result<String, ApiError> {
    if q.get("fromSrc").is_some() {
        return Err(ApiError::Unsupported {
            what: "image import through POST /images/create?fromSrc",
        });
    }
    let image = q.get("fromImage").unwrap_or("");
    if image.is_empty() {
        return Err(ApiError::Query {
            name: "fromImage",
            value: String::new(),
        });
    }
    Ok(match q.get("tag").filter(|t| !t.is_empty()) {
        // the reference already carries a tag or digest: docker ignores nothing, it
        // refuses the pair; so do we, through the reference parser
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.to_string(),
    })
}

/// docker's `X-Registry-Auth`: base64url (padded or not) of `{"username","password",
/// "serveraddress"}`. Absent, empty or `{}` (what clients send without credentials): `None`,
/// the server's stored credentials apply. `identitytoken`/`registrytoken` are refused by
/// name rather than ignored.
pub(crate) fn registry_auth(
    h: Option<&http::HeaderValue>,
) -> Result<Option<(String, String)>, ApiError> {
    use base64::Engine as _;
    let Some(raw) = h.map(|v| v.as_bytes()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::RegistryAuth;
    let trimmed: Vec<u8> = raw.iter().copied().filter(|b| *b != b'=').collect();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&trimmed))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&json).map_err(|_| bad())?;
    let o = v.as_object().ok_or_else(bad)?;
    let field = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
    if !field("identitytoken").is_empty() || !field("registrytoken").is_empty() {
        return Err(ApiError::Unsupported {
            what: "token authentication in X-Registry-Auth",
        });
    }
    let (user, pass) = (field("username"), field("password"));
    if user.is_empty() && pass.is_empty() {
        return Ok(None);
    }
    Ok(Some((user.to_string(), pass.to_string())))
}

enum PullMsg {
    Progress(Bytes),
    Failed(ApiError),
}

/// `POST /images/create?fromImage=&tag=&platform=` (+ `X-Registry-Auth`): the pull's
/// progress as docker's JSON lines. A failure before any progress (a policy refusal, an unknown image) is docker's
/// error response with its status; a later one ends the stream with `{"errorDetail": …}`.
pub async fn pull(
    req: Request<Incoming>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let credentials = registry_auth(req.headers().get("x-registry-auth"))?;
    drop(req);
    let req = PullRequest {
        reference: pull_reference(q)?,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        credentials,
    };
    let (tx, mut rx) = mpsc::channel::<PullMsg>(16);
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let engine = match c.engine(caller) {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.blocking_send(PullMsg::Failed(e));
                return;
            }
        };
        // a client that went away is not waited for: the pull goes on (into the store)
        let sink = |p: Progress<'_>| {
            let _ = tx.blocking_send(PullMsg::Progress(line(&progress_json(p))));
        };
        if let Err(e) = engine.pull_image(&req, &sink) {
            let _ = tx.blocking_send(PullMsg::Failed(e.into()));
        }
    });
    relay(&mut rx)
        .await
        .map(|out| body::streamed(200, "application/json", out))
}

/// docker's progress object for one line of the engine's push output: `<12 hex>: Pushed`
/// carries the layer as `id`, anything else is a plain `status`.
fn push_line_json(l: &str) -> Value {
    match l.split_once(": ") {
        Some((id, status)) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            json!({"status": status, "progressDetail": {}, "id": id})
        }
        _ => json!({ "status": l }),
    }
}

/// docker's final `aux` object from the engine's `TAG: digest: D size: N` line.
fn push_aux(l: &str) -> Option<Value> {
    let (tag, rest) = l.split_once(": digest: ")?;
    let (digest, size) = rest.split_once(" size: ")?;
    let size: u64 = size.trim().parse().ok()?;
    Some(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}))
}

/// `POST /images/{name}/push?tag=` (+ `X-Registry-Auth`): the push's progress as docker's
/// JSON lines, ending with its `aux` (tag, digest, size). A failure before any progress is
/// an error response with its status, a later one a final `{"errorDetail": …}` line.
/// Without credentials in the header only a root caller's push uses the server's stored
/// ones (the engine's rule).
pub async fn push(
    req: Request<Incoming>,
    name: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let credentials = registry_auth(req.headers().get("x-registry-auth"))?;
    drop(req);
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let preq = PushRequest {
        reference,
        credentials,
    };
    let (tx, mut rx) = mpsc::channel::<PullMsg>(16);
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let engine = match c.engine(caller) {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.blocking_send(PullMsg::Failed(e));
                return;
            }
        };
        let sink = |l: &str| {
            let _ = tx.blocking_send(PullMsg::Progress(line(&push_line_json(l))));
            if let Some(aux) = push_aux(l) {
                let _ = tx.blocking_send(PullMsg::Progress(line(&aux)));
            }
        };
        if let Err(e) = engine.push_image(&preq, &sink) {
            let _ = tx.blocking_send(PullMsg::Failed(e.into()));
        }
    });
    relay(&mut rx)
        .await
        .map(|out| body::streamed(200, "application/json", out))
}

/// The response body of a pull or push: the first message decides between an error
/// response (a failure before any progress) and a stream; later failures end the stream
/// with docker's `errorDetail` line.
async fn relay(rx: &mut mpsc::Receiver<PullMsg>) -> Result<Body, ApiError> {
    let first = match rx.recv().await {
        None => return Ok(body::empty()),
        Some(PullMsg::Failed(e)) => return Err(e),
        Some(PullMsg::Progress(b)) => b,
    };
    let (out_tx, out) = body::channel();
    let mut rx = std::mem::replace(rx, mpsc::channel(1).1);
    tokio::spawn(async move {
        if out_tx.send(first).await.is_err() {
            return;
        }
        while let Some(m) = rx.recv().await {
            let b = match m {
                PullMsg::Progress(b) => b,
                PullMsg::Failed(e) => {
                    let msg = e.message();
                    line(&json!({"errorDetail": {"message": msg}, "error": msg}))
                }
            };
            if out_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    Ok(out)
}

/// A `Write` that hands its bytes to a response body (blocking while the client is slow);
/// a client that went away is a broken pipe.
pub(crate) struct ChannelWriter {
    pub(crate) tx: mpsc::Sender<Bytes>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /images/get?names=a&names=b` and `GET /images/{name}/get`: a docker-archive tar.
/// The names are checked (and the first failure answered with its status) before the
/// stream starts; a failure after that cuts the stream short, as dockerd does.
pub async fn save(
    names: Vec<String>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::Query {
            name: "names",
            value: String::new(),
        });
    }
    let req = SaveRequest {
        images: names,
        format: String::new(),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    };
    let checked = req.images.clone();
    crate::server::blocking(ctx, caller, move |e| {
        for n in &checked {
            e.inspect_image(n)?;
        }
        Ok(())
    })
    .await?;
    let (tx, out) = body::channel();
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = c.engine(caller) else { return };
        let mut w = ChannelWriter { tx };
        // an error mid-stream has no way back but the cut connection
        let _ = engine.save_images(&req, SaveOutput::Writer(&mut w));
    });
    Ok(body::streamed(200, "application/x-tar", out))
}

/// A blocking `Read` over a request body fed by an async task (bounded channel).
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// A request body as a blocking `Read` for an engine call, fed by a task (bounded channel;
/// each chunk must arrive within `deadline`, a stalled body is a read error).
pub(crate) fn body_reader(req: Request<Incoming>, deadline: std::time::Duration) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let mut incoming = req.into_body();
    tokio::spawn(async move {
        loop {
            let next = match tokio::time::timeout(deadline, incoming.frame()).await {
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body stalled",
                )),
                Ok(None) => return,
                Ok(Some(Err(e))) => Err(std::io::Error::other(e)),
                Ok(Some(Ok(f))) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
            };
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    });
    ChannelReader {
        rx,
        cur: Bytes::new(),
    }
}

/// `POST /images/load?quiet=`: the body (a docker/OCI archive, any size: the loader caps
/// and verifies what it keeps) streamed into the engine; docker's `{"stream": "Loaded
/// image: …\n"}` lines. Each chunk must arrive within the server's body deadline.
pub async fn load(
    req: Request<Incoming>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let mut r = body_reader(req, ctx.opts.body_timeout);
    let loaded = crate::server::blocking(ctx, caller, move |e| {
        Ok(e.load_images(&LoadRequest { platform }, &mut r)?)
    })
    .await?;
    let mut out = Vec::new();
    for img in &loaded {
        if img.tags.is_empty() {
            out.extend_from_slice(&line(
                &json!({"stream": format!("Loaded image ID: {}\n", img.id)}),
            ));
        }
        for t in &img.tags {
            out.extend_from_slice(&line(&json!({"stream": format!("Loaded image: {t}\n")})));
        }
    }
    Ok(body::streamed(200, "application/json", body::full(out)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn header(json: &str, engine: &base64::engine::GeneralPurpose) -> http::HeaderValue {
        http::HeaderValue::from_str(&engine.encode(json)).unwrap()
    }

    #[test]
    fn registry_auth_header_forms() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let creds = r#"{"username":"alice","password":"s3/cr?t>","serveraddress":"r:5000"}"#;
        for e in [&URL_SAFE, &URL_SAFE_NO_PAD, &STANDARD] {
            assert_eq!(
                registry_auth(Some(&header(creds, e))).unwrap(),
                Some(("alice".to_string(), "s3/cr?t>".to_string()))
            );
        }
        // what clients send without credentials
        assert_eq!(registry_auth(None).unwrap(), None);
        assert_eq!(registry_auth(Some(&header("{}", &URL_SAFE))).unwrap(), None);
        assert_eq!(
            registry_auth(Some(&http::HeaderValue::from_static(""))).unwrap(),
            None
        );
        // hostile or unsupported
        for bad in ["%%%", "bm90IGpzb24"] {
            let e = registry_auth(Some(&http::HeaderValue::from_static(bad))).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
        let tok = header(r#"{"identitytoken":"x"}"#, &URL_SAFE);
        assert_eq!(registry_auth(Some(&tok)).unwrap_err().status(), 501);
    }
}
