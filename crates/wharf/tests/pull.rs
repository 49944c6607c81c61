//! `wharf pull` / `push` / `login` / `logout` against real servers on 127.0.0.1:
//! `wharf registry serve` (push, pull into a fresh root, run, digests, up-to-date re-pull,
//! credentials) and a hostile hand-written HTTP server (digest mismatch → nothing committed).

#![allow(clippy::unwrap_used)]

mod common;
use common::registry::DockerRegistry;
use common::{expect_ok as ok, tmp_dir, wharf_at as wharf_env, Tmpfs};

fn wharf(root: &Path, home: &Path, args: &[&str]) -> Output {
    wharf_env(root, home, args, &[])
}

fn tmp() -> tempfile::TempDir {
    tmp_dir("wharf-pull-")
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use wharf_types::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_wharf");

struct Reg {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}
impl Drop for Reg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &Path, extra: &[&str]) -> Reg {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.join("reg.log");
    let child = Command::new(BIN)
        .args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(dir.join("reg"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Reg { child, addr, log }
}

fn busybox_tar(dir: &Path) -> std::path::PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let tar = dir.join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
fn push_pull_run_digest_up_to_date() {
    let t = tmp();
    let reg = start_registry(t.path(), &[]);
    let tar = busybox_tar(t.path());
    let (r1, r2) = (t.path().join("r1"), t.path().join("r2"));
    let name = format!("{}/bb:v1", reg.addr);
    ok(&wharf(
        &r1,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    let out = ok(&wharf(&r1, t.path(), &["push", &name]));
    assert!(out.contains("Pushed"), "{out}");
    let out = ok(&wharf(&r2, t.path(), &["pull", &name]));
    assert!(
        out.contains("Pull complete") && out.contains("Downloaded newer image"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), name);
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    let run = ok(&wharf(
        &r2,
        t.path(),
        &["run", "--rm", &name, "echo", "pulled-ok"],
    ));
    assert_eq!(run.trim(), "pulled-ok");
    let imgs = ok(&wharf(&r2, t.path(), &["images", "--digests"]));
    assert!(imgs.contains(&digest), "{imgs}");
    // Pull again: up to date, no blob GET.
    let gets_before = std::fs::read_to_string(&reg.log)
        .unwrap()
        .matches("\"GET /v2/bb/blobs/")
        .count();
    let out = ok(&wharf(&r2, t.path(), &["pull", &name]));
    assert!(out.contains("Image is up to date"), "{out}");
    let gets_after = std::fs::read_to_string(&reg.log)
        .unwrap()
        .matches("\"GET /v2/bb/blobs/")
        .count();
    assert_eq!(gets_before, gets_after);
    // By digest into a third root, -q prints only the reference.
    let r3 = t.path().join("r3");
    let by_digest = format!("{}/bb@{digest}", reg.addr);
    let out = ok(&wharf(&r3, t.path(), &["pull", "-q", &by_digest]));
    assert_eq!(out.trim(), by_digest);
    let imgs = ok(&wharf(&r3, t.path(), &["images", "--digests"]));
    assert!(imgs.contains(&digest), "{imgs}");
    // Unknown tag: one-line error, exit 1 (docker pull).
    let o = wharf(&r3, t.path(), &["pull", &format!("{}/bb:nope", reg.addr)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest unknown"));
    // Connection refused.
    let o = wharf(
        &r3,
        t.path(),
        &["pull", &format!("127.0.0.1:{}/x:1", free_port())],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("connection refused"));
}

/// Serves one fixed manifest/config/layer set; the layer bytes do not match its digest.
fn hostile_server(layer_body: Vec<u8>, layer_desc_digest: Digest, layer_size: u64) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let diff = Digest::of(&layer_body);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let cd = Digest::of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_desc_digest}","size":{layer_size}}}]}}"#,
        config.len()
    )
    .into_bytes();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut br = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = br.read_line(&mut line);
            loop {
                let mut h = String::new();
                if br.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let (ct, body): (&str, &[u8]) = if path.contains("/manifests/") {
                ("application/vnd.oci.image.manifest.v1+json", &manifest)
            } else if path.ends_with(&cd.to_string()) {
                ("application/octet-stream", &config)
            } else if path.contains("/blobs/") {
                ("application/octet-stream", &layer_body)
            } else {
                ("application/json", b"{}")
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    addr
}

fn layer_tar(dir: &Path) -> Vec<u8> {
    let d = dir.join("l");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("f"), b"hello").unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&d)
        .args(["-cf", "-", "f"])
        .output()
        .unwrap();
    o.stdout
}

#[test]
fn hostile_digest_and_size_mismatch() {
    let t = tmp();
    let body = layer_tar(t.path());
    let root = t.path().join("root");
    // Wrong digest, right size.
    let addr = hostile_server(body.clone(), Digest::of(b"other"), body.len() as u64);
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/evil:1")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("digest mismatch"), "{err}");
    // Right digest, the descriptor's size is smaller than the bytes.
    let addr = hostile_server(body.clone(), Digest::of(&body), body.len() as u64 - 100);
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/evil:1")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("size mismatch"), "{err}");
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty(), "{imgs}");
    let blobs: Vec<_> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .collect();
    assert!(blobs.is_empty(), "blobs committed: {blobs:?}");
}

#[test]
fn login_pull_logout() {
    let t = tmp();
    let hp = t.path().join("htpasswd");
    std::fs::write(
        &hp,
        wharf_registry::htpasswd_line("alice", "s3cret", 6).unwrap() + "\n",
    )
    .unwrap();
    let reg = start_registry(t.path(), &["--htpasswd", hp.to_str().unwrap()]);
    let tar = busybox_tar(t.path());
    let root = t.path().join("root");
    let name = format!("{}/secret:v1", reg.addr);
    ok(&wharf(
        &root,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    let o = wharf(&root, t.path(), &["push", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unauthorized"));
    let o = wharf(
        &root,
        t.path(),
        &["login", "-u", "alice", "-p", "wrong", &reg.addr],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = ok(&wharf(
        &root,
        t.path(),
        &["login", "-u", "alice", "-p", "s3cret", &reg.addr],
    ));
    assert!(out.contains("Login Succeeded"));
    let cfg = t.path().join(".docker/config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut s = String::new();
    std::fs::File::open(&cfg)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert!(
        s.contains(&reg.addr) && s.contains("YWxpY2U6czNjcmV0"),
        "{s}"
    );
    ok(&wharf(&root, t.path(), &["push", &name]));
    let root2 = t.path().join("root2");
    ok(&wharf(&root2, t.path(), &["pull", &name]));
    let out = ok(&wharf(&root, t.path(), &["logout", &reg.addr]));
    assert!(out.contains("Removing login credentials"));
    let o = wharf(&t.path().join("root3"), t.path(), &["pull", &name]);
    assert_eq!(o.status.code(), Some(1));
}

// ---------------------------------------------------------------------------------------
// A scriptable fake registry: every request is recorded; `handler` answers it.

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}
impl Req {
    fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then stall until the connection is dropped.
    stall_after: Option<usize>,
    /// Send only this many body bytes, then close the connection.
    close_after: Option<usize>,
}
fn resp(status: u16, ct: &str, body: Vec<u8>) -> Resp {
    Resp {
        status,
        headers: vec![("Content-Type".into(), ct.into())],
        body,
        stall_after: None,
        close_after: None,
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;
type Log = std::sync::Arc<std::sync::Mutex<Vec<Req>>>;

fn fake_server(handler: std::sync::Arc<Handler>) -> (String, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log: Log = Default::default();
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let handler = handler.clone();
            let log = log2.clone();
            std::thread::spawn(move || {
                let mut br = BufReader::new(s.try_clone().unwrap());
                let mut s = s;
                loop {
                    let mut line = String::new();
                    if br.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split(' ');
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    let mut clen = 0usize;
                    loop {
                        let mut h = String::new();
                        if br.read_line(&mut h).unwrap_or(0) <= 2 {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                clen = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                    let mut body = vec![0; clen];
                    let _ = br.read_exact(&mut body);
                    let req = Req {
                        method,
                        path,
                        headers,
                    };
                    log.lock().unwrap().push(req.clone());
                    let r = handler(&req);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
                        r.status,
                        r.body.len()
                    );
                    for (k, v) in &r.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    if req.method == "HEAD" {
                        continue;
                    }
                    if let Some(n) = r.close_after {
                        let _ = s.write_all(&r.body[..n.min(r.body.len())]);
                        return;
                    }
                    match r.stall_after {
                        Some(n) => {
                            let _ = s.write_all(&r.body[..n.min(r.body.len())]);
                            let _ = s.flush();
                            // Hold the connection open until the client goes away.
                            let mut b = [0u8; 1];
                            let _ = br.read(&mut b);
                            return;
                        }
                        None => {
                            if s.write_all(&r.body).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, log)
}

/// A one-layer image (uncompressed tar layer of `payload` bytes): (manifest, config, layer).
fn image_parts(dir: &Path, payload: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let d = dir.join(format!("img{payload}"));
    std::fs::create_dir_all(&d).unwrap();
    let data: Vec<u8> = (0..payload).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("f"), &data).unwrap();
    let layer = Command::new("tar")
        .arg("-C")
        .arg(&d)
        .args(["-cf", "-", "f"])
        .output()
        .unwrap()
        .stdout;
    let diff = Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{diff}","size":{}}}]}}"#,
        Digest::of(&config),
        config.len(),
        layer.len()
    )
    .into_bytes();
    (manifest, config, layer)
}

fn serve_parts(req: &Req, m: &[u8], c: &[u8], l: &[u8]) -> Resp {
    if req.path.contains("/manifests/") {
        resp(
            200,
            "application/vnd.oci.image.manifest.v1+json",
            m.to_vec(),
        )
    } else if req.path.ends_with(&Digest::of(c).to_string()) {
        resp(200, "application/octet-stream", c.to_vec())
    } else if req.path.ends_with(&Digest::of(l).to_string()) {
        resp(200, "application/octet-stream", l.to_vec())
    } else {
        resp(404, "application/json", b"{}".to_vec())
    }
}

#[test]
fn oversized_manifest_refused() {
    let t = tmp();
    let (addr, _) = fake_server(std::sync::Arc::new(|_r: &Req| {
        resp(
            200,
            "application/vnd.oci.image.manifest.v1+json",
            vec![b' '; 5 << 20],
        )
    }));
    let root = t.path().join("root");
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/big:1")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn redirect_to_other_host_drops_credentials_and_bearer_flow() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 1000);
    let ld = Digest::of(&l);
    // The blob host: records what it got.
    let (l2, c2) = (l.clone(), c.clone());
    let (blob_addr, blob_log) = fake_server(std::sync::Arc::new(move |r: &Req| {
        serve_parts(r, b"", &c2, &l2)
    }));
    // The registry: Bearer auth with a token realm on itself; layer GETs redirect away.
    let me = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let me2 = me.clone();
    let (addr, log) = fake_server(std::sync::Arc::new(move |r: &Req| {
        if r.path.starts_with("/token") {
            if r.header("authorization") != Some("Basic Ym9iOnB3") {
                return resp(401, "application/json", b"{}".to_vec());
            }
            return resp(200, "application/json", br#"{"token":"tok123"}"#.to_vec());
        }
        if r.header("authorization") != Some("Bearer tok123") {
            let mut x = resp(
                401,
                "application/json",
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#.to_vec(),
            );
            let realm = format!("http://{}/token", me2.lock().unwrap());
            x.headers.push((
                "WWW-Authenticate".into(),
                format!(r#"Bearer realm="{realm}",service="fake",scope="repository:app:pull""#),
            ));
            return x;
        }
        if r.path.ends_with(&ld.to_string()) {
            let mut x = resp(307, "text/plain", Vec::new());
            x.headers
                .push(("Location".into(), format!("http://{blob_addr}/blob/{ld}")));
            return x;
        }
        serve_parts(r, &m, &c, &[])
    }));
    *me.lock().unwrap() = addr.clone();
    std::fs::create_dir_all(t.path().join(".docker")).unwrap();
    std::fs::write(
        t.path().join(".docker/config.json"),
        format!(r#"{{"auths":{{"{addr}":{{"auth":"Ym9iOnB3"}}}}}}"#),
    )
    .unwrap();
    let root = t.path().join("root");
    let out = ok(&wharf(&root, t.path(), &["pull", &format!("{addr}/app:1")]));
    assert!(out.contains("Pull complete"), "{out}");
    let blob_reqs = blob_log.lock().unwrap().clone();
    assert!(!blob_reqs.is_empty());
    for r in &blob_reqs {
        assert!(
            r.header("authorization").is_none(),
            "credentials leaked: {r:?}"
        );
    }
    let reqs = log.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|r| r.path.starts_with("/token")
                && r.path.contains("scope=repository%3Aapp%3Apull")),
        "{reqs:?}"
    );
}

#[test]
fn kill_mid_pull_then_resume() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 8 << 20);
    let stall = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stall2 = stall.clone();
    let half = l.len() / 2;
    let (addr, log) = fake_server(std::sync::Arc::new(move |r: &Req| {
        let mut x = serve_parts(r, &m, &c, &l);
        if r.path.ends_with(&Digest::of(&l).to_string()) {
            if let Some(range) = r.header("range") {
                let from: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                x.status = 206;
                x.body = l[from..].to_vec();
                x.headers.push((
                    "Content-Range".into(),
                    format!("bytes {from}-{}/{}", l.len() - 1, l.len()),
                ));
            }
            if stall2.load(std::sync::atomic::Ordering::SeqCst) {
                x.stall_after = Some(half);
            }
        }
        x
    }));
    let root = t.path().join("root");
    let name = format!("{addr}/slow:1");
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["pull", &name])
        .env("HOME", t.path())
        .env("WHARF_CONFIG", t.path().join("daemon.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let partial_len = || -> u64 {
        std::fs::read_dir(root.join("ingest"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("pull-"))
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    while partial_len() < half as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "pull never got half way"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty(), "partial image visible: {imgs}");
    stall.store(false, std::sync::atomic::Ordering::SeqCst);
    let out = ok(&wharf(&root, t.path(), &["pull", &name]));
    assert!(out.contains("Pull complete"), "{out}");
    let reqs = log.lock().unwrap().clone();
    let range = reqs
        .iter()
        .find_map(|r| r.header("range").map(str::to_string));
    assert_eq!(range, Some(format!("bytes={half}-")), "{reqs:?}");
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert_eq!(imgs.lines().count(), 1);
}

/// `run`/`create` of an image the store lacks pull it first, as docker's CLI does (its
/// `Unable to find image` line and the pull's lines on stderr, the container's output alone on
/// stdout); `--pull never` refuses, `--pull always` pulls a present image again, a bad value
/// is named. Against Debian's docker-registry.
#[test]
fn run_and_create_pull_a_missing_image() {
    let t = tmp();
    let Some(dr) = DockerRegistry::start(t.path(), "127.0.0.1", "", "") else {
        return;
    };
    let tar = busybox_tar(t.path());
    let (r1, r2) = (t.path().join("r1"), t.path().join("r2"));
    let name = format!("{}/auto/bb:v1", dr.addr);
    ok(&wharf(
        &r1,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    ok(&wharf(&r1, t.path(), &["push", &name]));

    // never: missing is an error, nothing pulled
    let o = wharf(
        &r2,
        t.path(),
        &["run", "--rm", "--pull", "never", &name, "true"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No such image"),
        "{o:?}"
    );
    // missing (the default): pulled, then run
    let o = wharf(
        &r2,
        t.path(),
        &["run", "--rm", &name, "echo", "auto-pulled"],
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out, "auto-pulled\n",
        "only the container's output on stdout"
    );
    assert!(
        err.starts_with(&format!("Unable to find image '{name}' locally\n")),
        "{err}"
    );
    assert!(err.contains("Downloaded newer image"), "{err}");
    // present: no pull, no line
    let o = wharf(&r2, t.path(), &["run", "--rm", &name, "true"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    // always: asks the registry again (up to date)
    let o = wharf(
        &r2,
        t.path(),
        &["run", "--rm", "--pull", "always", &name, "true"],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Image is up to date"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    // create pulls too, and prints only the id on stdout
    let r3 = t.path().join("r3");
    let o = wharf(&r3, t.path(), &["create", &name, "true"]);
    assert!(o.status.success(), "{o:?}");
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 64);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Unable to find image"));
    // -q: the pull says nothing (docker's `run -q`/`create -q`), the container still runs
    let r4 = t.path().join("r4");
    let o = wharf(
        &r4,
        t.path(),
        &["run", "-q", "--rm", &name, "echo", "quiet"],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "quiet\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{o:?}");
    let o = wharf(
        &r3,
        t.path(),
        &["run", "--pull", "sometimes", &name, "true"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
        ),
        "{o:?}"
    );
    ok(&wharf(&r3, t.path(), &["rm", "-f", &id]));
}

#[test]
fn interop_docker_registry_and_skopeo() {
    let t = tmp();
    let Some(dr) = DockerRegistry::start(t.path(), "127.0.0.1", "", "") else {
        return;
    };
    let addr = dr.addr.clone();
    let tar = busybox_tar(t.path());
    let (r1, r2) = (t.path().join("r1"), t.path().join("r2"));
    let name = format!("{addr}/interop/bb:v1");
    ok(&wharf(
        &r1,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    ok(&wharf(&r1, t.path(), &["push", &name]));
    // Re-push: every layer already exists.
    let out = ok(&wharf(&r1, t.path(), &["push", &name]));
    assert!(out.contains("Layer already exists"), "{out}");
    let out = ok(&wharf(&r2, t.path(), &["pull", &name]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    let run = ok(&wharf(
        &r2,
        t.path(),
        &["run", "--rm", &name, "echo", "from-distribution"],
    ));
    assert_eq!(run.trim(), "from-distribution");
    // Pulled image pushed on to a second repository (blobs kept as pulled: same digest).
    let name2 = format!("{addr}/interop/copy:v2");
    ok(&wharf(&r2, t.path(), &["tag", &name, &name2]));
    let out = ok(&wharf(&r2, t.path(), &["push", &name2]));
    let d1 = ok(&wharf(&r2, t.path(), &["images", "--digests"]));
    assert!(
        out.lines().last().unwrap().contains("digest: sha256:"),
        "{out}"
    );
    let pushed = out
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_string();
    assert!(
        d1.contains(&pushed),
        "re-push changed the manifest digest: {out}\n{d1}"
    );
    // Cross-repository mount: the image was pushed to interop/bb from this root.
    let name3 = format!("{addr}/interop/mounted:v1");
    ok(&wharf(&r1, t.path(), &["tag", &name, &name3]));
    let out = ok(&wharf(&r1, t.path(), &["push", &name3]));
    assert!(out.contains("Mounted from interop/bb"), "{out}");
    // Chunked upload (POST + PATCH… + PUT) from a root that knows no source repository.
    let r5 = t.path().join("r5");
    let name4 = format!("{addr}/interop/chunked:v1");
    ok(&wharf(
        &r5,
        t.path(),
        &["import", tar.to_str().unwrap(), &name4],
    ));
    let out = ok(&wharf_env(
        &r5,
        t.path(),
        &["push", &name4],
        &[("WHARF_PUSH_CHUNK", "100000")],
    ));
    assert!(out.contains("Pushed"), "{out}");
    let r4 = t.path().join("r4");
    ok(&wharf(&r4, t.path(), &["pull", &name4]));
    let run = ok(&wharf(
        &r4,
        t.path(),
        &["run", "--rm", &name4, "cat", "/bin/true"],
    ));
    assert!(!run.is_empty());
    // skopeo pushes to wharf's own registry, wharf pulls it.
    if Path::new("/usr/bin/skopeo").exists() {
        let reg = start_registry(t.path(), &[]);
        let st = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("docker://{name}"))
            .arg(format!("docker://{}/sk/bb:1", reg.addr))
            .status()
            .unwrap();
        assert!(st.success());
        let r3 = t.path().join("r3");
        let out = ok(&wharf(
            &r3,
            t.path(),
            &["pull", &format!("{}/sk/bb:1", reg.addr)],
        ));
        assert!(out.contains("Pull complete"), "{out}");
    } else {
        eprintln!("SKIP: skopeo not installed");
    }
    drop(dr);
}

/// One-layer image parts with the layer compressed by `tool` (`gzip`/`zstd`).
fn compressed_parts(
    dir: &Path,
    tool: &str,
    media: &str,
    arch: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>, Digest) {
    let (_, _, tar) = image_parts(dir, 300_000);
    let diff = Digest::of(&tar);
    let mut child = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let tar2 = tar.clone();
    let w = std::thread::spawn(move || stdin.write_all(&tar2).unwrap());
    let layer = child.wait_with_output().unwrap().stdout;
    w.join().unwrap();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"{media}","digest":"{}","size":{}}}]}}"#,
        Digest::of(&config),
        config.len(),
        Digest::of(&layer),
        layer.len()
    )
    .into_bytes();
    (manifest, config, layer, diff)
}

#[test]
fn index_platform_selection_gzip_and_zstd_layers() {
    let t = tmp();
    let mut tools = Vec::new();
    for (tool, media) in [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIP {tool}: not installed");
            continue;
        }
        tools.push((tool, media));
    }
    // each config says the platform its index entry (below) claims
    let n = tools.len();
    let parts: Vec<_> = tools
        .iter()
        .enumerate()
        .map(|(i, (tool, media))| {
            let arch = if i + 1 == n { "arm64" } else { "amd64" };
            compressed_parts(t.path(), tool, media, arch)
        })
        .collect();
    // An index: amd64 → the first image, arm64/v8 → the last.
    let entries: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, (m, _, _, _))| {
            let arch = if i + 1 == parts.len() { r#""architecture":"arm64","variant":"v8""# } else { r#""architecture":"amd64""# };
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"os":"linux",{arch}}}}}"#,
                Digest::of(m),
                m.len()
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes();
    let index_digest = Digest::of(&index);
    let parts2: Vec<_> = parts
        .iter()
        .map(|(m, c, l, _)| (m.clone(), c.clone(), l.clone()))
        .collect();
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        if r.path.ends_with("/manifests/1") {
            return resp(
                200,
                "application/vnd.oci.image.index.v1+json",
                index.clone(),
            );
        }
        for (m, c, l) in &parts2 {
            if r.path.ends_with(&Digest::of(m).to_string()) {
                return resp(200, "application/vnd.oci.image.manifest.v1+json", m.clone());
            }
            let x = serve_parts(r, b"", c, l);
            if x.status == 200 && !r.path.contains("/manifests/") {
                return x;
            }
        }
        resp(
            404,
            "application/json",
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}"#.to_vec(),
        )
    }));
    for (i, (_, _, _, diff)) in parts.iter().enumerate() {
        let root = t.path().join(format!("root{i}"));
        let plat = if i + 1 == parts.len() {
            "linux/arm64"
        } else {
            "linux/amd64"
        };
        let out = ok(&wharf(
            &root,
            t.path(),
            &["pull", "--platform", plat, &format!("{addr}/multi:1")],
        ));
        assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
        let f = root.join("snapshots").join(diff.hex()).join("f");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 300_000);
    }
    let o = wharf(
        &t.path().join("rx"),
        t.path(),
        &[
            "pull",
            "--platform",
            "linux/s390x",
            &format!("{addr}/multi:1"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no matching manifest"));
}

#[test]
fn truncated_blob_and_foreign_token_realm() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 200_000);
    let ld = Digest::of(&l);
    // Token server on another host:port (plain http): must never see the credentials.
    let (token_addr, token_log) = fake_server(std::sync::Arc::new(|_r: &Req| {
        resp(200, "application/json", br#"{"token":"t0k"}"#.to_vec())
    }));
    let (m2, c2, l2) = (m.clone(), c.clone(), l.clone());
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        if r.header("authorization") != Some("Bearer t0k") {
            let mut x = resp(401, "application/json", b"{}".to_vec());
            x.headers.push((
                "WWW-Authenticate".into(),
                format!(r#"Bearer realm="http://{token_addr}/token",service="s",scope="repository:t:pull""#),
            ));
            return x;
        }
        let mut x = serve_parts(r, &m2, &c2, &l2);
        if r.path.ends_with(&ld.to_string()) {
            x.close_after = Some(l2.len() / 3);
        }
        x
    }));
    std::fs::create_dir_all(t.path().join(".docker")).unwrap();
    std::fs::write(
        t.path().join(".docker/config.json"),
        format!(r#"{{"auths":{{"{addr}":{{"auth":"Ym9iOnB3"}}}}}}"#),
    )
    .unwrap();
    let root = t.path().join("root");
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/t:1")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("layer") && err.lines().count() == 1, "{err}");
    let toks = token_log.lock().unwrap().clone();
    assert!(!toks.is_empty());
    assert!(
        toks.iter().all(|r| r.header("authorization").is_none()),
        "{toks:?}"
    );
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty());
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn gzip_bomb_refused_on_small_store() {
    let t = tmp();
    let root = t.path().join("root");
    let _m = Tmpfs::mount(&root, "16m");
    // The same 8 MiB file of zeros 8 times (each entry replaces the last, so the disk never
    // fills): 64 MiB decompressed from a few dozen KiB, more than the 16 MiB store.
    let d = t.path().join("bomb");
    std::fs::create_dir_all(&d).unwrap();
    let f = std::fs::File::create(d.join("zeros")).unwrap();
    f.set_len(8 << 20).unwrap();
    let names = ["zeros"; 8].join(" ");
    let sh = format!(
        "tar --hard-dereference -C {} -cf - {} | gzip -1 -c",
        d.display(),
        names
    );
    let tar = Command::new("sh")
        .args([
            "-c",
            &format!("tar --hard-dereference -C {} -cf - {names}", d.display()),
        ])
        .output()
        .unwrap()
        .stdout;
    let layer = Command::new("sh")
        .args(["-c", &sh])
        .output()
        .unwrap()
        .stdout;
    assert!(layer.len() < 1 << 20);
    let diff = Digest::of(&tar);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        Digest::of(&config),
        config.len(),
        Digest::of(&layer),
        layer.len()
    )
    .into_bytes();
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        serve_parts(r, &manifest, &config, &layer)
    }));
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/bomb:1")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("decompression bomb"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    eprintln!("bomb refused with: {}", err.trim());
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty());
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    let tmp_snaps = std::fs::read_dir(root.join("snapshots")).unwrap().count();
    assert_eq!(tmp_snaps, 0, "temporary snapshot left behind");
}

#[test]
fn docker_hub_names_go_to_the_configured_mirror() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 5000);
    let (addr, log) = fake_server(std::sync::Arc::new(move |r: &Req| {
        serve_parts(r, &m, &c, &l)
    }));
    std::fs::write(
        t.path().join("daemon.json"),
        format!(r#"{{"registry-mirrors": ["http://{addr}"]}}"#),
    )
    .unwrap();
    let root = t.path().join("root");
    let out = ok(&wharf(&root, t.path(), &["pull", "alpine:3"]));
    assert_eq!(
        out.lines().last().unwrap(),
        "docker.io/library/alpine:3",
        "{out}"
    );
    let reqs = log.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|r| r.path == "/v2/library/alpine/manifests/3"),
        "{reqs:?}"
    );
    let imgs = ok(&wharf(&root, t.path(), &["images"]));
    assert!(imgs.contains("alpine"), "{imgs}");
    // A malformed config file is a clear error.
    std::fs::write(t.path().join("daemon.json"), "{nope").unwrap();
    let o = wharf(&root, t.path(), &["pull", "alpine:3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid config file"));
}

/// containerd's rules: an index's platform claim must match the config it leads to, and a
/// document with both `manifests` and `layers` is refused; nothing is committed.
#[test]
fn mismatched_or_ambiguous_platform_documents_refused() {
    let t = tmp();
    let (_, _, l) = image_parts(t.path(), 1000);
    let diff = Digest::of(&l);
    let config = format!(
        r#"{{"architecture":"arm64","os":"windows","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let man = |extra: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{diff}","size":{}}}]{extra}}}"#,
            Digest::of(&config),
            config.len(),
            l.len()
        )
        .into_bytes()
    };
    let m = man("");
    let amb = man(r#","manifests":[]"#);
    let md = Digest::of(&m);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        m.len()
    )
    .into_bytes();
    let md2 = md.clone();
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        let man_ct = "application/vnd.oci.image.manifest.v1+json";
        if r.path.ends_with("/manifests/lying") {
            resp(
                200,
                "application/vnd.oci.image.index.v1+json",
                index.clone(),
            )
        } else if r.path.ends_with("/manifests/both") {
            resp(200, man_ct, amb.clone())
        } else if r.path.ends_with(&format!("/manifests/{md2}")) {
            resp(200, man_ct, m.clone())
        } else {
            serve_parts(r, b"", &config, &l)
        }
    }));
    let root = t.path().join("root");
    let o = wharf(
        &root,
        t.path(),
        &[
            "pull",
            "--platform",
            "linux/amd64",
            &format!("{addr}/x:lying"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&md.to_string())
            && err.contains("linux/amd64")
            && err.contains("windows/arm64"),
        "{err}"
    );
    let o = wharf(&root, t.path(), &["pull", &format!("{addr}/x:both")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("ambiguous"), "{err}");
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty(), "{imgs}");
}

/// A registry that sends headers and part of a blob, then goes silent: with a 1 s idle
/// timeout the download is resumed with Range; when every resume stalls too, the pull fails
/// in seconds (not 120 s per read) naming the blob and the registry, keeping the partial for
/// the next pull; when the registry recovers, the resume completes the pull in one run.
#[test]
fn stalled_blob_is_resumed_or_named() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 2 << 20);
    let ld = Digest::of(&l);
    let half = l.len() / 2;
    // 0: every answer for the layer stalls; 1: only the first (un-ranged) one does; 2: like
    // 1, but Range is ignored (200, the whole blob again).
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mode2 = mode.clone();
    let ld2 = ld.clone();
    let (addr, log) = fake_server(std::sync::Arc::new(move |r: &Req| {
        let mut x = serve_parts(r, &m, &c, &l);
        if r.path.ends_with(&ld2.to_string()) {
            let range = r.header("range").map(|v| {
                v.trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse::<usize>()
                    .unwrap()
            });
            let ignores_range = mode2.load(std::sync::atomic::Ordering::SeqCst) == 2;
            if let Some(from) = range.filter(|_| !ignores_range) {
                x.status = 206;
                x.body = l[from..].to_vec();
                x.headers.push((
                    "Content-Range".into(),
                    format!("bytes {from}-{}/{}", l.len() - 1, l.len()),
                ));
            }
            let stalls = mode2.load(std::sync::atomic::Ordering::SeqCst) == 0 || range.is_none();
            if stalls {
                x.stall_after = Some(if range.is_none() { half } else { 1000 });
            }
        }
        x
    }));
    let root = t.path().join("root");
    let name = format!("{addr}/stall:1");
    std::fs::write(
        t.path().join("daemon.json"),
        r#"{"registry-idle-timeout": 1}"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let o = wharf(&root, t.path(), &["pull", &name]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&ld.to_string()) && err.contains(&addr) && err.contains("stalled"),
        "{err}"
    );
    let ranged = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("range").is_some())
        .count();
    assert_eq!(ranged, 3, "three resumes");
    let partial = root.join("ingest").join(format!("pull-{}", ld.hex()));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept >= half as u64, "partial kept for resume: {kept}");
    let imgs = ok(&wharf(&root, t.path(), &["images", "-q"]));
    assert!(imgs.trim().is_empty());

    // The registry recovers after the first stall: one run resumes and completes.
    mode.store(1, std::sync::atomic::Ordering::SeqCst);
    std::fs::remove_file(t.path().join("daemon.json")).unwrap();
    let root2 = t.path().join("root2");
    log.lock().unwrap().clear();
    let out = ok(&wharf_env(
        &root2,
        t.path(),
        &["pull", &name],
        &[("WHARF_REGISTRY_IDLE_TIMEOUT", "1.5")],
    ));
    assert!(out.contains("Pull complete"), "{out}");
    let reqs = log.lock().unwrap().clone();
    let range = reqs
        .iter()
        .find_map(|r| r.header("range").map(str::to_string))
        .unwrap();
    let at: usize = range["bytes=".len()..range.len() - 1].parse().unwrap();
    assert!(at >= half && at < 2 * half, "{range}");
    assert_eq!(
        ok(&wharf(&root2, t.path(), &["images", "-q"]))
            .lines()
            .count(),
        1
    );
    // A registry that ignores Range: the resume skips what it already has.
    mode.store(2, std::sync::atomic::Ordering::SeqCst);
    let root3 = t.path().join("root3");
    let out = ok(&wharf_env(
        &root3,
        t.path(),
        &["pull", &name],
        &[("WHARF_REGISTRY_IDLE_TIMEOUT", "1")],
    ));
    assert!(out.contains("Pull complete"), "{out}");
    // a bad setting is a clear error
    let o = wharf_env(
        &root2,
        t.path(),
        &["pull", &name],
        &[("WHARF_REGISTRY_IDLE_TIMEOUT", "soon")],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("WHARF_REGISTRY_IDLE_TIMEOUT"));
}

/// Three pulls killed mid-layer, then one that completes: the temp snapshots the killed ones
/// left are removed and the store holds what a clean pull leaves.
#[test]
fn killed_pulls_leave_nothing_behind() {
    let t = tmp();
    let (m, c, l) = image_parts(t.path(), 4 << 20);
    let ld = Digest::of(&l);
    let stall = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stall2 = stall.clone();
    let ld2 = ld.clone();
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        let mut x = serve_parts(r, &m, &c, &l);
        if r.path.ends_with(&ld2.to_string()) {
            let from = r.header("range").map_or(0, |v| {
                v.trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse::<usize>()
                    .unwrap()
            });
            if from > 0 {
                x.status = 206;
                x.body = l[from..].to_vec();
                x.headers.push((
                    "Content-Range".into(),
                    format!("bytes {from}-{}/{}", l.len() - 1, l.len()),
                ));
            }
            if stall2.load(std::sync::atomic::Ordering::SeqCst) {
                x.stall_after = Some(x.body.len() / 4);
            }
        }
        x
    }));
    let name = format!("{addr}/kill:1");
    let root = t.path().join("root");
    let tmp_snaps = |root: &Path| -> Vec<String> {
        std::fs::read_dir(root.join("snapshots"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("tmp-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen: Vec<String> = Vec::new();
    for i in 0..3 {
        let child = Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["pull", &name])
            .env("HOME", t.path())
            .env("WHARF_CONFIG", t.path().join("daemon.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = common::KillOnDrop(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let fresh = loop {
            if let Some(n) = tmp_snaps(&root).into_iter().find(|n| !seen.contains(n)) {
                break n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pull {i} unpacked nothing"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        seen.push(fresh);
        std::thread::sleep(Duration::from_millis(300));
        drop(child); // SIGKILL
    }
    stall.store(false, std::sync::atomic::Ordering::SeqCst);
    let out = ok(&wharf(&root, t.path(), &["pull", &name]));
    assert!(out.contains("Pull complete"), "{out}");
    let (bytes, temps) = common::store_usage(&root);
    assert!(temps.is_empty(), "{temps:?}");
    let clean = t.path().join("clean");
    ok(&wharf(&clean, t.path(), &["pull", &name]));
    assert_eq!(bytes, common::store_usage(&clean).0);
}

/// A pull that fills the store fails saying so, removes its partial download (which would
/// make the next operation fail sooner), and works once space is freed.
#[test]
fn pull_on_a_full_store_says_so_and_keeps_no_partial() {
    let t = tmp();
    let root = t.path().join("root");
    let _m = Tmpfs::mount(&root, "32m");
    let (m, c, l) = image_parts(t.path(), 8 << 20);
    let (addr, _) = fake_server(std::sync::Arc::new(move |r: &Req| {
        serve_parts(r, &m, &c, &l)
    }));
    let name = format!("{addr}/full:1");
    ok(&wharf(&root, t.path(), &["images"]));
    // ~11 MiB free: the 8 MiB layer fits once, not as download + snapshot
    let filler = root.join("filler");
    std::fs::write(&filler, vec![1u8; 21 << 20]).unwrap();
    let o = wharf(&root, t.path(), &["pull", &name]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    eprintln!("full store: {}", err.trim());
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no space left on the store {}", root.display())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(root.join("ingest"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(common::store_usage(&root).1.is_empty());
    std::fs::remove_file(&filler).unwrap();
    let out = ok(&wharf(&root, t.path(), &["pull", &name]));
    assert!(out.contains("Pull complete"), "{out}");
}

/// A registry blob corrupted on disk (Debian's docker-registry serves what it has): the pull
/// fails naming the blob's digest and the source, on one line, and stores nothing.
#[test]
fn pull_of_a_corrupt_blob_names_the_digest_and_the_source() {
    let t = tmp();
    let Some(dr) = DockerRegistry::start(t.path(), "127.0.0.1", "", "") else {
        return;
    };
    let tar = busybox_tar(t.path());
    let (r1, r2) = (t.path().join("r1"), t.path().join("r2"));
    let name = format!("{}/corrupt/bb:v1", dr.addr);
    ok(&wharf(
        &r1,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    ok(&wharf(&r1, t.path(), &["push", &name]));
    // while it is intact: `rmi` of a pulled image says its digest reference untagged too,
    // as docker's (tag, then repo@digest, then the image)
    let r3 = t.path().join("r3");
    ok(&wharf(&r3, t.path(), &["pull", &name]));
    // `images --digests`: a row shows its own repository's digest only
    ok(&wharf(&r3, t.path(), &["tag", &name, "local/copy:1"]));
    let o = wharf(
        &r3,
        t.path(),
        &[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}",
        ],
    );
    let rows = String::from_utf8_lossy(&o.stdout).to_string();
    let repo = name.rsplit_once(':').unwrap().0;
    assert!(rows.contains("local/copy <none>\n"), "{rows}");
    assert!(rows.contains(&format!("{repo} sha256:")), "{rows}");
    ok(&wharf(&r3, t.path(), &["rmi", "local/copy:1"]));
    let o = wharf(&r3, t.path(), &["rmi", &name]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], format!("Untagged: {name}"));
    assert!(
        lines[1].starts_with(&format!("Untagged: {repo}@sha256:")),
        "{out}"
    );
    assert!(lines[2].starts_with("Deleted: sha256:"), "{out}");
    // the largest blob in the registry's storage is the layer
    let mut blobs = Vec::new();
    let mut stack = vec![t.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "data")
                && p.display().to_string().contains("/blobs/sha256/")
            {
                blobs.push(p);
            }
        }
    }
    let layer = blobs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let digest = layer
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .to_string();
    let mut data = std::fs::read(layer).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(layer, &data).unwrap();

    let o = wharf(&r2, t.path(), &["pull", &name]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains(&digest), "names the blob: {err}");
    assert!(last.contains(&dr.addr), "names the source: {err}");
    let o = wharf(&r2, t.path(), &["images", "-q"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "nothing stored");
}
