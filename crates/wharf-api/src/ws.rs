//! The minimal RFC 6455 server side the websocket attach needs: the handshake
//! (`Sec-WebSocket-Accept`), and a relay between the upgraded connection and a byte pipe:
//! the client's text, binary and continuation frames (masked, as RFC 6455 requires of a
//! client) unmasked into the pipe, the pipe's bytes out as single unmasked frames; ping is
//! answered with pong, close with close (and the pipe's write side shut: the container's
//! stdin ends).
//!
//! Must not: accept an unmasked client frame, a reserved bit or opcode, or a frame larger
//! than [`MAX_FRAME`].

use crate::body::{self, Body};
use crate::error::ApiError;
use http::Response;
use sha1::{Digest, Sha1};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

/// The largest client frame read (stdin comes in small pieces).
pub const MAX_FRAME: u64 = 1 << 20;
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The handshake's answer to `Sec-WebSocket-Key`, after checking the request is one
/// (`Upgrade: websocket`, version 13).
pub fn accept_key(req: &http::Request<hyper::body::Incoming>) -> Result<String, ApiError> {
    let h = req.headers();
    let upgrade = h
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version = h
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "13");
    let key = h
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 64);
    match (upgrade, version, key) {
        (true, true, Some(k)) => Ok(accept_for(k)),
        _ => Err(ApiError::WebsocketRequired),
    }
}

fn accept_for(key: &str) -> String {
    use base64::Engine as _;
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The 101 answer of the handshake.
pub fn switching(accept: &str) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = http::HeaderValue::from_str(accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

/// One server frame (FIN set, unmasked).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 10);
    v.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => v.push(n as u8),
        n if n <= 0xffff => {
            v.push(126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(payload);
    v
}

/// A client frame: (opcode, unmasked payload); None when the client broke the protocol or
/// went away.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await.ok()?;
    // reserved bits (no extension was negotiated) and an unmasked client frame: refused
    if head[0] & 0x70 != 0 || head[1] & 0x80 == 0 {
        return None;
    }
    let len = match head[1] & 0x7f {
        126 => u64::from(r.read_u16().await.ok()?),
        127 => r.read_u64().await.ok()?,
        n => u64::from(n),
    };
    if len > MAX_FRAME {
        return None;
    }
    let mut mask = [0u8; 4];
    r.read_exact(&mut mask).await.ok()?;
    let mut data = vec![0u8; usize::try_from(len).ok()?];
    r.read_exact(&mut data).await.ok()?;
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((head[0] & 0x0f, data))
}

/// Relays between the websocket `client` and `pipe` until either side ends.
pub async fn relay<C, P>(client: C, pipe: P, binary: bool)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    P: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut cr, cw) = tokio::io::split(client);
    let (mut pr, mut pw) = tokio::io::split(pipe);
    let cw = Arc::new(Mutex::new(cw));
    let out = cw.clone();
    let output = tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match pr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let f = frame(if binary { 2 } else { 1 }, &buf[..n]);
            if out.lock().await.write_all(&f).await.is_err() {
                return;
            }
        }
        // the container's output ended: a normal close
        let mut w = out.lock().await;
        let _ = w.write_all(&frame(8, &1000u16.to_be_bytes())).await;
        let _ = w.shutdown().await;
    });
    loop {
        tokio::select! {
            _ = output_done(&output) => break,
            f = read_frame(&mut cr) => match f {
                Some((0..=2, data)) => {
                    if pw.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some((9, data)) => {
                    let _ = cw.lock().await.write_all(&frame(10, &data)).await;
                }
                Some((10, _)) => {}
                Some((8, _)) => {
                    let _ = cw.lock().await.write_all(&frame(8, &1000u16.to_be_bytes())).await;
                    break;
                }
                // an unknown opcode, a broken frame, a client gone
                _ => break,
            },
        }
    }
    // the client's end of input: the container's stdin closes; output goes on until the
    // container's ends or the client is gone
    let _ = pw.shutdown().await;
    let _ = output.await;
}

async fn output_done(h: &tokio::task::JoinHandle<()>) {
    while !h.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_rfc_6455() {
        // the example of RFC 6455 section 1.3
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_are_sized_as_rfc_6455_says() {
        assert_eq!(frame(2, b"hi"), vec![0x82, 2, b'h', b'i']);
        assert_eq!(&frame(1, &[0; 200])[..4], &[0x81, 126, 0, 200]);
        assert_eq!(&frame(1, &[0; 70000])[..2], &[0x81, 127]);
    }

    #[tokio::test]
    async fn client_frames_must_be_masked_and_bounded() {
        let unmasked: &[u8] = &[0x82, 2, b'h', b'i'];
        assert!(read_frame(&mut &unmasked[..]).await.is_none());
        let masked: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        assert_eq!(
            read_frame(&mut &masked[..]).await,
            Some((1, b"hi".to_vec()))
        );
        let huge: &[u8] = &[0x82, 0xff, 0, 0, 0, 0, 0xff, 0, 0, 0, 1, 2, 3, 4];
        assert!(read_frame(&mut &huge[..]).await.is_none());
    }
}
