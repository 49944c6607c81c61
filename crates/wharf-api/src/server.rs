//! The server: one tokio reactor thread accepting on the unix socket, a task per
//! connection (HTTP/1.1 by hyper, with upgrades for the hijacked attach/exec streams), the
//! engine called on the blocking pool. Each connection's peer credentials (`SO_PEERCRED`)
//! become the engine's caller, so the admin policy's audit log names who asked.
//!
//! Limits: concurrent connections (over it a connection is closed at once), the header
//! block (size, and a deadline from the first byte: a slow client is cut off), request
//! bodies (size and deadline). SIGTERM/SIGINT stop accepting, let requests in flight end
//! (up to a grace period) and return; containers keep running under their own monitors.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::{listen, router};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Semaphore};
use wharf_engine::daemon::DaemonConfig;
use wharf_engine::{Caller, Engine, EngineOptions};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub engine: EngineOptions,
    /// daemon.json, read once when the server starts (as dockerd does).
    pub daemon: DaemonConfig,
    /// A request's header block must arrive within this (slowloris clients are cut off).
    pub header_timeout: Duration,
    /// A request body must arrive within this.
    pub body_timeout: Duration,
    /// The largest request body (JSON) read.
    pub max_body: usize,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// After a stop signal, requests in flight get this long to finish.
    pub grace: Duration,
    /// Long-lived requests (wait, logs -f, events, attach, exec start, stats stream) one
    /// caller uid may have open at once; more are answered 429.
    pub max_long_per_uid: usize,
}

impl ServeOptions {
    pub fn new(engine: EngineOptions, daemon: DaemonConfig) -> ServeOptions {
        ServeOptions {
            engine,
            daemon,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_body: 4 << 20,
            max_connections: 1024,
            grace: Duration::from_secs(5),
            max_long_per_uid: 64,
        }
    }
}

/// What every handler shares.
pub(crate) struct Ctx {
    pub opts: ServeOptions,
    /// Exec instances made by `POST /containers/{id}/exec` (server memory, as dockerd's).
    pub execs: crate::exec::Registry,
    /// Hijacked attach requests waiting for their container's start: the start connects
    /// them to the monitor before the container runs, so no output is lost.
    pub pending_attach:
        Mutex<HashMap<String, Vec<oneshot::Sender<std::os::unix::net::UnixStream>>>>,
    /// Long-lived requests open per caller uid.
    pub long: Mutex<HashMap<u32, usize>>,
}

/// One long-lived request of a caller, counted until every clone is dropped (the request,
/// its response body, a hijacked connection's task).
#[derive(Clone)]
pub(crate) struct LongSlot(#[allow(dead_code)] Arc<SlotGuard>);

pub(crate) struct SlotGuard {
    ctx: Arc<Ctx>,
    uid: u32,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.ctx.long.lock() {
            if let Some(n) = m.get_mut(&self.uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.uid);
                }
            }
        }
    }
}

/// A slot for a long-lived request of `uid`, or docker's 429 when it has its share open.
pub(crate) fn long_slot(ctx: &Arc<Ctx>, uid: u32) -> Result<LongSlot, ApiError> {
    let limit = ctx.opts.max_long_per_uid;
    let mut m = ctx
        .long
        .lock()
        .map_err(|_| ApiError::TooManyLong { uid, limit })?;
    let n = m.entry(uid).or_insert(0);
    if *n >= limit {
        return Err(ApiError::TooManyLong { uid, limit });
    }
    *n += 1;
    Ok(LongSlot(Arc::new(SlotGuard {
        ctx: ctx.clone(),
        uid,
    })))
}

impl Ctx {
    /// An engine for one request, acting for `caller`: the policy file is read per request
    /// (as by each CLI command); daemon.json was read once.
    pub fn engine(&self, caller: Caller) -> Result<Engine, ApiError> {
        Ok(
            Engine::open_with(self.opts.engine.clone(), self.opts.daemon.clone())?
                .with_caller(caller),
        )
    }
}

/// Runs `f` with an engine for `caller` on the blocking pool.
pub(crate) async fn blocking<T, F>(ctx: &Arc<Ctx>, caller: Caller, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
{
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let engine = ctx.engine(caller)?;
        f(&engine)
    })
    .await
    .map_err(ApiError::Task)?
}

/// An engine action whose answer is docker's 204: `f` on the blocking pool, its value dropped.
pub(crate) async fn no_content<T, F>(
    ctx: &Arc<Ctx>,
    caller: Caller,
    f: F,
) -> Result<hyper::Response<crate::body::Body>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
{
    blocking(ctx, caller, f).await?;
    Ok(crate::body::no_content())
}

/// Serves the Engine API on `listener` until SIGTERM or SIGINT; tells systemd READY=1 once
/// accepting and STOPPING=1 when stopping.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    opts: ServeOptions,
) -> Result<(), ApiError> {
    listener
        .set_nonblocking(true)
        .map_err(ApiError::io("make the listening socket non-blocking"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(256)
        .thread_keep_alive(Duration::from_secs(10))
        .build()
        .map_err(ApiError::io("start the server's runtime"))?;
    let ctx = Arc::new(Ctx {
        opts,
        execs: Default::default(),
        pending_attach: Mutex::new(HashMap::new()),
        long: Mutex::new(HashMap::new()),
    });
    let grace = ctx.opts.grace;
    let served = rt.block_on(accept_loop(listener, ctx));
    // engine calls still blocking (a `wait`, a `logs -f` of a quiet container) are not
    // waited for: the process ends, the containers' monitors go on
    rt.shutdown_timeout(grace.min(Duration::from_secs(1)));
    served
}

async fn accept_loop(
    listener: std::os::unix::net::UnixListener,
    ctx: Arc<Ctx>,
) -> Result<(), ApiError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(ApiError::io("register the listening socket"))?;
    let mut term = signal(SignalKind::terminate()).map_err(ApiError::io("handle SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(ApiError::io("handle SIGINT"))?;
    let max = ctx.opts.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    listen::notify("READY=1");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // over the limit: closed at once, the others keep being served
                        drop(stream);
                        continue;
                    };
                    let caller = match stream.peer_cred() {
                        Ok(c) => Caller {
                            uid: c.uid(),
                            gid: c.gid(),
                            pid: c.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                        },
                        // no credentials, no service: the caller must be known
                        Err(_) => continue,
                    };
                    let ctx = ctx.clone();
                    let stop = stop_rx.clone();
                    tokio::spawn(async move {
                        connection(stream, ctx, caller, stop).await;
                        drop(slot);
                    });
                }
                // out of fds or memory: back off instead of spinning
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    listen::notify("STOPPING=1");
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = ctx.opts.grace;
    let _ = tokio::time::timeout(grace, slots.acquire_many(max as u32)).await;
    Ok(())
}

async fn connection(
    stream: tokio::net::UnixStream,
    ctx: Arc<Ctx>,
    caller: Caller,
    mut stop: watch::Receiver<bool>,
) {
    let svc_ctx = ctx.clone();
    let svc = service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, ctx, caller).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.opts.header_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle(
    req: http::Request<Incoming>,
    ctx: Arc<Ctx>,
    caller: Caller,
) -> http::Response<Body> {
    // `wharf -D system service`: one line per request on stderr (method, path and query,
    // status), to see what a client calls
    let trace = ctx
        .opts
        .engine
        .debug
        .then(|| format!("{} {}", req.method(), req.uri()));
    let mut resp = match router::route(req, &ctx, caller).await {
        Ok(r) => r,
        Err(e) => body::error(&e),
    };
    if let Some(t) = trace {
        eprintln!("wharf: api: {t} -> {}", resp.status().as_u16());
    }
    let h = resp.headers_mut();
    let v = http::HeaderValue::from_static;
    h.insert("api-version", v(crate::version::API_VERSION));
    h.insert("docker-experimental", v("false"));
    h.insert("ostype", v("linux"));
    h.insert(
        http::header::SERVER,
        v(concat!("wharf/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}
