//! The Splunk HTTP Event Collector driver over plain http (https is rejected at validate:
//! wharf carries no TLS stack). Events are encoded like docker's (`splunk-format` inline, json
//! or raw; `time` as seconds with 6 decimals) and handed to one small sender thread through a
//! queue bounded at [`MAX_QUEUED`] bytes: `log()` never waits for the network; when the queue
//! is full or a POST fails, events are dropped and counted. The thread POSTs batches to
//! `/services/collector/event/1.0` at least once a second (or at [`BATCH_BYTES`]).

use crate::jsonfile::write_json_string;
use crate::{LogContext, LogDriver, LogError, Stream};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wharf_types::container::LogConfig;

const MAX_QUEUED: usize = 256 * 1024;
const BATCH_BYTES: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PATH: &str = "/services/collector/event/1.0";

/// `http://host[:port]` → `host:port`. Like docker, the url must not have a path.
pub(crate) fn parse_url(url: &str) -> Result<String, LogError> {
    let bad = |reason: &str| LogError::InvalidOption {
        opt: "splunk-url".into(),
        value: url.to_string(),
        reason: reason.to_string(),
    };
    if url.starts_with("https://") {
        return Err(LogError::OptionUnsupported {
            opt: "splunk-url".into(),
            driver: "splunk".into(),
            what: "https".into(),
        });
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("expected http://host:port"))?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        return Err(bad("expected url without path"));
    }
    if hostport.is_empty() {
        return Err(bad("missing host"));
    }
    let has_port = if hostport.starts_with('[') {
        hostport.contains("]:")
    } else {
        hostport.contains(':')
    };
    let hp = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    hp.rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| bad("invalid port"))?;
    Ok(hp)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Inline,
    Json,
    Raw,
}

struct Shared {
    queued: AtomicUsize,
    dropped: AtomicU64,
    done: AtomicBool,
}

pub(crate) struct SplunkDriver {
    tx: Option<SyncSender<Vec<u8>>>,
    shared: Arc<Shared>,
    format: Format,
    tag: String,
    host: String,
    /// `,"source":…,"sourcetype":…,"index":…` (the fixed tail of every event).
    tail: Vec<u8>,
}

impl SplunkDriver {
    pub(crate) fn new(cfg: &LogConfig, ctx: &LogContext) -> Result<SplunkDriver, LogError> {
        let get = |k: &str| cfg.config.get(k).map(String::as_str).unwrap_or("");
        let hostport = parse_url(get("splunk-url"))?;
        let token = get("splunk-token").to_string();
        let format = match get("splunk-format") {
            "json" => Format::Json,
            "raw" => Format::Raw,
            _ => Format::Inline,
        };
        let mut tail = Vec::new();
        for (k, opt) in [
            ("source", "splunk-source"),
            ("sourcetype", "splunk-sourcetype"),
            ("index", "splunk-index"),
        ] {
            let v = get(opt);
            if !v.is_empty() {
                tail.extend_from_slice(format!(",\"{k}\":").as_bytes());
                write_json_string(&mut tail, v.as_bytes());
            }
        }
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let (tx, rx) = sync_channel::<Vec<u8>>(1024);
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("splunk".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut batch: Vec<u8> = Vec::new();
                let mut count = 0u64;
                let mut first_at: Option<Instant> = None;
                loop {
                    let wait =
                        first_at.map_or(FLUSH_EVERY, |t| FLUSH_EVERY.saturating_sub(t.elapsed()));
                    let disconnected = match rx.recv_timeout(wait) {
                        Ok(ev) => {
                            sh.queued.fetch_sub(ev.len(), Ordering::Relaxed);
                            batch.extend_from_slice(&ev);
                            count += 1;
                            first_at.get_or_insert_with(Instant::now);
                            false
                        }
                        Err(RecvTimeoutError::Timeout) => false,
                        Err(RecvTimeoutError::Disconnected) => true,
                    };
                    let due = first_at.is_some_and(|t| t.elapsed() >= FLUSH_EVERY);
                    if !batch.is_empty() && (disconnected || due || batch.len() >= BATCH_BYTES) {
                        if post(&hostport, &token, &batch).is_err() {
                            sh.dropped.fetch_add(count, Ordering::Relaxed);
                        }
                        batch.clear();
                        if batch.capacity() > 2 * BATCH_BYTES {
                            batch = Vec::new();
                        }
                        count = 0;
                        first_at = None;
                    }
                    if disconnected {
                        break;
                    }
                }
                sh.done.store(true, Ordering::SeqCst);
            });
        let tx = spawned.ok().map(|_| tx);
        Ok(SplunkDriver {
            tx,
            shared,
            format,
            tag: crate::opts::render_tag(cfg, ctx)?,
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            tail,
        })
    }

    fn encode(&self, stream: Stream, msg: &[u8], time: SystemTime) -> Vec<u8> {
        let line = crate::strip_newline(msg);
        let mut b = Vec::with_capacity(line.len() + 160);
        b.extend_from_slice(b"{\"event\":");
        match self.format {
            Format::Raw => {
                let mut raw = Vec::with_capacity(line.len() + self.tag.len() + 1);
                if !self.tag.is_empty() {
                    raw.extend_from_slice(self.tag.as_bytes());
                    raw.push(b' ');
                }
                raw.extend_from_slice(line);
                write_json_string(&mut b, &raw);
            }
            Format::Inline | Format::Json => {
                b.extend_from_slice(b"{\"line\":");
                let is_json = self.format == Format::Json
                    && !line.is_empty()
                    && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok();
                if is_json {
                    b.extend_from_slice(line);
                } else {
                    write_json_string(&mut b, line);
                }
                b.extend_from_slice(b",\"source\":");
                write_json_string(&mut b, stream.as_str().as_bytes());
                if !self.tag.is_empty() {
                    b.extend_from_slice(b",\"tag\":");
                    write_json_string(&mut b, self.tag.as_bytes());
                }
                b.push(b'}');
            }
        }
        let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        b.extend_from_slice(
            format!(
                ",\"time\":\"{}.{:06}\",\"host\":",
                d.as_secs(),
                d.subsec_micros()
            )
            .as_bytes(),
        );
        write_json_string(&mut b, self.host.as_bytes());
        b.extend_from_slice(&self.tail);
        b.extend_from_slice(b"}\n");
        b
    }
}

fn post(hostport: &str, token: &str, body: &[u8]) -> std::io::Result<()> {
    let addr = wharf_sys::resolve::first_addr(hostport)?; // no NSS in a static binary
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: wharf\r\nAuthorization: Splunk {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut resp[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let status = std::str::from_utf8(&resp[..got])
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(()),
        _ => Err(std::io::Error::other("splunk rejected the batch")),
    }
}

impl LogDriver for SplunkDriver {
    fn log(&mut self, stream: Stream, msg: &[u8], time: SystemTime) {
        let Some(tx) = self.tx.as_ref() else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let ev = self.encode(stream, msg, time);
        let len = ev.len();
        if self.shared.queued.load(Ordering::Relaxed) + len > MAX_QUEUED {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared.queued.fetch_add(len, Ordering::Relaxed);
        if tx.try_send(ev).is_err() {
            self.shared.queued.fetch_sub(len, Ordering::Relaxed);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lets the sender post what is queued, waiting at most 2 s for it.
    fn close(&mut self) {
        if self.tx.take().is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.shared.done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}
