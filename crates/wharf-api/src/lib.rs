//! wharf-api: the Docker Engine API server (`wharf system service`). It owns HTTP and only
//! HTTP: each handler parses the request (path, query, JSON body) into the engine's typed
//! request, calls the engine service on tokio's blocking pool (engine calls block; the
//! reactor never does), and renders docker's JSON. Validation, defaults and the admin
//! policy are the engine's: a docker field the engine has no request field for is passed on
//! as `unsupported`, and the engine refuses it.
//!
//! Layout: `server` (listener, connections with their peer credentials, limits, graceful
//! stop), `listen` (the socket file, systemd activation, sd_notify), `router` (versioned
//! paths → handlers), `body`/`query` (HTTP plumbing), one module per resource
//! (`system`, `events`, `containers`, `create`, `streams`, `exec`, `stats`, `files`
//! (archive/changes/export), `images`, `transfer` (pull/save/load), `build` (the classic
//! builder's `POST /build`), `networks`, `volumes`),
//! `ws` (the websocket attach's framing), `error`
//! (every failure → docker's `{"message": …}` with the status of its `ErrorKind`).
//!
//! Must not: decide anything the CLI would decide differently, enter a container, fork
//! without exec (containers are started by the engine's re-executed monitor), or hold a
//! body, header block or stream buffer without a bound.

#![recursion_limit = "256"]

mod body;
mod build;
mod containers;
mod create;
mod error;
mod events;
mod exec;
mod files;
mod images;
pub mod listen;
mod networks;
mod query;
mod router;
mod server;
mod stats;
mod streams;
mod system;
mod transfer;
mod update;
pub mod version;
mod volumes;
mod ws;

pub use error::ApiError;
pub use server::{serve, ServeOptions};

/// A create body (`POST /containers/create`) as the server maps it, for fuzzing and tests:
/// JSON bytes → the engine's request (nothing is created).
pub fn parse_create_body(
    name: Option<String>,
    body: &[u8],
) -> Result<wharf_engine::create::CreateRequest, ApiError> {
    create::request(name, &body::parse_json(body)?)
}

/// A query string's `filters` as the server reads them, for fuzzing and tests.
pub fn parse_query_filters(query: &str) -> Result<Vec<String>, ApiError> {
    query::Query::parse(Some(query))?.filters()
}
