//! Real Engine API clients beyond the docker CLI, against `wharf system service`: Debian's
//! docker-compose 1.29 (a two-service project: a web server with a published port, a worker
//! on a user network resolving `web` by name; `up -d`, `ps`, `logs`, `down`, nothing left)
//! and docker-py (Debian's python3-docker and/or PyPI's: `containers.run`, `images.pull`
//! from Debian's docker-registry with the JSON progress stream, `containers.list` with
//! label filters, save/load). Under CI=true a missing client fails the test.
//!
//! Subnets 10.213.70.0/24 and 10.213.71.0/24 are this file's.

mod common;

use common::api::Service;
use common::registry::DockerRegistry;
use common::{stderr, stdout, Wharf};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const COMPOSE: &str = "/usr/bin/docker-compose";

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `what` is there; under CI=true its absence fails the test.
fn need(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(!ci(), "CI=true: {what} is needed");
        eprintln!("SKIP: {what} not installed");
    }
    ok
}

fn compose(s: &Service, dir: &Path, project: &str, args: &[&str]) -> Output {
    Command::new(COMPOSE)
        .arg("-p")
        .arg(project)
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", s.sock.display()))
        .env("DOCKER_CONFIG", s.config.path())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("COMPOSE_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("spawn docker-compose")
}

fn compose_ok(s: &Service, dir: &Path, project: &str, args: &[&str]) -> String {
    let o = compose(s, dir, project, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed ({:?}): {} {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    format!("{}{}", stdout(&o), stderr(&o))
}

/// Container names (`/name`) of the service's store whose label `key` is `value`, through
/// the API (all states).
fn labelled(s: &Service, key: &str, value: &str) -> Vec<String> {
    let filters = format!("{{\"label\":[\"{key}={value}\"]}}");
    let q: String = filters
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let req = format!(
        "GET /containers/json?all=1&filters={q} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    );
    let (status, text) = s.raw(req.as_bytes());
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Names"][0].as_str().map(str::to_string))
        .collect()
}

const PROJECT_YML: &str = r#"version: "3.7"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec busybox httpd -f -p 80 -h /www"]
    ports:
      - "@PORT@:80"
    stop_signal: SIGKILL
    networks: [back]
  worker:
    image: busybox
    command: ["sh", "-c", "for i in $$(seq 100); do busybox wget -q -O - http://web/ && break; sleep 0.2; done; echo worker-done; exec sleep 300"]
    stop_signal: SIGKILL
    networks: [back]
networks:
  back:
    ipam:
      config:
        - subnet: 10.213.70.0/24
"#;

/// docker-compose 1.29 drives a two-service project through the socket: the image present
/// is not pulled, the worker reaches `web` by name on the project network, the published
/// port answers from the host, `ps` lists each container once (compose's label filters all
/// hold), `logs` has the worker's output, `down` leaves no container, network or cgroup.
#[test]
fn compose_project_up_ps_logs_down() {
    if !need(Path::new(COMPOSE).exists(), COMPOSE) {
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start_with(&w, &[], true);
    let dir = common::tmp_dir("wharf-compose-");
    let port = common::net::free_port();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        PROJECT_YML.replace("@PORT@", &port.to_string()),
    )
    .expect("compose file");
    let project = format!("wc{}", std::process::id());

    let up = compose_ok(&s, dir.path(), &project, &["up", "-d"]);
    let web = format!("{project}_web_1");
    let worker = format!("{project}_worker_1");
    assert!(up.contains(&format!("Creating {web}")), "{up}");
    let ids_out = compose_ok(&s, dir.path(), &project, &["ps", "-q"]);
    let ids: Vec<String> = ids_out
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 64)
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 2, "{ids_out}");

    // the published port, from the host
    let body =
        common::net::http_get_eventually(std::net::IpAddr::from([127, 0, 0, 1]), port, "/", 20);
    assert_eq!(body.as_deref(), Some("hello-from-web\n"));

    let ps = compose_ok(&s, dir.path(), &project, &["ps"]);
    for n in [&web, &worker] {
        assert_eq!(ps.matches(n.as_str()).count(), 1, "{n} listed once: {ps}");
    }
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    assert_eq!(ps.matches(" Up ").count(), 2, "{ps}");

    // the worker found `web` by name on the project network
    let mut logs = String::new();
    let done = common::eventually(30, || {
        logs = compose_ok(&s, dir.path(), &project, &["logs", "--no-color", "worker"]);
        logs.contains("worker-done")
    });
    assert!(done, "{logs}");
    assert!(logs.contains("hello-from-web"), "{logs}");

    let down = compose_ok(&s, dir.path(), &project, &["down"]);
    assert!(
        down.contains(&format!("Removing network {project}_back")),
        "{down}"
    );
    assert!(
        labelled(&s, "com.docker.compose.project", &project).is_empty(),
        "containers left"
    );
    let nets = w.ok(&["network", "ls"]);
    assert!(!nets.contains(&format!("{project}_back")), "{nets}");
    for id in &ids {
        assert!(common::cgroup_dirs(id).is_empty(), "cgroup of {id} left");
        let left = common::net::leftovers(&w, id);
        assert!(left.is_empty(), "{id} left {left:?}");
    }

    // what compose called: the present image was looked up, never pulled; it followed its
    // project's events by label
    let log = Service::log(&w);
    assert!(
        log.contains("GET /v1.") && log.contains("/images/busybox/json -> 200"),
        "{log}"
    );
    assert!(!log.contains("/images/create"), "{log}");
    assert!(log.contains("POST /v1.50/networks/create -> 201"), "{log}");
    assert!(!log.contains("-> 5"), "a 5xx answer: {log}");
    let events: Vec<&str> = log.lines().filter(|l| l.contains("/events?")).collect();
    assert!(!events.is_empty(), "{log}");
    assert!(events.iter().all(|l| l.ends_with("-> 200")), "{log}");
    drop(s);
    common::net::stop_resolver(&w.root());
}

const ONESHOT_YML: &str = r#"version: "3.7"
services:
  one:
    image: @IMAGE@
    command: ["sh", "-c", "echo one-says-hi; sleep 1; echo one-bye"]
networks:
  default:
    ipam:
      config:
        - subnet: 10.213.71.0/24
"#;

/// compose's pull and attached paths: `up` of an image the store lacks pulls it from
/// Debian's docker-registry (`POST /images/create`, its progress stream read), attaches
/// before the start, follows the project's events (by label; it reads the legacy
/// `id`/`status` fields) and ends with the container; `run --rm` attaches with stdin and
/// waits for `next-exit`.
#[test]
fn compose_pull_attached_up_and_run() {
    if !need(Path::new(COMPOSE).exists(), COMPOSE) {
        return;
    }
    let dir = common::tmp_dir("wharf-compose-");
    let Some(dr) = DockerRegistry::start(dir.path(), "127.0.0.1", "", "") else {
        return;
    };
    let image = format!("{}/compose/bb:v1", dr.addr);
    let src = Wharf::new().with_busybox();
    src.ok(&["tag", "busybox:latest", &image]);
    src.ok(&["push", &image]);
    let w = Wharf::new();
    let s = Service::start_with(&w, &[], true);
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        ONESHOT_YML.replace("@IMAGE@", &image),
    )
    .expect("compose file");
    let project = format!("wo{}", std::process::id());

    let up = compose_ok(&s, dir.path(), &project, &["up", "--no-color"]);
    assert!(up.contains(&format!("Pulling one ({image})")), "{up}");
    assert!(!up.contains("Traceback"), "{up}");
    let one = format!("{project}_one_1");
    assert!(up.contains(&format!("Attaching to {one}")), "{up}");
    let says = up.find("one-says-hi").expect("first line");
    let bye = up.find("one-bye").expect("second line");
    assert!(says < bye, "{up}");
    assert!(up.contains(&format!("{one} exited with code 0")), "{up}");

    let run = compose_ok(
        &s,
        dir.path(),
        &project,
        &["run", "--rm", "one", "echo", "from-run"],
    );
    assert!(run.contains("from-run"), "{run}");

    compose_ok(&s, dir.path(), &project, &["down"]);
    assert!(
        labelled(&s, "com.docker.compose.project", &project).is_empty(),
        "containers left"
    );
    let nets = w.ok(&["network", "ls"]);
    assert!(!nets.contains(&format!("{project}_default")), "{nets}");
    let log = Service::log(&w);
    assert!(log.contains("/attach?"), "{log}");
    assert!(log.contains("POST /v1.50/images/create?"), "{log}");
    let ids = w.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 1, "the pulled image: {ids}");
    assert!(!log.contains("-> 5"), "a 5xx answer: {log}");
    drop(s);
    common::net::stop_resolver(&w.root());
}

/// Each distinct docker-py on this machine: PyPI's (the first `python3`) and Debian's
/// python3-docker (/usr/bin/python3), as (interpreter, version).
fn docker_pys() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for py in ["python3", "/usr/bin/python3"] {
        let Ok(o) = Command::new(py)
            .args(["-c", "import docker; print(docker.__version__)"])
            .output()
        else {
            continue;
        };
        let v = stdout(&o).trim().to_string();
        if o.status.success() && !out.iter().any(|(_, x)| *x == v) {
            out.push((py.to_string(), v));
        }
    }
    out
}

const PY: &str = r#"
import docker, json, sys
sock, ref, tag, token = sys.argv[1:5]
c = docker.DockerClient(base_url="unix://" + sock, version="auto")
out = {}
out["run"] = c.containers.run("busybox", "echo hi", remove=True).decode()
# the pull's JSON progress stream, then the high-level call (now up to date)
events = list(c.api.pull(ref, tag=tag, stream=True, decode=True))
out["statuses"] = [e.get("status", "") for e in events]
out["errors"] = [e for e in events if "error" in e]
img = c.images.pull(ref, tag=tag)
out["pulled_id"] = img.id
out["pulled_tags"] = img.tags
try:
    c.images.pull(ref, tag="no-such-tag")
    out["missing"] = "no error"
except docker.errors.APIError as e:
    out["missing"] = [type(e).__name__, e.status_code]
# label filters: every label must hold
k = c.containers.run("busybox", "sleep 30", detach=True,
                     labels={"wharf.test": token, "role": "a"})
out["both"] = [x.id for x in c.containers.list(filters={"label": ["wharf.test=" + token, "role=a"]})]
out["other"] = [x.id for x in c.containers.list(filters={"label": ["wharf.test=" + token, "role=b"]})]
out["id"] = k.id
k.remove(force=True)
# save and load round trip
data = b"".join(c.images.get("busybox:latest").save(named=True))
out["saved_bytes"] = len(data)
c.images.remove("busybox:latest")
loaded = c.images.load(data)
out["loaded"] = [t for i in loaded for t in i.tags]
print(json.dumps(out))
"#;

/// docker-py against the socket: `containers.run` returns the output, `images.pull` streams
/// docker's progress JSON (from Debian's docker-registry) and returns the image, a missing
/// tag is a 404 `NotFound` before any stream, `containers.list(filters=…)` ANDs labels,
/// `image.save()`/`images.load()` round-trip.
#[test]
fn docker_py_run_pull_list_save_load() {
    let pys = docker_pys();
    if !need(!pys.is_empty(), "docker-py (python3 -c 'import docker')") {
        return;
    }
    let t = common::tmp_dir("wharf-dockerpy-");
    let Some(dr) = DockerRegistry::start(t.path(), "127.0.0.1", "", "") else {
        return;
    };
    // the registry's image comes from another store
    let src = Wharf::new().with_busybox();
    let repo = format!("{}/a2/bb", dr.addr);
    src.ok(&["tag", "busybox:latest", &format!("{repo}:v1")]);
    src.ok(&["push", &format!("{repo}:v1")]);
    let pushed_id = src.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("{repo}:v1"),
    ]);

    for (py, version) in pys {
        let w = Wharf::new().with_busybox();
        let s = Service::start(&w, &[]);
        let token = format!("t{}-{version}", std::process::id());
        let o = Command::new(&py)
            .args(["-c", PY])
            .arg(&s.sock)
            .args([repo.as_str(), "v1", token.as_str()])
            .stdin(Stdio::null())
            .output()
            .expect("spawn python3");
        assert!(
            o.status.success(),
            "docker-py {version} ({py}): {} {}",
            stdout(&o),
            stderr(&o)
        );
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
        let ctx = format!("docker-py {version}: {v}");
        assert_eq!(v["run"], "hi\n", "{ctx}");
        let statuses: Vec<&str> = v["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect();
        assert_eq!(
            statuses.first().copied(),
            Some("Pulling from a2/bb"),
            "{ctx}"
        );
        assert!(statuses.contains(&"Pull complete"), "{ctx}");
        assert!(
            statuses.iter().any(|x| x.starts_with("Digest: sha256:")),
            "{ctx}"
        );
        assert_eq!(
            statuses.last().copied(),
            Some(format!("Status: Downloaded newer image for {repo}:v1").as_str()),
            "{ctx}"
        );
        assert_eq!(v["errors"], serde_json::json!([]), "{ctx}");
        assert_eq!(v["pulled_id"], pushed_id.trim(), "{ctx}");
        assert_eq!(
            v["pulled_tags"],
            serde_json::json!([format!("{repo}:v1")]),
            "{ctx}"
        );
        assert_eq!(v["missing"], serde_json::json!(["NotFound", 404]), "{ctx}");
        assert_eq!(v["both"], serde_json::json!([v["id"].clone()]), "{ctx}");
        assert_eq!(v["other"], serde_json::json!([]), "{ctx}");
        assert!(v["saved_bytes"].as_u64().unwrap_or(0) > 100_000, "{ctx}");
        assert_eq!(v["loaded"], serde_json::json!(["busybox:latest"]), "{ctx}");
        // the pull reached the store the CLI reads
        let ids = w.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{repo}:v1"),
        ]);
        assert_eq!(ids.trim(), pushed_id.trim());
        assert!(labelled(&s, "wharf.test", &token).is_empty(), "{ctx}");
    }
}

/// A raw request with a body (closing the connection after its response).
fn raw_req(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The pull/save/load routes answer bad requests as docker does, with docker's error body
/// and a 4xx (501 for import, which wharf does not serve), never a 500 or a stream.
#[test]
fn image_transfer_routes_refuse_bad_requests() {
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let port = common::net::free_port();
    let cases: Vec<(String, Vec<u8>, u16, String)> = vec![
        ("/images/create".into(), vec![], 400, "fromImage".into()),
        (
            "/images/create?fromSrc=-".into(),
            vec![],
            501,
            "not supported by wharf".into(),
        ),
        (
            "/images/create?fromImage=UPPER&tag=v1".into(),
            vec![],
            400,
            "must be lowercase".into(),
        ),
        (
            "/images/create?fromImage=busybox&tag=a:b".into(),
            vec![],
            400,
            "invalid reference format".into(),
        ),
        // nothing listens there: the failure comes before any progress, as a status
        (
            format!("/images/create?fromImage=127.0.0.1:{port}/x&tag=v1"),
            vec![],
            503,
            "connection refused".into(),
        ),
        (
            "/images/load".into(),
            vec![0x5a; 4096],
            400,
            "archive".into(),
        ),
        ("/images/load".into(), vec![], 400, "archive".into()),
    ];
    for (path, body, want, says) in cases {
        let (status, text) = s.raw(&raw_req("POST", &path, &body));
        assert_eq!(status, want, "POST {path}: {text}");
        assert!(text.contains("{\"message\":"), "POST {path}: {text}");
        assert!(text.contains(&says), "POST {path}: {text}");
    }
    for (path, want) in [
        ("/images/get", 400),
        ("/images/nope/get", 404),
        ("/images/get?names=nope", 404),
    ] {
        let (status, text) = s.raw(&raw_req("GET", path, b""));
        assert_eq!(status, want, "GET {path}: {text}");
    }
    // the store is as it was: busybox alone
    let images = w.ok(&["images", "-q"]);
    assert_eq!(images.lines().count(), 1, "{images}");
}

const PY_AUTH: &str = r#"
import docker, json, sys
sock, ref, user, password = sys.argv[1:5]
c = docker.DockerClient(base_url="unix://" + sock, version="auto")
out = {}
try:
    c.images.pull(ref, tag="v1")
    out["anonymous"] = "pulled"
except docker.errors.APIError as e:
    out["anonymous"] = e.status_code
try:
    c.images.pull(ref, tag="v1", auth_config={"username": user, "password": "wrong"})
    out["wrong"] = "pulled"
except docker.errors.APIError as e:
    out["wrong"] = e.status_code
img = c.images.pull(ref, tag="v1", auth_config={"username": user, "password": password})
out["tags"] = img.tags
print(json.dumps(out))
"#;

/// `X-Registry-Auth`: a client's credentials (docker-py's `auth_config`) are used for that
/// pull only; the server has none stored, so without them (or with wrong ones) the
/// registry's refusal comes back as an error status (403), not a stream.
#[test]
fn docker_py_pull_with_client_credentials() {
    let Some((py, version)) = docker_pys().into_iter().next() else {
        need(false, "docker-py (python3 -c 'import docker')");
        return;
    };
    let t = common::tmp_dir("wharf-dockerpy-auth-");
    let hp = t.path().join("htpasswd");
    std::fs::write(
        &hp,
        wharf_registry::htpasswd_line("alice", "s3cret", 6).expect("htpasswd") + "\n",
    )
    .expect("write htpasswd");
    let src = Wharf::new().with_busybox();
    let mut cmd = src.command(&["registry", "serve", "--addr", "127.0.0.1:0", "--root"]);
    cmd.arg(t.path().join("reg")).arg("--htpasswd").arg(&hp);
    let reg = common::registry::Serve::start(cmd);
    let image = format!("{}/private/bb", reg.addr);
    // the pusher's credentials live in its own docker config
    let pusher = t.path().join("pusher");
    for args in [
        vec!["login", "-u", "alice", "-p", "s3cret", reg.addr.as_str()],
        vec!["tag", "busybox:latest", &format!("{image}:v1")],
        vec!["push", &format!("{image}:v1")],
    ] {
        let o = src
            .command(&args)
            .env("DOCKER_CONFIG", &pusher)
            .output()
            .expect("wharf");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }

    let w = Wharf::new();
    let empty = t.path().join("server-config");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let s = Service::start(&w, &[("DOCKER_CONFIG", empty.as_path())]);
    let o = Command::new(&py)
        .args(["-c", PY_AUTH])
        .arg(&s.sock)
        .args([image.as_str(), "alice", "s3cret"])
        .stdin(Stdio::null())
        .output()
        .expect("spawn python3");
    assert!(
        o.status.success(),
        "docker-py {version}: {} {}",
        stdout(&o),
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    // the registry's 401 is the engine's PermissionDenied (403 in the one kind table)
    assert_eq!(v["anonymous"], 403, "{v}");
    assert_eq!(v["wrong"], 403, "{v}");
    assert_eq!(v["tags"], serde_json::json!([format!("{image}:v1")]), "{v}");
    // nothing was stored on the server's side
    assert_eq!(std::fs::read_dir(&empty).expect("read").count(), 0);
}
