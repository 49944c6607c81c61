//! A small HTTP/1.1 server core on `std::net`: request-head parsing, streaming request bodies
//! (Content-Length and chunked), `Expect: 100-continue`, keep-alive, and response writing
//! (in-memory or file-backed bodies, HEAD without a body). It knows nothing about the registry
//! API and must not buffer a request body.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed request head.
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
    pub keep_alive: bool,
}

impl Head {
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

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one CRLF (or LF) terminated line, at most `limit` bytes. `Ok(None)` at clean EOF.
fn read_line<R: BufRead>(r: &mut R, limit: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| bad("non-utf8 header"))
}

/// Reads a request head. `Ok(None)` when the peer closed the connection between requests.
pub fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut used = 0usize;
    let line = loop {
        match read_line(r, MAX_HEAD)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue, // tolerate stray CRLF between requests
            Some(l) => break l,
        }
    };
    used += line.len();
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if parts.next().is_none() => (m, t, v),
        _ => return Err(bad("malformed request line")),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("unsupported http version"));
    }
    let mut headers = Vec::new();
    loop {
        let l = read_line(r, MAX_HEAD)?.ok_or_else(|| bad("truncated head"))?;
        used += l.len() + 2;
        if used > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("malformed header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(&raw_path.replace('+', "%2B")).ok_or_else(|| bad("bad path"))?;
    let conn = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let keep_alive = match conn.as_deref() {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    Ok(Some(Head {
        method: method.to_string(),
        path,
        query: query.to_string(),
        target: target.to_string(),
        headers,
        keep_alive,
    }))
}

enum BodyKind {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
}

/// A streaming request body over the connection's reader.
pub struct Body<'a> {
    r: &'a mut BufReader<TcpStream>,
    kind: BodyKind,
    /// Declared Content-Length, if any.
    pub declared_len: Option<u64>,
    continue_pending: bool,
}

impl<'a> Body<'a> {
    pub fn new(r: &'a mut BufReader<TcpStream>, head: &Head) -> io::Result<Body<'a>> {
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let declared_len = match head.header("content-length") {
            Some(v) => Some(v.parse::<u64>().map_err(|_| bad("bad content-length"))?),
            None => None,
        };
        let kind = if chunked {
            BodyKind::Chunked {
                left_in_chunk: 0,
                done: false,
            }
        } else {
            BodyKind::Length(declared_len.unwrap_or(0))
        };
        let continue_pending = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        Ok(Body {
            r,
            kind,
            declared_len: if chunked { None } else { declared_len },
            continue_pending,
        })
    }

    /// True when the whole body has been read.
    pub fn finished(&self) -> bool {
        match self.kind {
            BodyKind::Length(n) => n == 0,
            BodyKind::Chunked { done, .. } => done,
        }
    }

    /// True when a `100 Continue` was requested and has not been sent (the client may not
    /// have sent the body at all).
    pub fn continue_pending(&self) -> bool {
        self.continue_pending
    }

    /// Reads and discards up to `limit` bytes of what is left. True if the body ended.
    pub fn drain(&mut self, limit: u64) -> bool {
        if self.finished() {
            return true;
        }
        if self.continue_pending {
            return false;
        }
        let _ = io::copy(&mut self.by_ref().take(limit), &mut io::sink());
        self.finished()
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.finished() {
            return Ok(0);
        }
        if self.continue_pending {
            self.continue_pending = false;
            let s = self.r.get_mut();
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            s.flush()?;
        }
        match &mut self.kind {
            BodyKind::Length(left) => {
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.r.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "request body truncated",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            BodyKind::Chunked {
                left_in_chunk,
                done,
            } => {
                if *left_in_chunk == 0 {
                    let line = read_line(self.r, 1024)?.ok_or_else(|| bad("truncated chunk"))?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                    if size == 0 {
                        // trailers
                        loop {
                            let t = read_line(self.r, 8192)?.ok_or_else(|| bad("truncated"))?;
                            if t.is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left_in_chunk = size;
                }
                let max = (*left_in_chunk).min(buf.len() as u64) as usize;
                let n = self.r.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "chunked body truncated",
                    ));
                }
                *left_in_chunk -= n as u64;
                if *left_in_chunk == 0 {
                    let crlf = read_line(self.r, 2)?;
                    if crlf.as_deref() != Some("") {
                        return Err(bad("missing chunk terminator"));
                    }
                }
                Ok(n)
            }
        }
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

    /// Writes the response; returns the number of body bytes sent.
    pub fn write_to<W: Write>(
        self,
        w: &mut W,
        head_only: bool,
        keep_alive: bool,
    ) -> io::Result<u64> {
        let body_len = match &self.body {
            RespBody::Empty => 0,
            RespBody::Bytes(b) => b.len() as u64,
            RespBody::File { len, .. } => *len,
        };
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.has_header("content-length") {
            out.push_str(&format!("Content-Length: {body_len}\r\n"));
        }
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        w.write_all(out.as_bytes())?;
        let mut sent = 0;
        if !head_only {
            match self.body {
                RespBody::Empty => {}
                RespBody::Bytes(b) => {
                    w.write_all(&b)?;
                    sent = b.len() as u64;
                }
                RespBody::File {
                    mut file,
                    offset,
                    len,
                } => {
                    file.seek(SeekFrom::Start(offset))?;
                    sent = io::copy(&mut file.take(len), w)?;
                    if sent != len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "blob shorter than recorded",
                        ));
                    }
                }
            }
        }
        w.flush()?;
        Ok(sent)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
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
        let raw = b"GET /v2/a%2Fb/tags/list?n=2&last=x%3Ay HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let mut r = io::BufReader::new(&raw[..]);
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(h.path, "/v2/a/b/tags/list");
        assert_eq!(h.query_param("last").as_deref(), Some("x:y"));
        assert_eq!(h.query_param("n").as_deref(), Some("2"));
        assert!(!h.keep_alive);
        assert_eq!(h.header("HOST"), Some("h"));
        let mut r = io::BufReader::new(&b"GARBAGE\r\n\r\n"[..]);
        assert!(read_head(&mut r).is_err());
    }
}
