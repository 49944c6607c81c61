//! The journald driver: systemd's native protocol, one datagram per record to
//! `/run/systemd/journal/socket` (no libsystemd). Fields as docker sends them: MESSAGE
//! (without its '\n'), PRIORITY (6 stdout, 3 stderr), CONTAINER_ID (12), CONTAINER_ID_FULL,
//! CONTAINER_NAME, CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER (the tag), and
//! CONTAINER_PARTIAL_MESSAGE=true for a partial line. Values containing '\n' use the
//! binary-safe form `KEY\n<u64 LE length><value>\n`.
//!
//! The socket path can be overridden with the hidden `journald-socket` log option (used by
//! tests). The socket is non-blocking: a full journal queue or a missing journald drops (and
//! counts) the record. Records larger than a datagram (journald passes those as a memfd) are
//! dropped too; wharf's records are ≤ 16 KiB.

use crate::{LogContext, LogDriver, LogError, Stream};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::SystemTime;
use wharf_types::container::LogConfig;

pub(crate) const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

pub(crate) struct JournaldDriver {
    socket: Option<UnixDatagram>,
    path: PathBuf,
    /// The fields that are the same for every record, encoded once.
    fixed: Vec<u8>,
    buf: Vec<u8>,
    dropped: u64,
}

/// Appends one field in the native format.
pub(crate) fn put_field(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

impl JournaldDriver {
    pub(crate) fn new(cfg: &LogConfig, ctx: &LogContext) -> Result<JournaldDriver, LogError> {
        let tag = crate::opts::render_tag(cfg, ctx)?;
        let mut fixed = Vec::new();
        put_field(
            &mut fixed,
            "CONTAINER_ID",
            crate::short_id(&ctx.container_id).as_bytes(),
        );
        put_field(&mut fixed, "CONTAINER_ID_FULL", ctx.container_id.as_bytes());
        put_field(&mut fixed, "CONTAINER_NAME", ctx.container_name.as_bytes());
        put_field(&mut fixed, "CONTAINER_TAG", tag.as_bytes());
        put_field(&mut fixed, "IMAGE_NAME", ctx.image_name.as_bytes());
        put_field(&mut fixed, "SYSLOG_IDENTIFIER", tag.as_bytes());
        let path = cfg
            .config
            .get("journald-socket")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .ok();
        Ok(JournaldDriver {
            socket,
            path,
            fixed,
            buf: Vec::with_capacity(512),
            dropped: 0,
        })
    }
}

impl LogDriver for JournaldDriver {
    fn log(&mut self, stream: Stream, msg: &[u8], _time: SystemTime) {
        let Some(s) = self.socket.as_ref() else {
            self.dropped += 1;
            return;
        };
        let partial = !msg.ends_with(b"\n");
        self.buf.clear();
        put_field(&mut self.buf, "MESSAGE", crate::strip_newline(msg));
        let prio: &[u8] = match stream {
            Stream::Stdout => b"6",
            Stream::Stderr => b"3",
        };
        put_field(&mut self.buf, "PRIORITY", prio);
        if partial {
            put_field(&mut self.buf, "CONTAINER_PARTIAL_MESSAGE", b"true");
        }
        self.buf.extend_from_slice(&self.fixed);
        if s.send_to(&self.buf, &self.path).is_err() {
            self.dropped += 1;
        }
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::with_capacity(512);
        }
    }

    fn close(&mut self) {
        self.socket = None;
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
