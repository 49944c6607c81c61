//! wharf-logs: container log drivers (writers) and the json-file reader behind `wharf logs`.
//!
//! Owns: the log driver API the per-container monitor uses ([`open`] → [`LogDriver::log`]),
//! create-time validation of `--log-driver`/`--log-opt` ([`validate`]), line splitting
//! ([`LineSplitter`]), docker's json-file on-disk format with rotation, the syslog, journald
//! (native protocol) and Splunk HEC (plain http) senders, and [`read`] for `wharf logs`.
//!
//! Must not: block the container (every network send is non-blocking or off-thread, failures
//! are counted and dropped), panic on any input, hold growing buffers (the monitor that links
//! this crate targets ≤ 1 MB RSS), use `unsafe`, libc or an async runtime.
//!
//! Drivers: `json-file` (default), `syslog`, `journald`, `splunk`, `none`. `local` is rejected
//! at [`validate`] (docker's protobuf format is not implemented).

mod journald;
mod jsonfile;
mod opts;
mod reader;
mod split;
mod splunk;
mod syslog;
mod timefmt;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use opts::parse_size;
pub use reader::read;
pub use split::{LineSplitter, MAX_LINE};
pub use timefmt::{format_rfc3339_nano_fixed, parse_timestamp};
use wharf_types::container::LogConfig;
use wharf_types::error::{ErrorKind, HasKind};

/// Which of the container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What a driver knows about the container it logs for.
#[derive(Debug, Clone, Default)]
pub struct LogContext {
    /// Full 64-hex container id.
    pub container_id: String,
    /// Without docker's leading '/'.
    pub container_name: String,
    pub image_name: String,
    /// Image id (`sha256:…`).
    pub image_id: String,
    /// The container's directory (`containers/<id>/`): json-file logs live here.
    pub dir: PathBuf,
}

/// A log writer. `msg` is one line including its trailing '\n' (or a partial line when a
/// line exceeds [`MAX_LINE`] or at EOF). `log()` never blocks for long and never panics;
/// failures are counted ([`LogDriver::dropped`]) and the record is dropped.
pub trait LogDriver: Send {
    fn log(&mut self, stream: Stream, msg: &[u8], time: SystemTime);
    /// Flushes what can be flushed without blocking for long and releases resources.
    fn close(&mut self);
    /// Records dropped so far because of write/send failures.
    fn dropped(&self) -> u64 {
        0
    }
}

/// Options of `wharf logs`.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub follow: bool,
    /// Last N lines only (`None` = all).
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Prefix each line with its RFC 3339 time (9 fixed fraction digits, like docker).
    pub timestamps: bool,
    /// Prefix each line with its attributes (`k=v,k2=v2 `), like `docker logs --details`.
    pub details: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("logging driver {0:?} is not supported (json-file, syslog, journald, splunk, none)")]
    UnknownDriver(String),
    #[error("the {0:?} logging driver is not supported in this build: use json-file")]
    DriverUnsupported(String),
    #[error("unknown log opt '{opt}' for {driver} log driver")]
    UnknownOption { opt: String, driver: String },
    #[error("invalid value {value:?} for log opt '{opt}': {reason}")]
    InvalidOption {
        opt: String,
        value: String,
        reason: String,
    },
    #[error("log opt '{opt}' for {driver} log driver: {what} is not supported in this build")]
    OptionUnsupported {
        opt: String,
        driver: String,
        what: String,
    },
    #[error("configured logging driver does not support reading")]
    ReadingUnsupported,
    #[error("invalid time {0:?}: expected RFC 3339, a Unix timestamp or a duration like 42m")]
    InvalidTime(String),
    #[error("log file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing log output")]
    Output(#[source] std::io::Error),
}

impl HasKind for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::UnknownDriver(_)
            | LogError::UnknownOption { .. }
            | LogError::InvalidOption { .. }
            | LogError::InvalidTime(_) => ErrorKind::InvalidArgument,
            LogError::DriverUnsupported(_)
            | LogError::OptionUnsupported { .. }
            | LogError::ReadingUnsupported => ErrorKind::NotImplemented,
            LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            LogError::Io { .. } | LogError::Output(_) => ErrorKind::Internal,
        }
    }
}

/// `<dir>/<id>-json.log`, docker's file name.
pub fn json_log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// Create-time check of the driver name and every option (docker's
/// `unknown log opt 'foo' for json-file log driver`).
pub fn validate(cfg: &LogConfig) -> Result<(), LogError> {
    opts::validate(cfg)
}

/// Opens the configured driver for one container. Network drivers connect lazily: an
/// unreachable syslog/journald/splunk endpoint does not fail the container, its records are
/// dropped and counted.
pub fn open(cfg: &LogConfig, ctx: &LogContext) -> Result<Box<dyn LogDriver>, LogError> {
    validate(cfg)?;
    let driver = if cfg.driver.is_empty() {
        "json-file"
    } else {
        cfg.driver.as_str()
    };
    Ok(match driver {
        "json-file" => Box::new(jsonfile::JsonFileWriter::open(cfg, ctx)?),
        "syslog" => Box::new(syslog::SyslogDriver::new(cfg, ctx)?),
        "journald" => Box::new(journald::JournaldDriver::new(cfg, ctx)?),
        "splunk" => Box::new(splunk::SplunkDriver::new(cfg, ctx)?),
        "none" => Box::new(NoneDriver),
        other => return Err(LogError::UnknownDriver(other.to_string())),
    })
}

/// `--log-driver none`.
struct NoneDriver;

impl LogDriver for NoneDriver {
    fn log(&mut self, _: Stream, _: &[u8], _: SystemTime) {}
    fn close(&mut self) {}
}

/// The 12-char short form of an id (or the whole id when shorter).
pub(crate) fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// The line without its trailing '\n' (drivers other than json-file strip it, like docker).
pub(crate) fn strip_newline(msg: &[u8]) -> &[u8] {
    msg.strip_suffix(b"\n").unwrap_or(msg)
}
