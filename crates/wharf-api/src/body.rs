//! Bodies: whole ones (JSON, text, empty), streamed ones fed by a bounded channel (a
//! blocking engine call writing logs or a wait result waits for the client instead of
//! buffering), and the request body read under a size cap and a deadline. The primitives
//! are wharf-http's (the one HTTP stack); this module adds docker's content types and
//! error body.

use crate::error::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use wharf_http::body::{channel, empty, full, Body};

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_type(code: u16, ctype: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status(code);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ctype),
    );
    r
}

/// A JSON response (docker's content type).
pub fn json(code: u16, v: &impl serde::Serialize) -> Response<Body> {
    let mut s = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    s.push(b'\n');
    with_type(code, "application/json", full(s))
}

pub fn text(code: u16, s: &'static str) -> Response<Body> {
    with_type(code, "text/plain; charset=utf-8", full(s))
}

pub fn no_content() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// docker's error response: `{"message": …}` with the status of the error's kind.
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.status(), &serde_json::json!({ "message": e.message() }))
}

pub fn streamed(code: u16, ctype: &'static str, body: Body) -> Response<Body> {
    with_type(code, ctype, body)
}

/// `body` holding `slot` until it ends or the client goes away (a long-lived request's
/// count follows its stream).
pub fn holding(body: Body, slot: crate::server::LongSlot) -> Body {
    Holding {
        inner: body,
        _slot: slot,
    }
    .boxed()
}

struct Holding {
    inner: Body,
    _slot: crate::server::LongSlot,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The request body, at most `limit` bytes, complete within `deadline` (wharf-http's
/// bounded read).
pub async fn read(
    req: http::Request<hyper::body::Incoming>,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError> {
    use wharf_http::body::BodyError;
    wharf_http::body::collect(req, limit, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { limit } => ApiError::BodyTooLarge { limit },
            BodyError::Timeout { secs } => ApiError::BodyTimeout { secs },
            BodyError::Read(h) => ApiError::Body(h),
        })
}

/// Parses a JSON body; an empty body is `null` (docker accepts an empty start/exec body).
pub fn parse_json(b: &[u8]) -> Result<serde_json::Value, ApiError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(b).map_err(ApiError::Json)
}
