//! The Engine API server (`wharf system service`) driven by the real docker CLI 28
//! (/usr/local/bin/docker) and by hand-written requests on a raw unix socket: what users
//! run (`run --rm`, `run -d` + logs + exec + stop + rm, `ps -a`, `inspect`, `run -it`,
//! piped `run -i`), and hostile input (malformed JSON, oversized body, slow headers,
//! versions, a policy refusal audited with the caller's uid).

mod common;

use common::{stderr, stdout, Wharf};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{docker_bin, have_docker, Service};

/// A request closing the connection after its response.
fn req(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn docker_run_rm_and_exit_codes() {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let v = s.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(v.trim(), "1.50 1.24");
    assert_eq!(s.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    let o = s.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // StdinOnce: the container's stdin ends with the client's
    let o = common::output_with_stdin(
        &mut s.docker(&["run", "-i", "--rm", "--network", "none", "busybox", "cat"]),
        b"piped\n",
    );
    assert_eq!(stdout(&o), "piped\n", "{}", stderr(&o));
    // --rm removed them all, and the CLI's view is the same
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert_eq!(w.ok(&["ps", "-aq"]), "");
    // info and image filters: the API and the CLI render the same engine data
    w.ok(&["tag", "busybox", "other:1"]);
    let f = "{{.Containers}} {{.Images}} {{.Driver}} {{.NCPU}} {{.MemTotal}} {{.DockerRootDir}}";
    assert_eq!(
        s.ok(&["info", "--format", f]),
        w.ok(&["info", "--format", f])
    );
    let rows = |out: String| {
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    for filter in ["reference=oth*", "dangling=false", "label=none"] {
        let args = [
            "images",
            "-f",
            filter,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ];
        assert_eq!(rows(s.ok(&args)), rows(w.ok(&args)), "{filter}");
    }
    assert_eq!(
        rows(w.ok(&[
            "images",
            "-f",
            "reference=oth*",
            "--format",
            "{{.Repository}}"
        ])),
        ["other"]
    );
    let o = s.run(&["images", "-f", "bogus=1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid filter 'bogus'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn detached_logs_exec_stop_rm_and_inspect() {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "--label",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "echo started; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = s.run(&["logs", "web"]);
        if stdout(&o) == "started\n" && stderr(&o) == "oops\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs: {} / {}",
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = s.run(&["exec", "web", "sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(5), "in-exec\n")
    );
    let o = common::output_with_stdin(
        &mut s.docker(&["exec", "-i", "web", "cat"]),
        b"through exec\n",
    );
    assert_eq!(stdout(&o), "through exec\n");
    let ps = s.ok(&["ps", "--format", "{{.Names}} {{.State}} {{.Labels}}"]);
    assert_eq!(ps.trim(), "web running tier=front");
    let filtered = s.ok(&[
        "ps",
        "-a",
        "-q",
        "--no-trunc",
        "--filter",
        "label=tier=front",
    ]);
    assert_eq!(filtered.trim(), id);
    assert_eq!(s.ok(&["ps", "-aq", "--filter", "status=exited"]), "");
    let top = s.ok(&["top", "web"]);
    assert!(
        top.starts_with("UID") && top.contains("while true"),
        "{top}"
    );
    s.ok(&["pause", "web"]);
    let st = s.ok(&["inspect", "-f", "{{.State.Status}}", "web"]);
    assert_eq!(st.trim(), "paused");
    s.ok(&["unpause", "web"]);
    s.ok(&["rename", "web", "web2"]);
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}"]).trim(), "web2");
    s.ok(&["rename", "web2", "web"]);
    assert_eq!(s.ok(&["stop", "web"]).trim(), "web");
    let ps = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Exited (0)"), "{ps}");
    // inspect through the API is the object `wharf inspect` prints
    let api: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).expect("json");
    let cli: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "web"])).expect("json");
    assert_eq!(api, cli);
    assert_eq!(api[0]["Id"], id.as_str());
    assert_eq!(api[0]["State"]["Status"], "exited");
    assert_eq!(s.ok(&["rm", "web"]).trim(), "web");
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    let o = s.run(&["inspect", "web"]);
    assert!(
        !o.status.success() && stderr(&o).contains("No such"),
        "{}",
        stderr(&o)
    );
    let created = s.ok(&["create", "--network", "none", "busybox", "true"]);
    let pruned = s.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(created.trim()), "{pruned}");
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn docker_run_it_through_the_hijacked_connection() {
    if !have_docker() || !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: needs the docker CLI and script(1)");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    // script(1) gives the CLI a terminal; the size it sets reaches the container's pty
    let line = format!(
        "stty cols 101 rows 33; {} run -it --rm --network none busybox sh -c 'tty; sleep 0.5; stty size; exit 4'",
        docker_bin()
    );
    let o = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", s.sock.display()))
        .env("DOCKER_CONFIG", s.config.path())
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{out} {}", stderr(&o));
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 101"), "{out}");
}

#[test]
fn hostile_requests_get_4xx_and_the_server_keeps_serving() {
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let (st, text) = s.raw(b"HEAD /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert_eq!(st, 200, "{text}");
    let lower = text.to_ascii_lowercase();
    for h in [
        "api-version: 1.50",
        "ostype: linux",
        "docker-experimental: false",
    ] {
        assert!(lower.contains(h), "{h}: {text}");
    }
    let (st, text) = s.raw(&req("GET", "/v1.99/version", ""));
    assert_eq!(st, 400, "{text}");
    assert!(
        text.contains("client version 1.99 is too new. Maximum supported API version is 1.50"),
        "{text}"
    );
    let (st, text) = s.raw(&req("GET", "/v1.12/version", ""));
    assert_eq!(st, 400, "{text}");
    let (st, text) = s.raw(&req("GET", "/v1.24/version", ""));
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("\"MinAPIVersion\":\"1.24\""), "{text}");
    let (st, text) = s.raw(&req("GET", "/no/such/route", ""));
    assert_eq!(st, 404, "{text}");
    assert!(text.contains("{\"message\":\"page not found\"}"), "{text}");
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/create",
        "{\"Image\": \"busybox\", ",
    ));
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("invalid JSON body"), "{text}");
    let (st, text) = s.raw(&req("POST", "/containers/create", "{\"Image\": 7}"));
    assert_eq!(st, 400, "{text}");
    // a declared body over the limit is refused before it is read
    let (st, text) = s.raw(b"POST /containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{");
    assert_eq!(st, 413, "{text}");
    // and one that is longer than it said it would be: chunked, over the limit
    let mut chunked = b"POST /containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (st, text) = s.raw(&chunked);
    assert_eq!(st, 413, "{}", &text[..text.len().min(300)]);
    // a field wharf cannot honour is refused, not ignored
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"KernelMemory":1048576}}"#,
    ));
    assert_eq!(st, 400, "{text}");
    assert!(
        text.contains("HostConfig.KernelMemory is not supported"),
        "{text}"
    );
    let (st, text) = s.raw(&req("POST", "/containers/create", r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"SecurityOpt":["seccomp=/etc/shadow"]}}"#));
    assert_eq!(st, 400, "{text}");
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/nope/wait?condition=sometimes",
        "",
    ));
    assert_eq!(st, 400, "{text}");
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/nope/wait?condition=next-exit",
        "",
    ));
    assert_eq!(st, 404, "{text}");
    // slowloris: a header block that does not complete is cut off (--header-timeout 2)
    let mut slow = UnixStream::connect(&s.sock).expect("connect");
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n")
        .expect("send");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let n = slow.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        (n == 0 || answer.starts_with("HTTP/1.1 408")) && waited < Duration::from_secs(10),
        "slow headers: {n} bytes after {waited:?}: {answer}"
    );
    // nothing was created, and the server still answers
    let (st, text) = s.raw(&req("GET", "/containers/json?all=1", ""));
    assert_eq!(st, 200, "{text}");
    assert!(text.trim_end().ends_with("[]"), "{text}");
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

#[test]
fn policy_refusal_over_the_api_is_audited_with_the_callers_uid() {
    let w = Wharf::new().with_busybox();
    let policy = w.dir.path().join("policy.toml");
    std::fs::write(&policy, "[run]\nprivileged = false\n").expect("policy");
    let audit = w.dir.path().join("log").join("audit.log");
    let s = Service::start(
        &w,
        &[("WHARF_POLICY", &policy), ("WHARF_AUDIT_LOG", &audit)],
    );
    // a non-root member of the socket's group (nobody:nogroup) asks for --privileged
    let o = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&s.sock)
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Privileged":true}}"#)
        .arg("http://d/v1.50/containers/create")
        .uid(65534)
        .gid(65534)
        .env_clear()
        .output();
    let Ok(o) = o else {
        eprintln!("skipped: no curl");
        return;
    };
    let out = stdout(&o);
    assert!(out.trim_end().ends_with("403"), "{out} {}", stderr(&o));
    assert!(
        out.contains("refused by policy rule `run.privileged`"),
        "{out}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line"))
        .collect();
    let refusal = lines
        .iter()
        .find(|l| l["result"] == "refused" && l["rule"] == "run.privileged")
        .unwrap_or_else(|| panic!("no refusal in {lines:?}"));
    assert_eq!(refusal["caller_uid"], 65534, "{refusal}");
    assert_eq!(refusal["caller_gid"], 65534, "{refusal}");
    assert_eq!(refusal["action"], "create");
    // the same request from root (the CLI's own uid is its caller) is refused the same way
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Privileged":true}}"#,
    ));
    assert_eq!(st, 403, "{text}");
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

use std::os::unix::process::CommandExt;

/// systemd: readiness and stop on `$NOTIFY_SOCKET`; a stop (SIGTERM) leaves the containers
/// it started running under their own monitors.
#[test]
fn notify_and_containers_outlive_the_service() {
    let w = Wharf::new().with_busybox();
    let ndir = common::tmp_dir("wharf-api-notify-");
    let nsock = ndir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&nsock).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let s = Service::start(&w, &[("NOTIFY_SOCKET", &nsock)]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1");
    let (st, text) = s.raw(&req(
        "POST",
        "/containers/create?name=survivor",
        r#"{"Image":"busybox","Cmd":["sleep","300"],"HostConfig":{"NetworkMode":"none"}}"#,
    ));
    assert_eq!(st, 201, "{text}");
    let (st, text) = s.raw(&req("POST", "/containers/survivor/start", ""));
    assert_eq!(st, 204, "{text}");
    drop(s);
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let ps = w.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "survivor running");
    w.ok(&["rm", "-f", "survivor"]);
}

/// systemd socket activation: the socket systemd passes (LISTEN_FDS/LISTEN_PID) is served.
#[test]
fn socket_activation() {
    let activate = Path::new("/usr/bin/systemd-socket-activate");
    if !activate.exists() {
        eprintln!("skipped: no systemd-socket-activate");
        return;
    }
    let w = Wharf::new().with_busybox();
    let dir = common::tmp_dir("wharf-api-activate-");
    let sock = dir.path().join("activated.sock");
    let mut child = Command::new(activate)
        .arg("-l")
        .arg(&sock)
        .arg(Wharf::bin())
        .args([
            "system",
            "service",
            "-H",
            "unix:///nonexistent/never-made.sock",
        ])
        .env("WHARF_ROOT", w.root())
        .env("WHARF_RUNROOT", w.run_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate");
    let child = common::KillOnDrop({
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.try_wait().ok();
        child
    });
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(&req("GET", "/_ping", "")).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("OK"), "{out}");
    assert!(!Path::new("/nonexistent/never-made.sock").exists());
    drop(child);
}

/// Many clients that never finish their headers: the server keeps answering the others and
/// cuts the idle ones off at the header deadline.
#[test]
fn many_idle_connections() {
    let w = Wharf::new();
    let s = Service::start(&w, &[]);
    let idle: Vec<UnixStream> = (0..300)
        .map(|_| {
            let mut c = UnixStream::connect(&s.sock).expect("connect");
            c.write_all(b"GET /_ping HTTP/1.1\r\n").expect("send");
            c
        })
        .collect();
    let started = Instant::now();
    let (st, text) = s.raw(&req("GET", "/_ping", ""));
    assert_eq!(st, 200, "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(3));
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap_or(0);
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "still open");
    }
    let (st, _) = s.raw(&req("GET", "/_ping", ""));
    assert_eq!(st, 200);
}

/// User networks through the API: create, ls, inspect, a container on it, connect refused
/// as `wharf network connect` refuses it, rm.
#[test]
fn networks_through_the_api() {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let id = s.ok(&["network", "create", "--label", "k=v", "apinet"]);
    let id = id.trim().to_string();
    let ls = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["apinet", "bridge", "host", "none"] {
        assert!(ls.lines().any(|l| l == n), "{n}: {ls}");
    }
    let api: serde_json::Value =
        serde_json::from_str(&s.ok(&["network", "inspect", "apinet"])).expect("json");
    let cli: serde_json::Value =
        serde_json::from_str(&w.ok(&["network", "inspect", "apinet"])).expect("json");
    assert_eq!(api, cli);
    assert_eq!(api[0]["Id"], id.as_str());
    assert_eq!(api[0]["Labels"]["k"], "v");
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        "busybox",
        "hostname",
        "-i",
    ]);
    assert!(!out.trim().is_empty(), "{out}");
    let o = s.run(&["network", "connect", "apinet", "nosuchcontainer"]);
    assert!(!o.status.success());
    let o = s.run(&["network", "create", "--ipv6", "v6net"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(s.ok(&["network", "rm", "apinet"]).trim(), "apinet");
    let ls = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.lines().any(|l| l == "apinet"), "{ls}");
}

/// `docker events`: a time window, and a followed stream that sees a container start.
#[test]
fn events_through_the_api() {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let t0 = now() - 1;
    // followed from now: sees what happens next
    let follow = s
        .docker(&[
            "events",
            "--filter",
            "container=evt",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker events");
    let follow = common::KillOnDrop(follow);
    std::thread::sleep(Duration::from_millis(500));
    s.ok(&[
        "run",
        "--rm",
        "--name",
        "evt",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let until = (now() + 1).to_string();
    let o = s.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until,
        "--filter",
        "container=evt",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = o.lines().collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{o}");
    let mut follow = follow;
    let _ = Command::new("kill")
        .args(["-TERM", &follow.0.id().to_string()])
        .status();
    let mut text = String::new();
    if let Some(mut out) = follow.0.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    assert!(text.lines().any(|l| l == "start"), "followed: {text}");
    let (st, body) = s.raw(&req("GET", "/events?until=notatime", ""));
    assert_eq!(st, 400, "{body}");
}
