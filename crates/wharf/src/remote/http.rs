//! A minimal, blocking HTTP/1.1 client over a unix socket: one connection per request
//! (`Connection: close`), bodies by `Content-Length`, chunked or to the close; hijacked
//! connections (`Upgrade: tcp` → 101) for attach and exec. Bounded: a connect deadline,
//! a read deadline on every request that is not a stream, 64 KiB of response headers,
//! and a cap on every body read into memory.
//! Must not: follow redirects, keep connections, read anything without a bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connecting to the socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A request that is not a stream: its whole answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_HEADERS: usize = 64 * 1024;
/// Largest JSON body read into memory (a `ps` of many containers, an inspect).
pub const MAX_JSON: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to the wharf API at unix://{}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to unix://{} timed out after {}s", path.display(), CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout { path: PathBuf },
    #[error("{method} {target}")]
    Io {
        method: String,
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed response to {method} {target}: {what}")]
    Malformed {
        method: String,
        target: String,
        what: &'static str,
    },
    #[error("the response to {method} {target} is larger than {limit} bytes")]
    TooLarge {
        method: String,
        target: String,
        limit: u64,
    },
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, already encoded.
    pub target: String,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(&'a str, String)>,
    /// `None`: a stream read without a deadline (logs -f, events, wait, attach).
    pub timeout: Option<Duration>,
    pub upgrade: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, target: String) -> Request<'a> {
        Request {
            method,
            target,
            body: None,
            headers: Vec::new(),
            timeout: Some(REQUEST_TIMEOUT),
            upgrade: false,
        }
    }

    pub fn json(mut self, v: &serde_json::Value) -> Self {
        self.body = Some(v.to_string().into_bytes());
        self.headers
            .push(("Content-Type", "application/json".to_string()));
        self
    }

    pub fn stream(mut self) -> Self {
        self.timeout = None;
        self
    }
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `done` after the last.
    Chunked {
        left: u64,
        done: bool,
    },
    Close,
}

/// A response whose body is read as it arrives.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<UnixStream>,
    framing: Framing,
    method: String,
    target: String,
}

fn connect(path: &Path) -> Result<UnixStream, HttpError> {
    // a unix connect blocks only while the listener's backlog is full: bounded by a thread
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(p));
    });
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(HttpError::Connect {
            path: path.into(),
            source,
        }),
        Err(_) => Err(HttpError::ConnectTimeout { path: path.into() }),
    }
}

/// Sends `req` and reads the status line and headers.
pub fn send(sock: &Path, req: Request<'_>) -> Result<Response, HttpError> {
    let stream = connect(sock)?;
    let io = |source| HttpError::Io {
        method: req.method.to_string(),
        target: req.target.clone(),
        source,
    };
    stream.set_read_timeout(req.timeout).map_err(io)?;
    stream
        .set_write_timeout(Some(req.timeout.unwrap_or(REQUEST_TIMEOUT)))
        .map_err(io)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: api\r\nUser-Agent: wharf/{}\r\n",
        req.method,
        req.target,
        env!("CARGO_PKG_VERSION")
    );
    if req.upgrade {
        head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    } else {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = req.body.as_deref().unwrap_or_default();
    if req.body.is_some() || matches!(req.method, "POST" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut w = &stream;
    w.write_all(head.as_bytes()).map_err(io)?;
    w.write_all(body).map_err(io)?;
    w.flush().map_err(io)?;
    let read = stream.try_clone().map_err(io)?;
    let mut reader = BufReader::with_capacity(32 * 1024, read);
    let malformed = |what| HttpError::Malformed {
        method: req.method.to_string(),
        target: req.target.clone(),
        what,
    };
    let mut total = 0usize;
    let mut line = String::new();
    let mut read_line = |reader: &mut BufReader<UnixStream>, line: &mut String| {
        line.clear();
        let n = reader
            .by_ref()
            .take((MAX_HEADERS - total) as u64)
            .read_line(line)
            .map_err(io)?;
        total += n;
        if n == 0 || !line.ends_with('\n') {
            return Err(malformed(if total >= MAX_HEADERS {
                "headers over 64 KiB"
            } else {
                "headers cut short"
            }));
        }
        Ok(())
    };
    read_line(&mut reader, &mut line)?;
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|l| l.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let mut headers = Vec::new();
    loop {
        read_line(&mut reader, &mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let framing = if status == 101 || req.method == "HEAD" || status == 204 || status == 304 {
        if status == 101 {
            Framing::Close
        } else {
            Framing::Length(0)
        }
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        Framing::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(n) = header("content-length") {
        Framing::Length(n.parse().map_err(|_| malformed("bad content-length"))?)
    } else {
        Framing::Close
    };
    Ok(Response {
        status,
        headers,
        reader,
        framing,
        method: req.method.to_string(),
        target: req.target,
    })
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The whole body, at most `limit` bytes.
    pub fn bytes(mut self, limit: u64) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        let n = self
            .by_ref()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|source| HttpError::Io {
                method: self.method.clone(),
                target: self.target.clone(),
                source,
            })?;
        if n as u64 > limit {
            return Err(HttpError::TooLarge {
                method: self.method,
                target: self.target,
                limit,
            });
        }
        Ok(out)
    }

    /// The hijacked connection after a 101: the reader (with what it already buffered) and
    /// a writer on the same socket.
    pub fn into_hijacked(self) -> std::io::Result<(BufReader<UnixStream>, UnixStream)> {
        let writer = self.reader.get_ref().try_clone()?;
        Ok((self.reader, writer))
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Close => self.reader.read(buf),
            Framing::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    (&mut self.reader).take(1024).read_line(&mut line)?;
                    if line.trim().is_empty() {
                        // the CRLF after the previous chunk
                        line.clear();
                        (&mut self.reader).take(1024).read_line(&mut line)?;
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
        }
    }
}

/// Percent-encodes a query value or path segment.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        assert_eq!(super::enc("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(super::enc("{\"x\":1}"), "%7B%22x%22%3A1%7D");
    }
}
