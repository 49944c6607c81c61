//! Drivers against real sockets, files and a real full filesystem: what arrives is parsed and
//! checked; dead endpoints must never block.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wharf_logs::{open, LogContext, Stream};
use wharf_types::container::LogConfig;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ctx(dir: &Path) -> LogContext {
    LogContext {
        container_id: ID.into(),
        container_name: "web".into(),
        image_name: "busybox:latest".into(),
        image_id: format!("sha256:{}", "ab".repeat(32)),
        dir: dir.to_path_buf(),
    }
}

fn cfg(driver: &str, kv: &[(&str, &str)]) -> LogConfig {
    LogConfig {
        driver: driver.into(),
        config: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_320_306, 123_456_000)
}

#[test]
fn json_file_write_failures_drop_and_recover() {
    // A 64 KiB tmpfs fills up: writes fail fast, are counted, never block or panic.
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let result = std::panic::catch_unwind(|| {
        let mut w = open(&cfg("json-file", &[]), &ctx(&mnt)).unwrap();
        let start = Instant::now();
        for i in 0..5000 {
            w.log(
                Stream::Stdout,
                format!("line {i} {}\n", "y".repeat(100)).as_bytes(),
                t0(),
            );
        }
        // not a speed check: a writer that waited or retried per failed line (even 10 ms)
        // would take 50 s here; a noisy host cannot make 5000 failing writes take 30 s
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "blocked on a full disk"
        );
        assert!(w.dropped() > 3000, "dropped {}", w.dropped());
        // The file is removed: after a second the writer reopens a new one.
        let path = wharf_logs::json_log_path(&mnt, ID);
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        w.log(Stream::Stderr, b"back\n", t0());
        w.close();
        let s = std::fs::read_to_string(&path).unwrap();
        assert!(
            s.contains("\"log\":\"back\\n\",\"stream\":\"stderr\""),
            "{s}"
        );
    });
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    result.unwrap();
}

fn parse_unix_format(m: &str) -> (u32, String, String) {
    // <pri>Mmm dd hh:mm:ss tag[pid]: msg\n
    let rest = m.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let rest = &rest[16..];
    let (tag, rest) = rest.split_once('[').unwrap();
    let (_pid, msg) = rest.split_once("]: ").unwrap();
    (pri.parse().unwrap(), tag.to_string(), msg.to_string())
}

#[test]
fn syslog_unixgram_default_format() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("log.sock");
    let rx = UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for scheme in ["unixgram", "unix"] {
        let addr = format!("{scheme}://{}", sock.display());
        let mut w = open(
            &cfg(
                "syslog",
                &[
                    ("syslog-address", &addr),
                    ("tag", "{{.Name}}/{{.ID}}"),
                    ("syslog-facility", "local3"),
                ],
            ),
            &ctx(d.path()),
        )
        .unwrap();
        w.log(Stream::Stdout, b"hello out\n", t0());
        w.log(Stream::Stderr, b"hello err\n", t0());
        let mut buf = [0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            m.starts_with("<158>Nov 22 04:05:06 web/0123456789ab["),
            "{m}"
        );
        assert_eq!(
            parse_unix_format(&m),
            (19 * 8 + 6, "web/0123456789ab".into(), "hello out\n".into())
        );
        let n = rx.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(
            parse_unix_format(&m),
            (19 * 8 + 3, "web/0123456789ab".into(), "hello err\n".into())
        );
        w.close();
        assert_eq!(w.dropped(), 0);
    }
}

#[test]
fn syslog_unix_stream_socket() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("stream.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let addr = format!("unix://{}", sock.display());
    let mut w = open(&cfg("syslog", &[("syslog-address", &addr)]), &ctx(d.path())).unwrap();
    let (c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    w.log(Stream::Stdout, b"via stream\n", t0());
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).unwrap();
    // docker's default tag is the 12-char id, facility daemon (3).
    assert_eq!(
        parse_unix_format(&line),
        (3 * 8 + 6, "0123456789ab".into(), "via stream\n".into())
    );
}

#[test]
fn syslog_udp_rfc5424() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let addr = format!("udp://{}", rx.local_addr().unwrap());
    let d = tempfile::tempdir().unwrap();
    for (fmt, ts) in [
        ("rfc5424", "2026-11-22T04:05:06Z"),
        ("rfc5424micro", "2026-11-22T04:05:06.123456Z"),
    ] {
        let mut w = open(
            &cfg(
                "syslog",
                &[
                    ("syslog-address", &addr),
                    ("syslog-format", fmt),
                    ("tag", "app"),
                ],
            ),
            &ctx(d.path()),
        )
        .unwrap();
        w.log(Stream::Stderr, b"boom\n", t0());
        let mut buf = [0u8; 2048];
        let n = rx.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        let f: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(f[0], "<27>1", "{m}");
        assert_eq!(f[1], ts);
        assert_eq!(f[3], "app");
        assert_eq!(f[4], std::process::id().to_string());
        assert_eq!(f[5], "app");
        assert_eq!(f[6], "-");
        assert_eq!(f[7], "boom\n");
    }
}

#[test]
fn syslog_tcp_rfc3164_and_reconnect() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    let d = tempfile::tempdir().unwrap();
    let mut w = open(
        &cfg(
            "syslog",
            &[("syslog-address", &addr), ("syslog-format", "rfc3164")],
        ),
        &ctx(d.path()),
    )
    .unwrap();
    let (c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..100 {
        w.log(Stream::Stdout, format!("tcp {i}\n").as_bytes(), t0());
    }
    let mut r = BufReader::new(c);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for i in 0..100 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let want = format!(
            "<30>Nov 22 04:05:06 {} 0123456789ab[{}]: tcp {i}\n",
            host.trim(),
            std::process::id()
        );
        assert_eq!(line, want);
    }
    assert_eq!(w.dropped(), 0);
    w.close();
}

#[test]
fn journald_native_protocol() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("journal.sock");
    let rx = UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut w = open(
        &cfg(
            "journald",
            &[
                ("journald-socket", sock.to_str().unwrap()),
                ("tag", "{{.ImageName}}"),
            ],
        ),
        &ctx(d.path()),
    )
    .unwrap();
    w.log(Stream::Stdout, b"plain\n", t0());
    w.log(Stream::Stderr, b"two\nlines\n", t0());
    w.log(Stream::Stdout, b"partial", t0());
    let mut buf = vec![0u8; 65536];
    let mut recv = || {
        let n = rx.recv(&mut buf).unwrap();
        parse_native(&buf[..n])
    };
    let m = recv();
    assert_eq!(m["MESSAGE"], b"plain");
    assert_eq!(m["PRIORITY"], b"6");
    assert_eq!(m["CONTAINER_ID"], b"0123456789ab");
    assert_eq!(m["CONTAINER_ID_FULL"], ID.as_bytes());
    assert_eq!(m["CONTAINER_NAME"], b"web");
    assert_eq!(m["CONTAINER_TAG"], b"busybox:latest");
    assert_eq!(m["SYSLOG_IDENTIFIER"], b"busybox:latest");
    assert_eq!(m["IMAGE_NAME"], b"busybox:latest");
    assert!(!m.contains_key("CONTAINER_PARTIAL_MESSAGE"));
    let m = recv();
    assert_eq!(m["MESSAGE"], b"two\nlines");
    assert_eq!(m["PRIORITY"], b"3");
    let m = recv();
    assert_eq!(m["MESSAGE"], b"partial");
    assert_eq!(m["CONTAINER_PARTIAL_MESSAGE"], b"true");
    assert_eq!(w.dropped(), 0);
}

/// systemd's native journal format: `KEY=value\n` or `KEY\n<u64 le len><bytes>\n`.
fn parse_native(mut b: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n').unwrap();
        let head = &b[..nl];
        if let Some(eq) = head.iter().position(|&c| c == b'=') {
            m.insert(
                String::from_utf8(head[..eq].to_vec()).unwrap(),
                head[eq + 1..].to_vec(),
            );
            b = &b[nl + 1..];
        } else {
            let key = String::from_utf8(head.to_vec()).unwrap();
            let len = u64::from_le_bytes(b[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let v = b[nl + 9..nl + 9 + len].to_vec();
            assert_eq!(b[nl + 9 + len], b'\n');
            m.insert(key, v);
            b = &b[nl + 10 + len..];
        }
    }
    m
}

#[test]
fn splunk_hec_posts_batches() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut events = Vec::new();
        let mut heads = Vec::new();
        while events.len() < 3 {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{\"text\":\"Success\",\"code\":0}",
            )
            .unwrap();
            for l in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                events.push(serde_json::from_slice::<serde_json::Value>(l).unwrap());
            }
            heads.push(head);
        }
        (heads, events)
    });
    let d = tempfile::tempdir().unwrap();
    for (fmt, line) in [
        ("inline", "hello"),
        ("json", "{\"a\":1}"),
        ("raw", "raw line"),
    ] {
        let mut w = open(
            &cfg(
                "splunk",
                &[
                    ("splunk-url", &url),
                    ("splunk-token", "tok-123"),
                    ("splunk-index", "main"),
                    ("splunk-sourcetype", "st"),
                    ("splunk-format", fmt),
                ],
            ),
            &ctx(d.path()),
        )
        .unwrap();
        w.log(Stream::Stderr, format!("{line}\n").as_bytes(), t0());
        w.close();
        assert_eq!(w.dropped(), 0);
    }
    let (heads, ev) = server.join().unwrap();
    assert!(
        heads[0].starts_with("POST /services/collector/event/1.0 HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains("Authorization: Splunk tok-123\r\n"));
    assert_eq!(ev[0]["event"]["line"], "hello");
    assert_eq!(ev[0]["event"]["source"], "stderr");
    assert_eq!(ev[0]["event"]["tag"], "0123456789ab");
    assert_eq!(ev[0]["time"], "1795320306.123456");
    assert_eq!(ev[0]["index"], "main");
    assert_eq!(ev[0]["sourcetype"], "st");
    assert_eq!(ev[1]["event"]["line"]["a"], 1);
    assert_eq!(ev[2]["event"], "0123456789ab raw line");
}

#[test]
fn dead_endpoints_never_block() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.sock");
    // A udp port nobody listens on, a tcp port that refuses, missing unix sockets, no HEC.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_udp = udp.local_addr().unwrap();
    drop(udp);
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_tcp = tcp.local_addr().unwrap();
    drop(tcp);
    let cases = [
        cfg(
            "syslog",
            &[("syslog-address", &format!("udp://{dead_udp}"))],
        ),
        cfg(
            "syslog",
            &[("syslog-address", &format!("tcp://{dead_tcp}"))],
        ),
        cfg(
            "syslog",
            &[("syslog-address", &format!("unix://{}", missing.display()))],
        ),
        cfg(
            "syslog",
            &[(
                "syslog-address",
                &format!("unixgram://{}", missing.display()),
            )],
        ),
        cfg(
            "journald",
            &[("journald-socket", missing.to_str().unwrap())],
        ),
        cfg(
            "splunk",
            &[
                ("splunk-url", &format!("http://{dead_tcp}")),
                ("splunk-token", "t"),
            ],
        ),
    ];
    for c in cases {
        let start = Instant::now();
        let mut w = open(&c, &ctx(d.path())).unwrap();
        for i in 0..10_000 {
            w.log(
                Stream::Stdout,
                format!("line {i}\n").as_bytes(),
                SystemTime::now(),
            );
        }
        let el = start.elapsed();
        w.close();
        eprintln!(
            "{} {:?}: 10k lines in {el:?}, dropped {}",
            c.driver,
            c.config,
            w.dropped()
        );
        // not a speed check: waiting on the dead destination per line (a reconnect or a
        // timeout, even 3 ms) would take 30 s for 10k lines
        assert!(el < Duration::from_secs(30), "{c:?} blocked: {el:?}");
        // udp cannot tell: only every other send sees the ICMP error of the previous one.
        if c.driver != "splunk" && !c.config.values().any(|v| v.starts_with("udp")) {
            assert!(w.dropped() >= 9_000, "{c:?} dropped {}", w.dropped());
        }
    }
}

#[test]
fn syslog_full_socket_drops_instead_of_blocking() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("full.sock");
    let _rx = UnixDatagram::bind(&sock).unwrap(); // never read
    let mut w = open(
        &cfg(
            "syslog",
            &[("syslog-address", &format!("unixgram://{}", sock.display()))],
        ),
        &ctx(d.path()),
    )
    .unwrap();
    let start = Instant::now();
    for _ in 0..20_000 {
        w.log(Stream::Stdout, &[b'z'; 1000], SystemTime::now());
    }
    // a blocking send would never return (nobody reads the socket); this bound only turns
    // that hang into a failure
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "blocked on a full socket"
    );
    assert!(w.dropped() > 0);
}
