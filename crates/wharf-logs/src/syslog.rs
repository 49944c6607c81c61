//! The syslog driver: docker's message formats (its default "" = `<pri>Mmm dd hh:mm:ss
//! tag[pid]: msg`, rfc3164, rfc5424, rfc5424micro), stdout → info, stderr → err, facility
//! `daemon` by default, over unix (datagram, else stream), unixgram, udp and tcp. Sockets are
//! non-blocking: a full socket buffer or a dead peer drops (and counts) the record. Connections
//! are (re)made lazily with a backoff of 1 s doubling to 30 s; a tcp connect waits at most
//! [`CONNECT_TIMEOUT`] (std has no non-blocking connect), and only once per backoff period.
//! A stream connection keeps at most [`MAX_PENDING`] unsent bytes.

use crate::opts::{self, SyslogAddr, SyslogFormat};
use crate::{LogContext, LogDriver, LogError, Stream};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant, SystemTime};
use wharf_types::container::LogConfig;

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_PENDING: usize = 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

enum Conn {
    Dgram(UnixDatagram),
    Udp(UdpSocket),
    Stream(Box<dyn StreamConn>),
}

trait StreamConn: Write + Send {}
impl StreamConn for UnixStream {}
impl StreamConn for TcpStream {}

pub(crate) struct SyslogDriver {
    addr: SyslogAddr,
    conn: Option<Conn>,
    facility: u8,
    format: SyslogFormat,
    tag: String,
    hostname: String,
    pid: u32,
    buf: Vec<u8>,
    pending: Vec<u8>,
    dropped: u64,
    next_try: Instant,
    backoff: Duration,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Without NSS (static binary): `wharf_sys::resolve`.
fn resolve(hp: &str) -> std::io::Result<SocketAddr> {
    wharf_sys::resolve::first_addr(hp)
}

fn connect(addr: &SyslogAddr) -> std::io::Result<Conn> {
    Ok(match addr {
        SyslogAddr::Unixgram(p) => {
            let s = UnixDatagram::unbound()?;
            s.connect(p)?;
            s.set_nonblocking(true)?;
            Conn::Dgram(s)
        }
        SyslogAddr::Unix(p) => {
            let s = UnixDatagram::unbound()?;
            match s.connect(p) {
                Ok(()) => {
                    s.set_nonblocking(true)?;
                    Conn::Dgram(s)
                }
                // EPROTOTYPE: the socket is a stream socket (rsyslog can do both).
                Err(e) if e.raw_os_error() == Some(91) => {
                    let s = UnixStream::connect(p)?;
                    s.set_nonblocking(true)?;
                    Conn::Stream(Box::new(s))
                }
                Err(e) => return Err(e),
            }
        }
        SyslogAddr::Udp(hp) => {
            let a = resolve(hp)?;
            let bind: SocketAddr = if a.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let s = UdpSocket::bind(bind)?;
            s.connect(a)?;
            s.set_nonblocking(true)?;
            Conn::Udp(s)
        }
        SyslogAddr::Tcp(hp) => {
            let s = TcpStream::connect_timeout(&resolve(hp)?, CONNECT_TIMEOUT)?;
            s.set_nonblocking(true)?;
            let _ = s.set_nodelay(true);
            Conn::Stream(Box::new(s))
        }
    })
}

impl SyslogDriver {
    pub(crate) fn new(cfg: &LogConfig, ctx: &LogContext) -> Result<SyslogDriver, LogError> {
        let get = |k: &str| cfg.config.get(k).map(String::as_str).unwrap_or("");
        let addr = opts::parse_syslog_address(get("syslog-address"))?;
        let mut d = SyslogDriver {
            addr,
            conn: None,
            facility: opts::parse_facility(get("syslog-facility"))?,
            format: opts::parse_syslog_format(get("syslog-format"))?,
            tag: opts::render_tag(cfg, ctx)?,
            hostname: hostname(),
            pid: std::process::id(),
            buf: Vec::with_capacity(256),
            pending: Vec::new(),
            dropped: 0,
            next_try: Instant::now(),
            backoff: BACKOFF_MIN,
        };
        d.ensure_conn();
        Ok(d)
    }

    fn ensure_conn(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_try {
            return false;
        }
        match connect(&self.addr) {
            Ok(c) => {
                self.conn = Some(c);
                self.backoff = BACKOFF_MIN;
                self.pending.clear();
                true
            }
            Err(_) => {
                self.fail();
                false
            }
        }
    }

    fn fail(&mut self) {
        self.conn = None;
        self.pending.clear();
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn format(&mut self, stream: Stream, msg: &[u8], time: SystemTime) {
        let sev = match stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        let pri = u16::from(self.facility) * 8 + sev;
        let content = crate::strip_newline(msg);
        let b = &mut self.buf;
        b.clear();
        let head = match self.format {
            SyslogFormat::Unix => format!(
                "<{pri}>{} {}[{}]: ",
                crate::timefmt::format_stamp(time),
                self.tag,
                self.pid
            ),
            SyslogFormat::Rfc3164 => format!(
                "<{pri}>{} {} {}[{}]: ",
                crate::timefmt::format_stamp(time),
                self.hostname,
                self.tag,
                self.pid
            ),
            SyslogFormat::Rfc5424 | SyslogFormat::Rfc5424Micro => {
                let ts = if self.format == SyslogFormat::Rfc5424 {
                    crate::timefmt::format_rfc3339_digits(time, 0)
                } else {
                    // Go's .999999: trailing zeros trimmed.
                    let s = crate::timefmt::format_rfc3339_digits(time, 6);
                    let (main, _) = s.split_at(s.len() - 1);
                    let main = main.trim_end_matches('0').trim_end_matches('.');
                    format!("{main}Z")
                };
                format!(
                    "<{pri}>1 {ts} {} {} {} {} - ",
                    self.hostname, self.tag, self.pid, self.tag
                )
            }
        };
        b.extend_from_slice(head.as_bytes());
        b.extend_from_slice(content);
        b.push(b'\n');
    }

    fn flush_pending(&mut self) -> bool {
        let Some(Conn::Stream(s)) = self.conn.as_mut() else {
            return true;
        };
        while !self.pending.is_empty() {
            match s.write(&self.pending) {
                Ok(0) => {
                    self.fail();
                    return false;
                }
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.fail();
                    return false;
                }
            }
        }
        true
    }
}

impl LogDriver for SyslogDriver {
    fn log(&mut self, stream: Stream, msg: &[u8], time: SystemTime) {
        if !self.ensure_conn() {
            self.dropped += 1;
            return;
        }
        self.format(stream, msg, time);
        let result = match self.conn.as_mut() {
            Some(Conn::Dgram(s)) => s.send(&self.buf).map(|_| ()),
            Some(Conn::Udp(s)) => s.send(&self.buf).map(|_| ()),
            Some(Conn::Stream(_)) => {
                if self.flush_pending() {
                    match self.conn.as_mut() {
                        Some(Conn::Stream(s)) => match s.write(&self.buf) {
                            Ok(n) => {
                                if n < self.buf.len() {
                                    self.pending.extend_from_slice(&self.buf[n..]);
                                }
                                Ok(())
                            }
                            Err(e) => Err(e),
                        },
                        _ => Err(ErrorKind::NotConnected.into()),
                    }
                } else if self.conn.is_some() && self.pending.len() + self.buf.len() <= MAX_PENDING
                {
                    self.pending.extend_from_slice(&self.buf);
                    Ok(())
                } else {
                    Err(ErrorKind::WouldBlock.into())
                }
            }
            None => Err(ErrorKind::NotConnected.into()),
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.dropped += 1,
            Err(e) => {
                self.dropped += 1;
                // udp: ECONNREFUSED reports an earlier datagram's ICMP; the socket is fine.
                if !matches!(self.conn, Some(Conn::Udp(_)))
                    || e.kind() != ErrorKind::ConnectionRefused
                {
                    self.fail();
                }
            }
        }
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::with_capacity(256);
        }
    }

    fn close(&mut self) {
        // Best effort: one more non-blocking attempt at what is queued.
        self.flush_pending();
        self.conn = None;
        self.pending = Vec::new();
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
