//! The Engine API's remaining endpoints, driven by the real docker CLI 28 and by raw
//! requests: archive (`docker cp` both ways, its stat header, hostile tars), stats, changes,
//! export, commit, history, prunes, `system df`, search, and the per-caller cap on
//! long-lived requests.

mod common;

use common::api::{have_docker, Service};
use common::{stderr, stdout, Wharf};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A request closing the connection after its response, with a binary body.
fn req_bytes(method: &str, path: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn req(method: &str, path: &str, body: &str) -> Vec<u8> {
    req_bytes(method, path, "application/json", body.as_bytes())
}

/// The JSON body of a raw response (after the header block; a chunked body's size lines
/// are skipped).
fn json_body(resp: &str) -> serde_json::Value {
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let text: String = if resp
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n")
            .filter(|l| !l.is_empty() && u64::from_str_radix(l.trim(), 16).is_err())
            .collect()
    } else {
        body.to_string()
    };
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {resp}"))
}

/// A tar with the given (path, contents) files; a path ending in `/` is a directory.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if p.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        // set_path refuses `..`: write the name bytes directly (hostile tars need them)
        let name = h.as_gnu_mut().map(|g| &mut g.name).expect("gnu header");
        name[..p.len()].copy_from_slice(p.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("tar append");
    }
    b.into_inner().expect("tar")
}

fn start(w: &Wharf) -> Option<Service> {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return None;
    }
    Some(Service::start(w, &[]))
}

#[test]
fn docker_cp_both_ways_and_hostile_archives() {
    let w = Wharf::new().with_busybox();
    let Some(s) = start(&w) else { return };
    let id = s
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "cpy",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let host = common::tmp_dir("wharf-api-cp-");
    let hp = |n: &str| host.path().join(n).display().to_string();
    // host → container: a file (owner kept with -a only) and a directory
    std::fs::write(hp("f.txt"), "from host\n").expect("write");
    std::os::unix::fs::chown(hp("f.txt"), Some(1234), Some(1234)).expect("chown");
    std::fs::create_dir(hp("d")).expect("mkdir");
    std::fs::write(host.path().join("d/inner"), "inner\n").expect("write");
    s.ok(&["cp", &hp("f.txt"), "cpy:/tmp/"]);
    s.ok(&["cp", "-a", &hp("f.txt"), "cpy:/tmp/kept.txt"]);
    s.ok(&["cp", &hp("d"), "cpy:/tmp/d"]);
    let got = s.ok(&[
        "exec",
        "cpy",
        "sh",
        "-c",
        "cat /tmp/f.txt /tmp/d/inner; stat -c %u /tmp/f.txt /tmp/kept.txt",
    ]);
    assert_eq!(got, "from host\ninner\n0\n1234\n");
    // container → host: a file, a directory, and from a stopped container
    s.ok(&[
        "exec",
        "cpy",
        "sh",
        "-c",
        "mkdir -p /srv/x && echo deep > /srv/x/y",
    ]);
    s.ok(&["cp", "cpy:/srv", &hp("srv")]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("srv/x/y")).expect("read"),
        "deep\n"
    );
    s.ok(&["cp", "cpy:/tmp/f.txt", &hp("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(hp("back.txt")).expect("read"),
        "from host\n"
    );
    s.ok(&["stop", "-t", "0", "cpy"]);
    s.ok(&["cp", "cpy:/srv/x/y", &hp("stopped.txt")]);
    assert_eq!(
        std::fs::read_to_string(hp("stopped.txt")).expect("read"),
        "deep\n"
    );
    s.ok(&["start", "cpy"]);

    // HEAD: docker's base64 JSON stat header; a missing path is 404
    let (code, resp) = s.raw(&req(
        "HEAD",
        &format!("/v1.50/containers/{id}/archive?path=/srv"),
        "",
    ));
    assert_eq!(code, 200, "{resp}");
    let hdr = resp
        .lines()
        .find_map(|l| l.strip_prefix("x-docker-container-path-stat: "))
        .unwrap_or_else(|| panic!("no stat header: {resp}"));
    let decoded = common::sh(&format!("echo {} | base64 -d", hdr.trim()));
    let st: serde_json::Value = serde_json::from_slice(&decoded.stdout).expect("stat json");
    assert_eq!(st["name"], "srv");
    assert_eq!(st["mode"].as_u64().map(|m| m >> 31), Some(1), "{st}");
    // paths stay inside the container's root: `..` cannot reach the host's files
    let marker = format!("wharf-q2-marker-{}", std::process::id());
    std::fs::write(format!("/tmp/{marker}"), "host secret").expect("marker");
    let (code, resp) = s.raw(&req(
        "GET",
        &format!("/v1.50/containers/{id}/archive?path=/../../../../../../tmp/{marker}"),
        "",
    ));
    let _ = std::fs::remove_file(format!("/tmp/{marker}"));
    assert_eq!(code, 404, "{resp}");
    assert!(!resp.contains("host secret"));

    // hostile tars: `..`, a symlink then a file through it: refused, nothing written outside
    let put = |q: &str, tar: &[u8]| {
        s.raw(&req_bytes(
            "PUT",
            &format!("/v1.50/containers/{id}/archive?{q}"),
            "application/x-tar",
            tar,
        ))
    };
    let (code, resp) = put("path=/tmp", &tar_of(&[("../escape", b"x")]));
    assert!((400..500).contains(&code), "{code} {resp}");
    // a header that does not parse is the archive's fault too
    let mut bad = tar_of(&[("a", b"x")]);
    bad[108..116].copy_from_slice(b"zzzzzzz\0");
    let mut hdr = tar::Header::new_old();
    hdr.as_mut_bytes().copy_from_slice(&bad[..512]);
    hdr.set_cksum();
    bad[..512].copy_from_slice(hdr.as_bytes());
    let (code, resp) = put("path=/tmp", &bad);
    assert!((400..500).contains(&code), "{code} {resp}");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "l", "/").expect("link");
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "l/tmp/evil", &b"x"[..])
        .expect("file");
    let (code, resp) = put("path=/tmp", &b.into_inner().expect("tar"));
    assert!((400..500).contains(&code), "{code} {resp}");
    let o = s.run(&[
        "exec",
        "cpy",
        "sh",
        "-c",
        "ls /tmp/evil /escape /tmp/l 2>&1",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    // the extraction point must be a directory; noOverwriteDirNonDir keeps a file a file
    let (code, resp) = put("path=/tmp/f.txt", &tar_of(&[("a", b"x")]));
    assert_eq!(code, 400, "{resp}");
    let (code, resp) = put(
        "path=/tmp&noOverwriteDirNonDir=true",
        &tar_of(&[("f.txt/", b""), ("f.txt/n", b"x")]),
    );
    assert!((400..500).contains(&code), "{code} {resp}");
    assert_eq!(s.ok(&["exec", "cpy", "cat", "/tmp/f.txt"]), "from host\n");
    let (code, resp) = put("path=/nowhere", &tar_of(&[("a", b"x")]));
    assert_eq!(code, 404, "{resp}");
    s.ok(&["rm", "-f", "cpy"]);
}

#[test]
fn docker_stats_no_stream_and_stream() {
    let w = Wharf::new().with_busybox();
    let Some(s) = start(&w) else { return };
    let id = s
        .ok(&[
            "run",
            "-d",
            "--name",
            "st",
            "--network",
            "none",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .trim()
        .to_string();
    let out = s.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        "st",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f.len(), 4, "{out}");
    assert_eq!(f[0], "st");
    let cpu: f64 = f[1].trim_end_matches('%').parse().expect("cpu %");
    assert!(cpu > 5.0, "a busy loop uses CPU: {out}");
    assert!(
        f[2].ends_with("/ 64MiB") && !f[2].starts_with("0B"),
        "{out}"
    );
    assert!(f[3].parse::<u32>().expect("pids") >= 1, "{out}");
    // the raw shape docker's clients read
    let (code, resp) = s.raw(&req(
        "GET",
        &format!("/v1.50/containers/{id}/stats?stream=false"),
        "",
    ));
    assert_eq!(code, 200, "{resp}");
    let v = json_body(&resp);
    for k in [
        "read",
        "preread",
        "cpu_stats",
        "precpu_stats",
        "memory_stats",
        "blkio_stats",
        "pids_stats",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert!(
        v["precpu_stats"]["system_cpu_usage"].as_u64() > Some(0),
        "{v}"
    );
    assert!(v["memory_stats"]["limit"].as_u64() == Some(64 << 20), "{v}");
    // streaming: one object per second until the client goes away
    let mut c = UnixStream::connect(&s.sock).expect("connect");
    c.write_all(format!("GET /containers/{id}/stats HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes())
        .expect("send");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while String::from_utf8_lossy(&seen)
        .matches("\"cpu_stats\"")
        .count()
        < 2
    {
        let n = c.read(&mut buf).expect("read stats stream");
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(start.elapsed() >= Duration::from_millis(800));
    drop(c);
    // a missing container is docker's 404
    let (code, _) = s.raw(&req("GET", "/containers/nosuch/stats?stream=0", ""));
    assert_eq!(code, 404);
    s.ok(&["rm", "-f", "st"]);
}

#[test]
fn diff_export_commit_history_prune_df_search() {
    let w = Wharf::new().with_busybox();
    let Some(s) = start(&w) else { return };
    s.ok(&[
        "run",
        "--name",
        "ch",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /made && echo v > /made/file && rm /bin/true",
    ]);
    let diff = s.ok(&["diff", "ch"]);
    for line in ["A /made", "A /made/file", "C /bin", "D /bin/true"] {
        assert!(
            diff.lines().any(|l| l == line),
            "{line} missing in:\n{diff}"
        );
    }
    // export: the container's file system as a tar
    let tarp = w.dir.path().join("export.tar");
    s.ok(&["export", "-o", tarp.to_str().expect("utf8"), "ch"]);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&tarp).expect("open"))
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names.iter().any(|n| n.trim_end_matches('/') == "made/file"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "bin/true"), "{names:?}");
    // commit with a change and an author; the image runs and has its history
    let id = s.ok(&[
        "commit",
        "-a",
        "me",
        "-m",
        "msg",
        "-c",
        "ENV COMMITTED=yes",
        "ch",
        "made:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "made:1",
            "sh",
            "-c",
            "cat /made/file; echo $COMMITTED"
        ]),
        "v\nyes\n"
    );
    let hist = s.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "made:1",
    ]);
    let first = hist.lines().next().unwrap_or_default();
    assert_eq!(first, format!("{}|msg", id.trim()), "{hist}");
    assert_eq!(
        s.ok(&["history", "-q", "made:1"]).lines().count(),
        w.ok(&["history", "-q", "made:1"]).lines().count()
    );
    // a Config body is refused by name rather than ignored
    let (code, resp) = s.raw(&req(
        "POST",
        "/v1.50/commit?container=ch",
        r#"{"Cmd":["x"]}"#,
    ));
    assert_eq!(code, 501, "{resp}");
    // prunes: the stopped container, then the image it held (made dangling)
    let out = s.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    s.ok(&["tag", "made:1", "made:2"]);
    s.ok(&["rmi", "made:1"]);
    s.ok(&["rmi", "made:2"]);
    let (code, resp) = s.raw(&req(
        "POST",
        "/v1.50/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
        "",
    ));
    assert_eq!(code, 200, "{resp}");
    assert!(json_body(&resp)["ImagesDeleted"].is_array(), "{resp}");
    assert_eq!(
        s.ok(&["images", "-q"]),
        "",
        "-a removed every image no container uses"
    );
    let (code, resp) = s.raw(&req(
        "POST",
        "/v1.50/images/prune?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D",
        "",
    ));
    assert_eq!(code, 400, "{resp}");
    s.ok(&["volume", "create", "lonely"]);
    let out = s.ok(&["volume", "prune", "-af"]);
    assert!(out.contains("lonely"), "{out}");
    // df through the socket
    let w2 = Wharf::new().with_busybox();
    drop(s);
    let s = Service::start(&w2, &[]);
    s.ok(&["create", "--name", "idle", "busybox", "true"]);
    let df = s.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ]);
    assert!(df.lines().any(|l| l == "Images|1|1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers|1|0"), "{df}");
    let o = s.run(&["system", "df", "-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // what wharf does not serve says so, in docker's error shape
    let o = s.run(&["search", "busybox"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
    let (code, resp) = s.raw(&req("POST", "/v1.50/build/prune", ""));
    assert_eq!(code, 501, "{resp}");
    assert!(json_body(&resp)["message"]
        .as_str()
        .is_some_and(|m| m.contains("not supported")));
}

/// Reads a response's status line and headers (not its body).
fn read_head(c: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn long_requests_are_capped_per_uid_and_hold_no_thread() {
    let w = Wharf::new().with_busybox();
    let Some(s) = start(&w) else { return };
    let id = s
        .ok(&["run", "-d", "--network", "none", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    // 200 waits from one uid: 64 are served (headers sent, waiting), the rest 429
    let mut open = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..200 {
        let mut c = UnixStream::connect(&s.sock).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        c.write_all(
            format!(
                "POST /v1.50/containers/{id}/wait HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send");
        let head = read_head(&mut c);
        if head.starts_with("HTTP/1.1 200") {
            served += 1;
            open.push(c);
        } else {
            assert!(head.starts_with("HTTP/1.1 429"), "{head}");
            refused += 1;
        }
    }
    assert_eq!((served, refused), (64, 136));
    let (code, resp) = s.raw(&req("POST", &format!("/v1.50/containers/{id}/wait"), ""));
    assert_eq!(code, 429);
    assert!(
        json_body(&resp)["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 64")),
        "{resp}"
    );
    // the server keeps serving everything else at once
    let t = Instant::now();
    let (code, _) = s.raw(&req("GET", "/_ping", ""));
    assert_eq!(code, 200);
    assert_eq!(s.ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // the waits that were served end with the container
    s.ok(&["kill", &id]);
    let mut body = String::new();
    open[0].read_to_string(&mut body).ok();
    assert!(body.contains("\"StatusCode\":137"), "{body}");
    // closed waits give their slots back
    drop(open);
    assert!(
        common::eventually(10, || {
            s.raw(&req("POST", &format!("/v1.50/containers/{id}/wait"), ""))
                .0
                == 200
        }),
        "slots were not released"
    );
    s.ok(&["rm", "-f", &id]);
}

/// A raw request as nobody:nogroup (a non-root member of the socket's group) through curl:
/// (status, body).
fn curl_as_nobody(
    s: &Service,
    method: &str,
    path: &str,
    headers: &[&str],
) -> Option<(u16, String)> {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&s.sock)
        .args(["-X", method]);
    for h in headers {
        c.args(["-H", h]);
    }
    let o = c
        .arg(format!("http://d{path}"))
        .uid(65534)
        .gid(65534)
        .env_clear()
        .output()
        .ok()?;
    let out = stdout(&o);
    let (body, code) = out.trim_end().rsplit_once('\n')?;
    Some((code.parse().ok()?, body.to_string()))
}

#[test]
fn docker_login_push_and_stored_credentials_only_for_root() {
    let w = Wharf::new().with_busybox();
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let t = common::tmp_dir("wharf-api-push-");
    let hp = t.path().join("htpasswd");
    std::fs::write(
        &hp,
        wharf_registry::htpasswd_line("alice", "s3cret", 6).expect("htpasswd") + "\n",
    )
    .expect("write htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
        hp.display()
    );
    let Some(reg) = common::registry::DockerRegistry::start(t.path(), "127.0.0.1", "", &auth)
    else {
        return;
    };
    let server_cfg = t.path().join("server-config");
    std::fs::create_dir_all(&server_cfg).expect("mkdir");
    let s = Service::start(&w, &[("DOCKER_CONFIG", server_cfg.as_path())]);
    // the docker CLI keeps credentials in its config.json (no `pass` helper on its PATH)
    let dk = |args: &[&str]| {
        let o = s
            .docker(args)
            .env("PATH", "/usr/local/bin")
            .output()
            .expect("docker");
        (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
    };
    // docker login through the socket: checked against the registry, stored by the client only
    let (ok, out) = dk(&["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(!ok, "{out}");
    let (ok, out) = dk(&["login", "-u", "alice", "-p", "s3cret", &reg.addr]);
    assert!(ok && out.contains("Login Succeeded"), "{out}");
    assert_eq!(std::fs::read_dir(&server_cfg).expect("read").count(), 0);
    // docker push with the client's credentials (X-Registry-Auth): docker's progress
    let image = format!("{}/priv/bb", reg.addr);
    s.ok(&["tag", "busybox", &format!("{image}:v1")]);
    let (ok, out) = dk(&["push", &format!("{image}:v1")]);
    assert!(ok, "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    assert!(out.contains("Pushed"), "{out}");
    // the server's own login (stored) serves root callers only
    let o = w
        .command(&["login", "-u", "alice", "-p", "s3cret", &reg.addr])
        .env("DOCKER_CONFIG", &server_cfg)
        .output()
        .expect("wharf login");
    assert!(o.status.success(), "{}", stderr(&o));
    s.ok(&["rmi", &format!("{image}:v1")]);
    let pull = format!("/v1.50/images/create?fromImage={image}&tag=v1");
    let Some((code, body)) = curl_as_nobody(&s, "POST", &pull, &[]) else {
        eprintln!("skipped: no curl");
        return;
    };
    assert_eq!(
        code, 403,
        "a non-root caller without X-Registry-Auth is anonymous: {body}"
    );
    assert!(
        s.run(&["image", "inspect", &format!("{image}:v1")])
            .status
            .code()
            != Some(0)
    );
    // ... with its own credentials it pulls
    let header = format!(
        "X-Registry-Auth: {}",
        common::sh(
            r#"printf '{"username":"alice","password":"s3cret"}' | base64 -w0 | tr '+/' '-_'"#
        )
        .stdout
        .iter()
        .map(|b| *b as char)
        .collect::<String>()
    );
    let (code, body) = curl_as_nobody(&s, "POST", &pull, &[&header]).expect("curl");
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("errorDetail"), "{body}");
    s.ok(&["rmi", &format!("{image}:v1")]);
    // root without the header: the stored login
    let (code, resp) = s.raw(&req("POST", &pull, ""));
    assert_eq!(code, 200, "{resp}");
    assert!(!resp.contains("errorDetail"), "{resp}");
    s.ok(&["image", "inspect", &format!("{image}:v1")]);
}

/// One websocket frame from the server: (opcode, payload); the server never masks.
fn ws_read(c: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).expect("frame head");
    assert_eq!(h[1] & 0x80, 0, "a server frame is not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).expect("len16");
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).expect("len64");
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut data = vec![0u8; len as usize];
    c.read_exact(&mut data).expect("payload");
    (h[0] & 0x0f, data)
}

/// One masked client frame.
fn ws_write(c: &mut UnixStream, opcode: u8, payload: &[u8]) {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    c.write_all(&f).expect("send frame");
}

/// The websocket handshake for `path`; the response head.
fn ws_connect(s: &Service, path: &str) -> (UnixStream, String) {
    let mut c = UnixStream::connect(&s.sock).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    c.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("handshake");
    let head = read_head(&mut c);
    (c, head)
}

#[test]
fn websocket_attach_carries_stdin_and_output() {
    let w = Wharf::new().with_busybox();
    let Some(s) = start(&w) else { return };
    // StdinOnce (what `docker run -i` sets): the attach's end closes the container's stdin
    let (code, resp) = s.raw(&req(
        "POST",
        "/v1.50/containers/create",
        r#"{"Image":"busybox","Cmd":["cat"],"OpenStdin":true,"StdinOnce":true,"HostConfig":{"NetworkMode":"none"}}"#,
    ));
    assert_eq!(code, 201, "{resp}");
    let id = json_body(&resp)["Id"].as_str().expect("Id").to_string();
    s.ok(&["start", &id]);
    let (mut c, head) = ws_connect(
        &s,
        &format!("/v1.50/containers/{id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's example key and its answer
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    ws_write(&mut c, 1, b"hello ws\n");
    let mut got = Vec::new();
    while got != b"hello ws\n" {
        let (op, data) = ws_read(&mut c);
        assert_eq!(op, 2, "binary messages from API 1.42 on");
        got.extend_from_slice(&data);
    }
    // ping → pong
    ws_write(&mut c, 9, b"p");
    assert_eq!(ws_read(&mut c), (10, b"p".to_vec()));
    // a close ends the container's stdin (cat exits), and the server closes too
    ws_write(&mut c, 8, &1000u16.to_be_bytes());
    assert_eq!(ws_read(&mut c).0, 8);
    assert!(
        common::eventually(10, || s
            .ok(&["inspect", "--format", "{{.State.Status}}", &id])
            .trim()
            == "exited"),
        "cat did not see its stdin end"
    );
    // API 1.41: text messages (docker's); a request without the handshake is 400
    let id2 = s
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo late",
        ])
        .trim()
        .to_string();
    let (mut c, head) = ws_connect(
        &s,
        &format!("/v1.41/containers/{id2}/attach/ws?stream=1&stdout=1"),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (op, data) = ws_read(&mut c);
    assert_eq!((op, data.as_slice()), (1, &b"late\n"[..]));
    let (code, resp) = s.raw(&req("GET", &format!("/containers/{id2}/attach/ws"), ""));
    assert_eq!(code, 400, "{resp}");
    s.ok(&["rm", "-f", &id, &id2]);
}
