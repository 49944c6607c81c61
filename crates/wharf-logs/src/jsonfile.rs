//! docker's json-file driver: one JSON object per line in `<dir>/<id>-json.log`,
//! `{"log":"hello\n","stream":"stdout","attrs":{..},"time":"2026-11-22T04:05:06.123456789Z"}`,
//! encoded byte-for-byte like moby's `jsonlog.MarshalJSONBuf` (HTML-safe escapes, invalid
//! UTF-8 → U+FFFD). Rotation like docker: `max-size` per file, `max-file` files, renames
//! `.1 .2 …`. Write failures (disk full, file or directory removed) are counted and the record
//! dropped; the writer reopens the file at most once a second. Memory: one reused buffer.

use crate::{LogContext, LogDriver, LogError, Stream};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use wharf_types::container::LogConfig;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string exactly like moby's `ffjsonWriteJSONBytesAsString`.
pub(crate) fn write_json_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b >= 0x20 && b != b'\\' && b != b'"' && b != b'<' && b != b'>' && b != b'&' {
                i += 1;
                continue;
            }
            buf.extend_from_slice(&s[start..i]);
            match b {
                b'\\' | b'"' => buf.extend_from_slice(&[b'\\', b]),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                _ => {
                    buf.extend_from_slice(b"\\u00");
                    buf.push(HEX[usize::from(b >> 4)]);
                    buf.push(HEX[usize::from(b & 0xf)]);
                }
            }
            i += 1;
            start = i;
            continue;
        }
        // Decode one UTF-8 sequence (at most 4 bytes).
        let end = (i + 4).min(s.len());
        let (valid, size) = match std::str::from_utf8(&s[i..end]) {
            Ok(st) => (true, st.chars().next().map_or(1, char::len_utf8)),
            Err(e) if e.valid_up_to() > 0 => {
                let st = std::str::from_utf8(&s[i..i + e.valid_up_to()]).unwrap_or_default();
                (true, st.chars().next().map_or(1, char::len_utf8))
            }
            Err(_) => (false, 1),
        };
        if !valid {
            buf.extend_from_slice(&s[start..i]);
            buf.extend_from_slice(b"\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        let c = &s[i..i + size];
        if c == "\u{2028}".as_bytes() || c == "\u{2029}".as_bytes() {
            buf.extend_from_slice(&s[start..i]);
            buf.extend_from_slice(b"\\u202");
            buf.push(HEX[usize::from(c[2] & 0xf)]);
            i += size;
            start = i;
            continue;
        }
        i += size;
    }
    buf.extend_from_slice(&s[start..]);
    buf.push(b'"');
}

/// Encodes one record (with its trailing '\n') into `buf`.
pub(crate) fn encode_record(
    buf: &mut Vec<u8>,
    stream: Stream,
    msg: &[u8],
    attrs: Option<&[u8]>,
    time: SystemTime,
) {
    buf.push(b'{');
    let mut first = true;
    if !msg.is_empty() {
        buf.extend_from_slice(b"\"log\":");
        write_json_string(buf, msg);
        first = false;
    }
    if !first {
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"stream\":");
    write_json_string(buf, stream.as_str().as_bytes());
    if let Some(a) = attrs {
        buf.extend_from_slice(b",\"attrs\":");
        buf.extend_from_slice(a);
    }
    buf.extend_from_slice(b",\"time\":\"");
    buf.extend_from_slice(crate::timefmt::format_rfc3339_nano(time).as_bytes());
    buf.extend_from_slice(b"\"}\n");
}

/// One decoded record.
pub(crate) struct Record {
    pub log: Vec<u8>,
    pub stream: Stream,
    pub time: SystemTime,
    pub attrs: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct RawRecord {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    attrs: std::collections::BTreeMap<String, String>,
}

/// Decodes one line of a json-file log; `None` for garbage (torn writes are skipped).
pub(crate) fn decode_record(line: &[u8]) -> Option<Record> {
    let r: RawRecord = serde_json::from_slice(line).ok()?;
    Some(Record {
        log: r.log.into_bytes(),
        stream: if r.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: crate::timefmt::parse_record_time(&r.time)?,
        attrs: r.attrs.into_iter().collect(),
    })
}

/// Rotated file `n` (0 = the live file).
pub(crate) fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        path.to_path_buf()
    } else {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }
}

pub(crate) struct JsonFileWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    /// `None` = unlimited.
    max_size: Option<u64>,
    max_file: u32,
    attrs: Option<Vec<u8>>,
    buf: Vec<u8>,
    dropped: u64,
    /// A write failed part-way: start the next record on a fresh line.
    torn: bool,
    last_check: Instant,
}

const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
const BUF_KEEP: usize = 128 * 1024;

fn open_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl JsonFileWriter {
    pub(crate) fn open(cfg: &LogConfig, ctx: &LogContext) -> Result<JsonFileWriter, LogError> {
        let max_size = cfg
            .config
            .get("max-size")
            .and_then(|v| crate::opts::parse_size(v))
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0);
        let max_file = cfg
            .config
            .get("max-file")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let attrs = match cfg.config.get("tag") {
            Some(t) if !t.is_empty() => {
                let tag = crate::opts::render_tag(cfg, ctx)?;
                let mut a = b"{\"tag\":".to_vec();
                write_json_string(&mut a, tag.as_bytes());
                a.push(b'}');
                Some(a)
            }
            _ => None,
        };
        let path = crate::json_log_path(&ctx.dir, &ctx.container_id);
        let file = open_file(&path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonFileWriter {
            path,
            file: Some(file),
            size,
            max_size,
            max_file,
            attrs,
            buf: Vec::with_capacity(1024),
            dropped: 0,
            torn: false,
            last_check: Instant::now(),
        })
    }

    fn reopen(&mut self) {
        self.file = open_file(&self.path).ok();
        self.size = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
    }

    fn rotate(&mut self) {
        if self.max_file <= 1 {
            let ok = self.file.as_ref().is_some_and(|f| f.set_len(0).is_ok());
            if ok {
                self.size = 0;
            } else {
                self.reopen();
            }
            return;
        }
        self.file = None;
        for n in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        let _ = std::fs::rename(&self.path, rotated(&self.path, 1));
        self.reopen();
    }

    /// Once a second: reopen a file that was removed (or never opened).
    fn check_file(&mut self) {
        if self.last_check.elapsed() < REOPEN_INTERVAL {
            return;
        }
        self.last_check = Instant::now();
        let gone = match &self.file {
            None => true,
            Some(f) => f.metadata().map_or(true, |m| m.nlink() == 0),
        };
        if gone {
            self.reopen();
        }
    }
}

impl LogDriver for JsonFileWriter {
    fn log(&mut self, stream: Stream, msg: &[u8], time: SystemTime) {
        self.check_file();
        self.buf.clear();
        if self.torn {
            self.buf.push(b'\n');
        }
        encode_record(&mut self.buf, stream, msg, self.attrs.as_deref(), time);
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + self.buf.len() as u64 > max {
                self.rotate();
            }
        }
        match self.file.as_mut().map(|f| f.write_all(&self.buf)) {
            Some(Ok(())) => {
                self.size += self.buf.len() as u64;
                self.torn = false;
            }
            Some(Err(_)) => {
                self.dropped += 1;
                self.torn = true;
                // Our idea of the size may be off after a partial write.
                self.size = self
                    .file
                    .as_ref()
                    .and_then(|f| f.metadata().ok())
                    .map_or(self.size, |m| m.len());
            }
            None => self.dropped += 1,
        }
        if self.buf.capacity() > BUF_KEEP {
            self.buf = Vec::with_capacity(1024);
        }
    }

    fn close(&mut self) {
        self.file = None;
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn enc(msg: &[u8]) -> String {
        let mut b = Vec::new();
        encode_record(
            &mut b,
            Stream::Stdout,
            msg,
            None,
            UNIX_EPOCH + Duration::new(1_795_320_306, 123_456_789),
        );
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn exact_format() {
        assert_eq!(
            enc(b"hello\n"),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T04:05:06.123456789Z\"}\n"
        );
        assert_eq!(
            enc(b"a\"b\\c\t\r\x01\x1f<>&\n"),
            "{\"log\":\"a\\\"b\\\\c\\u0009\\r\\u0001\\u001f\\u003c\\u003e\\u0026\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T04:05:06.123456789Z\"}\n"
        );
        // invalid UTF-8 → U+FFFD escape; valid multi-byte kept; U+2028 escaped
        let s = enc(b"\xff\xfeok \xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x90\xb3 \xe2\x82\n");
        assert!(
            s.starts_with(
                "{\"log\":\"\\ufffd\\ufffdok \u{e9} \\u2028 \u{1f433} \\ufffd\\ufffd\\n\""
            ),
            "{s}"
        );
        let mut b = Vec::new();
        encode_record(
            &mut b,
            Stream::Stderr,
            b"x",
            Some(b"{\"tag\":\"web\"}"),
            UNIX_EPOCH,
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "{\"log\":\"x\",\"stream\":\"stderr\",\"attrs\":{\"tag\":\"web\"},\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn roundtrip() {
        let line = enc(b"caf\xc3\xa9 \x01\n");
        let r = decode_record(line.trim_end().as_bytes()).unwrap();
        assert_eq!(r.log, "caf\u{e9} \u{1}\n".as_bytes());
        assert_eq!(r.stream, Stream::Stdout);
        assert_eq!(
            r.time,
            UNIX_EPOCH + Duration::new(1_795_320_306, 123_456_789)
        );
        assert!(decode_record(b"{\"log\":\"tor").is_none());
    }
}
