//! Bodies. Responses: whole ones, or streamed through a bounded channel (a producer on the
//! blocking pool waits for a slow client instead of buffering; an error it sends aborts the
//! connection, so the client sees a short body, never a wrong one). Requests: collected into
//! memory under a size cap and a deadline (`collect`), or read as a blocking `std::io::Read`
//! (`BlockingBody`) by a handler on the blocking pool, each read bounded in time.

use bytes::{Buf, Bytes};
use http_body::Frame;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Every response body of both servers.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Chunks buffered between a producer and a slow client.
const CHANNEL_DEPTH: usize = 16;

pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|e| match e {}).boxed()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// A streamed body and the sender that feeds it (bounded: a producer on the blocking pool
/// waits in `blocking_send` while the client is slow). The body ends when the sender goes.
pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    (tx, ChannelBody { rx }.boxed())
}

/// Like [`channel`], but the producer can fail: an `Err` ends the body with that error and
/// hyper aborts the connection (a client that was promised `Content-Length` bytes sees a
/// short body).
pub fn fallible_channel() -> (mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    (tx, FallibleBody { rx }.boxed())
}

struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

struct FallibleBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
}

impl http_body::Body for FallibleBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within {secs}s")]
    Timeout { secs: u64 },
    #[error("read the request body")]
    Read(#[source] hyper::Error),
}

/// The request body, at most `limit` bytes (a declared `Content-Length` over it is refused
/// before anything is read), complete within `deadline`.
pub async fn collect(
    req: http::Request<Incoming>,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let limited = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(deadline, limited.collect()).await {
        Err(_) => Err(BodyError::Timeout {
            secs: deadline.as_secs(),
        }),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => match e.downcast::<hyper::Error>() {
            Ok(h) => Err(BodyError::Read(*h)),
            // `Limited`'s only other error
            Err(_) => Err(BodyError::TooLarge { limit }),
        },
    }
}

/// A request body read as a blocking `std::io::Read`, for a handler running on tokio's
/// blocking pool (never on the reactor thread: each read blocks on the runtime). A read that
/// gets no data within `idle` fails with `TimedOut` (a stalled upload is cut off); a body
/// that ends before its `Content-Length` fails with `UnexpectedEof`; a malformed one
/// (chunked framing) with `InvalidData`.
pub struct BlockingBody {
    body: Incoming,
    rt: tokio::runtime::Handle,
    idle: Duration,
    buf: Bytes,
    done: bool,
}

impl BlockingBody {
    /// `rt`: the runtime serving the connection.
    pub fn new(body: Incoming, rt: tokio::runtime::Handle, idle: Duration) -> BlockingBody {
        use http_body::Body as _;
        let done = body.is_end_stream();
        BlockingBody {
            body,
            rt,
            idle,
            buf: Bytes::new(),
            done,
        }
    }

    /// True when the whole body has been read.
    pub fn finished(&self) -> bool {
        self.done && self.buf.is_empty()
    }
}

impl std::io::Read for BlockingBody {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.len());
                out[..n].copy_from_slice(&self.buf[..n]);
                self.buf.advance(n);
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            let next = self
                .rt
                .block_on(tokio::time::timeout(self.idle, self.body.frame()));
            match next {
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        format!("no request body data within {}s", self.idle.as_secs()),
                    ))
                }
                Ok(None) => self.done = true,
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf = data;
                    }
                }
                Ok(Some(Err(e))) => {
                    let kind = if e.is_incomplete_message() {
                        ErrorKind::UnexpectedEof
                    } else {
                        ErrorKind::InvalidData
                    };
                    return Err(Error::new(kind, e));
                }
            }
        }
    }
}
