//! The registry's view of one HTTP exchange on wharf-http's stack (hyper): the request head
//! as the API reads it (`Head`: method, percent-decoded path, query, headers), the request
//! body as a blocking `Read` for handlers on the blocking pool (`Body`), and the response a
//! handler returns (`Response`, whole, file-backed or streamed) turned into hyper's
//! (`into_http`). HTTP framing (parsing, chunked bodies, `100 Continue`, keep-alive, HEAD)
//! is hyper's; this module knows nothing about the registry API and never buffers a request
//! body or a blob.

use crate::api::{Reply, Stream};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;
use wharf_http::body::BlockingBody;

/// Bytes a file-backed or streamed body is sent in.
const CHUNK: usize = 64 * 1024;

/// A request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The path, percent-decoded.
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// The raw request target as received (for the access log).
    pub target: String,
    pub headers: Vec<(String, String)>,
}

/// A request whose path does not decode (a bad `%` escape, not UTF-8).
#[derive(Debug, thiserror::Error)]
#[error("request path {target:?} is not a valid percent-encoded UTF-8 path")]
pub struct BadPath {
    pub target: String,
}

impl Head {
    /// The head of `parts`; its headers that are not UTF-8 are left out.
    pub fn from_parts(parts: &http::request::Parts) -> Result<Head, BadPath> {
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.to_string());
        let path =
            percent_decode(&parts.uri.path().replace('+', "%2B")).ok_or_else(|| BadPath {
                target: target.clone(),
            })?;
        let headers = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        Ok(Head {
            method: parts.method.as_str().to_string(),
            path,
            query: parts.uri.query().unwrap_or("").to_string(),
            target,
            headers,
        })
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k)? == name).then(|| percent_decode(v))?
        })
    }
}

/// Decodes `%XX` escapes (and `+` as space, for query values). `None` on a bad escape or
/// non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A request body, read (blocking) as it arrives; hyper has already decoded its framing.
pub struct Body {
    inner: BlockingBody,
    /// Declared Content-Length, if any (not for a chunked body).
    pub declared_len: Option<u64>,
}

impl Body {
    pub fn new(inner: BlockingBody, head: &Head) -> Body {
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let declared_len = if chunked {
            None
        } else {
            head.header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Body {
            inner,
            declared_len,
        }
    }

    /// True when the whole body has been read.
    pub fn finished(&self) -> bool {
        self.inner.finished()
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A response body.
pub enum RespBody {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

/// A response. `Content-Length` is added from the body unless a handler set it (HEAD).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: RespBody,
    /// Close the connection after this response (e.g. an unread request body).
    pub close: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: RespBody::Empty,
            close: false,
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Response {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn body(mut self, b: RespBody) -> Response {
        self.body = b;
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// What the access log says of an exchange.
pub struct LogFacts {
    pub peer: String,
    pub started: Instant,
}

/// A reply as hyper's response. File-backed and streamed bodies are copied by a producer on
/// the blocking pool through a bounded channel; HEAD gets the head alone. `body_done`: the
/// request body was read to its end (otherwise the connection is closed after the reply).
/// Logs the exchange (one line on stderr).
pub fn into_http(
    reply: Reply,
    head: &Head,
    body_done: bool,
    rt: &tokio::runtime::Handle,
    log: &LogFacts,
) -> http::Response<wharf_http::Body> {
    let Reply { resp, stream } = reply;
    let head_only = head.method == "HEAD";
    let body_len = match &resp.body {
        RespBody::Empty => stream.as_ref().map_or(0, |s| s.len),
        RespBody::Bytes(b) => b.len() as u64,
        RespBody::File { len, .. } => *len,
    };
    let mut out = http::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        out = out.header(k.as_str(), v.as_str());
    }
    if !resp.has_header("content-length") {
        out = out.header("Content-Length", body_len.to_string());
    }
    if resp.close || !body_done {
        out = out.header("Connection", "close");
    }
    let what = head.path.clone();
    let body = if head_only {
        wharf_http::body::empty()
    } else {
        match (resp.body, stream) {
            (RespBody::Bytes(b), _) => wharf_http::body::full(b),
            (RespBody::File { file, offset, len }, _) => {
                let (tx, body) = wharf_http::body::fallible_channel();
                let h = rt.clone();
                rt.spawn_blocking(move || {
                    let r = send_file(&h, file, offset, len, &tx);
                    finish(r, &tx, &what);
                });
                body
            }
            (RespBody::Empty, Some(s)) => {
                let (tx, body) = wharf_http::body::fallible_channel();
                let h = rt.clone();
                rt.spawn_blocking(move || {
                    let r = send_stream(&h, s, &tx);
                    finish(r, &tx, &what);
                });
                body
            }
            (RespBody::Empty, None) => wharf_http::body::empty(),
        }
    };
    log_line(log, head, resp.status, if head_only { 0 } else { body_len });
    match out.body(body) {
        Ok(r) => r,
        // a header a handler built is not valid HTTP: a bug, answered as one
        Err(_) => {
            let mut r = http::Response::new(wharf_http::body::empty());
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

type Tx = tokio::sync::mpsc::Sender<io::Result<Bytes>>;

/// The client went away: nothing more to send.
fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client went away")
}

/// A client that takes none of a blob's bytes for this long is dropped (it would hold a
/// blocking thread).
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn send(rt: &tokio::runtime::Handle, tx: &Tx, chunk: Vec<u8>) -> io::Result<()> {
    let sent = rt.block_on(tokio::time::timeout(
        SEND_TIMEOUT,
        tx.send(Ok(Bytes::from(chunk))),
    ));
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(gone()),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("client read nothing for {}s", SEND_TIMEOUT.as_secs()),
        )),
    }
}

fn read_chunk(r: &mut dyn Read, left: u64) -> io::Result<Vec<u8>> {
    let want = left.min(CHUNK as u64) as usize;
    let mut buf = Vec::with_capacity(want);
    r.take(want as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn send_file(
    rt: &tokio::runtime::Handle,
    mut file: File,
    offset: u64,
    len: u64,
    tx: &Tx,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut left = len;
    while left > 0 {
        let chunk = read_chunk(&mut file, left)?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob shorter than recorded: {} of {len} bytes", len - left),
            ));
        }
        left -= chunk.len() as u64;
        send(rt, tx, chunk)?;
    }
    Ok(())
}

/// Copies `len` bytes from offset `skip` of a (verifying) reader. The last chunk is held
/// back until a full-length reader has reached its end, so a reader that reports a mismatch
/// only there (an `InvalidData` error) still keeps the client from receiving every byte.
fn send_stream(rt: &tokio::runtime::Handle, s: Stream, tx: &Tx) -> io::Result<()> {
    let mut r = s.reader;
    let skipped = io::copy(&mut (&mut r).take(s.skip), &mut io::sink())?;
    if skipped != s.skip {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("blob stream ended at {skipped}, before offset {}", s.skip),
        ));
    }
    let mut left = s.len;
    let mut held: Option<Vec<u8>> = None;
    while left > 0 {
        let chunk = read_chunk(&mut r, left)?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob stream gave {} bytes at offset {skipped}, expected {}",
                    s.len - left,
                    s.len
                ),
            ));
        }
        left -= chunk.len() as u64;
        if let Some(prev) = held.replace(chunk) {
            send(rt, tx, prev)?;
        }
    }
    if s.skip + s.len == s.total && r.read(&mut [0u8; 1])? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("blob stream longer than its {} bytes", s.total),
        ));
    }
    if let Some(last) = held {
        send(rt, tx, last)?;
    }
    Ok(())
}

/// Ends a produced body: an error is logged and sent (hyper then aborts the connection, the
/// client sees a short body).
fn finish(r: io::Result<()>, tx: &Tx, what: &str) {
    if let Err(e) = r {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("wharf registry: {what}: {e}");
        }
        // never blocks (a client that stopped reading): a body that ends short of its
        // Content-Length aborts the connection as well
        let _ = tx.try_send(Err(e));
    }
}

fn log_line(log: &LogFacts, head: &Head, status: u16, bytes: u64) {
    eprintln!(
        "{} \"{} {}\" {status} {bytes} {:.3}ms",
        log.peer,
        head.method,
        head.target.escape_debug(),
        log.started.elapsed().as_secs_f64() * 1000.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%2Fb%3Ac").as_deref(), Some("a/b:c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
    }

    #[test]
    fn parses_head() {
        let req = http::Request::builder()
            .method("GET")
            .uri("/v2/a%2Fb/tags/list?n=2&last=x%3Ay")
            .header("Host", "h")
            .body(())
            .unwrap_or_default();
        let (parts, ()) = req.into_parts();
        let h = Head::from_parts(&parts).expect("head");
        assert_eq!(h.path, "/v2/a/b/tags/list");
        assert_eq!(h.query_param("last").as_deref(), Some("x:y"));
        assert_eq!(h.query_param("n").as_deref(), Some("2"));
        assert_eq!(h.header("HOST"), Some("h"));
        let req = http::Request::builder()
            .uri("/v2/%zz")
            .body(())
            .unwrap_or_default();
        let (parts, ()) = req.into_parts();
        assert!(Head::from_parts(&parts).is_err());
    }
}
