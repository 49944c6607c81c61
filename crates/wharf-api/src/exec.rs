//! Exec instances: `POST /containers/{id}/exec` records what to run (in server memory, as
//! dockerd does), `POST /exec/{id}/start` runs it — detached, or on a hijacked connection
//! (a new pty with `Tty`, else socket pairs for stdin/stdout/stderr whose output is
//! framed) — `/exec/{id}/resize` sizes its pty, `/exec/{id}/json` reports it, with the
//! exit code recorded before the hijacked stream ends.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::json_body;
use crate::server::{blocking, Ctx};
use crate::streams::{frame, switching, wants_upgrade, MULTIPLEXED, RAW};
use http::Response;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_engine::exec::{ExecRequest, ExecStdio};
use wharf_engine::Caller;

/// Exec instances kept; finished ones are dropped first when full.
const MAX_EXECS: usize = 4096;

#[derive(Default)]
struct Progress {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    /// A copy of the pty master, for resizes.
    master: Option<OwnedFd>,
}

pub struct Entry {
    id: String,
    container: String,
    req: ExecRequest,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    progress: Mutex<Progress>,
}

#[derive(Default)]
pub struct Registry(Mutex<HashMap<String, Arc<Entry>>>);

impl Registry {
    fn get(&self, id: &str) -> Result<Arc<Entry>, ApiError> {
        let m = self
            .0
            .lock()
            .map_err(|_| ApiError::NoSuchExec { id: id.into() })?;
        m.get(id)
            .cloned()
            .ok_or_else(|| ApiError::NoSuchExec { id: id.into() })
    }

    fn insert(&self, e: Entry) -> Result<(), ApiError> {
        let mut m = self.0.lock().map_err(|_| ApiError::TooManyExecs)?;
        if m.len() >= MAX_EXECS {
            m.retain(|_, e| {
                e.progress
                    .lock()
                    .map(|p| p.running || !p.started)
                    .unwrap_or(false)
            });
        }
        if m.len() >= MAX_EXECS {
            return Err(ApiError::TooManyExecs);
        }
        m.insert(e.id.clone(), Arc::new(e));
        Ok(())
    }
}

fn strs(v: &Value, k: &'static str) -> Result<Vec<String>, ApiError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or(ApiError::JsonShape {
                    what: "an array of strings",
                })
            })
            .collect(),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(_) => Err(ApiError::JsonShape {
            what: "an array of strings",
        }),
    }
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `POST /containers/{id}/exec`.
pub async fn create(
    req: http::Request<hyper::body::Incoming>,
    id: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let v = json_body(req, ctx).await?;
    if !v.is_object() {
        return Err(ApiError::JsonShape {
            what: "a JSON object",
        });
    }
    let ereq = ExecRequest {
        cmd: strs(&v, "Cmd")?,
        env: strs(&v, "Env")?,
        user: opt_str(&v, "User"),
        workdir: opt_str(&v, "WorkingDir"),
        tty: flag(&v, "Tty"),
        interactive: flag(&v, "AttachStdin"),
        detach: false,
        privileged: flag(&v, "Privileged"),
    };
    let name = id.to_string();
    let check = ereq.clone();
    // docker checks the container runs, and the request, at create
    let container = blocking(ctx, caller, move |e| {
        let info = e.running_container(&name)?;
        e.exec_spec(&info, &check)?;
        Ok(info.record.id.to_string())
    })
    .await?;
    let eid = wharf_engine::names::random_bytes::<32>()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .map_err(ApiError::io("read /dev/urandom"))?;
    ctx.execs.insert(Entry {
        id: eid.clone(),
        container,
        attach_stdin: flag(&v, "AttachStdin"),
        attach_stdout: flag(&v, "AttachStdout"),
        attach_stderr: flag(&v, "AttachStderr"),
        req: ereq,
        progress: Mutex::new(Progress::default()),
    })?;
    Ok(body::json(201, &json!({ "Id": eid })))
}

/// `GET /exec/{id}/json`.
pub async fn inspect(id: &str, ctx: &Arc<Ctx>) -> Result<Response<Body>, ApiError> {
    let e = ctx.execs.get(id)?;
    let p = e
        .progress
        .lock()
        .map_err(|_| ApiError::NoSuchExec { id: id.into() })?;
    let (entrypoint, args) = e
        .req
        .cmd
        .split_first()
        .map_or(("", &[][..]), |(a, b)| (a.as_str(), b));
    Ok(body::json(
        200,
        &json!({
            "ID": e.id,
            "Running": p.running,
            "ExitCode": p.exit_code,
            "ProcessConfig": {
                "tty": e.req.tty,
                "entrypoint": entrypoint,
                "arguments": args,
                "privileged": e.req.privileged,
                "user": e.req.user.clone().unwrap_or_default(),
            },
            "OpenStdin": e.attach_stdin,
            "OpenStderr": e.attach_stderr,
            "OpenStdout": e.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container,
            "DetachKeys": "",
            "Pid": p.pid,
        }),
    ))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(id: &str, q: &Query, ctx: &Arc<Ctx>) -> Result<Response<Body>, ApiError> {
    let (rows, cols) = crate::containers::size(q)?;
    let e = ctx.execs.get(id)?;
    let p = e
        .progress
        .lock()
        .map_err(|_| ApiError::NoSuchExec { id: id.into() })?;
    if let Some(m) = &p.master {
        wharf_engine::exec::resize_terminal(m.as_fd(), rows, cols)?;
    }
    Ok(body::json(200, &json!({})))
}

/// What a started exec hands the stream pump.
enum Started {
    Pty(OwnedFd),
    Pipes {
        stdin: Option<StdUnixStream>,
        stdout: StdUnixStream,
        stderr: StdUnixStream,
    },
}

fn pair() -> Result<(StdUnixStream, OwnedFd), ApiError> {
    let (a, b) = StdUnixStream::pair().map_err(ApiError::io("make a socket pair"))?;
    Ok((a, OwnedFd::from(b)))
}

/// `POST /exec/{id}/start` with `{"Detach": bool, "Tty": bool, "ConsoleSize": [h, w]}`.
pub async fn start(
    mut req: http::Request<hyper::body::Incoming>,
    id: &str,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let entry = ctx.execs.get(id)?;
    let upgrade = wants_upgrade(&req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let slot = req.extensions_mut().remove::<crate::server::LongSlot>();
    let v = json_body(req, ctx).await?;
    let detach = flag(&v, "Detach");
    let size = v
        .get("ConsoleSize")
        .and_then(Value::as_array)
        .and_then(|a| {
            let d = |i: usize| {
                a.get(i)
                    .and_then(Value::as_u64)
                    .and_then(|x| u16::try_from(x).ok())
            };
            Some(wharf_engine::exec::WinSize {
                rows: d(0)?,
                cols: d(1)?,
            })
        })
        .filter(|s| s.rows > 0 && s.cols > 0);
    if !detach && !upgrade {
        // its output would have nowhere to go: not silently run detached
        return Err(ApiError::UpgradeRequired);
    }
    {
        let mut p = entry
            .progress
            .lock()
            .map_err(|_| ApiError::NoSuchExec { id: id.into() })?;
        if p.started {
            return Err(ApiError::ExecStarted { id: id.into() });
        }
        p.started = true;
    }
    let e2 = entry.clone();
    if detach {
        let mut r = entry.req.clone();
        r.detach = true;
        blocking(ctx, caller, move |e| {
            e.exec(&e2.container, r)?;
            Ok(())
        })
        .await?;
        return Ok(body::no_content());
    }
    let tty = entry.req.tty;
    let (session, started) = blocking(ctx, caller, move |e| {
        let r = e2.req.clone();
        if r.tty {
            let s = e.exec_with(&e2.container, r, ExecStdio::Pty { size })?;
            let io = s.master()?.ok_or(ApiError::UpgradeRequired)?;
            let keep = s.master()?;
            if let Ok(mut p) = e2.progress.lock() {
                p.master = keep;
            }
            Ok((s, Started::Pty(io)))
        } else {
            let (out, out_theirs) = pair()?;
            let (err, err_theirs) = pair()?;
            let (stdin, stdin_theirs) = if e2.attach_stdin {
                let (a, b) = pair()?;
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            let s = e.exec_with(
                &e2.container,
                r,
                ExecStdio::Fds {
                    stdin: stdin_theirs,
                    stdout: out_theirs,
                    stderr: err_theirs,
                },
            )?;
            Ok((
                s,
                Started::Pipes {
                    stdin,
                    stdout: out,
                    stderr: err,
                },
            ))
        }
    })
    .await?;
    if let Ok(mut p) = entry.progress.lock() {
        p.running = true;
        p.pid = session.pid();
    }
    // the exit code is recorded before the stream ends (the CLI asks for it right after)
    let e3 = entry.clone();
    let exited = tokio::task::spawn_blocking(move || {
        let code = session.wait().unwrap_or(-1);
        if let Ok(mut p) = e3.progress.lock() {
            p.running = false;
            p.exit_code = Some(code);
            p.master = None;
        }
    });
    let (want_out, want_err) = (entry.attach_stdout, entry.attach_stderr);
    tokio::spawn(async move {
        let _slot = slot;
        let Ok(upgraded) = on_upgrade.await else {
            let _ = exited.await;
            return;
        };
        let client = TokioIo::new(upgraded);
        match started {
            Started::Pty(master) => pump_pty(client, master, exited).await,
            Started::Pipes {
                stdin,
                stdout,
                stderr,
            } => pump_pipes(client, stdin, stdout, stderr, want_out, want_err, exited).await,
        }
    });
    Ok(switching(if tty { RAW } else { MULTIPLEXED }))
}

/// A pty master ↔ the client, raw: blocking reads and writes on the pool (a pty master is
/// no pipe tokio could watch), ended by the pty's EOF/EIO once the command exits.
async fn pump_pty<S>(client: S, master: OwnedFd, exited: tokio::task::JoinHandle<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let reader = Arc::new(std::fs::File::from(master));
    let writer = reader.clone();
    let (mut cr, mut cw) = tokio::io::split(client);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = buf[..n].to_vec();
                    let w = writer.clone();
                    let ok = tokio::task::spawn_blocking(move || (&*w).write_all(&chunk))
                        .await
                        .map(|r| r.is_ok())
                        .unwrap_or(false);
                    if !ok {
                        break;
                    }
                }
            }
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 8192];
        loop {
            match (&*reader).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some(chunk) = rx.recv().await {
        if cw.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = exited.await;
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}

fn tokio_stream(s: StdUnixStream) -> Option<tokio::net::UnixStream> {
    s.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(s).ok()
}

/// Socket pairs ↔ the client: stdout and stderr framed, the client's bytes to stdin (its
/// end closes stdin).
async fn pump_pipes<S>(
    client: S,
    stdin: Option<StdUnixStream>,
    stdout: StdUnixStream,
    stderr: StdUnixStream,
    want_out: bool,
    want_err: bool,
    exited: tokio::task::JoinHandle<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let stdin = stdin.and_then(tokio_stream);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        let mut sink = stdin;
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(s) = sink.as_mut() {
                        if s.write_all(&buf[..n]).await.is_err() {
                            sink = None;
                        }
                    }
                }
            }
        }
        if let Some(mut s) = sink {
            let _ = s.shutdown().await;
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    for (n, s, want) in [(1u8, stdout, want_out), (2u8, stderr, want_err)] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Some(mut s) = tokio_stream(s) else { return };
            let mut buf = vec![0u8; 8192];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) if want => {
                        if tx.send(frame(n, &buf[..k])).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    drop(tx);
    while let Some(chunk) = rx.recv().await {
        if cw.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = exited.await;
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}
