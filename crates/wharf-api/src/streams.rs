//! The streaming container routes: `logs` (docker's multiplexed frames without a TTY, raw
//! bytes with one) and `attach` (a hijacked connection: `Upgrade: tcp` → 101, then the
//! container's output to the client and the client's bytes to the container's stdin,
//! through the monitor's attach socket). An attach made before the container starts is
//! handed its monitor connection by the start, so it sees all of the output.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use bytes::Bytes;
use http::Response;
use hyper_util::rt::TokioIo;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use wharf_engine::containers::{LogsRequest, Stream};
use wharf_engine::state::Status;
use wharf_engine::Caller;

pub const RAW: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// The largest frame read from a monitor (it writes at most 8 KiB).
const MAX_FRAME: usize = 1 << 20;

/// docker's stream frame: `[stream, 0, 0, 0, len (u32 BE)]` + data.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    v.extend_from_slice(data);
    v.into()
}

fn time_param(q: &Query, k: &str) -> Option<String> {
    q.get(k)
        .filter(|v| !v.is_empty() && *v != "0")
        .map(str::to_string)
}

/// `GET /containers/{id}/logs?follow&stdout&stderr&since&until&timestamps&tail`.
pub async fn logs(
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::NoStream);
    }
    let req = LogsRequest {
        container: id.to_string(),
        follow: q.bool("follow"),
        tail: q.get("tail").filter(|t| !t.is_empty()).map(str::to_string),
        since: time_param(q, "since"),
        until: time_param(q, "until"),
        timestamps: q.bool("timestamps"),
        details: q.bool("details"),
    };
    let name = id.to_string();
    let tty = blocking(ctx, caller, move |e| {
        Ok(e.container(&name)?.record.config.tty)
    })
    .await?;
    let (tx, out) = body::channel();
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = c.engine(caller) else { return };
        let mut sink = |s: Stream, data: &[u8]| -> std::io::Result<()> {
            let (want, n) = match s {
                Stream::Stdout => (stdout, 1),
                Stream::Stderr => (stderr, 2),
            };
            if !want {
                return Ok(());
            }
            let chunk = if tty {
                Bytes::copy_from_slice(data)
            } else {
                frame(n, data)
            };
            tx.blocking_send(chunk)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        };
        // an error after the headers went out ends the stream (docker does the same)
        let gone = tx.clone();
        let _ = engine.logs_until(&req, &mut sink, &|| gone.is_closed());
    });
    Ok(body::streamed(
        200,
        if tty { RAW } else { MULTIPLEXED },
        out,
    ))
}

/// Where an attach gets its monitor connection from.
enum Source {
    Now(StdUnixStream),
    AtStart(oneshot::Receiver<StdUnixStream>),
}

fn connect(path: &std::path::Path) -> Result<StdUnixStream, ApiError> {
    let dir = path.parent().unwrap_or(path);
    let (_fd, addr) = wharf_engine::monitor::attach_addr(dir)
        .map_err(ApiError::io("open the container's run directory"))?;
    StdUnixStream::connect(addr).map_err(ApiError::io("connect to the container's monitor"))
}

/// Whether the request asks for a hijacked connection.
pub fn wants_upgrade(req: &http::Request<hyper::body::Incoming>) -> bool {
    req.headers().contains_key(http::header::UPGRADE)
}

/// The 101 answer to a hijack.
pub fn switching(ctype: &'static str) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("tcp"));
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ctype),
    );
    r
}

/// `POST /containers/{id}/attach?stream&stdin&stdout&stderr`.
pub async fn attach(
    req: http::Request<hyper::body::Incoming>,
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    if !wants_upgrade(&req) {
        return Err(ApiError::UpgradeRequired);
    }
    attach_as(req, id, q, ctx, caller, None).await
}

/// `GET /containers/{id}/attach/ws?stream&stdin&stdout&stderr`: the attach over a
/// websocket (RFC 6455, `crate::ws`): the container's output raw (not multiplexed, as
/// docker's), in binary messages from API 1.42 on and text ones before (docker's), the
/// client's messages to its stdin; a close frame ends the stdin.
pub async fn attach_ws(
    req: http::Request<hyper::body::Incoming>,
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
    binary: bool,
) -> Result<Response<Body>, ApiError> {
    let accept = crate::ws::accept_key(&req)?;
    attach_as(req, id, q, ctx, caller, Some((accept, binary))).await
}

/// An attach, hijacked (`ws` None) or over a websocket (`Sec-WebSocket-Accept`, binary).
async fn attach_as(
    mut req: http::Request<hyper::body::Incoming>,
    id: &str,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
    ws: Option<(String, bool)>,
) -> Result<Response<Body>, ApiError> {
    let (want_in, want_out, want_err) = (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let name = id.to_string();
    let c = ctx.clone();
    let (full, tty, open_stdin, source) = blocking(ctx, caller, move |e| {
        let info = e.container(&name)?;
        let full = info.record.id.to_string();
        let cfg = &info.record.config;
        let source = match info.state.status() {
            Status::Created | Status::Exited | Status::Dead => {
                let (tx, rx) = oneshot::channel();
                if let Ok(mut m) = c.pending_attach.lock() {
                    // attaches that gave up (their container removed, their client gone)
                    m.retain(|_, v| {
                        v.retain(|w| !w.is_closed());
                        !v.is_empty()
                    });
                    let waiting = m.entry(full.clone()).or_default();
                    // a handful per container; more are refused rather than kept
                    if waiting.len() >= 8 {
                        return Err(ApiError::TooManyAttach);
                    }
                    waiting.push(tx);
                }
                Source::AtStart(rx)
            }
            _ => {
                let (_, path) = e.attach_socket(&name)?;
                Source::Now(connect(&path)?)
            }
        };
        Ok((full, cfg.tty, cfg.open_stdin, source))
    })
    .await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let slot = req.extensions_mut().remove::<crate::server::LongSlot>();
    let c = ctx.clone();
    let answer = match &ws {
        None => switching(if tty { RAW } else { MULTIPLEXED }),
        Some((accept, _)) => crate::ws::switching(accept),
    };
    tokio::spawn(async move {
        let _slot = slot;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let monitor = match source {
            Source::Now(s) => s,
            Source::AtStart(rx) => match wait_for_start(rx, &c, caller, &full).await {
                Some(s) => s,
                None => return,
            },
        };
        let io = TokioIo::new(upgraded);
        let stdin = want_in && open_stdin;
        match ws {
            None => pump_monitor(io, monitor, tty, stdin, want_out, want_err).await,
            Some((_, binary)) => {
                // the monitor's pump talks to one end of a pipe (raw output, as with a
                // TTY), the websocket framing to the other
                let (near, far) = tokio::io::duplex(64 * 1024);
                let framing = tokio::spawn(crate::ws::relay(io, far, binary));
                pump_monitor(near, monitor, true, stdin, want_out, want_err).await;
                let _ = framing.await;
            }
        }
    });
    drop(req);
    Ok(answer)
}

/// Waits for the start that hands this attach its monitor connection; gives up when the
/// container is gone, and connects by itself when something else started it.
async fn wait_for_start(
    mut rx: oneshot::Receiver<StdUnixStream>,
    ctx: &Arc<Ctx>,
    caller: Caller,
    id: &str,
) -> Option<StdUnixStream> {
    loop {
        tokio::select! {
            r = &mut rx => return r.ok(),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let name = id.to_string();
                let state = blocking(ctx, caller, move |e| {
                    let info = e.container(&name)?;
                    if info.state.is_active() && info.state.monitor_alive() {
                        let (_, path) = e.attach_socket(&name)?;
                        return Ok(Some(connect(&path)?));
                    }
                    Ok(None)
                })
                .await;
                match state {
                    Ok(Some(s)) => return Some(s),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
        }
    }
}

/// Copies the monitor's frames to the client (unframed with a TTY, only the streams asked
/// for) and, with `stdin`, the client's bytes to the monitor, whose EOF is passed on as a
/// half-close. Ends when the monitor closes (the container is gone) or the client does.
async fn pump_monitor<S>(
    client: S,
    monitor: StdUnixStream,
    tty: bool,
    stdin: bool,
    out: bool,
    err: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    if monitor.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(monitor) = tokio::net::UnixStream::from_std(monitor) else {
        return;
    };
    let (mut mr, mut mw) = monitor.into_split();
    let (mut cr, mut cw) = tokio::io::split(client);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if stdin => {
                    if mw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
        if stdin {
            let _ = mw.shutdown().await;
        }
        // keep the write half open otherwise: the monitor reads a closed socket as a
        // detach
        std::future::pending::<()>().await;
    });
    let mut head = [0u8; 8];
    let mut data = Vec::new();
    loop {
        if mr.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            break;
        }
        data.resize(len, 0);
        if mr.read_exact(&mut data).await.is_err() {
            break;
        }
        let wanted = match head[0] {
            2 => err,
            _ => out,
        };
        if !wanted {
            continue;
        }
        let w = if tty {
            cw.write_all(&data).await
        } else {
            cw.write_all(&frame(head[0], &data)).await
        };
        if w.is_err() {
            break;
        }
    }
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}
