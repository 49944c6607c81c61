//! wharf-http: the project's one HTTP/1.1 server stack, on hyper. Both servers use it: the
//! Engine API (`wharf-api`, on a unix socket) and the OCI distribution server
//! (`wharf-registry`, on TCP). It owns what every server must get right against hostile
//! clients, in one place:
//!
//! - `Limits`: connections served at once (more are closed on accept), the request head
//!   (size: hyper answers 431; a deadline from the connection's first byte: a slowloris
//!   client is cut off with 408 or a close), request bodies (size: 413; a deadline for a
//!   whole JSON body, an idle deadline per read for a streamed upload), the grace period of a
//!   graceful stop;
//! - `accept_loop` over a unix or TCP listener with those limits, and `serve_connection`
//!   (hyper's HTTP/1.1 with upgrades, stopped gracefully with the server);
//! - `body`: response bodies (whole, or streamed through a bounded channel) and request
//!   bodies (collected under a cap and a deadline, or read as a blocking `std::io::Read` by
//!   a handler on tokio's blocking pool).
//!
//! Must not: know any route, hold a buffer without a bound, or block the reactor thread.

pub mod body;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

pub use body::Body;

/// The bounds every connection is served under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's header block must arrive within this (slowloris clients are cut off).
    pub header_timeout: Duration,
    /// A whole (JSON) request body must arrive within this; a streamed upload must make
    /// progress within it (each read).
    pub body_timeout: Duration,
    /// The largest request body read into memory.
    pub max_body: usize,
    /// The largest request head (request line and headers): over it, 431.
    pub max_head: usize,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// After a stop, requests in flight get this long to finish.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_body: 4 << 20,
            max_head: 64 * 1024,
            max_connections: 1024,
            grace: Duration::from_secs(5),
        }
    }
}

/// Told to every connection when the server stops accepting (a graceful stop).
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    async fn stopped(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A listening socket the accept loop can serve.
pub trait Listener {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// What is known of the peer at accept time.
    type Peer;
    fn accept_one(&self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Peer)>>;
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Peer = ();
    async fn accept_one(&self) -> std::io::Result<(Self::Io, ())> {
        self.accept().await.map(|(s, _)| (s, ()))
    }
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Peer = std::net::SocketAddr;
    async fn accept_one(&self) -> std::io::Result<(Self::Io, std::net::SocketAddr)> {
        let (s, peer) = self.accept().await?;
        let _ = s.set_nodelay(true);
        Ok((s, peer))
    }
}

/// Accepts connections until `shutdown` completes, at most `limits.max_connections` at
/// once (one more is closed at once: the others keep being served). `on_conn` turns an
/// accepted connection into the task serving it (`None` refuses it). After the stop, the
/// connections are told (`Stop`) and given `limits.grace` to finish.
pub async fn accept_loop<L, F, Fut>(
    listener: L,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
    mut on_conn: F,
) where
    L: Listener,
    F: FnMut(L::Io, L::Peer, Stop) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut trim = tokio::time::interval(Duration::from_secs(5));
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut busy = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept_one() => match r {
                Ok((io, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // over the limit: closed at once
                        drop(io);
                        continue;
                    };
                    if let Some(task) = on_conn(io, peer, Stop(stop_rx.clone())) {
                        tokio::spawn(async move {
                            task.await;
                            drop(slot);
                        });
                    }
                }
                // out of fds or memory: back off instead of spinning
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            // idle again after a burst: free heap pages go back to the kernel
            _ = trim.tick() => {
                if slots.available_permits() == max && busy {
                    wharf_sys::process::trim_heap();
                }
                busy = slots.available_permits() != max;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(limits.grace, slots.acquire_many(max as u32)).await;
}

/// Serves one connection with hyper's HTTP/1.1 (upgrades allowed, for hijacked streams)
/// under `limits`: `handler` answers each request. Ends when the client goes, or gracefully
/// (the request in flight finishes) when the server stops.
pub async fn serve_connection<I, H, Fut>(io: I, limits: &Limits, mut stop: Stop, handler: H)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(http::Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = http::Response<Body>> + Send + 'static,
{
    let svc = service_fn(move |req| {
        let fut = handler(req);
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head.max(8192))
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.stopped() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Tunes the process for serving: malloc arenas capped (requests run on many blocking
/// threads; without a cap the RSS after a burst of parallel requests grows with them) and the
/// soft fd limit raised to the hard one (a thousand connections need more than the usual
/// 1024). Best effort; the fd limit now in force, or why not.
pub fn tune_process() -> std::io::Result<u64> {
    wharf_sys::process::limit_malloc_arenas(2);
    raise_fd_limit()
}

/// Raises the soft fd limit to the hard one (a server with a thousand connections needs more
/// than the usual 1024); the limit now in force, or why not.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    wharf_sys::process::raise_nofile_limit()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn answer(c: &mut std::net::TcpStream, req: &[u8]) -> String {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(req);
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A real server on loopback: one connection over the limit is closed at once while
    /// the others are served; an oversized head gets 431; the loop ends on shutdown.
    #[test]
    fn limits_hold_on_a_real_listener() {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let limits = Limits {
                    max_connections: 2,
                    grace: Duration::from_millis(100),
                    ..Limits::default()
                };
                let shutdown = async move {
                    let _ = stop_rx.changed().await;
                };
                let l2 = limits.clone();
                accept_loop(listener, &limits, shutdown, |io, _peer, stop| {
                    let l = l2.clone();
                    Some(async move {
                        serve_connection(io, &l, stop, |_req| async {
                            http::Response::new(body::full("ok"))
                        })
                        .await
                    })
                })
                .await;
            });
        });
        let get = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let c1 = std::net::TcpStream::connect(addr).unwrap();
        let mut c2 = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // the third is over the limit: closed without an answer
        let mut c3 = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(answer(&mut c3, get), "");
        // the held ones are served
        assert!(answer(&mut c2, get).starts_with("HTTP/1.1 200"));
        drop(c1);
        std::thread::sleep(Duration::from_millis(200));
        let mut c4 = std::net::TcpStream::connect(addr).unwrap();
        let big = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(256 * 1024)
        );
        assert!(answer(&mut c4, big.as_bytes()).starts_with("HTTP/1.1 431"));
        let mut c5 = std::net::TcpStream::connect(addr).unwrap();
        assert!(answer(&mut c5, get).ends_with("ok"));
        stop_tx.send(true).unwrap();
        server.join().unwrap();
    }
}
