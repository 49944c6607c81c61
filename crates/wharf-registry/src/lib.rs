//! wharf-registry: the OCI distribution server (`wharf registry serve`).
//!
//! Owns the listening socket and the glue between wharf-http (the project's one HTTP stack,
//! on hyper: connection limits, header deadline and size, keep-alive), the request/response
//! mapping and access log (`message`, one line per request on stderr), the API (`api`,
//! handlers run on tokio's blocking pool), auth (`auth`) and the backends: the registry's own
//! root (`storage`) or, with `Config::engine_root`, the engine's store served read-only
//! (`engine_view`). It must not depend on anything but wharf-types, wharf-store and
//! wharf-http (with wharf-sys for name resolution), and
//! never builds a path from an unvalidated name.

mod api;
mod auth;
pub mod client;
mod engine_view;
mod message;
mod names;
mod storage;

pub use auth::{htpasswd_line, HtpasswdError};
pub use engine_view::EngineOpenError;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use wharf_types::error::HasKind;
use wharf_types::ErrorKind;

/// Configuration of a registry server.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: String,
    /// The registry's own storage root (unused when `engine_root` is set).
    pub root: PathBuf,
    /// Serve the engine store at this root instead, read-only (`--engine-store`).
    pub engine_root: Option<PathBuf>,
    pub htpasswd: Option<PathBuf>,
    pub read_only: bool,
    pub max_manifest_size: u64,
    /// Requests handled at once (the blocking pool: a handler reads its body and writes
    /// storage blocking); connections are many more (wharf-http's limit).
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("registry storage {path}: {source}")]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineOpenError),
    #[error(transparent)]
    Htpasswd(#[from] HtpasswdError),
    #[error("accept on {addr}: {source}")]
    Accept {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl HasKind for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServeError::Bind { .. } | ServeError::Accept { .. } => ErrorKind::Unavailable,
            ServeError::Storage { .. } => ErrorKind::Internal,
            ServeError::Engine(e) => e.kind(),
            ServeError::Htpasswd(e) => e.kind(),
        }
    }
}

/// A bound, not yet running, registry server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    registry: Arc<api::Registry>,
    threads: usize,
    stop: Arc<watch::Sender<bool>>,
}

/// Stops a running server from another thread (or a signal waiter).
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl Server {
    /// Opens the storage, loads the htpasswd file and binds the address.
    pub fn bind(cfg: &Config) -> Result<Server, ServeError> {
        let backend = match &cfg.engine_root {
            Some(root) => api::Backend::Engine(Box::new(engine_view::EngineView::open(root)?)),
            None => api::Backend::Own(storage::Storage::open(&cfg.root).map_err(|source| {
                ServeError::Storage {
                    path: cfg.root.clone(),
                    source,
                }
            })?),
        };
        let htpasswd = match &cfg.htpasswd {
            Some(p) => Some(auth::Htpasswd::load(p)?),
            None => None,
        };
        let bind_err = |source| ServeError::Bind {
            addr: cfg.addr.clone(),
            source,
        };
        // names resolved without NSS (static binary)
        let addrs = wharf_sys::resolve::socket_addrs(&cfg.addr).map_err(bind_err)?;
        let listener = TcpListener::bind(&addrs[..]).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: cfg.addr.clone(),
            source,
        })?;
        Ok(Server {
            listener,
            addr,
            registry: Arc::new(api::Registry {
                backend,
                htpasswd,
                read_only: cfg.read_only,
                max_manifest_size: cfg.max_manifest_size,
            }),
            threads: cfg.threads.max(1),
            stop: Arc::new(watch::channel(false).0),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
        }
    }

    /// Serves until `ShutdownHandle::shutdown` is called: one tokio reactor thread runs
    /// wharf-http's accept loop and connections (hyper); handlers run on the blocking pool
    /// (`threads` of them at once). Requests in flight get a short grace period.
    pub fn run(self) -> Result<(), ServeError> {
        let fail = |source| ServeError::Accept {
            addr: self.addr,
            source,
        };
        self.listener.set_nonblocking(true).map_err(fail)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(self.threads)
            .thread_keep_alive(Duration::from_secs(10))
            .build()
            .map_err(fail)?;
        // malloc arenas capped, fds raised for a thousand clients; best effort
        let _ = wharf_http::tune_process();
        let limits = Arc::new(wharf_http::Limits {
            // an upload must make progress within this (each read); its size is the disk's
            body_timeout: BODY_IDLE_TIMEOUT,
            grace: Duration::from_secs(1),
            ..wharf_http::Limits::default()
        });
        let reg = self.registry.clone();
        let mut stop = self.stop.subscribe();
        let served = rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(self.listener).map_err(fail)?;
            let shutdown = async move {
                while !*stop.borrow_and_update() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            };
            let conn_limits = limits.clone();
            wharf_http::accept_loop(listener, &limits, shutdown, |stream, peer, stop| {
                let reg = reg.clone();
                let limits = conn_limits.clone();
                let peer = peer.to_string();
                Some(async move {
                    let l = limits.clone();
                    wharf_http::serve_connection(stream, &l, stop, move |req| {
                        handle(req, reg.clone(), limits.clone(), peer.clone())
                    })
                    .await
                })
            })
            .await;
            Ok(())
        });
        // handlers still blocking (a stalled upload) are not waited for
        rt.shutdown_timeout(Duration::from_secs(1));
        served
    }
}

/// An upload that sends nothing for this long is cut off.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request: its head parsed, the registry's handler run on the blocking pool with the
/// body as a blocking reader, the reply turned into hyper's response (and logged).
async fn handle(
    req: http::Request<hyper::body::Incoming>,
    reg: Arc<api::Registry>,
    limits: Arc<wharf_http::Limits>,
    peer: String,
) -> http::Response<wharf_http::Body> {
    let log = message::LogFacts {
        peer,
        started: Instant::now(),
    };
    let rt = tokio::runtime::Handle::current();
    let (parts, incoming) = req.into_parts();
    let head = match message::Head::from_parts(&parts) {
        Ok(h) => h,
        Err(e) => {
            let reply = api::bad_request(&e.to_string());
            let head = message::Head {
                method: parts.method.as_str().to_string(),
                path: String::new(),
                query: String::new(),
                target: e.target,
                headers: Vec::new(),
            };
            return message::into_http(reply, &head, false, &rt, &log);
        }
    };
    let idle = limits.body_timeout;
    let rt2 = rt.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut body = message::Body::new(
            wharf_http::body::BlockingBody::new(incoming, rt2.clone(), idle),
            &head,
        );
        let reply = reg.handle(&head, &mut body);
        message::into_http(reply, &head, body.finished(), &rt2, &log)
    })
    .await;
    match done {
        Ok(r) => r,
        // the handler panicked (a bug): the connection gets a 500 and is closed
        Err(_) => {
            let mut r = http::Response::new(wharf_http::body::empty());
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            r
        }
    }
}
