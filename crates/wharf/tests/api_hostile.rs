//! Hostile clients against both HTTP servers, which run on one stack (wharf-http, hyper): the
//! Engine API (`wharf system service`, unix socket) and the registry (`wharf registry
//! serve`, TCP). Oversized headers get 431, oversized bodies 413, malformed requests and
//! JSON 400 — never a 500; slow headers and slow bodies are cut off; a thousand idle or slow
//! connections at once leave `_ping` and `/v2/` answering with the server's memory bounded.
//! Each test starts its own servers and counts only its own connections.

mod common;

use common::registry::{http, Serve};
use common::Wharf;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a server listens.
#[derive(Clone)]
enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn open(a: &Addr) -> std::io::Result<Conn> {
        Ok(match a {
            Addr::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
            Addr::Tcp(s) => Conn::Tcp(TcpStream::connect(s)?),
        })
    }

    fn set_read_timeout(&self, d: Duration) {
        let _ = match self {
            Conn::Unix(s) => s.set_read_timeout(Some(d)),
            Conn::Tcp(s) => s.set_read_timeout(Some(d)),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(b),
            Conn::Tcp(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(b),
            Conn::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends `req` (as much of it as the server takes) and reads the answer to the connection's
/// end: the status (0 when the server closed without one), the text and how long it took.
fn exchange(a: &Addr, req: &[u8], timeout: Duration) -> (u16, String, Duration) {
    let mut c = Conn::open(a).expect("connect");
    c.set_read_timeout(timeout);
    let start = Instant::now();
    let _ = c.write_all(req);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, start.elapsed())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(path: &str, ctype: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `wharf system service` on a socket of its own with this header deadline; stopped on drop.
struct Api {
    child: Child,
    addr: Addr,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start(w: &Wharf, header_timeout: u32) -> Api {
        let dir = common::tmp_dir("wharf-hostile-sock-");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let sock = dir.path().join("api.sock");
        let child = w
            .command(&[])
            .args(["system", "service", "--group", "nogroup", "-H"])
            .arg(format!("unix://{}", sock.display()))
            .args(["--header-timeout", &header_timeout.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wharf system service");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "the service did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Api {
            child,
            addr: Addr::Unix(sock),
            _dir: dir,
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wharf registry serve` on a free loopback port, over a root of its own.
fn registry() -> (Serve, tempfile::TempDir) {
    let root = common::tmp_dir("wharf-hostile-reg-");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root.path().join("store"))
        .args(["--max-manifest-size", "4096"]);
    (Serve::start(cmd), root)
}

/// VmRSS of `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// This process's soft fd limit.
fn nofile() -> u64 {
    let s = std::fs::read_to_string("/proc/self/limits").expect("limits");
    s.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

#[test]
fn oversized_and_malformed_requests_get_4xx_from_both_servers() {
    let w = Wharf::new();
    let api = Api::start(&w, 10);
    let (reg, _root) = registry();
    let r = Addr::Tcp(reg.addr.clone());
    let t = Duration::from_secs(20);
    let zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let reg_upload = format!("/v2/x/blobs/uploads/?digest={zero}");
    for (name, a, ok_path, upload) in [
        ("api", &api.addr, "/_ping", "/volumes/create"),
        ("registry", &r, "/v2/", reg_upload.as_str()),
    ] {
        // a header block over the limit: 431, before anything is routed
        let big = format!(
            "GET {ok_path} HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
            "a".repeat(256 * 1024)
        );
        let (st, text, _) = exchange(a, big.as_bytes(), t);
        assert_eq!(st, 431, "{name}: {text}");
        let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
        let (st, text, _) = exchange(
            a,
            format!("GET {ok_path} HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes(),
            t,
        );
        assert_eq!(st, 431, "{name}: {text}");
        // not HTTP at all, a bad version, bad chunked framing: 400
        let chunked = format!(
            "POST {upload} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        );
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/7.0\r\nHost: h\r\n\r\n",
            chunked.as_bytes(),
        ] {
            let (st, text, _) = exchange(a, bad, t);
            assert!(
                (400..500).contains(&st),
                "{name}: {:?} -> {text}",
                String::from_utf8_lossy(bad)
            );
        }
        // and it keeps serving
        let (st, text, _) = exchange(a, &get(ok_path), t);
        assert_eq!(st, 200, "{name}: {text}");
    }
    // API: malformed JSON is 400 (docker's message body), an oversized body 413
    for path in [
        "/containers/create",
        "/volumes/create",
        "/networks/create",
        "/v1.45/containers/create",
    ] {
        let (st, text, _) = exchange(
            &api.addr,
            &post(path, "application/json", "{\"Name\": [1,"),
            t,
        );
        assert_eq!(st, 400, "{path}: {text}");
        assert!(text.contains("{\"message\":"), "{path}: {text}");
    }
    let (st, text, _) = exchange(
        &api.addr,
        b"POST /volumes/create HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 5000000\r\n\r\n{",
        t,
    );
    assert_eq!(st, 413, "{text}");
    // registry: a manifest over --max-manifest-size is 413, one that is not JSON 400
    let m = "x".repeat(5000);
    let resp = http(
        &reg.addr,
        "PUT",
        "/v2/hostile/manifests/1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        m.as_bytes(),
    );
    assert_eq!(resp.status, 413, "{}", String::from_utf8_lossy(&resp.body));
    let resp = http(
        &reg.addr,
        "PUT",
        "/v2/hostile/manifests/1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        b"{\"schemaVersion\": 2,",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "MANIFEST_INVALID");
    // a path that does not decode is 400 in the registry's error shape
    let resp = http(&reg.addr, "GET", "/v2/a%zz/tags/list", &[], b"");
    assert_eq!(resp.status, 400);
    let (st, _, _) = exchange(&r, &get("/v2/"), t);
    assert_eq!(st, 200);
}

#[test]
fn slow_headers_and_slow_bodies_are_cut_off() {
    let w = Wharf::new();
    // the API's header deadline is a flag (2 s here); the registry's is wharf-http's 10 s;
    // bodies: the API's JSON body deadline is 30 s, the registry cuts an upload that sends
    // nothing for 30 s
    let api = Api::start(&w, 2);
    let (reg, _root) = registry();
    let r = Addr::Tcp(reg.addr.clone());
    let slow_head = b"GET /_ping HTTP/1.1\r\nHost: h\r\n".to_vec();
    let slow_body = post("/volumes/create", "application/json", "{\"Name\": \"x\"}")
        .split_at(100)
        .0
        .to_vec();
    let reg_body = b"POST /v2/slow/blobs/uploads/?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000 HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nabc".to_vec();
    let checks: Vec<(&str, Addr, Vec<u8>, Duration)> = vec![
        (
            "api headers",
            api.addr.clone(),
            slow_head.clone(),
            Duration::from_secs(8),
        ),
        (
            "registry headers",
            r.clone(),
            slow_head,
            Duration::from_secs(20),
        ),
        (
            "api body",
            api.addr.clone(),
            slow_body,
            Duration::from_secs(45),
        ),
        (
            "registry body",
            r.clone(),
            reg_body,
            Duration::from_secs(45),
        ),
    ];
    let waits: Vec<_> = checks
        .into_iter()
        .map(|(name, a, req, max)| {
            std::thread::spawn(move || {
                let (st, text, took) = exchange(&a, &req, Duration::from_secs(90));
                (name, st, text, took, max)
            })
        })
        .collect();
    // while those hang, both servers answer
    std::thread::sleep(Duration::from_millis(500));
    let (st, text, _) = exchange(&api.addr, &get("/_ping"), Duration::from_secs(10));
    assert_eq!(st, 200, "{text}");
    let (st, text, _) = exchange(&r, &get("/v2/"), Duration::from_secs(10));
    assert_eq!(st, 200, "{text}");
    for h in waits {
        let (name, st, text, took, max) = h.join().expect("join");
        // cut off: closed without an answer, or a 4xx (408, or the API's 400 naming the
        // deadline), within its deadline plus slack
        assert!(
            st == 0 || (400..500).contains(&st),
            "{name}: {st} after {took:?}: {text}"
        );
        assert!(took < max, "{name}: cut only after {took:?}: {text}");
        assert!(took > Duration::from_secs(1), "{name}: cut at once: {text}");
    }
    let (st, _, _) = exchange(&r, &get("/v2/"), Duration::from_secs(10));
    assert_eq!(st, 200);
}

#[test]
fn a_thousand_idle_and_slow_connections_leave_both_servers_serving() {
    const N: usize = 1000;
    if nofile() < (2 * N as u64 + 200) {
        eprintln!("skipped: soft fd limit {} is too low", nofile());
        return;
    }
    let w = Wharf::new();
    let api = Api::start(&w, 30);
    let (reg, _root) = registry();
    let r = Addr::Tcp(reg.addr.clone());
    let servers = [
        ("api", api.addr.clone(), "/_ping", api.child.id()),
        ("registry", r.clone(), "/v2/", reg.child.id()),
    ];
    for (name, a, ok_path, pid) in servers {
        let before = rss_kb(pid);
        let started = Instant::now();
        let mut held = Vec::with_capacity(N);
        for i in 0..N {
            let mut c = Conn::open(&a).unwrap_or_else(|e| panic!("{name}: connection {i}: {e}"));
            // half idle, half a header block that never ends
            if i % 2 == 1 {
                let _ =
                    c.write_all(format!("GET {ok_path} HTTP/1.1\r\nHost: h\r\nX-{i}: ").as_bytes());
            }
            held.push(c);
        }
        // the server keeps answering while they are all open
        for _ in 0..20 {
            let (st, text, took) = exchange(&a, &get(ok_path), Duration::from_secs(10));
            assert_eq!(st, 200, "{name}: {text}");
            assert!(
                took < Duration::from_secs(5),
                "{name}: answered after {took:?}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{name}: the connections may have been cut by the header deadline already"
        );
        // and they are still open (not refused to make room): one of each kind answers
        // its request when it completes
        for c in held.iter_mut().take(2) {
            c.set_read_timeout(Duration::from_secs(10));
            let _ = c.write_all(
                format!(
                    "GET {ok_path} HTTP/1.1\r\nHost: h\r\nX-Done: 1\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "{name}: a held connection: {text}"
            );
        }
        let rss = rss_kb(pid);
        eprintln!("{name}: RSS {before} kB idle, {rss} kB with {N} connections");
        assert!(rss < 64 * 1024, "{name}: RSS {rss} kB with {N} connections");
        drop(held);
        let (st, text, _) = exchange(&a, &get(ok_path), Duration::from_secs(10));
        assert_eq!(st, 200, "{name}: {text}");
    }
}
