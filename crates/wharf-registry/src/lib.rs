//! wharf-registry: the OCI distribution server (`wharf registry serve`).
//!
//! Owns the listening socket, a small fixed pool of worker threads (one connection each,
//! keep-alive), the access log (one line per request on stderr), and the glue between the
//! HTTP core (`http`), the API (`api`), auth (`auth`) and the backends: the registry's own
//! root (`storage`) or, with `Config::engine_root`, the engine's store served read-only
//! (`engine_view`). It must not depend on anything but wharf-types (and wharf-store), and
//! never builds a path from an unvalidated name.

mod api;
mod auth;
pub mod client;
mod engine_view;
mod http;
mod names;
mod storage;

pub use auth::{htpasswd_line, HtpasswdError};
pub use engine_view::EngineOpenError;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// Worker threads (concurrent connections served).
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
    stop: Arc<AtomicBool>,
}

/// Stops a running server from another thread (or a signal waiter).
#[derive(Clone)]
pub struct ShutdownHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
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
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            addr: self.addr,
            stop: self.stop.clone(),
        }
    }

    /// Serves until `ShutdownHandle::shutdown` is called. Connections in flight are
    /// abandoned (their worker threads are detached).
    pub fn run(self) -> Result<(), ServeError> {
        let (tx, rx) = mpsc::sync_channel::<TcpStream>(self.threads * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..self.threads {
            let rx = rx.clone();
            let reg = self.registry.clone();
            std::thread::spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match next {
                    Ok(s) => serve_connection(&reg, s),
                    Err(_) => return,
                }
            });
        }
        for conn in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            match conn {
                Ok(s) => {
                    if tx.send(s).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.raw_os_error() == Some(24) => {
                    // EMFILE: back off instead of spinning
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(ServeError::Accept {
                        addr: self.addr,
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

fn serve_connection(reg: &api::Registry, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "-".into());
    let _ = stream.set_write_timeout(Some(Duration::from_secs(300)));
    let _ = stream.set_nodelay(true);
    let Ok(wstream) = stream.try_clone() else {
        return;
    };
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, wstream);
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    loop {
        // a short idle timeout between requests frees the worker; a longer one inside one
        let _ = r.get_ref().set_read_timeout(Some(IDLE_TIMEOUT));
        let head = match http::read_head(&mut r) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    let resp = http::Response::new(400);
                    let _ = resp.write_to(&mut w, false, false);
                }
                return;
            }
        };
        let start = Instant::now();
        let _ = r.get_ref().set_read_timeout(Some(BODY_TIMEOUT));
        let mut body = match http::Body::new(&mut r, &head) {
            Ok(b) => b,
            Err(_) => {
                let _ = http::Response::new(400).write_to(&mut w, false, false);
                return;
            }
        };
        let api::Reply { resp, stream } = reg.handle(&head, &mut body);
        let status = resp.status;
        // An unread request body: drain a little, otherwise close the connection.
        let body_done = !body.continue_pending() && body.drain(1 << 20);
        let keep = head.keep_alive && !resp.close && body_done;
        let head_only = head.method == "HEAD";
        let result = resp
            .write_to(&mut w, head_only, keep)
            .and_then(|sent| match stream {
                Some(s) if !head_only => send_stream(&mut w, s),
                _ => Ok(sent),
            });
        if let Err(e) = &result {
            if e.kind() == std::io::ErrorKind::InvalidData {
                // A streamed layer failed verification: log it and drop the connection without
                // flushing the buffered tail, so the client sees a short body.
                let _ = writeln!(std::io::stderr(), "wharf registry: {}: {e}", head.path);
                log_line(&peer, &head, status, 0, start.elapsed());
                let _ = w.into_parts();
                return;
            }
        }
        let sent = result.as_ref().copied().unwrap_or(0);
        log_line(&peer, &head, status, sent, start.elapsed());
        if result.is_err() || !keep {
            let _ = w.flush();
            return;
        }
    }
}

/// Copies a streamed body (its head is already written). A full-length body is read to its
/// end before the final flush, so a verifying reader reports a mismatch (an `InvalidData`
/// error) while the last buffered bytes can still be withheld (see `serve_connection`).
fn send_stream<W: Write>(w: &mut W, s: api::Stream) -> std::io::Result<u64> {
    let mut r = s.reader;
    let skipped = std::io::copy(&mut (&mut r).take(s.skip), &mut std::io::sink())?;
    let sent = if skipped == s.skip {
        std::io::copy(&mut (&mut r).take(s.len), w)?
    } else {
        0
    };
    if sent != s.len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "blob stream gave {sent} bytes at offset {skipped}, expected {}",
                s.len
            ),
        ));
    }
    if s.skip + s.len == s.total && r.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("blob stream longer than its {} bytes", s.total),
        ));
    }
    w.flush()?;
    Ok(sent)
}

fn log_line(peer: &str, head: &http::Head, status: u16, bytes: u64, d: Duration) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "{peer} \"{} {}\" {status} {bytes} {:.3}ms",
        head.method,
        head.target.escape_debug(),
        d.as_secs_f64() * 1000.0
    );
}
