//! Registries for tests: `wharf registry serve` (own root or `--engine-store`), Debian's
//! `docker-registry` (distribution 2.8), raw HTTP/1.1 requests, and addresses to listen on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on `ip`.
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind(format!("{ip}:0"))
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// This machine's first non-loopback IPv4 address (loopback registries are never proxied
/// and are insecure by default, so some tests need another address).
pub fn public_ip() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut it = l.split_whitespace();
        it.find(|w| *w == "inet")?;
        it.next()?.split('/').next().map(str::to_string)
    })
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); status 0 when nothing
/// listens. A `Transfer-Encoding: chunked` header sends `body` in 7-byte chunks.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Resp {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
    };
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !chunked {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    if chunked {
        for c in body.chunks(7) {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .expect("write");
            s.write_all(c).expect("write");
            s.write_all(b"\r\n").expect("write");
        }
        s.write_all(b"0\r\n\r\n").expect("write");
    } else {
        s.write_all(body).expect("write body");
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// A running `wharf registry serve`; killed on drop.
pub struct Serve {
    pub child: Child,
    pub addr: String,
    /// The whole "listening on" line (address plus what it serves).
    pub banner: String,
    /// Everything it wrote to stderr (access log, errors).
    pub log: Arc<Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Spawns `cmd` (a `wharf … registry serve …`), waits for its "listening on" line and
    /// for `/v2/` to answer (200, or 401 with auth).
    pub fn start(mut cmd: Command) -> Serve {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wharf registry serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("wharf registry listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.to_string());
                    }
                }
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let mut s = Serve {
            child,
            addr: String::new(),
            banner: String::new(),
            log,
        };
        s.banner = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("registry did not start: {}", s.log.lock().expect("log")));
        s.addr = s.banner.split(' ').next().unwrap_or_default().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(http(&s.addr, "GET", "/v2/", &[], b"").status, 200 | 401) {
            assert!(Instant::now() < deadline, "registry never answered /v2/");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

/// Debian's `docker-registry serve` on `ip`; killed on drop.
pub struct DockerRegistry {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";

impl DockerRegistry {
    /// A registry storing under `dir`, listening on a free port of `ip`. `http_extra` is
    /// appended inside the `http:` section (indented two spaces, e.g. `tls:`), `top_extra`
    /// at the top level (e.g. `auth:`). None (after a SKIP line) when not installed.
    pub fn start(dir: &Path, ip: &str, http_extra: &str, top_extra: &str) -> Option<Self> {
        if !Path::new(DOCKER_REGISTRY).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: {DOCKER_REGISTRY} is needed (apt-get install docker-registry)"
            );
            eprintln!("SKIP: {DOCKER_REGISTRY} not installed");
            return None;
        }
        let addr = format!("{ip}:{}", free_port(ip));
        let name = addr.replace([':', '.'], "_");
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{http_extra}{top_extra}",
            dir.join(format!("data-{name}")).display()
        );
        let cfg_path = dir.join(format!("registry-{name}.yml"));
        std::fs::write(&cfg_path, cfg).expect("registry config");
        let log = dir.join(format!("registry-{name}.log"));
        let child = Command::new(DOCKER_REGISTRY)
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("registry log"))
            .spawn()
            .expect("spawn docker-registry");
        let reg = DockerRegistry { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&reg.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                std::fs::read_to_string(&reg.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }
}

/// Whether skopeo is installed (says so when a test skips for it).
pub fn skopeo_available() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: skopeo not installed");
    }
    ok
}

/// skopeo with no signature policy and no stored credentials.
pub fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .output()
        .expect("run skopeo")
}

/// [`skopeo`], asserting success; its stdout.
pub fn skopeo_ok(args: &[&str]) -> String {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
